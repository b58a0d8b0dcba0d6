//! History the batch layer covers does not depend on the speed layer: with every speed
//! instance down, a query over batch-covered hours answers 200 with the batch numbers (and
//! says that no real-time view was read), while a query reaching past the batch time
//! boundary still answers 503 rather than a number missing the speed layer's hours.
//! Queries whose windows hold whole days (day granularity, or one window over the range)
//! read whole days from day cubes and answer what the hours answer.

use lambda_tests::published::{publish_hours, publish_hours_at};
use lambda_tests::serving::{assert_served_equals_direct, get_json, start_batch_only};
use shared_logic::metrics::{Funnel, PageViews, Revenue, Sessions};
use shared_logic::window::{DAY_MS, HOUR_MS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_covered_hours_answer_while_the_speed_layer_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 57, 2).await;
    let events = published.events();
    let (from, to) = (published.from_ms, published.to_ms);
    let addr = start_batch_only(&published.views).await;

    let answer = assert_served_equals_direct::<PageViews>(
        &addr,
        &events,
        (from, to),
        ("minute", 60_000),
        &["country"],
        &[],
    )
    .await;
    let rows = answer["rows"].as_array().unwrap();
    assert!(rows
        .iter()
        .all(|r| r["source"] == "batch" && r["final"] == true));
    // No real-time view was read: no speed watermark or freshness is claimed for it.
    assert!(answer["watermark"].is_null(), "{}", answer["watermark"]);
    assert!(
        answer["freshness_ms"].is_null(),
        "{}",
        answer["freshness_ms"]
    );
    assert_served_equals_direct::<Funnel>(
        &addr,
        &events,
        (from, to),
        ("hour", HOUR_MS),
        &["device"],
        &[],
    )
    .await;
    assert_served_equals_direct::<Sessions>(
        &addr,
        &events,
        (from, to),
        ("hour", HOUR_MS),
        &[],
        &[],
    )
    .await;

    // One hour past the boundary needs the speed layer: unavailable, not a partial number.
    let path = format!(
        "/v1/metrics/page_views?from={from}&to={}&granularity=hour",
        to + HOUR_MS
    );
    let (status, body) = get_json(&addr, &path, &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("speed_unavailable")),
        "{path}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_days_answer_what_their_hours_answer() {
    let dir = tempfile::tempdir().unwrap();
    // 50 hours: at least one whole UTC day, and parts of the days around it.
    let published = publish_hours_at(dir.path(), 58, 50, 0.1).await;
    let events = published.events();
    let (from, to) = (published.from_ms, published.to_ms);
    let first_day = (from + DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS;
    assert!(first_day + DAY_MS <= to, "a whole day is covered");
    let addr = start_batch_only(&published.views).await;

    // (A day-granularity range widens to whole days: the covered one.)
    assert_served_equals_direct::<PageViews>(
        &addr,
        &events,
        (first_day, first_day + DAY_MS),
        ("day", DAY_MS),
        &["country"],
        &[],
    )
    .await;
    assert_served_equals_direct::<Funnel>(
        &addr,
        &events,
        (first_day, first_day + DAY_MS),
        ("day", DAY_MS),
        &["device"],
        &[("country", "US")],
    )
    .await;
    // One window over ranges that start and end inside days (`all` ranges are whole
    // hours): whole days from day cubes, the other hours at hour level.
    for (start, end) in [
        (from, to),
        (from + 3 * HOUR_MS, to - 5 * HOUR_MS),
        (first_day - HOUR_MS, first_day + DAY_MS + HOUR_MS),
    ] {
        let answer = assert_served_equals_direct::<PageViews>(
            &addr,
            &events,
            (start, end),
            ("all", end - start),
            &["url"],
            &[],
        )
        .await;
        assert!(answer["rows"].as_array().unwrap().len() > 10, "{answer}");
        assert_served_equals_direct::<Revenue>(
            &addr,
            &events,
            (start, end),
            ("all", end - start),
            &["category"],
            &[],
        )
        .await;
        assert_served_equals_direct::<Sessions>(
            &addr,
            &events,
            (start, end),
            ("all", end - start),
            &["device"],
            &[],
        )
        .await;
    }
}
