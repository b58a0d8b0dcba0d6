//! `GET /v1/quality`: the quality report of a range of hours. The `quality` metric's states
//! per producer and window are merged as every answer is (batch where it covers an hour,
//! speed otherwise) over the range and the hours before it the volume rule compares with,
//! plus, per hour, the same hours of the previous weeks (the weekly baseline), and judged
//! by [`shared_logic::quality_report`] with the rules the server was started with.

use serde_json::{json, Value};
use shared_logic::metrics::Quality;
use shared_logic::quality_report::{
    self, add, report_by_window, HourRange, ProducerHour, ProducerWindow, WindowStates,
};
use shared_logic::quality_rules::{Check, Rule, Verdict};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::Metric;

use crate::answer::with_merged_rows;
use crate::error::ServingError;
use crate::merge::Query;
use crate::query::parse_time;
use crate::state::AppState;

/// Longest range of one report (the baselines read several weeks more).
pub const MAX_REPORT_HOURS: i64 = 31 * 24;

/// Longest range of a report judged window by window.
pub const MAX_WINDOW_REPORT_HOURS: i64 = 48;

/// What a report request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRequest {
    pub from: HourKey,
    pub to: HourKey,
    /// Judge each window too (`granularity=minute`), not only each hour.
    pub by_window: bool,
}

/// A report request: the hours `[from, to)` (`from` and `to`, RFC 3339 or epoch ms,
/// floored to whole hours; by default the last 24 hours up to the current one), and
/// `granularity` (`hour`, the default, or `minute`: each window judged too).
pub fn parse_range(raw: Option<&str>, now_ms: i64) -> Result<ReportRequest, ServingError> {
    let (mut from, mut to, mut by_window) = (None, None, false);
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "from" => from = Some(parse_time("from", &value)?),
            "to" => to = Some(parse_time("to", &value)?),
            "granularity" => {
                by_window = match value.as_ref() {
                    "hour" => false,
                    "minute" => true,
                    other => {
                        return Err(ServingError::bad(
                            "bad_granularity",
                            format!("granularity `{other}`: the report is by `hour` or `minute`"),
                        ))
                    }
                }
            }
            _ => {
                return Err(ServingError::bad(
                    "unknown_parameter",
                    "quality takes `from` and `to` (RFC 3339 or epoch ms; whole hours) and `granularity` (hour, minute)",
                ))
            }
        }
    }
    let (from, to) = hour_range(from, to, now_ms)?;
    if by_window && to.0 - from.0 > MAX_WINDOW_REPORT_HOURS {
        return Err(ServingError::bad(
            "range_too_large",
            format!("a report by minute covers at most {MAX_WINDOW_REPORT_HOURS} hours"),
        ));
    }
    Ok(ReportRequest {
        from,
        to,
        by_window,
    })
}

/// The hours `[from, to)` of a report from its bounds (epoch ms): `from` floored and `to`
/// rounded up to whole hours; by default the last 24 hours up to the current one.
pub fn hour_range(
    from: Option<i64>,
    to: Option<i64>,
    now_ms: i64,
) -> Result<(HourKey, HourKey), ServingError> {
    let to = to.map_or(now_ms.div_euclid(HOUR_MS) + 1, |t| {
        t.div_euclid(HOUR_MS) + i64::from(t.rem_euclid(HOUR_MS) != 0)
    });
    let from = from.map_or(to - 24, |f| f.div_euclid(HOUR_MS));
    if from >= to {
        return Err(ServingError::bad("bad_range", "`from` must be before `to`"));
    }
    if to - from > MAX_REPORT_HOURS {
        return Err(ServingError::bad(
            "range_too_large",
            format!("a report covers at most {MAX_REPORT_HOURS} hours"),
        ));
    }
    Ok((HourKey(from), HourKey(to)))
}

/// The merged `quality` states per producer of `[from, to)`, in windows of
/// `granularity_ms` (the metric's windows, or hours).
async fn read_states(
    state: &AppState,
    (from, to): HourRange,
    granularity_ms: i64,
    into: &mut WindowStates,
) -> Result<(), ServingError> {
    if from >= to {
        return Ok(());
    }
    let producer = Quality::DIMENSIONS
        .iter()
        .position(|d| *d == "producer")
        .expect("quality has a producer dimension");
    let q = Query {
        from_ms: from.start_ms(),
        to_ms: to.start_ms(),
        granularity_ms,
        group_by: vec![producer],
        filters: Vec::new(),
        sketches: false,
    };
    with_merged_rows::<Quality, _>(state, &q, None, |merged| {
        for row in merged.rows {
            add(into, &row.dims[0], row.window_start, &row.state);
        }
    })
    .await
}

/// The report of `[from, to)` at `now_ms` with `rules`.
pub async fn quality_report(
    state: &AppState,
    from: HourKey,
    to: HourKey,
    rules: &[Rule],
    now_ms: i64,
) -> Result<Vec<ProducerHour>, ServingError> {
    Ok(
        quality_report_by_window(state, (from, to), rules, now_ms, false)
            .await?
            .0,
    )
}

/// The report of `[from, to)` at `now_ms` with `rules`, and with `by_window` each
/// producer's windows judged too.
pub async fn quality_report_by_window(
    state: &AppState,
    (from, to): HourRange,
    rules: &[Rule],
    now_ms: i64,
    by_window: bool,
) -> Result<(Vec<ProducerHour>, Vec<ProducerWindow>), ServingError> {
    let mut states = WindowStates::new();
    let volume = rules.iter().find(|r| r.check == Check::Volume);
    let (weeks, hours) = volume.map_or((0, 0), |r| (r.baseline.weeks, r.baseline.hours));
    // The range and the hours before it, in the metric's windows (freshness needs them).
    let recent = (HourKey(from.0 - i64::from(hours)), to);
    let window = state.opts.ctx.windows.size_ms().min(HOUR_MS);
    read_states(state, recent, window, &mut states).await?;
    let mut read = vec![recent];
    // The same hours of earlier weeks, in hours (volumes only), where not read already.
    for week in 1..=i64::from(weeks) {
        let back = week * 24 * 7;
        let range = (HourKey(from.0 - back), HourKey(to.0 - back).min(recent.0));
        if range.0 < range.1 {
            read_states(state, range, HOUR_MS, &mut states).await?;
            read.push(range);
        }
    }
    let window_ms = by_window.then_some(window);
    Ok(report_by_window(
        &states,
        &read,
        (from, to),
        rules,
        now_ms,
        window_ms,
    ))
}

/// Adds what the speed layer saw of the report's hours `[from, to)` to them (arrivals,
/// dead-letter samples: [`shared_logic::quality_report::add_speed_notes`]). When the speed
/// layer does not answer, the hours keep none and the reason is returned: the report of
/// the figures every layer has is still worth having.
pub async fn add_speed_notes(
    state: &AppState,
    from: HourKey,
    to: HourKey,
    hours: &mut [ProducerHour],
) -> Option<String> {
    let speed = state.speed.current();
    match speed.quality_notes(from.start_ms(), to.start_ms()).await {
        Ok((arrivals, samples)) => {
            let samples = samples.within(from.start_ms(), to.start_ms());
            quality_report::add_speed_notes(hours, &arrivals, &samples);
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the quality report has no arrival figures");
            Some(e.to_string())
        }
    }
}

/// The batch layer's freshness for the report: the `quality` metric's time boundary (the
/// end of the last hour of the contiguous covered run) and its age at `now_ms`.
pub fn batch_boundary(state: &AppState, now_ms: i64) -> (Option<String>, Option<i64>) {
    let boundary = state
        .batch
        .published()
        .and_then(|p| p.time_boundary.get(Quality::NAME).cloned().flatten());
    let age = boundary
        .as_deref()
        .and_then(|b| shared_logic::instant::parse_instant(b).ok())
        .map(|ms| now_ms - ms);
    (boundary, age)
}

/// The report's JSON: the range, the batch boundary and its age, the rules, one entry per
/// producer and hour, and why the speed layer's notes are missing when they are.
pub fn report_json(
    from: HourKey,
    to: HourKey,
    rules: &[Rule],
    hours: &[ProducerHour],
    (boundary, age_ms): (Option<String>, Option<i64>),
    speed_notes_missing: Option<&str>,
    windows: Option<&[ProducerWindow]>,
) -> Value {
    let worst = hours
        .iter()
        .map(|h| h.verdict)
        .max()
        .unwrap_or(Verdict::Pass);
    let mut report = json!({
        "from": shared_logic::instant::format_instant(from.start_ms()),
        "to": shared_logic::instant::format_instant(to.start_ms()),
        "verdict": worst,
        "batch_boundary": boundary,
        "batch_boundary_age_ms": age_ms,
        "rules": rules.iter().map(|r| json!({
            "check": r.check, "warn": r.warn, "fail": r.fail, "rule": r.text(),
        })).collect::<Vec<_>>(),
        "hours": hours,
        "speed_notes_missing": speed_notes_missing,
    });
    if let Some(windows) = windows {
        report["windows"] = json!(windows);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 493_000;

    #[test]
    fn ranges_are_whole_hours_and_bounded() {
        let now = H * HOUR_MS + 5 * 60_000;
        let range = |q: Option<&str>| parse_range(q, now).map(|r| (r.from, r.to, r.by_window));
        assert_eq!(
            range(None).unwrap(),
            (HourKey(H + 1 - 24), HourKey(H + 1), false)
        );
        assert_eq!(
            range(Some("granularity=minute")).unwrap(),
            (HourKey(H + 1 - 24), HourKey(H + 1), true)
        );
        let q = format!("from={}&to={}", H * HOUR_MS + 1, (H + 2) * HOUR_MS + 1);
        assert_eq!(
            range(Some(&q)).unwrap(),
            (HourKey(H), HourKey(H + 3), false)
        );
        let bad = |q: &str| parse_range(Some(q), now).unwrap_err().to_string();
        assert!(bad("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z").contains("before"));
        assert!(bad("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z").contains("at most"));
        assert!(bad("metric=page_views").contains("from"));
        assert!(bad("granularity=second").contains("`hour` or `minute`"));
        assert!(
            bad("from=2026-01-01T00:00:00Z&to=2026-01-04T00:00:00Z&granularity=minute")
                .contains("at most 48 hours")
        );
    }
}
