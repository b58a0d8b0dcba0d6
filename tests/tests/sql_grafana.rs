//! The Grafana provisioning in deploy/grafana, replayed as Grafana would send it (no
//! Grafana server can be installed here): the data source's health check, every panel's
//! query with its macros expanded for a fixed range and sent over the simple query
//! protocol (behind another statement, as a multi-statement string), and the schema
//! picker's `information_schema` queries. Each panel's answer equals the REST API's answer
//! for the same range and grouping.

use std::collections::BTreeMap;

use lambda_sql::SqlOptions;
use lambda_tests::grafana::{expand, TimeRange};
use lambda_tests::published::publish_hours;
use lambda_tests::serving::{api_rows, batch_only_state, get_json, start};
use lambda_tests::sql::{psql, start_sql, Connect};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../deploy/grafana/dashboards/lambda.json");
const DATASOURCE: &str = include_str!("../../deploy/grafana/provisioning/datasources/lambda.yaml");

/// The panels' titles and raw SQL.
fn panels() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().expect("a title").to_string();
            p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(move |t| {
                    assert_eq!(t["datasource"]["uid"], "lambda-sql", "{title}");
                    (
                        title.clone(),
                        t["rawSql"].as_str().expect("rawSql").to_string(),
                    )
                })
        })
        .collect()
}

/// Numbers as the REST API writes them: text of a number in psql's output, parsed.
fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

/// A `numeric` amount in the reporting currency (USD, two decimals), in minor units.
fn minor(text: &str) -> f64 {
    shared_logic::money::parse_decimal_minor(text, 2)
        .unwrap_or_else(|e| panic!("not an amount: {text}: {e:?}")) as f64
}

/// REST rows (one dimension or none) as `(window start s, dimension) → values`.
fn rest_by_time(answer: &Value) -> BTreeMap<(i64, String), Value> {
    api_rows(answer)
        .into_iter()
        .map(|((start, dims), v)| ((start / 1000, dims.first().cloned().unwrap_or_default()), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_provisioned_dashboard_answers_what_the_rest_api_answers() {
    assert!(
        DATASOURCE.contains("postgresVersion"),
        "the data source skips Grafana's version probe"
    );
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 81, 2).await;
    let state = batch_only_state(&published.views).await;
    let rest = start(state.clone()).await;
    let sql = start_sql(state, SqlOptions::default()).await;
    let c = Connect::default();

    // "Save & test": a ping (an empty statement) answers.
    for ping in ["-- ping", ";"] {
        let out = psql(sql, &c, ping).await;
        assert!(out.ok && out.rows().is_empty(), "{ping}: {out:?}");
    }

    // The dashboard's range ends a millisecond before the last published hour ends, so
    // that BETWEEN's inclusive end starts no window.
    let (from, to) = (published.from_ms, published.to_ms);
    let range = TimeRange {
        from_ms: from,
        to_ms: to - 1,
        interval_ms: 60_000,
    };
    let mut answers = BTreeMap::new();
    for (title, raw) in panels() {
        let query = expand(&raw, &range);
        assert!(!query.contains("$__"), "{title}: {query}");
        let out = psql(
            sql,
            &c,
            &format!("SET application_name = 'grafana'; {query}"),
        )
        .await;
        if title == "Orders per hour" {
            // Orders come from the change stream, which this lake's batch run does not
            // cover: the speed layer answers them, and it is down in this test.
            assert!(
                !out.ok && out.stderr.contains("did not answer"),
                "{title}: {out:?}"
            );
            continue;
        }
        assert!(out.ok, "{title}: {query}: {}", out.stderr);
        answers.insert(title, out.rows());
    }
    let get = |path: String| {
        let rest = rest.clone();
        async move {
            let (status, answer) = get_json(&rest, &path, &[]).await;
            assert_eq!(status, 200, "{path}: {answer}");
            answer
        }
    };
    let q = |metric: &str, granularity: &str, group_by: &str| {
        format!("/v1/metrics/{metric}?from={from}&to={to}&granularity={granularity}&group_by={group_by}&limit=100000")
    };

    // Page views per URL per minute: (time, url, views).
    let expected = rest_by_time(&get(q("page_views", "minute", "url")).await);
    let rows = &answers["Page views per URL per minute"];
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let v = &expected[&(number(&r[0]) as i64, r[1].clone())];
        assert_eq!(number(&r[2]), v["views"].as_f64().unwrap(), "{r:?}");
    }

    // Revenue by category per minute: money in the reporting currency.
    let expected = rest_by_time(&get(q("revenue", "minute", "category")).await);
    let rows = &answers["Revenue by category per minute"];
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let v = &expected[&(number(&r[0]) as i64, r[1].clone())];
        assert_eq!(minor(&r[2]), v["revenue_minor"].as_f64().unwrap(), "{r:?}");
    }

    // Revenue by country over the range, with distinct buyers merged from sketches.
    let expected = rest_by_time(&get(q("revenue", "all", "country")).await);
    let rows = &answers["Revenue by country"];
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let v = &expected[&(from / 1000, r[0].clone())];
        assert_eq!(minor(&r[1]), v["revenue_minor"].as_f64().unwrap(), "{r:?}");
        assert_eq!(number(&r[2]), v["orders"].as_f64().unwrap(), "{r:?}");
        assert_eq!(
            number(&r[3]),
            v["distinct_buyers"].as_f64().unwrap(),
            "{r:?}"
        );
    }

    // The funnel over the range.
    let funnel = get(q("funnel", "all", "")).await;
    let v = &funnel["rows"][0]["values"];
    let row = &answers["Funnel"][0];
    for (i, name) in [
        "views",
        "carts",
        "purchases",
        "view_users",
        "cart_users",
        "purchase_users",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(number(&row[i]), v[name].as_f64().unwrap(), "funnel {name}");
    }

    // Sessions per minute, distinct users per hour.
    let expected = rest_by_time(&get(q("sessions", "minute", "")).await);
    let rows = &answers["Sessions per minute"];
    assert_eq!(rows.len(), expected.len());
    for r in rows {
        let v = &expected[&(number(&r[0]) as i64, String::new())];
        assert_eq!(number(&r[1]), v["sessions"].as_f64().unwrap(), "{r:?}");
        assert_eq!(number(&r[2]), v["bounces"].as_f64().unwrap(), "{r:?}");
    }
    let expected = rest_by_time(&get(q("page_views", "hour", "")).await);
    let rows = &answers["Distinct users per hour"];
    assert_eq!(rows.len(), 2);
    for r in rows {
        let v = &expected[&(number(&r[0]) as i64, String::new())];
        assert_eq!(
            number(&r[1]),
            v["distinct_users"].as_f64().unwrap(),
            "{r:?}"
        );
    }

    // The schema picker (Grafana's schema API), with its parameters as literals.
    let schemas = psql(
        sql,
        &c,
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema' ORDER BY schema_name",
    )
    .await;
    assert_eq!(
        schemas.rows(),
        [vec!["public".to_string()]],
        "{}",
        schemas.stderr
    );
    let tables = psql(
        sql,
        &c,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type IN ('BASE TABLE', 'VIEW') ORDER BY table_name",
    )
    .await;
    let names: Vec<String> = tables.rows().into_iter().map(|r| r[0].clone()).collect();
    for t in [
        "funnel",
        "orders_hourly",
        "page_views",
        "page_views_daily",
        "revenue",
        "sessions",
    ] {
        assert!(names.contains(&t.to_string()), "{t} in {names:?}");
    }
    let columns = psql(
        sql,
        &c,
        "SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'revenue' ORDER BY ordinal_position",
    )
    .await;
    let columns = columns.rows();
    let find = |n: &str| {
        columns
            .iter()
            .find(|r| r[0] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {columns:?}"))
    };
    assert_eq!(
        find("window_start")[1..3],
        ["timestamp with time zone", "timestamptz"]
    );
    assert_eq!(find("orders")[1..3], ["bigint", "int8"]);
    assert_eq!(find("revenue")[1..], ["numeric", "numeric", "38", "2"]);
    assert_eq!(
        find("average_order_value_minor")[1..3],
        ["double precision", "float8"]
    );
    assert_eq!(find("buyers_sketch")[1..3], ["bytea", "bytea"]);
    assert_eq!(find("final")[1..3], ["boolean", "bool"]);
    let values = psql(
        sql,
        &c,
        &format!(
            "SELECT 'country' AS col_name, \"country\"::text AS val FROM (SELECT DISTINCT \"country\" FROM \"public\".\"revenue\" WHERE \"country\" IS NOT NULL AND window_start >= '{}' AND window_start < '{}' ORDER BY \"country\" LIMIT 100) sub_0",
            shared_logic::instant::format_instant(from),
            shared_logic::instant::format_instant(to)
        ),
    )
    .await;
    assert!(values.ok && !values.rows().is_empty(), "{values:?}");
}
