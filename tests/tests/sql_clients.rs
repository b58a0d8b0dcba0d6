//! The SQL endpoint through clients we did not write, beside psql: psycopg 3 over the
//! extended query protocol (bound timestamptz and text parameters, prepared statements,
//! binary results, bytea, numeric, SQLSTATEs on a session that stays usable), and the
//! PostgreSQL JDBC driver (DatabaseMetaData's tables and columns, server-prepared
//! statements, paged cursors). Their answers equal the direct computation and the REST
//! API's.

use std::process::Command;

use lambda_sql::SqlOptions;
use lambda_tests::published::{publish_hours, PublishedLake};
use lambda_tests::serving::{api_rows, batch_only_state, direct_rows, get_json, start};
use lambda_tests::sql::start_sql;
use serde_json::Value;
use shared_logic::metrics::PageViews;

const TOKEN: &str = "9e2b4d6f8a0c1e3f5a7b9c0d2e4f6a8b";

/// Two published hours (seed `seed`) served by the REST API and the SQL endpoint (with
/// the token), every speed instance down.
async fn serve(
    seed: u64,
) -> (
    tempfile::TempDir,
    PublishedLake,
    String,
    std::net::SocketAddr,
) {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), seed, 2).await;
    let state = batch_only_state(&published.views).await;
    let rest = start(state.clone()).await;
    let sql = start_sql(
        state,
        SqlOptions {
            token: Some(TOKEN.into()),
            ..SqlOptions::default()
        },
    )
    .await;
    (dir, published, rest, sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_binds_parameters_prepares_and_reads_binary_answers() {
    let (_dir, published, rest, sql) = serve(91).await;
    let events = published.events();
    let (from, to) = (published.from_ms, published.to_ms);
    let venv = std::env::var("LAMBDA_VENV").unwrap_or_else(|_| "/var/tmp/lambda-venv".into());
    let python = format!("{venv}/bin/python");
    let dsn = format!(
        "host={} port={} user=lambda dbname=lambda password={TOKEN}",
        sql.ip(),
        sql.port()
    );
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/psycopg_probe.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args([probe, &dsn, &from.to_string(), &to.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("{python} does not run ({e}): run scripts/python-tools.sh"))
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}: run scripts/python-tools.sh first"
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("the probe prints JSON");

    // Bound parameters: page views per minute by device for country = US.
    let expected =
        direct_rows::<PageViews>(&events, from, to, 60_000, &["device"], &[("country", "US")]);
    let rows = got["page_views_by_device_us"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let start = chrono::DateTime::parse_from_rfc3339(r[0].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let values = &expected[&(start, vec![r[1].as_str().unwrap().to_string()])];
        assert_eq!(r[2], values["views"], "{r}");
        assert_eq!(r[3], values["distinct_users"], "{r}");
    }

    // numeric and bigint in binary, and distinct buyers merged from sketches: the REST
    // API's revenue by category over the range.
    let path = format!(
        "/v1/metrics/revenue?from={from}&to={to}&granularity=all&group_by=category&limit=100000"
    );
    let (status, answer) = get_json(&rest, &path, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let rest_rows = api_rows(&answer);
    let rows = got["revenue_by_category"].as_array().unwrap();
    assert_eq!(rows.len(), rest_rows.len());
    for r in rows {
        let values = &rest_rows[&(from, vec![r[0].as_str().unwrap().to_string()])];
        let minor = values["revenue_minor"].as_i64().unwrap();
        assert_eq!(
            r[1].as_str().unwrap(),
            format!("{}.{:02}", minor / 100, minor % 100),
            "{r}"
        );
        assert_eq!(r[2].as_i64().unwrap(), minor, "{r}");
        assert_eq!(r[3], values["distinct_buyers"], "{r}");
    }
    assert_eq!(got["sketch_is_bytes"], true);
    assert_eq!(got["parameters"], serde_json::json!([42, "ab"]));
    assert_eq!(
        got["errors"],
        serde_json::json!(["42P01", "42703", "25006"])
    );
    assert_eq!(got["after_errors"], 1);
}

/// The probe's `key=value` lines.
fn lines(out: &[u8]) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_driver_lists_tables_and_columns_and_runs_prepared_queries() {
    let (_dir, published, _rest, sql) = serve(92).await;
    let events = published.events();
    let (from, to) = (published.from_ms, published.to_ms);
    let url = format!("jdbc:postgresql://{}:{}/lambda", sql.ip(), sql.port());
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/JdbcProbe.java");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .args(["-cp", "/usr/share/java/postgresql.jar", probe])
            .args([&url, "lambda", TOKEN, &from.to_string(), &to.to_string()])
            .output()
            .unwrap_or_else(|e| {
                panic!("java does not run ({e}): install openjdk-17-jre-headless and libpostgresql-jdbc-java (CI does: .ci/run)")
            })
    })
    .await
    .unwrap();
    let got = lines(&out.stdout);
    assert!(
        out.status.success(),
        "{got:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tables: Vec<&str> = got["tables"].split(',').collect();
    for name in shared_logic::registry::NAMES {
        for table in [
            name.to_string(),
            format!("{name}_hourly"),
            format!("{name}_daily"),
        ] {
            assert!(tables.contains(&table.as_str()), "{table} in {tables:?}");
        }
    }
    let columns: Vec<&str> = got["columns"].split(',').collect();
    for c in [
        "window_start:timestamptz",
        "category:text",
        "orders:int8",
        "revenue:numeric",
        "buyers_sketch:bytea",
        "final:bool",
    ] {
        assert!(columns.contains(&c), "{c} in {columns:?}");
    }

    let expected =
        direct_rows::<PageViews>(&events, from, to, 60_000, &["device"], &[("country", "US")]);
    let views: u64 = expected
        .values()
        .map(|v| v["views"].as_u64().unwrap())
        .sum();
    assert_eq!(got["us_rows"], expected.len().to_string());
    assert_eq!(got["us_views"], views.to_string());
    let all = direct_rows::<PageViews>(&events, from, to, 60_000, &["url"], &[]);
    let views: u64 = all.values().map(|v| v["views"].as_u64().unwrap()).sum();
    assert_eq!(got["paged_rows"], all.len().to_string());
    assert_eq!(got["paged_views"], views.to_string());
}
