//! The speed layer computes what the documented rule says, over the real broker, under each
//! late policy: a generated stream with duplicates, out-of-order, late and invalid records
//! is produced; the speed consumer runs in-process; its views equal a direct computation —
//! per partition in offset order: validate, first delivery wins per (event id, hour),
//! watermark = max event time − out-of-orderness, closed windows follow the policy — folded
//! with shared-logic. Under `update` the views also equal the batch computation (dedup and
//! fold of every valid event).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use lambda_io::kafka::KafkaSettings;
use lambda_io::Lake;
use lambda_tests::topic::{produce, read_all, Stored};
use lambda_tests::Broker;
use shared_logic::dedup::{first_wins, id_hash};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext, Origin, Validator};
use speed::checkpoint::CheckpointStore;
use speed::consumer::{SpeedConsumer, SpeedOptions};
use speed::partition::{LatePolicy, TimeSettings};
use speed::views::RealtimeViews;

const RECORDS: usize = 12_000;

fn stream(seed: u64) -> Vec<shared_logic::generate::Record> {
    let cfg = GeneratorConfig {
        seed,
        events_per_second: 40.0,
        duplicate_fraction: 0.03,
        out_of_order_fraction: 0.05,
        out_of_order_ms: 4_000,
        late_fraction: 0.02,
        lateness_ms: 60_000,
        invalid_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    Generator::new(cfg).take(RECORDS).collect()
}

/// The documented rule, stated directly.
fn direct(
    records: &BTreeMap<i32, Vec<Stored>>,
    time: &TimeSettings,
    ctx: &MetricContext,
) -> Aggregates {
    let v = Validator::default();
    let mut agg = Aggregates::default();
    for stored in records.values() {
        let mut seen = HashSet::new();
        let mut max_time: Option<i64> = None;
        for r in stored {
            let Ok(e) = v.validate(
                &r.payload,
                Origin {
                    partition: r.partition,
                    offset: r.offset,
                },
                r.timestamp_ms,
            ) else {
                continue;
            };
            if !seen.insert((id_hash(&e.event_id().0), HourKey::of(e.event_time()))) {
                continue;
            }
            let wm = max_time.map(|m| m - time.out_of_orderness_ms);
            let closed = |w: shared_logic::WindowStart| {
                wm.is_some_and(|wm| ctx.windows.end(w) + time.allowed_lateness_ms <= wm)
            };
            // The watermark trails event times capped by their record's timestamp.
            let reached = e.event_time().0.min(r.timestamp_ms);
            max_time = Some(max_time.map_or(reached, |m| m.max(reached)));
            match time.late_policy {
                LatePolicy::Update => agg.update(&e.view(), ctx),
                _ => agg.update_windows(&e.view(), ctx, |w| !closed(w)),
            }
        }
    }
    agg
}

async fn run_speed(
    broker: &Broker,
    topic: &str,
    time: TimeSettings,
    dir: &std::path::Path,
) -> RealtimeViews {
    let ctx = MetricContext::default();
    let views = RealtimeViews::new(ctx, time, Duration::from_secs(30));
    let lake = Lake::open(dir.to_str().unwrap(), true).unwrap();
    let group = format!("{topic}-{:?}", time.late_policy);
    let opts = SpeedOptions {
        topics: vec![topic.to_string()],
        group_id: group.clone(),
        dead_letter_topic: format!("{topic}-dlq"),
        late_topic: format!("{topic}-late"),
        stop_after_records: Some(RECORDS as u64),
        ..SpeedOptions::default()
    };
    let consumer = SpeedConsumer::new(
        views.clone(),
        &KafkaSettings::new(broker.brokers()),
        CheckpointStore::new(lake, &group, topic),
        opts,
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        consumer.run(std::future::pending()),
    )
    .await
    .expect("speed layer finished in time")
    .expect("speed layer ran");
    views
}

fn assert_same(actual: &Aggregates, expected: &Aggregates, what: &str) {
    let diff = |a: usize, b: usize| {
        if a == b {
            String::new()
        } else {
            format!(" ({a} vs {b} keys)")
        }
    };
    assert!(
        actual.page_views == expected.page_views,
        "{what}: page_views differ{}",
        diff(actual.page_views.len(), expected.page_views.len())
    );
    assert!(
        actual.funnel == expected.funnel,
        "{what}: funnel differs{}",
        diff(actual.funnel.len(), expected.funnel.len())
    );
    assert!(
        actual.revenue == expected.revenue,
        "{what}: revenue differs{}",
        diff(actual.revenue.len(), expected.revenue.len())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_views_equal_the_direct_computation_under_each_late_policy() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let records = stream(21);
    let topic = "speed-consistency";
    produce(broker.brokers(), topic, 3, &records).await;
    let stored = {
        let config = broker.client_config();
        tokio::task::spawn_blocking(move || read_all(&config, topic))
            .await
            .unwrap()
    };
    assert_eq!(stored.values().map(Vec::len).sum::<usize>(), RECORDS);
    let ctx = MetricContext::default();

    for policy in [LatePolicy::Drop, LatePolicy::SideOutput, LatePolicy::Update] {
        let time = TimeSettings {
            out_of_orderness_ms: 5_000,
            allowed_lateness_ms: 30_000,
            late_policy: policy,
        };
        // Each policy consumes the topic with its own group (from the beginning).
        let views = run_speed(
            &broker,
            topic,
            time,
            &dir.path().join(format!("{policy:?}")),
        )
        .await;
        let snapshot = views.snapshot(i64::MIN, i64::MAX);
        let expected = direct(&stored, &time, &ctx);
        assert_same(&snapshot.aggregates, &expected, &format!("{policy:?}"));
        let c = snapshot.counters;
        assert_eq!(c.records, RECORDS as u64);
        assert!(c.duplicates > 200 && c.rejected > 150, "{c:?}");
        match policy {
            LatePolicy::Drop => assert!(c.late_dropped > 50, "late events were dropped: {c:?}"),
            LatePolicy::SideOutput => assert!(
                c.late_side_output > 50,
                "late events were side-output: {c:?}"
            ),
            LatePolicy::Update => {
                assert!(
                    c.late_updated > 50 && !snapshot.revised.is_empty(),
                    "late events revised windows: {c:?}"
                );
                // Nothing is lost under `update`: the batch computation over the same records.
                let all = lambda_tests::topic::topic_events(&stored);
                assert_same(
                    &snapshot.aggregates,
                    &Aggregates::fold(&first_wins(all), &ctx),
                    "update vs batch",
                );
            }
        }
    }
    // Side outputs reached their topics.
    let config = broker.client_config();
    let dlq = tokio::task::spawn_blocking(move || read_all(&config, "speed-consistency-dlq"))
        .await
        .unwrap();
    assert!(dlq.values().map(Vec::len).sum::<usize>() > 150);
}
