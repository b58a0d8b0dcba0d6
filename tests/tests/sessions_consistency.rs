//! Sessions in both layers over the real broker, with background traffic and four crafted
//! users (each in a country of its own, so their rows can be checked by value):
//! - IS: one session from 22:50 to 23:35, across an hour boundary (the batch of hour 22
//!   reads hour 23);
//! - PT: events at 23:50 and 00:05: two sessions, cut at midnight;
//! - NZ: sessions 22:10–22:20 and 22:52, then a late event at 22:50 within the allowed
//!   lateness bridges them: the speed layer merges them into one 22:10–22:52 session and
//!   revises the closed 22:10 window;
//! - CL: sessions 22:05–22:15 and 22:50, bridged by an event at 22:32 that arrives beyond
//!   the lateness: the speed layer drops it, the batch merges them, and the served answer
//!   (batch for the covered hours) equals the direct computation.
//!
//! Then: batch and speed agree exactly for everything but the CL sessions, and the served
//! `sessions` answers equal shared-logic's direct computation over the same events.

use lambda_tests::pipeline::Pipeline;
use lambda_tests::serving::{assert_served_equals_direct, served_rows};
use lambda_tests::topic::produce;
use lambda_tests::Broker;
use serving::verify;
use shared_logic::dedup::first_wins;
use shared_logic::generate::{Generator, GeneratorConfig, Record, RecordKind};
use shared_logic::metrics::{PageViews, Sessions};
use shared_logic::window::HOUR_MS;
use shared_logic::{Event, Origin, Validator};
use speed::partition::{LatePolicy, TimeSettings};

const MIN: i64 = 60_000;
/// 2026-01-01T22:00:00Z.
const H22: i64 = 1_767_225_600_000 + 22 * HOUR_MS;
const TIME: TimeSettings = TimeSettings {
    out_of_orderness_ms: 5_000,
    allowed_lateness_ms: 60_000,
    late_policy: LatePolicy::Drop,
};

fn record(id: &str, user: &str, t: i64, kind: &str, country: &str, device: &str) -> Record {
    let quantity = if kind == "page_view" {
        ""
    } else {
        r#","quantity":1"#
    };
    let json = format!(
        r#"{{"event_id":"{id}","event_type":"{kind}","event_time":{t},"user_id":"{user}","url":"/p/1","product_id":"p1","category":"books","country":"{country}","device":"{device}"{quantity}}}"#
    );
    Record {
        json: json.into_bytes(),
        key: user.to_string(),
        kind: RecordKind::Valid,
    }
}

/// The record's event time as both layers read it (invalid records sort first).
fn event_time(r: &Record) -> i64 {
    Validator::default()
        .validate(&r.json, Origin::import_line(0), i64::MAX / 2)
        .map_or(0, |e| e.event_time().0)
}

/// Background traffic and the crafted users, in event-time order, with NZ's bridging event
/// right after NZ's 22:52 event and CL's at the very end.
fn records() -> Vec<Record> {
    let cfg = GeneratorConfig {
        seed: 7,
        start_ms: H22 - 20 * MIN,
        events_per_second: 0.75,
        users: 300,
        duplicate_fraction: 0.01,
        out_of_order_fraction: 0.0,
        late_fraction: 0.0,
        invalid_fraction: 0.0,
        ..GeneratorConfig::default()
    };
    let mut all: Vec<Record> = Generator::new(cfg).take(8_000).collect();
    let m = |minutes: i64| H22 + minutes * MIN;
    all.extend([
        record("is-1", "user-is", m(50), "page_view", "IS", "desktop"),
        record("is-2", "user-is", m(70), "page_view", "IS", "desktop"),
        record("is-3", "user-is", m(95), "add_to_cart", "IS", "desktop"),
        record("pt-1", "user-pt", m(110), "page_view", "PT", "mobile"),
        record("pt-2", "user-pt", m(125), "page_view", "PT", "mobile"),
        record("nz-1", "user-nz", m(10), "page_view", "NZ", "tablet"),
        record("nz-2", "user-nz", m(20), "page_view", "NZ", "tablet"),
        record("nz-3", "user-nz", m(52), "page_view", "NZ", "tablet"),
        record("cl-1", "user-cl", m(5), "page_view", "CL", "desktop"),
        record("cl-2", "user-cl", m(15), "page_view", "CL", "desktop"),
        record("cl-3", "user-cl", m(50), "page_view", "CL", "desktop"),
    ]);
    all.sort_by_key(event_time);
    let at = all
        .iter()
        .position(|r| r.json.starts_with(br#"{"event_id":"nz-3""#))
        .unwrap();
    all.insert(
        at + 1,
        record("nz-bridge", "user-nz", m(50), "page_view", "NZ", "tablet"),
    );
    all.push(record(
        "cl-bridge",
        "user-cl",
        m(32),
        "page_view",
        "CL",
        "desktop",
    ));
    all
}

fn valid(records: &[Record]) -> Vec<Event> {
    let v = Validator::default();
    let events: Vec<Event> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                .ok()
        })
        .collect();
    first_wins(events)
}

/// The served `sessions` rows of one country, per minute of session start:
/// (window start, sessions, total duration, page views, bounces).
async fn country_rows(addr: &str, country: &str) -> Vec<(i64, u64, u64, u64, u64)> {
    let path = format!(
        "/v1/metrics/sessions?from={}&to={}&granularity=minute&filter=country:{country}",
        H22 - HOUR_MS,
        H22 + 4 * HOUR_MS
    );
    served_rows(addr, &path)
        .await
        .into_iter()
        .map(|(start, r)| {
            let v = &r["values"];
            let n = |k: &str| v[k].as_u64().unwrap();
            (
                start,
                n("sessions"),
                n("total_duration_ms"),
                n("page_views"),
                n("bounces"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_agree_across_hours_midnight_and_bridging_events() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = "sessions";
    let records = records();
    let pipeline = Pipeline::start(broker.brokers(), topic, TIME, dir.path()).await;
    produce(broker.brokers(), topic, 3, &records).await;
    pipeline.wait_for_records(records.len() as u64).await;
    assert_eq!(
        pipeline.realtime.progress().counters.late_dropped,
        1,
        "only CL's bridging event is beyond the lateness"
    );
    let addr = lambda_tests::serving::start(pipeline.state.clone()).await;
    let m = |minutes: i64| H22 + minutes * MIN;

    // Real time: NZ's late event merged its two sessions and revised the closed window;
    // CL's was dropped, so CL still has two sessions.
    assert_eq!(
        country_rows(&addr, "NZ").await,
        vec![(m(10), 1, 42 * MIN as u64, 4, 0)]
    );
    assert!(pipeline.realtime.revised_windows().contains(&m(10)));
    // The users whose sessions can still grow are held; older ones are forgotten (at the
    // checkpoint after their records, every 2 s: waited for up to five of them).
    let mut users = pipeline.realtime.status().session_users;
    for _ in 0..100 {
        if users < 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        users = pipeline.realtime.status().session_users;
    }
    assert!(users > 0 && users < 300, "{users}");
    assert_eq!(
        country_rows(&addr, "CL").await,
        vec![(m(5), 1, 10 * MIN as u64, 2, 0), (m(50), 1, 0, 1, 1)]
    );
    assert_eq!(
        country_rows(&addr, "IS").await,
        vec![(m(50), 1, 45 * MIN as u64, 2, 0)]
    );
    assert_eq!(
        country_rows(&addr, "PT").await,
        vec![(m(110), 1, 0, 1, 1), (m(125), 1, 0, 1, 1)]
    );

    pipeline.batch_dirty_hours().await;

    // The batch of hour 22 read hour 23 (IS's session runs into it) and hour 21.
    let published = lambda_io::manifest::Published::load(&pipeline.views)
        .await
        .unwrap();
    let h22 = &published.hours["2026-01-01T22"];
    assert!(
        h22.neighbours.contains_key("2026-01-01T21"),
        "{:?}",
        h22.neighbours.keys()
    );
    assert!(
        h22.neighbours.contains_key("2026-01-01T23"),
        "{:?}",
        h22.neighbours.keys()
    );
    // Midnight ends sessions: hour 0 of the next day reads nothing of the day before.
    let h00 = &published.hours["2026-01-02T00"];
    assert!(
        h00.neighbours.keys().all(|h| h.as_str() >= "2026-01-02T00"),
        "{:?}",
        h00.neighbours.keys()
    );

    // Batch == speed, except where CL's dropped event changed the batch.
    let speed_views = pipeline.state.speed.current();
    let sessions = verify::verify::<Sessions>(&pipeline.state.batch, &speed_views, 0, i64::MAX / 2)
        .await
        .unwrap();
    assert!(
        sessions.hours_compared.len() >= 3,
        "{:?}",
        sessions.hours_compared
    );
    assert!(!sessions.differences.is_empty());
    assert!(
        sessions
            .differences
            .iter()
            .all(|d| d.dimensions.first().map(String::as_str) == Some("CL")),
        "{}",
        verify::table(&sessions.differences, 10)
    );
    let views = verify::verify::<PageViews>(&pipeline.state.batch, &speed_views, 0, i64::MAX / 2)
        .await
        .unwrap();
    // The batch counted CL's event at minute 32, the speed layer dropped it: exactly there.
    assert!(!views.differences.is_empty());
    assert!(views.differences.iter().all(|d| d.window_start == m(32)));

    // Served (batch for the covered hours) == direct over every event, CL's bridge too.
    assert_eq!(
        country_rows(&addr, "CL").await,
        vec![(m(5), 1, 45 * MIN as u64, 4, 0)]
    );
    let events = valid(&records);
    let range = (H22 - 2 * HOUR_MS, H22 + 5 * HOUR_MS);
    for (granularity, group_by) in [
        (("minute", MIN), vec!["country"]),
        (("hour", HOUR_MS), vec!["device"]),
        (("day", 24 * HOUR_MS), vec!["country", "device"]),
    ] {
        assert_served_equals_direct::<Sessions>(&addr, &events, range, granularity, &group_by, &[])
            .await;
    }
    pipeline.stop().await;
}
