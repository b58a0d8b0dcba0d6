//! What Grafana's PostgreSQL data source sends, without a Grafana server (none can be
//! installed here): its query macros expanded as Grafana expands them
//! (pkg/tsdb/grafana-postgresql-datasource/macros.go), for a fixed time range.

use std::sync::OnceLock;

use regex::Regex;

/// A dashboard time range (epoch ms) and the panel's interval.
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval_ms: i64,
}

/// Go's `time.RFC3339Nano` of a UTC instant: trailing zeros of the fraction dropped.
fn rfc3339_nano(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).expect("an instant");
    let frac = ms.rem_euclid(1000);
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if frac == 0 {
        format!("{base}Z")
    } else {
        let f = format!("{frac:03}");
        format!("{base}.{}Z", f.trim_end_matches('0'))
    }
}

/// Seconds as Go's `%v` prints a float64 (`60`, `1.5`).
fn go_float(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{}", seconds as i64)
    } else {
        format!("{seconds}")
    }
}

/// Grafana's interval syntax (`'1m'`, `30s`, `1h`, `1d`) in seconds.
fn interval_seconds(text: &str) -> f64 {
    let t = text.trim().trim_matches(|c| c == '\'' || c == '"');
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("interval {text}"));
    n * match unit {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => panic!("interval unit {other}"),
    }
}

fn macro_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)").expect("the macro pattern"))
}

fn expand_one(name: &str, args: &[String], range: &TimeRange) -> String {
    let from_s = range.from_ms.div_euclid(1000);
    let to_s = range.to_ms.div_euclid(1000);
    match name {
        "__time" => format!("{} AS \"time\"", args[0]),
        "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", args[0]),
        "__timeFilter" => format!(
            "{} BETWEEN '{}' AND '{}'",
            args[0],
            rfc3339_nano(range.from_ms),
            rfc3339_nano(range.to_ms)
        ),
        "__timeFrom" => format!("'{}'", rfc3339_nano(range.from_ms)),
        "__timeTo" => format!("'{}'", rfc3339_nano(range.to_ms)),
        "__timeGroup" => {
            let s = go_float(interval_seconds(&args[1]));
            format!("floor(extract(epoch from {})/{s})*{s}", args[0])
        }
        "__timeGroupAlias" => format!("{} AS \"time\"", expand_one("__timeGroup", args, range)),
        "__unixEpochFilter" => format!("{c} >= {from_s} AND {c} <= {to_s}", c = args[0]),
        "__unixEpochFrom" => from_s.to_string(),
        "__unixEpochTo" => to_s.to_string(),
        "__unixEpochGroup" => {
            let s = go_float(interval_seconds(&args[1]));
            format!("floor(({})/{s})*{s}", args[0])
        }
        "__unixEpochGroupAlias" => {
            format!(
                "{} AS \"time\"",
                expand_one("__unixEpochGroup", args, range)
            )
        }
        other => panic!("Grafana has no macro ${other}"),
    }
}

/// A panel's raw SQL as Grafana sends it for `range`.
pub fn expand(sql: &str, range: &TimeRange) -> String {
    // Global variables first (sqleng's Interpolate).
    let sql = sql
        .replace("$__interval_ms", &range.interval_ms.to_string())
        .replace("$__interval", &format!("{}ms", range.interval_ms));
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for caps in macro_pattern().captures_iter(&sql) {
        let whole = caps.get(0).expect("the match");
        let mut name = caps[1].to_string();
        let args: Vec<String> = caps[2].split(',').map(|a| a.trim().to_string()).collect();
        // Before Grafana 5.3 `$__timeGroup(...)` before a comma was the aliased form.
        if name == "__timeGroup" && sql[whole.end()..].starts_with(',') {
            name = "__timeGroupAlias".into();
        }
        out.push_str(&sql[last..whole.start()]);
        out.push_str(&expand_one(&name, &args, range));
        last = whole.end();
    }
    out.push_str(&sql[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_expand_as_grafana_writes_them() {
        let range = TimeRange {
            from_ms: 1_796_169_000_000,
            to_ms: 1_796_172_600_500,
            interval_ms: 60_000,
        };
        assert_eq!(
            expand("SELECT $__timeGroupAlias(window_start, '1m'), x FROM t WHERE $__timeFilter(window_start)", &range),
            "SELECT floor(extract(epoch from window_start)/60)*60 AS \"time\", x FROM t WHERE window_start BETWEEN '2026-12-01T23:50:00Z' AND '2026-12-02T00:50:00.5Z'"
        );
        assert_eq!(
            expand("$__timeGroup(c, '1.5s'), $__unixEpochFilter(e) $__interval_ms", &range),
            "floor(extract(epoch from c)/1.5)*1.5 AS \"time\", e >= 1796169000 AND e <= 1796172600 60000"
        );
    }
}
