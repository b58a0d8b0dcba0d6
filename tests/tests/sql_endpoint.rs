//! The SQL endpoint, driven by `psql` (Debian's postgresql-client): every metric table
//! answers what the direct computation and the REST API answer; distinct counts regrouped
//! in SQL merge sketches; errors carry PostgreSQL's SQLSTATEs and leave the session
//! usable; the query token is the password, TLS is required once configured; statement
//! timeouts, the row cap and the session limit hold; fifty sessions query at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lambda_sql::SqlOptions;
use lambda_tests::published::{publish_hours, PublishedLake};
use lambda_tests::serving::{api_rows, assert_rows_equal, batch_only_state, get_json, start};
use lambda_tests::sql::{
    assert_sql_equals_direct, psql, psql_script, sql_instant, sql_rows, start_sql, Connect,
};
use shared_logic::metrics::{Funnel, PageViews, Revenue, Sessions};
use shared_logic::window::HOUR_MS;
use shared_logic::{Event, Metric, Registered};

const TOKEN: &str = "4c1f7e0b9a2d4b6e8f3a5c7d9e1b2a4c";

struct Served {
    published: PublishedLake,
    events: Vec<Event>,
    rest: String,
    sql: SocketAddr,
}

async fn serve(seed: u64, opts: SqlOptions) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), seed, 2).await;
    let events = published.events();
    let state = batch_only_state(&published.views).await;
    let rest = start(state.clone()).await;
    let sql = start_sql(state, opts).await;
    (
        dir,
        Served {
            published,
            events,
            rest,
            sql,
        },
    )
}

/// Every value column of `M` over every dimension, minute and hour tables.
async fn every_column<M: Registered>(s: &Served) {
    let range = (s.published.from_ms, s.published.to_ms);
    // Daily tables are compared in the consistency suite: a whole day reaches past the
    // hours published here, into the speed layer, which this test does not run.
    for granularity in [("minute", 60_000), ("hour", HOUR_MS)] {
        assert_sql_equals_direct::<M>(s.sql, &s.events, range, granularity, M::DIMENSIONS, &[])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_table_answers_what_the_direct_computation_and_the_rest_api_answer() {
    let (_dir, s) = serve(71, SqlOptions::default()).await;
    every_column::<PageViews>(&s).await;
    every_column::<Funnel>(&s).await;
    every_column::<Revenue>(&s).await;
    every_column::<Sessions>(&s).await;
    // Grouped by fewer dimensions, and filtered.
    let range = (s.published.from_ms, s.published.to_ms);
    assert_sql_equals_direct::<PageViews>(
        s.sql,
        &s.events,
        range,
        ("minute", 60_000),
        &["device"],
        &[("country", "US")],
    )
    .await;

    // The REST API's answer for one grouping, and the same grouping in SQL.
    let (from, to) = range;
    let path = format!(
        "/v1/metrics/funnel?from={from}&to={to}&granularity=hour&group_by=device&limit=100000"
    );
    let (status, answer) = get_json(&s.rest, &path, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let values: Vec<&str> = Funnel::VALUES.iter().map(|(n, _)| *n).collect();
    let out = psql(
        s.sql,
        &Connect::default(),
        &format!(
            "SELECT window_start, device, {} FROM funnel_hourly WHERE window_start >= {} AND window_start < {} ORDER BY 1, 2",
            values.join(", "),
            sql_instant(from),
            sql_instant(to)
        ),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    assert_rows_equal(
        &path,
        &sql_rows::<Funnel>(1, &out.rows()),
        &api_rows(&answer),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_counts_regrouped_in_sql_merge_sketches_as_the_rest_api_does() {
    let (_dir, s) = serve(72, SqlOptions::default()).await;
    let (from, to) = (s.published.from_ms, s.published.to_ms);
    let out = psql(
        s.sql,
        &Connect::default(),
        &format!(
            "SELECT country, sum(views), approx_distinct_merge(users_sketch), sum(distinct_users) \
             FROM page_views WHERE window_start >= {} AND window_start < {} GROUP BY country ORDER BY country",
            sql_instant(from),
            sql_instant(to)
        ),
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let path = format!(
        "/v1/metrics/page_views?from={from}&to={to}&granularity=all&group_by=country&limit=100000"
    );
    let (status, answer) = get_json(&s.rest, &path, &[]).await;
    assert_eq!(status, 200, "{answer}");
    let rest = api_rows(&answer);
    let rows = out.rows();
    assert_eq!(rows.len(), rest.len(), "{}", out.stdout);
    let mut summed_more = 0;
    for r in &rows {
        let values = &rest[&(from, vec![r[0].clone()])];
        assert_eq!(
            r[1].parse::<u64>().unwrap(),
            values["views"].as_u64().unwrap(),
            "{r:?}"
        );
        let merged = r[2].parse::<u64>().unwrap();
        assert_eq!(merged, values["distinct_users"].as_u64().unwrap(), "{r:?}");
        // Summing the minutes' distinct counts counts a user once per minute.
        let summed = r[3].parse::<u64>().unwrap();
        assert!(summed >= merged, "{r:?}");
        summed_more += usize::from(summed > merged);
    }
    assert!(
        summed_more > 0,
        "summing per-row distinct counts over-counts: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_the_session_stays_usable() {
    let (_dir, s) = serve(73, SqlOptions::default()).await;
    let range = format!(
        "window_start >= {} AND window_start < {}",
        sql_instant(s.published.from_ms),
        sql_instant(s.published.to_ms)
    );
    let script = format!("SELEC 1;\n\
        SELECT * FROM nope;\n\
        SELECT nope FROM page_views;\n\
        SELECT nope(views) FROM page_views;\n\
        INSERT INTO page_views (url) VALUES ('x');\n\
        CREATE TABLE x AS SELECT 1;\n\
        DROP TABLE page_views;\n\
        SELECT 1 AS a INTO made;\n\
        SET datafusion.execution.batch_size = 1;\n\
        SELECT approx_distinct_merge(url::bytea) FROM page_views WHERE {range};\n\
        SELECT window_start FROM page_views WHERE window_start >= '2020-01-01T00:00:00Z' AND window_start < '2021-01-01T00:00:00Z';\n\
        SELECT 'still here';\n\
        SELECT count(*) FROM page_views_hourly WHERE {range};\n\
        SELECT count(*) FROM page_views;\n");
    let out = psql_script(s.sql, &Connect::default(), &script).await;
    let codes: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.split("ERROR:").nth(1))
        .map(|rest| rest.trim().split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        codes,
        [
            "42601", "42P01", "42703", "42883", "25006", "25006", "25006", "25006", "42501",
            "22P03", "54000", "57P03"
        ],
        "{}",
        out.stderr
    );
    // A row is a window and a combination of the dimensions read: none here, so one row
    // per hour.
    assert_eq!(
        out.rows(),
        [vec!["still here".to_string()], vec!["2".to_string()]],
        "{}",
        out.stderr
    );
    // The shared context is unchanged for the next session.
    let again = psql(
        s.sql,
        &Connect::default(),
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'page_views'",
    )
    .await;
    assert_eq!(again.rows(), [vec!["1".to_string()]], "{}", again.stderr);
    let made = psql(s.sql, &Connect::default(), "SELECT * FROM made").await;
    assert!(!made.ok && made.stderr.contains("made"), "{made:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_token_is_the_password_and_tls_is_required_once_configured() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = lambda_tests::tls::Certificates::generate(certs_dir.path());
    let (_dir, s) = serve(
        74,
        SqlOptions {
            token: Some(TOKEN.into()),
            tls: Some((certs.cert.clone(), certs.key.clone())),
            ..SqlOptions::default()
        },
    )
    .await;
    let verify = format!("sslmode=verify-full sslrootcert={}", certs.ca.display());
    let good = psql(
        s.sql,
        &Connect {
            password: Some(TOKEN),
            params: &verify,
        },
        "SELECT 1",
    )
    .await;
    assert_eq!(good.rows(), [vec!["1".to_string()]], "{}", good.stderr);
    let wrong = psql(
        s.sql,
        &Connect {
            password: Some("wrong"),
            params: &verify,
        },
        "SELECT 1",
    )
    .await;
    assert!(
        !wrong.ok && wrong.stderr.contains("password authentication failed"),
        "{wrong:?}"
    );
    let none = psql(
        s.sql,
        &Connect {
            password: None,
            params: &format!("{verify} options=''"),
        },
        "SELECT 1",
    )
    .await;
    assert!(!none.ok, "{none:?}");
    let plain = psql(
        s.sql,
        &Connect {
            password: Some(TOKEN),
            params: "sslmode=disable",
        },
        "SELECT 1",
    )
    .await;
    assert!(
        !plain.ok && plain.stderr.contains("requires TLS"),
        "{plain:?}"
    );
    // A client that does not trust the CA is refused by the client itself.
    let untrusted = psql(
        s.sql,
        &Connect {
            password: Some(TOKEN),
            params: "sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt",
        },
        "SELECT 1",
    )
    .await;
    assert!(
        !untrusted.ok && untrusted.stderr.contains("certificate"),
        "{untrusted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_row_cap_and_session_limit_hold() {
    let (_dir, s) = serve(
        75,
        SqlOptions {
            max_rows: 1_000,
            max_sessions: 3,
            ..SqlOptions::default()
        },
    )
    .await;
    let slow = "SET statement_timeout = '300ms';\nSELECT count(*) FROM generate_series(1, 3000000000) a;\nSELECT 'after';\n";
    let started = std::time::Instant::now();
    let out = psql_script(s.sql, &Connect::default(), slow).await;
    assert!(out.stderr.contains("ERROR:  57014"), "{out:?}");
    assert_eq!(out.rows(), [vec!["after".to_string()]]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let many = psql(
        s.sql,
        &Connect::default(),
        "SELECT * FROM generate_series(1, 5000)",
    )
    .await;
    assert!(
        !many.ok && many.stderr.contains("more than 1000 rows"),
        "{many:?}"
    );
    let fits = psql(
        s.sql,
        &Connect::default(),
        "SELECT * FROM generate_series(1, 1000)",
    )
    .await;
    assert_eq!(fits.rows().len(), 1_000, "{}", fits.stderr);

    // Three sessions held open (psql waiting on its input); the fourth is refused.
    let held: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new("psql")
                .arg(format!(
                    "host=127.0.0.1 port={} user=lambda dbname=lambda",
                    s.sql.port()
                ))
                .args(["-X", "-q"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("psql")
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fourth = psql(s.sql, &Connect::default(), "SELECT 1").await;
    assert!(
        !fourth.ok && fourth.stderr.contains("too many clients"),
        "{fourth:?}"
    );
    for mut c in held {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    let after = psql(s.sql, &Connect::default(), "SELECT 1").await;
    assert!(
        after.ok,
        "the sessions' places come back when they end: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_query_at_once() {
    let (_dir, s) = serve(76, SqlOptions::default()).await;
    let (from, to) = (s.published.from_ms, s.published.to_ms);
    let sql = Arc::new(format!(
        "SELECT url, sum(views) FROM page_views WHERE window_start >= {} AND window_start < {} GROUP BY url ORDER BY url",
        sql_instant(from),
        sql_instant(to)
    ));
    let expected = psql(s.sql, &Connect::default(), &sql).await;
    assert!(expected.ok && !expected.rows().is_empty(), "{expected:?}");
    let runs: Vec<_> = (0..50)
        .map(|_| {
            let sql = sql.clone();
            let addr = s.sql;
            tokio::spawn(async move { psql(addr, &Connect::default(), &sql).await })
        })
        .collect();
    for run in runs {
        let out = run.await.unwrap();
        assert!(out.ok, "{}", out.stderr);
        assert_eq!(out.rows(), expected.rows());
    }
}
