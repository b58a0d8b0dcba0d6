//! The generator's stream goes through the real broker and comes back complete: every
//! record arrives, valid ones validate to the same event types, invalid ones are rejected
//! with their reason codes, duplicates are recognised.

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_tests::topic::summarize;
use lambda_tests::Broker;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::{Origin, Validator};

/// Validation clock of the local expectation: the generator's event times lie before it and
/// before every record timestamp, so it gives the verdicts the drain gives at record time.
const NOW: i64 = 4_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_stream_arrives_complete_through_the_broker() {
    let broker = Broker::start();
    let settings = KafkaSettings::new(broker.brokers());
    let topic = "events-roundtrip";
    ensure_topics(&settings, &[(topic, 3)], Duration::from_secs(30))
        .await
        .expect("topic created");

    let cfg = GeneratorConfig {
        seed: 7,
        invalid_fraction: 0.03,
        duplicate_fraction: 0.03,
        ..GeneratorConfig::default()
    };
    let records: Vec<_> = Generator::new(cfg).take(5_000).collect();

    // What the topic must hold, computed locally from the same records.
    let validator = Validator::default();
    let mut expected_types: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected_reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        match validator.validate(&r.json, Origin::import_line(i as i64), NOW) {
            Ok(e) => {
                *expected_types
                    .entry(e.event_type().as_str().to_string())
                    .or_default() += 1
            }
            Err(d) => {
                *expected_reasons
                    .entry(d.reason.code().to_string())
                    .or_default() += 1
            }
        }
    }
    let expected_duplicates = records
        .iter()
        .filter(|r| r.kind == shared_logic::generate::RecordKind::Duplicate)
        .count();

    let producer = EventProducer::new(&settings, topic).expect("producer");
    for r in &records {
        producer.send(r.key.as_bytes(), &r.json).expect("queued");
    }
    let report = producer
        .flush(Duration::from_secs(60))
        .expect("all acknowledged");
    assert_eq!(report.delivered, records.len() as u64);

    let config = broker.client_config();
    let summary = summarize(config, topic, Duration::from_secs(60)).await;

    assert_eq!(summary.records, records.len() as u64);
    assert_eq!(summary.valid_by_type, expected_types);
    assert_eq!(summary.rejected_by_reason, expected_reasons);
    assert_eq!(summary.duplicates as usize, expected_duplicates);
    assert_eq!(
        summary.records_by_partition.len(),
        3,
        "keyed records spread over every partition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_missing_topic_is_a_clear_error() {
    let broker = Broker::start();
    let config = broker.client_config();
    let err = tokio::task::spawn_blocking(move || {
        let mut config = config;
        config.set("allow.auto.create.topics", "false");
        lambda_io::kafka::drain::read_to_end(
            &config,
            "no-such-topic",
            &Validator::default(),
            Duration::from_secs(20),
        )
    })
    .await
    .unwrap()
    .expect_err("a missing topic is an error");
    assert!(err.to_string().contains("no-such-topic"), "{err}");
}
