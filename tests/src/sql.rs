//! SQL endpoint test support: the endpoint on a loopback port in this process, and
//! `psql` (Debian's postgresql-client, a client we did not write) to talk to it.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;

use lambda_sql::{SqlEndpoint, SqlOptions};

/// Serves SQL over `state` on a free loopback port (until the test's runtime ends).
pub async fn start_sql(state: Arc<serving::AppState>, opts: SqlOptions) -> SocketAddr {
    let opts = SqlOptions {
        listen: "127.0.0.1:0".into(),
        ..opts
    };
    let endpoint = SqlEndpoint::bind(state, &opts)
        .await
        .expect("the SQL endpoint binds");
    let addr = endpoint.local_addr().expect("address");
    tokio::spawn(endpoint.serve(std::future::pending()));
    addr
}

/// How `psql` connects.
#[derive(Debug, Clone, Default)]
pub struct Connect<'a> {
    pub password: Option<&'a str>,
    /// More libpq connection parameters (`sslmode=require sslrootcert=...`).
    pub params: &'a str,
}

/// What one `psql` run printed.
#[derive(Debug)]
pub struct Psql {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Psql {
    /// The unaligned, tab-separated rows printed.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

fn psql_command(addr: SocketAddr, connect: &Connect<'_>) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host={} port={} user=lambda dbname=lambda connect_timeout=10 {}",
        addr.ip(),
        addr.port(),
        connect.params
    ))
    .args(["-X", "-A", "-t", "-F", "\t", "-q"])
    .env_remove("PGPASSWORD")
    .env("PGCONNECT_TIMEOUT", "10");
    if let Some(p) = connect.password {
        cmd.env("PGPASSWORD", p);
    }
    cmd
}

fn finish(out: std::io::Result<Output>) -> Psql {
    let out = out.unwrap_or_else(|e| {
        panic!(
            "cannot run `psql` ({e}): install Debian's postgresql-client (CI installs it: .ci/run)"
        )
    });
    Psql {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sql` (one string, simple query protocol; several statements allowed) with
/// `ON_ERROR_STOP`, from a blocking thread.
pub async fn psql(addr: SocketAddr, connect: &Connect<'_>, sql: &str) -> Psql {
    let mut cmd = psql_command(addr, connect);
    cmd.args(["-v", "ON_ERROR_STOP=1", "-c", sql]);
    tokio::task::spawn_blocking(move || finish(cmd.output()))
        .await
        .expect("psql thread")
}

/// Runs a psql script (statements and backslash commands, errors do not stop it) with
/// verbose errors (each with its SQLSTATE), from a blocking thread.
pub async fn psql_script(addr: SocketAddr, connect: &Connect<'_>, script: &str) -> Psql {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("script.sql");
    std::fs::write(&file, format!("\\set VERBOSITY verbose\n{script}")).expect("write the script");
    let mut cmd = psql_command(addr, connect);
    cmd.arg("-f").arg(&file);
    let out = tokio::task::spawn_blocking(move || finish(cmd.output()))
        .await
        .expect("psql thread");
    drop(dir);
    out
}

/// `psql`'s text of a `timestamptz` (`2026-12-02 03:00:00+00`) in epoch milliseconds.
pub fn parse_timestamptz(text: &str) -> i64 {
    let normalized = format!("{}:00", text.trim());
    chrono::DateTime::parse_from_str(&normalized, "%Y-%m-%d %H:%M:%S%.f%:z")
        .unwrap_or_else(|e| panic!("not a timestamptz: {text}: {e}"))
        .timestamp_millis()
}

/// An instant as an SQL literal (`'2026-12-02T03:00:00Z'`).
pub fn sql_instant(ms: i64) -> String {
    format!("'{}'", shared_logic::instant::format_instant(ms))
}

/// The table of metric `M` at a granularity (`minute`, `hour`, `day`, `sliding`).
pub fn table_of<M: shared_logic::Metric>(granularity: &str) -> String {
    match granularity {
        "minute" => M::NAME.to_string(),
        "hour" => format!("{}_hourly", M::NAME),
        "day" => format!("{}_daily", M::NAME),
        "sliding" => format!("{}_sliding", M::NAME),
        other => panic!("no table at granularity {other}"),
    }
}

/// psql's rows of `SELECT window_start, <group_by>, <every value>` as `RowKey → values`,
/// typed by metric `M`'s value kinds (what the REST API and the direct computation give).
pub fn sql_rows<M: shared_logic::Metric>(
    group_by: usize,
    rows: &[Vec<String>],
) -> std::collections::BTreeMap<crate::serving::RowKey, serde_json::Value> {
    use serde_json::Value;
    use shared_logic::metric::ValueKind;
    rows.iter()
        .map(|r| {
            let start = parse_timestamptz(&r[0]);
            let dims = r[1..=group_by].to_vec();
            let values = r[group_by + 1..]
                .iter()
                .zip(M::VALUES)
                .map(|(text, (name, kind))| {
                    let v = match kind {
                        ValueKind::Count => Value::from(text.parse::<u64>().expect("a count")),
                        ValueKind::Money => Value::from(text.parse::<i64>().expect("minor units")),
                        ValueKind::Ratio if text.is_empty() => Value::Null,
                        ValueKind::Ratio => Value::from(text.parse::<f64>().expect("a ratio")),
                        ValueKind::Millis | ValueKind::Time if text.is_empty() => Value::Null,
                        ValueKind::Millis => Value::from(text.parse::<u64>().expect("a duration")),
                        ValueKind::Time => Value::from(shared_logic::instant::format_instant(
                            parse_timestamptz(text),
                        )),
                    };
                    (name.to_string(), v)
                })
                .collect();
            ((start, dims), Value::Object(values))
        })
        .collect()
}

/// Queries metric `M`'s table at `granularity` over `[from, to)` with `psql` and asserts
/// that the rows equal the direct computation over `events` (which must not be empty).
pub async fn assert_sql_equals_direct<M: shared_logic::Registered>(
    addr: SocketAddr,
    events: &[shared_logic::Event],
    (from, to): (i64, i64),
    granularity: (&str, i64),
    group_by: &[&str],
    filters: &[(&str, &str)],
) {
    let expected =
        crate::serving::direct_rows::<M>(events, from, to, granularity.1, group_by, filters);
    assert_sql_equals_rows::<M>(addr, expected, (from, to), granularity.0, group_by, filters).await;
}

/// Queries metric `M`'s table at `granularity` over `[from, to)` with `psql` and asserts
/// that the rows equal `expected` (which must not be empty).
pub async fn assert_sql_equals_rows<M: shared_logic::Registered>(
    addr: SocketAddr,
    expected: std::collections::BTreeMap<crate::serving::RowKey, serde_json::Value>,
    (from, to): (i64, i64),
    granularity: &str,
    group_by: &[&str],
    filters: &[(&str, &str)],
) {
    let values: Vec<&str> = M::VALUES.iter().map(|(n, _)| *n).collect();
    let columns = [&["window_start"][..], group_by, &values]
        .concat()
        .join(", ");
    let mut conditions = vec![
        format!("window_start >= {}", sql_instant(from)),
        format!("window_start < {}", sql_instant(to)),
    ];
    conditions.extend(
        filters
            .iter()
            .map(|(d, v)| format!("{d} = '{}'", v.replace('\'', "''"))),
    );
    let order: Vec<String> = (1..=group_by.len() + 1).map(|i| i.to_string()).collect();
    let sql = format!(
        "SELECT {columns} FROM {} WHERE {} ORDER BY {}",
        table_of::<M>(granularity),
        conditions.join(" AND "),
        order.join(", ")
    );
    assert!(
        !expected.is_empty(),
        "{sql}: the test data covers the range"
    );
    let out = psql(addr, &Connect::default(), &sql).await;
    assert!(out.ok, "{sql}: {}", out.stderr);
    crate::serving::assert_rows_equal(&sql, &sql_rows::<M>(group_by.len(), &out.rows()), &expected);
}
