//! The lake writer is exactly-once across kill -9: records are produced to the real broker,
//! `lambda lake` is killed with SIGKILL three times at different points while it writes,
//! then runs to the end; every Kafka position is in the lake exactly once.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_tests::broker::FAST_GROUP_FAILOVER;
use lambda_tests::lake_files::positions;
use lambda_tests::{wait_for, Broker, ChildGuard};
use shared_logic::generate::{Generator, GeneratorConfig};

const RECORDS: usize = 30_000;
const TOPIC: &str = "crash-events";

fn start_writer(broker: &Broker, lake: &std::path::Path) -> ChildGuard {
    ChildGuard(
        Command::new(lambda_tests::bin::lambda_bin())
            .args([
                "lake",
                "--lake",
                lake.to_str().unwrap(),
                "--topic",
                TOPIC,
                "--group",
                "crash-test",
            ])
            .args([
                "--roll-mib",
                "1",
                "--roll-secs",
                "0.2",
                "--brokers",
                broker.brokers(),
            ])
            .args(FAST_GROUP_FAILOVER)
            .env("LAMBDA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lambda lake starts"),
    )
}

#[test]
fn kill_9_of_the_lake_writer_loses_and_duplicates_nothing() {
    let broker = Broker::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = KafkaSettings::new(broker.brokers());
    runtime
        .block_on(ensure_topics(
            &settings,
            &[(TOPIC, 3)],
            Duration::from_secs(30),
        ))
        .unwrap();
    let producer = EventProducer::new(&settings, TOPIC).unwrap();
    let cfg = GeneratorConfig {
        seed: 9,
        invalid_fraction: 0.02,
        duplicate_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    for r in Generator::new(cfg).take(RECORDS) {
        producer.send(r.key.as_bytes(), &r.json).unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // Kill while it writes: after it has written some files, at three different depths.
    for (round, at_least) in [(1, 2_000usize), (2, 9_000), (3, 17_000)] {
        let mut child = start_writer(&broker, &lake);
        wait_for(
            &format!("round {round} progress"),
            Duration::from_secs(120),
            || lambda_tests::lake_files::lake_rows(&lake) >= at_least as u64,
        );
        child.0.kill().expect("SIGKILL");
        child.0.wait().unwrap();
    }
    let mut child = start_writer(&broker, &lake);
    wait_for(
        "as many rows in the lake as records produced",
        Duration::from_secs(180),
        || lambda_tests::lake_files::lake_rows(&lake) >= RECORDS as u64,
    );
    // Stop gracefully (SIGTERM): the writer flushes, commits and exits 0.
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");

    let mut found = positions(&lake);
    found.sort_unstable();
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in &found {
        per_partition.entry(*p).or_default().push(*o);
    }
    assert_eq!(found.len(), RECORDS, "no record lost or duplicated");
    for (p, offsets) in per_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {p} holds every offset once");
    }
    assert!(
        !lake.join("_writer").exists(),
        "no intent files: the Delta commits are the protocol"
    );
    // Files of flushes killed before their commit are in no snapshot; vacuum deletes them
    // and nothing else.
    let on_disk = |table: &str| lambda_tests::lake_files::parquet_files(&lake.join(table)).len();
    let garbage = on_disk("events") + on_disk("dead-letter") - committed_files(&lake);
    eprintln!("files written by flushes killed before their commit: {garbage}");
    let location = lambda_io::Lake::open(lake.to_str().unwrap(), false).unwrap();
    let vacuumed = runtime
        .block_on(batch::optimize::vacuum(
            &location,
            chrono::Duration::zero(),
            false,
        ))
        .unwrap();
    let deleted: usize = vacuumed.iter().map(|(_, files)| files.len()).sum();
    assert_eq!(deleted, garbage, "{vacuumed:?}");
    assert_eq!(
        on_disk("events") + on_disk("dead-letter"),
        committed_files(&lake)
    );
    assert_eq!(positions(&lake).len(), RECORDS);
}

fn committed_files(lake: &std::path::Path) -> usize {
    ["events", "dead-letter"]
        .iter()
        .map(|t| lambda_tests::lake_files::table_files(&lake.join(t)).len())
        .sum()
}
