//! Sliding windows (`--sliding-window`): both layers keep their one-minute windows as panes
//! and the API assembles a window of the configured size every slide. Batch covers two
//! published hours, the speed layer the hour after them; a query across the batch
//! boundary at `granularity=sliding` equals the direct fold of every event into the
//! overlapping windows (`WindowSpec::Sliding`), distinct counts included, and a window
//! straddling the boundary merges batch and speed panes (`batch+speed`). Hour rollups
//! still come from the panes: nothing is counted twice. The SQL endpoint's `*_sliding`
//! tables (psql) give the same rows.

use std::sync::Arc;
use std::time::Duration;

use lambda_tests::published::publish_hours;
use lambda_tests::serving::{assert_served_equals_rows, get_json, rows_of_views, start};
use lambda_tests::sql::{
    assert_sql_equals_rows, parse_timestamptz, psql, sql_instant, start_sql, Connect,
};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::metrics::{PageViews, Revenue};
use shared_logic::sliding::SlidingWindows;
use shared_logic::window::{WindowSpec, HOUR_MS};
use shared_logic::{Aggregates, MetricContext, Origin, Validator};

const MIN: i64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_windows_across_the_batch_boundary_equal_the_direct_sliding_fold() {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 23, 2).await;
    let boundary = published.to_ms;
    let mut events = published.events();

    // The hour after the boundary, in the speed layer only.
    let sliding = SlidingWindows::parse(
        ["page_views=10m/5m", "revenue=15m/1m"],
        MIN,
        shared_logic::registry::NAMES,
    )
    .expect("specs");
    let ctx = MetricContext {
        sliding: sliding.clone(),
        ..MetricContext::default()
    };
    let lines: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
        seed: 24,
        start_ms: boundary,
        events_per_second: 0.5,
        ..GeneratorConfig::default()
    })
    .map(|r| r.json)
    .take(1_800)
    .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let validator = Validator::default();
    let later: Vec<(usize, &Vec<u8>)> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            validator
                .validate(l, Origin::import_line(*i as i64), now)
                .is_ok_and(|e| (boundary..boundary + HOUR_MS).contains(&e.event_time().0))
        })
        .collect();
    let realtime = speed::views::RealtimeViews::new(
        ctx.clone(),
        speed::partition::TimeSettings::default(),
        Duration::from_secs(3_600),
    );
    speed::consumer::apply_records(
        &realtime,
        &validator,
        later
            .iter()
            .map(|(i, l)| ((i % 2) as i32, (i / 2) as i64, now, l.as_slice())),
    );
    events.extend(shared_logic::dedup::first_wins(later.iter().filter_map(
        |(i, l)| {
            validator
                .validate(l, Origin::import_line(*i as i64), now)
                .ok()
        },
    )));

    let state = Arc::new(serving::AppState {
        batch: serving::batch_views::BatchViews::new(published.views.clone(), 16),
        speed: serving::speed_views::SpeedViews::in_process(realtime).into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: serving::ApiOptions {
            ctx: ctx.clone(),
            ..serving::ApiOptions::default()
        },
    });
    state.batch.refresh().await.unwrap();
    let addr = start(state.clone()).await;
    let sql = start_sql(state, lambda_sql::SqlOptions::default()).await;

    // The direct computation: every event folded straight into the overlapping windows.
    let direct = |metric: &str| {
        let w = sliding.of(metric).unwrap();
        Aggregates::fold(
            &events,
            &MetricContext {
                windows: WindowSpec::sliding(w.size_ms, w.slide_ms).unwrap(),
                ..MetricContext::default()
            },
        )
    };
    let range = (boundary - 40 * MIN, boundary + 40 * MIN);
    let page_views = direct("page_views").page_views;
    for group_by in [vec!["country"], vec![]] {
        let rows = rows_of_views(&page_views, range.0, range.1, 5 * MIN, &group_by, &[]);
        let answer = assert_served_equals_rows::<PageViews>(
            &addr,
            rows,
            range,
            ("sliding", 5 * MIN),
            &group_by,
            &[],
        )
        .await;
        assert_eq!(answer["sliding_window"], "10m/5m");
        let rows = answer["rows"].as_array().unwrap();
        let at = |start: i64| {
            rows.iter()
                .find(|r| r["window_start"] == shared_logic::instant::format_instant(start))
                .unwrap_or_else(|| panic!("a window at {start}"))
        };
        // 5 minutes before the boundary: half batch, half speed.
        let straddling = at(boundary - 5 * MIN);
        assert_eq!(straddling["source"], "batch+speed", "{straddling}");
        assert_eq!(
            straddling["window_end"],
            shared_logic::instant::format_instant(boundary + 5 * MIN)
        );
        let inside = at(boundary - 20 * MIN);
        assert_eq!(
            (inside["source"].as_str(), inside["final"].as_bool()),
            (Some("batch"), Some(true)),
            "{inside}"
        );
    }
    let revenue = direct("revenue").revenue;
    let rows = rows_of_views(&revenue, range.0, range.1, MIN, &["category"], &[]);
    assert_served_equals_rows::<Revenue>(&addr, rows, range, ("sliding", MIN), &["category"], &[])
        .await;

    // SQL: `<metric>_sliding` tables, over the same one assembly: the same rows as the
    // direct sliding fold (distinct counts included), a window's end its start plus the
    // size, the straddling window merged from both layers.
    for group_by in [vec!["country"], vec![]] {
        let rows = rows_of_views(&page_views, range.0, range.1, 5 * MIN, &group_by, &[]);
        assert_sql_equals_rows::<PageViews>(sql, rows, range, "sliding", &group_by, &[]).await;
    }
    let rows = rows_of_views(&revenue, range.0, range.1, MIN, &["category"], &[]);
    assert_sql_equals_rows::<Revenue>(sql, rows, range, "sliding", &["category"], &[]).await;
    let straddling = psql(
        sql,
        &Connect::default(),
        &format!(
            "SELECT window_end, source, sum(views) FROM page_views_sliding \
             WHERE window_start = {} GROUP BY window_end, source",
            sql_instant(boundary - 5 * MIN)
        ),
    )
    .await;
    assert!(straddling.ok, "{}", straddling.stderr);
    let got = straddling.rows();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(parse_timestamptz(&got[0][0]), boundary + 5 * MIN);
    assert_eq!(got[0][1], "batch+speed");
    // Only metrics with a sliding window have the table.
    let tables = psql(
        sql,
        &Connect::default(),
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%_sliding' ORDER BY 1",
    )
    .await;
    assert!(tables.ok, "{}", tables.stderr);
    assert_eq!(
        tables.rows(),
        vec![
            vec!["page_views_sliding".to_string()],
            vec!["revenue_sliding".to_string()]
        ]
    );

    // Rollups come from the panes: an hour is the hour of the tumbling fold.
    let tumbling = Aggregates::fold(&events, &MetricContext::default()).page_views;
    let hours = (boundary - HOUR_MS, boundary + HOUR_MS);
    let rows = rows_of_views(&tumbling, hours.0, hours.1, HOUR_MS, &["device"], &[]);
    assert_served_equals_rows::<PageViews>(&addr, rows, hours, ("hour", HOUR_MS), &["device"], &[])
        .await;

    // A metric without a sliding window says so.
    let (status, body) = get_json(
        &addr,
        &format!(
            "/v1/metrics/funnel?from={}&to={}&granularity=sliding",
            range.0, range.1
        ),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_granularity"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--sliding-window"),
        "{body}"
    );
}
