//! The whole path, over the real broker: events are POSTed to the collector, go through
//! Kafka to the speed layer (in-process) and to the lake writer, the batch job computes
//! and publishes the first hours, and the API's answers — for ranges before, across and
//! after the time boundary, at minute, hour and day granularity, grouped and filtered —
//! equal shared-logic's direct computation over the same events. Then the boundary moves
//! (another batch run) and late data corrects a published hour (a dirty-hour rerun), and
//! the answers still equal the direct computation: nothing counted twice, nothing missed.

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::Lake;
use lambda_tests::data::records_until;
use lambda_tests::pipeline::Pipeline;
use lambda_tests::serving::{assert_served_equals_direct, get_json, request_json};
use lambda_tests::Broker;
use serde_json::Value;
use shared_logic::dedup::first_wins;
use shared_logic::generate::GeneratorConfig;
use shared_logic::metrics::{Funnel, PageViews, Revenue};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Event, Origin, Validator};
use speed::partition::{LatePolicy, TimeSettings};

const TOPIC: &str = "e2e-events";

/// POSTs `lines` as NDJSON in chunks; (accepted, rejected).
async fn post_all(addr: &str, lines: &[Vec<u8>]) -> (u64, u64) {
    let (mut accepted, mut rejected) = (0, 0);
    for chunk in lines.chunks(700) {
        let mut body = Vec::new();
        for l in chunk {
            body.extend_from_slice(l);
            body.push(b'\n');
        }
        let (status, answer) = request_json(
            addr,
            "POST",
            "/v1/events",
            &[("Content-Type", "application/x-ndjson")],
            body,
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        accepted += answer["accepted"].as_u64().unwrap();
        rejected += answer["rejected"].as_u64().unwrap();
        assert_eq!(
            answer["errors"].as_array().unwrap().len() as u64,
            answer["rejected"].as_u64().unwrap()
        );
    }
    (accepted, rejected)
}

/// What the collector accepts of `lines`, validated now, deduplicated.
fn valid(lines: &[Vec<u8>], now: i64) -> Vec<Event> {
    let v = Validator::default();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), now).ok())
        .collect()
}

fn sources(answer: &Value) -> Vec<(i64, String, bool)> {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                chrono::DateTime::parse_from_rfc3339(r["window_start"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis(),
                r["source"].as_str().unwrap().to_string(),
                r["final"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn batch_run(lake: &Lake, views: &Lake, selection: HourSelection) {
    let report = job::run(lake, views, &selection, &BatchOptions::default())
        .await
        .expect("batch run");
    assert!(report.published.is_some(), "{selection:?} published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_to_api_answers_equal_the_direct_computation_around_the_boundary() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let time = TimeSettings {
        out_of_orderness_ms: 5_000,
        allowed_lateness_ms: 60_000,
        late_policy: LatePolicy::Drop,
    };
    let pipeline = Pipeline::start(broker.brokers(), TOPIC, time, dir.path()).await;
    let (realtime, lake, views, state) = (
        pipeline.realtime.clone(),
        pipeline.lake.clone(),
        pipeline.views.clone(),
        pipeline.state.clone(),
    );
    let addr = lambda_tests::serving::start(state.clone()).await;

    // Three complete hours and part of the current one, ending two minutes ago.
    let now = chrono::Utc::now().timestamp_millis();
    let h0 = (now.div_euclid(HOUR_MS) - 3) * HOUR_MS;
    let end = now - 120_000;
    let cfg = GeneratorConfig {
        events_per_second: 0.5,
        duplicate_fraction: 0.03,
        out_of_order_fraction: 0.05,
        out_of_order_ms: 3_000,
        invalid_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    let stream = records_until(41, h0, end, now, cfg.clone());
    let (accepted, rejected) = post_all(&addr, &stream).await;
    let mut events = valid(&stream, now);
    assert_eq!(accepted as usize, events.len());
    assert!(rejected > 20, "invalid records were rejected: {rejected}");
    pipeline.wait_for_records(accepted).await;
    let deduped = first_wins(events.clone());
    assert!(deduped.len() < events.len(), "the stream has duplicates");

    // Batch computes the first two hours: the boundary is at h0 + 2h.
    batch_run(
        &lake,
        &views,
        HourSelection::Range {
            from: HourKey(h0 / HOUR_MS),
            to: HourKey(h0 / HOUR_MS + 2),
        },
    )
    .await;
    state.batch.refresh().await.unwrap();
    let boundary = h0 + 2 * HOUR_MS;
    let top = (now.div_euclid(60_000) + 1) * 60_000;

    let before = assert_served_equals_direct::<PageViews>(
        &addr,
        &deduped,
        (h0, boundary),
        ("minute", 60_000),
        &["country"],
        &[],
    )
    .await;
    assert_eq!(
        before["time_boundary"].as_str(),
        Some(shared_logic::instant::format_instant(boundary).as_str())
    );
    assert!(sources(&before).iter().all(|(_, s, f)| s == "batch" && *f));
    let after = assert_served_equals_direct::<Funnel>(
        &addr,
        &deduped,
        (boundary, top),
        ("minute", 60_000),
        &["device"],
        &[],
    )
    .await;
    assert!(sources(&after).iter().all(|(_, s, _)| s == "speed"));
    assert!(
        after["freshness_ms"].as_i64().is_some(),
        "{}",
        after["freshness_ms"]
    );
    // Windows well behind the watermark plus lateness are final; the newest are not.
    assert!(sources(&after).iter().any(|(_, _, f)| *f));
    let across = assert_served_equals_direct::<Revenue>(
        &addr,
        &deduped,
        (h0, top),
        ("hour", HOUR_MS),
        &["category"],
        &[],
    )
    .await;
    for (start, source, _) in sources(&across) {
        let expected = if start < boundary { "batch" } else { "speed" };
        assert_eq!(source, expected, "hour {start}");
    }
    const DAY: i64 = 24 * HOUR_MS;
    let day = assert_served_equals_direct::<Funnel>(
        &addr,
        &deduped,
        (h0.div_euclid(DAY) * DAY, top),
        ("day", DAY),
        &[],
        &[("device", "mobile")],
    )
    .await;
    for (start, source, is_final) in sources(&day) {
        // A day holding hours on both sides of the boundary merges both layers' states;
        // it is provisional when it also holds the newest speed windows (run just after
        // midnight UTC, the newest minutes are in the next day, and this one may be final).
        if start < boundary - HOUR_MS && start + DAY > boundary {
            assert_eq!(source, "batch+speed");
            if start + DAY >= top {
                assert!(
                    !is_final,
                    "a day holding the newest speed windows is provisional"
                );
            }
        }
    }

    // Lineage: batch for a covered window (input files with Kafka offsets), speed otherwise.
    let (status, lineage) = get_json(
        &addr,
        &format!("/v1/lineage?metric=page_views&window={}", h0 + 300_000),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{lineage}");
    assert_eq!(lineage["layer"], "batch");
    let inputs = lineage["batch"]["inputs"].as_array().unwrap();
    assert!(
        !inputs.is_empty()
            && inputs
                .iter()
                .all(|i| i["offsets"]["partition"].as_i64().is_some()),
        "{lineage}"
    );
    let (_, lineage) = get_json(
        &addr,
        &format!("/v1/lineage?metric=page_views&window={}", boundary + 60_000),
        &[],
    )
    .await;
    assert_eq!(lineage["layer"], "speed", "{lineage}");

    // The boundary moves: batch computes the third hour too.
    batch_run(&lake, &views, HourSelection::One(HourKey(h0 / HOUR_MS + 2))).await;
    state.batch.refresh().await.unwrap();
    let moved = assert_served_equals_direct::<Revenue>(
        &addr,
        &deduped,
        (h0, top),
        ("hour", HOUR_MS),
        &["category"],
        &[],
    )
    .await;
    assert_eq!(
        moved["time_boundary"].as_str(),
        Some(shared_logic::instant::format_instant(boundary + HOUR_MS).as_str())
    );
    for (start, source, _) in sources(&moved) {
        let expected = if start < boundary + HOUR_MS {
            "batch"
        } else {
            "speed"
        };
        assert_eq!(source, expected, "hour {start} after the boundary moved");
    }
    assert_served_equals_direct::<PageViews>(
        &addr,
        &deduped,
        (h0, top),
        ("minute", 60_000),
        &["device"],
        &[],
    )
    .await;

    // Late data for the first hour: the speed layer drops it (its windows closed long ago),
    // the lake gets it, the batch reruns the dirty hour, and the served answer includes it.
    let late_cfg = GeneratorConfig {
        events_per_second: 1.0,
        duplicate_fraction: 0.0,
        invalid_fraction: 0.0,
        out_of_order_fraction: 0.0,
        ..cfg
    };
    let late = records_until(42, h0 + 600_000, h0 + 900_000, now, late_cfg);
    let dropped_before = realtime.progress().counters.late_dropped;
    let (late_accepted, _) = post_all(&addr, &late).await;
    assert!(late_accepted > 100);
    let total = accepted + late_accepted;
    pipeline.wait_for_records(total).await;
    assert_eq!(
        realtime.progress().counters.late_dropped - dropped_before,
        late_accepted
    );
    events.extend(valid(&late, now));
    let corrected = first_wins(events);
    batch_run(
        &lake,
        &views,
        HourSelection::Dirty {
            before: Some(HourKey(now.div_euclid(HOUR_MS))),
        },
    )
    .await;
    state.batch.refresh().await.unwrap();
    assert_served_equals_direct::<PageViews>(
        &addr,
        &corrected,
        (h0, boundary),
        ("minute", 60_000),
        &["country"],
        &[],
    )
    .await;
    assert_served_equals_direct::<Funnel>(
        &addr,
        &corrected,
        (h0, top),
        ("hour", HOUR_MS),
        &["device", "category"],
        &[],
    )
    .await;

    pipeline.stop().await;
}
