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
