//! The consumer groups come back after crashes at the timings of issue 23, on the local
//! broker (tansu, sqlite storage, a fresh store per test): kill -9 during the group join
//! and an immediate restart, with checkpoints (speed layer) or files (lake writer) every
//! 0.5 s. The instance that survives must hold every partition and have read the whole
//! topic within a bound (and keep its partitions afterwards). With four quick kills tansu
//! 0.6.0 settles the group on an empty assignment for the survivor and stays there; the
//! group watchdog (`lambda_io::kafka::group_member`) leaves and rejoins (docs/broker.md).

use std::time::{Duration, Instant};

use lambda_tests::broker::FAST_GROUP_FAILOVER;
use lambda_tests::faults::{kill_9, spawn_logging, speed_applied, speed_status};
use lambda_tests::http::free_addr;
use lambda_tests::lake_files::{lake_rows, positions};
use lambda_tests::topic::produce;
use lambda_tests::{Broker, ChildGuard};
use shared_logic::generate::{Generator, GeneratorConfig};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 300_000;

fn start_speed(
    brokers: &str,
    topic: &str,
    checkpoints: &std::path::Path,
    addr: &str,
    fast: bool,
) -> ChildGuard {
    let mut args = vec![
        "speed",
        "--topic",
        topic,
        "--group",
        "recovery-speed",
        "--listen",
        addr,
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--brokers",
        brokers,
        "--checkpoint-interval-secs",
        "0.5",
        "--dead-letter-topic",
        "recovery-dlq",
        "--late-topic",
        "recovery-late",
    ];
    if fast {
        args.extend(FAST_GROUP_FAILOVER);
    }
    spawn_logging(&args, "info")
}

fn held_partitions(addr: &str) -> usize {
    speed_status(addr)
        .and_then(|s| s["progress"]["offsets"].as_object().map(|o| o.len()))
        .unwrap_or(0)
}

/// Waits until the instance at `addr` holds every partition and has applied every record;
/// returns how long that took, or panics after `bound` with what it holds.
fn recovered_within(addr: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (held, applied) = (held_partitions(addr), speed_applied(addr));
        if held == PARTITIONS as usize && applied >= RECORDS as u64 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?} the instance holds {held} of {PARTITIONS} partitions and has applied {applied} of {RECORDS} records"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A fresh broker holding `topic` with [`RECORDS`] records, a checkpoint directory and the
/// address the instances listen on.
fn setup(topic: &str) -> (Broker, tempfile::TempDir, String) {
    let broker = Broker::start_local();
    topic_with_records(&broker, topic);
    (broker, tempfile::tempdir().unwrap(), free_addr())
}

fn topic_with_records(broker: &Broker, topic: &str) {
    let records: Vec<_> = Generator::new(GeneratorConfig {
        seed: 23,
        events_per_second: 500.0,
        ..GeneratorConfig::default()
    })
    .take(RECORDS)
    .collect();
    tokio::runtime::Runtime::new().unwrap().block_on(produce(
        broker.brokers(),
        topic,
        PARTITIONS,
        &records,
    ));
}

#[test]
fn a_speed_instance_killed_during_its_join_and_restarted_at_once_recovers() {
    let topic = "recovery-join-kill";
    let (broker, dir, addr) = setup(topic);

    let mut first = start_speed(broker.brokers(), topic, dir.path(), &addr, true);
    std::thread::sleep(Duration::from_millis(1500));
    kill_9(&mut first);
    let _second = start_speed(broker.brokers(), topic, dir.path(), &addr, true);
    let took = recovered_within(&addr, Duration::from_secs(90));
    eprintln!("recovered in {took:?}");
    // And it keeps them: no revocation without a way back.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(40) {
        assert_eq!(
            held_partitions(&addr),
            PARTITIONS as usize,
            "after {:?}",
            watch.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_fifth_instance_after_four_quick_kills_gets_every_partition() {
    let topic = "recovery-four-kills";
    let (broker, dir, addr) = setup(topic);
    for pause_ms in [1000, 2500, 1500, 2000] {
        let mut instance = start_speed(broker.brokers(), topic, dir.path(), &addr, false);
        std::thread::sleep(Duration::from_millis(pause_ms));
        kill_9(&mut instance);
    }
    let _fifth = start_speed(broker.brokers(), topic, dir.path(), &addr, false);
    let took = recovered_within(&addr, Duration::from_secs(240));
    eprintln!("recovered in {took:?}");
}

fn start_lake_writer(brokers: &str, topic: &str, lake: &std::path::Path) -> ChildGuard {
    let args = [
        "lake",
        "--lake",
        lake.to_str().unwrap(),
        "--topic",
        topic,
        "--group",
        "recovery-lake",
        "--roll-secs",
        "0.5",
        "--brokers",
        brokers,
    ];
    spawn_logging(&args, "info")
}

#[test]
fn the_fifth_lake_writer_after_four_quick_kills_writes_the_whole_topic_once() {
    let topic = "recovery-lake-four-kills";
    let (broker, dir, _) = setup(topic);
    let lake = dir.path().join("lake");
    for pause_ms in [1000, 2500, 1500, 2000] {
        let mut instance = start_lake_writer(broker.brokers(), topic, &lake);
        std::thread::sleep(Duration::from_millis(pause_ms));
        kill_9(&mut instance);
    }
    let _fifth = start_lake_writer(broker.brokers(), topic, &lake);
    let started = Instant::now();
    let bound = Duration::from_secs(300);
    loop {
        let rows = lake_rows(&lake);
        if rows >= RECORDS as u64 {
            break;
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?} the lake holds {rows} of {RECORDS} records"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("recovered in {:?}", started.elapsed());
    let mut held = positions(&lake);
    held.sort_unstable();
    let total = held.len();
    held.dedup();
    assert_eq!(
        (total, held.len()),
        (RECORDS, RECORDS),
        "every record of the topic in the lake exactly once"
    );
}
