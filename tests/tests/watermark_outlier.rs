//! Issue 16, end to end: one event stamped ahead (within the allowed future skew) no longer
//! blinds the speed layer. Through the collector, as a client would send them: a page view
//! 290 s ahead, then 100 page views a second old from the same user (so the same
//! partition). Before the watermark was capped by the record timestamps, the default drop
//! policy discarded all 100.

use std::time::Duration;

use lambda_tests::pipeline::Pipeline;
use lambda_tests::{wait_until, Broker};
use speed::partition::TimeSettings;

fn view(id: &str, event_ms: i64) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":{event_ms},"user_id":"one-user","url":"/"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_view_stamped_290_s_ahead_does_not_drop_the_on_time_views_after_it() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::start(
        broker.brokers(),
        "watermark-outlier",
        TimeSettings::default(),
        dir.path(),
    )
    .await;
    let collector = pipeline.state.collector.as_ref().expect("collector");
    let now = chrono::Utc::now().timestamp_millis();
    let ahead = collector
        .ingest(view("ahead", now + 290_000).as_bytes())
        .await
        .expect("accepted");
    assert_eq!(
        ahead.accepted, 1,
        "within the 300 s skew: {:?}",
        ahead.errors
    );
    let body: String = (0..100)
        .map(|i| view(&format!("on-time-{i}"), now - 1_000) + "\n")
        .collect();
    assert_eq!(
        collector.ingest(body.as_bytes()).await.unwrap().accepted,
        100
    );
    wait_until(
        "the speed layer to apply the 101 records",
        Duration::from_secs(120),
        || pipeline.realtime.progress().counters.records >= 101,
    )
    .await;
    let counters = pipeline.realtime.progress().counters;
    assert_eq!(counters.late_dropped, 0, "{counters:?}");
    assert_eq!(counters.events, 101, "{counters:?}");
    pipeline.stop().await;
}
