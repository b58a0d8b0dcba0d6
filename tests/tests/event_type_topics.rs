//! One topic per event type, over the real broker: `typed.page_view`, `typed.add_to_cart`
//! and `typed.purchase` (3 partitions each, keyed by user), read by the speed layer and the
//! lake writer as one stream.
//!
//! Two hours of traffic are produced to the three topics before the layers start, so the
//! speed layer reads a backlog in which one topic runs far ahead of the others (the page
//! views are most of the records): no event may be late because another topic was read
//! first. A crafted user's one session spans the three topics (page view, add to cart,
//! purchase within four minutes). Then: nothing late or rejected, the crafted session is
//! one session in the real-time views, batch == speed for every event metric, served ==
//! direct; and the collector, routing by type, writes each event to its type's topic,
//! partition `p` of each topic holding the same users.

use std::collections::BTreeMap;

use lambda_tests::pipeline::Pipeline;
use lambda_tests::serving::{assert_served_equals_direct, request_json, served_rows};
use lambda_tests::topic::{produce, read_all};
use lambda_tests::Broker;
use serving::verify;
use shared_logic::dedup::first_wins;
use shared_logic::generate::{Generator, GeneratorConfig, Record, RecordKind};
use shared_logic::metrics::{Funnel, PageViews, Revenue, Sessions};
use shared_logic::window::HOUR_MS;
use shared_logic::{Event, EventType, Origin, Validator};
use speed::partition::{LatePolicy, TimeSettings};

const MIN: i64 = 60_000;
/// 2026-01-01T22:00:00Z.
const H22: i64 = 1_767_225_600_000 + 22 * HOUR_MS;
const TIME: TimeSettings = TimeSettings {
    out_of_orderness_ms: 5_000,
    allowed_lateness_ms: 60_000,
    late_policy: LatePolicy::Drop,
};
const BASE: &str = "typed";

fn crafted(id: &str, t: i64, kind: &str) -> Record {
    let json = format!(
        r#"{{"event_id":"{id}","event_type":"{kind}","event_time":{t},"user_id":"user-is","url":"/p/1","product_id":"p1","category":"books","country":"IS","device":"desktop","quantity":1,"price":"12.50","currency":"USD"}}"#
    );
    Record {
        json: json.into_bytes(),
        key: "user-is".into(),
        kind: RecordKind::Valid,
    }
}

fn parse(r: &Record) -> Option<Event> {
    Validator::default()
        .validate(&r.json, Origin::import_line(0), i64::MAX / 2)
        .ok()
}

/// Background traffic over two hours and the crafted user's session, per event type, each
/// topic in event-time order.
fn records_by_type() -> BTreeMap<EventType, Vec<Record>> {
    let cfg = GeneratorConfig {
        seed: 11,
        start_ms: H22 - 10 * MIN,
        events_per_second: 1.5,
        users: 200,
        duplicate_fraction: 0.01,
        out_of_order_fraction: 0.0,
        late_fraction: 0.0,
        invalid_fraction: 0.0,
        ..GeneratorConfig::default()
    };
    let m = |minutes: i64| H22 + minutes * MIN;
    let mut all: Vec<Record> = Generator::new(cfg).take(11_000).collect();
    all.extend([
        crafted("is-view", m(10), "page_view"),
        crafted("is-cart", m(12), "add_to_cart"),
        crafted("is-buy", m(14), "purchase"),
    ]);
    all.sort_by_key(|r| parse(r).map_or(0, |e| e.event_time().0));
    let mut by_type: BTreeMap<EventType, Vec<Record>> = BTreeMap::new();
    for r in all {
        let kind = parse(&r).expect("valid traffic").event_type();
        by_type.entry(kind).or_default().push(r);
    }
    by_type
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_per_event_type_are_one_stream_in_both_layers() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let by_type = records_by_type();
    assert_eq!(by_type.len(), 3, "every event type has traffic");
    let total: usize = by_type.values().map(Vec::len).sum();
    for (kind, records) in &by_type {
        let topic = shared_logic::topics::of_event_type(BASE, *kind);
        produce(broker.brokers(), &topic, 3, records).await;
    }
    let pipeline = Pipeline::start_with(broker.brokers(), BASE, true, TIME, dir.path()).await;
    pipeline.wait_for_records(total as u64).await;
    let counters = pipeline.realtime.progress().counters;
    assert_eq!(
        (counters.late_dropped, counters.rejected),
        (0, 0),
        "a topic read ahead of the others makes nothing late"
    );
    let addr = lambda_tests::serving::start(pipeline.state.clone()).await;
    let m = |minutes: i64| H22 + minutes * MIN;

    // The crafted user's events, on three topics, are one session in the real-time views.
    let path = format!(
        "/v1/metrics/sessions?from={}&to={}&granularity=minute&filter=country:IS",
        H22 - HOUR_MS,
        H22 + 3 * HOUR_MS
    );
    let sessions: Vec<(i64, u64, u64)> = served_rows(&addr, &path)
        .await
        .into_iter()
        .map(|(start, r)| {
            let v = &r["values"];
            (
                start,
                v["sessions"].as_u64().unwrap(),
                v["total_duration_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sessions, vec![(m(10), 1, 4 * MIN as u64)]);

    // The batch over the lake the writer filled from the three topics agrees exactly.
    pipeline.batch_dirty_hours().await;
    let speed_views = pipeline.state.speed.current();
    let (batch, range) = (&pipeline.state.batch, (0, i64::MAX / 2));
    let reports = [
        verify::verify::<PageViews>(batch, &speed_views, range.0, range.1).await,
        verify::verify::<Funnel>(batch, &speed_views, range.0, range.1).await,
        verify::verify::<Revenue>(batch, &speed_views, range.0, range.1).await,
        verify::verify::<Sessions>(batch, &speed_views, range.0, range.1).await,
    ];
    for report in reports {
        let report = report.expect("verify");
        assert!(
            report.hours_compared.len() >= 2,
            "{:?}",
            report.hours_compared
        );
        assert!(
            report.differences.is_empty(),
            "{}",
            verify::table(&report.differences, 10)
        );
    }

    // Served (batch where covered) == the direct computation over every event.
    let events: Vec<Event> = first_wins(
        by_type
            .values()
            .flatten()
            .enumerate()
            .filter_map(|(i, r)| {
                Validator::default()
                    .validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                    .ok()
            })
            .collect::<Vec<Event>>(),
    );
    let range = (H22 - HOUR_MS, H22 + 3 * HOUR_MS);
    assert_served_equals_direct::<Sessions>(
        &addr,
        &events,
        range,
        ("hour", HOUR_MS),
        &["country"],
        &[],
    )
    .await;
    assert_served_equals_direct::<Funnel>(&addr, &events, range, ("minute", MIN), &[], &[]).await;

    // The collector routes by type: a user's page view and purchase land on their topics,
    // in the partition of the same number.
    let body = [
        crafted("route-view", m(30), "page_view"),
        crafted("route-buy", m(31), "purchase"),
    ]
    .iter()
    .map(|r| String::from_utf8(r.json.clone()).unwrap())
    .collect::<Vec<_>>()
    .join("\n");
    let (status, answer) = request_json(&addr, "POST", "/v1/events", &[], body.into_bytes()).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &serde_json::json!(2)),
        "{answer}"
    );
    let config = broker.client_config();
    let find = |topic: String, id: &'static str| {
        let config = config.clone();
        async move {
            let stored = tokio::task::spawn_blocking(move || read_all(&config, &topic))
                .await
                .unwrap();
            stored
                .into_iter()
                .flat_map(|(p, records)| records.into_iter().map(move |r| (p, r)))
                .find(|(_, r)| r.payload.windows(id.len()).any(|w| w == id.as_bytes()))
                .map(|(p, _)| p)
        }
    };
    let view_at = find(
        shared_logic::topics::of_event_type(BASE, EventType::PageView),
        "route-view",
    )
    .await;
    let buy_at = find(
        shared_logic::topics::of_event_type(BASE, EventType::Purchase),
        "route-buy",
    )
    .await;
    assert!(view_at.is_some(), "the page view is on typed.page_view");
    assert_eq!(
        view_at, buy_at,
        "one user, one partition number on every topic"
    );
    assert_eq!(
        find(
            shared_logic::topics::of_event_type(BASE, EventType::PageView),
            "route-buy"
        )
        .await,
        None,
        "the purchase is not on the page views' topic"
    );
    pipeline.stop().await;
}
