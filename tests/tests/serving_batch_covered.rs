//! History the batch layer covers does not depend on the speed layer: with every speed
//! instance down, a query over batch-covered hours answers 200 with the batch numbers (and
//! says that no real-time view was read), while a query reaching past the batch time
//! boundary still answers 503 rather than a number missing the speed layer's hours.

use lambda_tests::published::publish_hours;
use lambda_tests::serving::{assert_served_equals_direct, get_json, start_batch_only};
use shared_logic::metrics::{Funnel, PageViews, Sessions};
use shared_logic::window::HOUR_MS;

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
