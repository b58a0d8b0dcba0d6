//! The consistency suite: the platform's promise, over the real broker, for many
//! randomised streams (seeded; `LAMBDA_CONSISTENCY_SEEDS` sets how many, default 5).
//!
//! Each seed draws its own mix of duplicates, out-of-order, late-within-lateness and invalid
//! records, produces it to a topic of its own, and runs the speed layer and the lake writer
//! in-process; the batch job computes every hour. Then:
//! 1. for every hour, batch views equal speed views exactly (`serving::verify`, the code
//!    behind `lambda verify`: zero differences);
//! 2. the served answers (hour, minute and day granularity; grouped, filtered) equal a direct
//!    shared-logic computation over the same records;
//! 3. events later than the allowed lateness are dropped by the speed layer but reach the
//!    lake; the dirty rerun of their hour makes the served answer equal the direct
//!    computation again, and verify reports exactly that hour as different;
//! 4. a deliberately corrupted batch view file makes verify report a non-empty table.

use std::net::SocketAddr;
use std::path::Path;

use lambda_tests::pipeline::Pipeline;
use lambda_tests::serving::assert_served_equals_direct;
use lambda_tests::sql::{assert_sql_equals_direct, start_sql};
use lambda_tests::topic::{produce, read_all, topic_events};
use lambda_tests::Broker;
use serving::batch_views::BatchViews;
use serving::verify;
use shared_logic::dedup::first_wins;
use shared_logic::generate::{Generator, GeneratorConfig, Record};
use shared_logic::metric::Metric;
use shared_logic::metrics::{Funnel, PageViews, Quality, Revenue, Sessions};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Event, MetricViews, Origin, Validator};
use speed::partition::{LatePolicy, TimeSettings};

const RECORDS: usize = 9_000;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z
const TIME: TimeSettings = TimeSettings {
    out_of_orderness_ms: 5_000,
    allowed_lateness_ms: 60_000,
    late_policy: LatePolicy::Drop,
};

/// A deterministic number in `[0, 1)` from a seed and a stream.
fn unit(seed: u64, stream: u64) -> f64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(stream.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The seed's stream: about 2.5 hours of event time with its own mix of noise; late
/// records stay within the allowed lateness (so the speed layer counts them).
fn stream(seed: u64) -> (GeneratorConfig, Vec<Record>) {
    let cfg = GeneratorConfig {
        seed,
        start_ms: START + (seed as i64 % 24) * HOUR_MS,
        events_per_second: 1.0,
        users: 500 + (unit(seed, 1) * 5_000.0) as u32,
        duplicate_fraction: 0.01 + unit(seed, 2) * 0.06,
        out_of_order_fraction: unit(seed, 3) * 0.15,
        out_of_order_ms: 1_000 + (unit(seed, 4) * 3_500.0) as i64,
        late_fraction: unit(seed, 5) * 0.03,
        // Late records move back by lateness + up to lateness again: at most 60 s here,
        // inside out-of-orderness (5 s) + allowed lateness (60 s).
        lateness_ms: 5_000 + (unit(seed, 6) * 25_000.0) as i64,
        invalid_fraction: unit(seed, 7) * 0.04,
        ..GeneratorConfig::default()
    };
    let records = Generator::new(cfg.clone()).take(RECORDS).collect();
    (cfg, records)
}

fn valid(records: &[Record]) -> Vec<Event> {
    let v = Validator::default();
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                .ok()
        })
        .collect()
}

async fn verify_all(batch: &BatchViews, p: &Pipeline) -> Vec<verify::Comparison> {
    let (from, to) = (0, i64::MAX / 2);
    vec![
        verify::verify::<PageViews>(batch, &p.state.speed.current(), from, to)
            .await
            .unwrap(),
        verify::verify::<Funnel>(batch, &p.state.speed.current(), from, to)
            .await
            .unwrap(),
        verify::verify::<Revenue>(batch, &p.state.speed.current(), from, to)
            .await
            .unwrap(),
        verify::verify::<Sessions>(batch, &p.state.speed.current(), from, to)
            .await
            .unwrap(),
        verify::verify::<Quality>(batch, &p.state.speed.current(), from, to)
            .await
            .unwrap(),
    ]
}

/// The served answers over the whole test range, from the REST API and from the SQL
/// endpoint, equal the direct computation.
async fn served_equals_direct<M: shared_logic::Registered>(
    (addr, sql): (&str, SocketAddr),
    events: &[Event],
    granularity: (&str, i64),
    group_by: &[&str],
    filters: &[(&str, &str)],
) {
    let range = (START - 24 * HOUR_MS, START + 3 * 24 * HOUR_MS);
    assert_served_equals_direct::<M>(addr, events, range, granularity, group_by, filters).await;
    assert_sql_equals_direct::<M>(sql, events, range, granularity, group_by, filters).await;
}

/// `events`: the valid events, deduplicated; `deliveries`: every valid delivery in the
/// topic, with its record time and source (what the `quality` metric is computed from).
async fn served_all(addr: (&str, SocketAddr), events: &[Event], deliveries: &[Event]) {
    served_equals_direct::<Quality>(
        addr,
        deliveries,
        ("hour", HOUR_MS),
        &["producer", "event_type"],
        &[],
    )
    .await;
    served_equals_direct::<PageViews>(addr, events, ("hour", HOUR_MS), &["country"], &[]).await;
    served_equals_direct::<Funnel>(
        addr,
        events,
        ("minute", 60_000),
        &["device"],
        &[("country", "US")],
    )
    .await;
    served_equals_direct::<Revenue>(addr, events, ("day", 24 * HOUR_MS), &["category"], &[]).await;
    served_equals_direct::<Sessions>(addr, events, ("hour", HOUR_MS), &["device"], &[]).await;
}

/// Rewrites one hour's page_views view file with one key missing.
async fn corrupt_one_view(views: &lambda_io::Lake, dir: &Path) -> (String, usize) {
    let published = lambda_io::manifest::Published::load(views).await.unwrap();
    let (hour, view) = published.hours.iter().next().expect("a published hour");
    let relative = view.views["page_views"].clone();
    let hours = [HourKey::parse(hour).unwrap()];
    let mut states: MetricViews<PageViews> =
        batch::view_files::read_views(views, &published, &hours)
            .await
            .unwrap();
    let gone = states.sorted()[0].0.clone();
    states.retain(|k| *k != gone);
    let batch = shared_logic::views::to_record_batch(&states, &Default::default()).unwrap();
    let bytes = lambda_io::parquet_file::encode_parquet(
        shared_logic::views::view_schema::<PageViews>(),
        &[batch],
        "corrupted",
    )
    .unwrap();
    std::fs::write(dir.join("lake/views").join(&relative), bytes).unwrap();
    (hour.clone(), states.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_speed_agree_and_serving_equals_the_direct_computation_for_many_streams() {
    let seeds: u64 = std::env::var("LAMBDA_CONSISTENCY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let broker = Broker::start();
    for seed in 1..=seeds {
        let dir = tempfile::tempdir().unwrap();
        let topic = format!("consistency-{seed}");
        let (cfg, records) = stream(seed);
        let pipeline = Pipeline::start(broker.brokers(), &topic, TIME, dir.path()).await;
        produce(broker.brokers(), &topic, 3, &records).await;
        pipeline.wait_for_records(RECORDS as u64).await;
        let counters = pipeline.realtime.progress().counters;
        assert_eq!(
            counters.late_dropped, 0,
            "seed {seed}: late records stay within lateness"
        );
        // Every seed: the speed layer rejected exactly the invalid records and skipped
        // exactly the re-deliveries (an event id seen before in the same hour).
        // Validated as stored, with each record's Kafka timestamp as the clock.
        let events = topic_events(&read_all(&broker.client_config(), &topic));
        let distinct = first_wins(events.clone()).len();
        assert_eq!(
            (counters.rejected, counters.duplicates),
            (
                (records.len() - events.len()) as u64,
                (events.len() - distinct) as u64
            ),
            "seed {seed} ({cfg:?}): rejected and duplicates of {counters:?}"
        );
        pipeline.batch_dirty_hours().await;

        // 1. Every hour: batch == speed, exactly.
        for c in verify_all(&pipeline.state.batch, &pipeline).await {
            assert!(c.hours_skipped.is_empty(), "seed {seed}: {c:?}");
            assert!(
                c.hours_compared.len() >= 3,
                "seed {seed}: {:?}",
                c.hours_compared
            );
            assert!(
                c.differences.is_empty(),
                "seed {seed} ({cfg:?}):\n{}",
                verify::table(&c.differences, 10)
            );
        }
        // 2. Served == direct.
        let rest = lambda_tests::serving::start(pipeline.state.clone()).await;
        let sql = start_sql(pipeline.state.clone(), Default::default()).await;
        let addr = (rest.as_str(), sql);
        let mut events = valid(&records);
        let deliveries = topic_events(&read_all(&broker.client_config(), &topic));
        served_all(addr, &first_wins(events.clone()), &deliveries).await;

        // 3. Events beyond the allowed lateness, for the first hour: dropped by speed,
        //    corrected by the batch rerun of the dirty hour.
        let late_cfg = GeneratorConfig {
            seed: seed + 1_000,
            start_ms: cfg.start_ms + 10 * 60_000,
            events_per_second: 2.0,
            duplicate_fraction: 0.0,
            out_of_order_fraction: 0.0,
            late_fraction: 0.0,
            invalid_fraction: 0.0,
            ..cfg.clone()
        };
        let late: Vec<Record> = Generator::new(late_cfg).take(400).collect();
        let dropped = pipeline.realtime.progress().counters.late_dropped;
        produce(broker.brokers(), &topic, 3, &late).await;
        pipeline
            .wait_for_records((RECORDS + late.len()) as u64)
            .await;
        let late_dropped = pipeline.realtime.progress().counters.late_dropped - dropped;
        assert_eq!(late_dropped, late.len() as u64, "seed {seed}");
        pipeline.batch_dirty_hours().await;
        events.extend(valid(&late));
        let deliveries = topic_events(&read_all(&broker.client_config(), &topic));
        served_all(addr, &first_wins(events), &deliveries).await;
        let first_hour = HourKey(cfg.start_ms / HOUR_MS).to_string();
        let comparisons = verify_all(&pipeline.state.batch, &pipeline).await;
        assert!(
            !comparisons[0].differences.is_empty(),
            "seed {seed}: the speed layer dropped late page views"
        );
        // Per-event metrics differ in the late events' hour only; sessions in the hours
        // where the sessions the late events joined start (that hour or earlier).
        let first = HourKey(cfg.start_ms / HOUR_MS);
        for c in comparisons {
            let allowed = |d: &verify::Difference| {
                let hour = HourKey(d.window_start / HOUR_MS);
                hour == first || (d.metric == Sessions::NAME && hour < first)
            };
            assert!(
                c.differences.iter().all(allowed),
                "seed {seed}: only the late events' hour {first_hour} differs:\n{}",
                verify::table(&c.differences, 10)
            );
        }

        // 4. A corrupted view file: verify's table is not empty (a fresh reader: view files
        //    are immutable by contract, so the serving cache keys them by path).
        if seed == 1 {
            let (hour, _) = corrupt_one_view(&pipeline.views, dir.path()).await;
            let fresh = BatchViews::new(pipeline.views.clone(), 8);
            fresh.refresh().await.unwrap();
            let c = verify::verify::<PageViews>(
                &fresh,
                &pipeline.state.speed.current(),
                0,
                i64::MAX / 2,
            )
            .await
            .unwrap();
            let in_hour: Vec<_> = c
                .differences
                .iter()
                .filter(|d| HourKey(d.window_start / HOUR_MS).to_string() == hour)
                .collect();
            assert!(!in_hour.is_empty(), "the corrupted hour {hour} differs");
            assert!(in_hour
                .iter()
                .any(|d| d.batch.is_none() && d.speed.is_some()));
            let table = verify::table(&c.differences, 50);
            assert!(table.lines().count() > 1, "{table}");
        }
        pipeline.stop().await;
    }
}
