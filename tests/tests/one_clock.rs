//! One clock for validation in every layer (issue 16): the speed layer, the lake writer
//! and the topic drain judge a record's `future_event_time` against the record's Kafka
//! timestamp, so a record gets the same verdict everywhere, whatever the consumers' wall
//! clocks say; and the collector stamps each record with the clock reading it validated
//! against.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, Int64Type};
use lambda_tests::lake_files::{positions_of, table_files};
use lambda_tests::pipeline::Pipeline;
use lambda_tests::topic::{read_all, summarize};
use lambda_tests::Broker;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::producer::{FutureProducer, FutureRecord};
use speed::partition::TimeSettings;

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

fn view(id: &str, event_ms: i64) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":{event_ms},"user_id":"u-{id}","url":"/"}}"#
    )
}

/// `(partition, offset, reason)` of every row of the lake's dead-letter table.
fn lake_dead_letters(lake_dir: &std::path::Path) -> BTreeSet<(i32, i64, String)> {
    let mut out = BTreeSet::new();
    for file in table_files(&lake_dir.join("dead-letter")) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .and_then(|b| b.build())
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = |name: &str| batch.column_by_name(name).expect(name).clone();
            let (p, o, r) = (col("kafka_partition"), col("kafka_offset"), col("reason"));
            for i in 0..batch.num_rows() {
                out.insert((
                    p.as_primitive::<Int32Type>().value(i),
                    o.as_primitive::<Int64Type>().value(i),
                    r.as_string::<i32>().value(i).to_string(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_lake_writer_and_drain_judge_a_record_by_its_timestamp_alike() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = "one-clock";
    let pipeline =
        Pipeline::start(broker.brokers(), topic, TimeSettings::default(), dir.path()).await;
    let now = chrono::Utc::now().timestamp_millis();
    // (id, event time, record timestamp): the producers' clocks disagree with the wall clock.
    let records = [
        // Event time now, produced by a clock a day behind: 24 h ahead of its record.
        ("behind", now, now - DAY),
        // 10 min ahead of the wall clock, 2 min ahead of a producer clock 8 min fast.
        ("ahead", now + 10 * MIN, now + 8 * MIN),
        // A day old, produced a minute later.
        ("old", now - DAY, now - DAY + MIN),
        ("plain", now - 1_000, now),
    ];
    let producer: FutureProducer = broker.client_config().create().expect("producer");
    for (id, event_ms, record_ms) in records {
        let payload = view(id, event_ms);
        let key = format!("u-{id}");
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .timestamp(record_ms),
                Duration::from_secs(30),
            )
            .await
            .expect("acknowledged");
    }
    pipeline.wait_for_records(records.len() as u64).await;
    let speed_counters = pipeline.realtime.progress().counters;
    let lake_dir = pipeline.lake_dir.clone();
    pipeline.stop().await;

    let stored = read_all(&broker.client_config(), topic);
    let position_of = |id: &str| {
        let r = stored
            .values()
            .flatten()
            .find(|r| String::from_utf8_lossy(&r.payload).contains(&format!("\"{id}\"")))
            .expect("record stored");
        (r.partition, r.offset)
    };
    let (p, o) = position_of("behind");
    let expected: BTreeSet<(i32, i64, String)> = [(p, o, "future_event_time".to_string())].into();

    let speed_dlq: BTreeSet<(i32, i64, String)> =
        read_all(&broker.client_config(), &format!("{topic}-speed-dlq"))
            .values()
            .flatten()
            .map(|r| {
                (
                    r.headers["source_partition"].parse().unwrap(),
                    r.headers["source_offset"].parse().unwrap(),
                    r.headers["reason"].clone(),
                )
            })
            .collect();
    let lake_dlq = lake_dead_letters(&lake_dir);
    assert_eq!(
        speed_dlq, lake_dlq,
        "speed and lake writer reject the same records"
    );
    assert_eq!(
        speed_dlq, expected,
        "the record a day ahead of its timestamp is rejected"
    );
    assert_eq!(speed_counters.events, 3, "{speed_counters:?}");
    let lake_events = positions_of(&lake_dir, &["events"]).len();
    assert_eq!(
        lake_events, 3,
        "the lake holds the three events valid at their record time"
    );

    let config = broker.client_config();
    let summary = summarize(config, topic, Duration::from_secs(30)).await;
    assert_eq!(summary.valid(), 3, "{summary:?}");
    assert_eq!(
        summary.rejected_by_reason,
        [("future_event_time".to_string(), 1)].into(),
        "the drain (lambda inspect) gives the same verdicts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_stamps_its_records_with_the_clock_it_validated_against() {
    let broker = Broker::start();
    let kafka = lambda_io::kafka::KafkaSettings::new(broker.brokers());
    let topic = "one-clock-collector";
    lambda_io::kafka::ensure_topics(
        &kafka,
        &[(topic, 3), ("one-clock-collector-dlq", 1)],
        Duration::from_secs(30),
    )
    .await
    .expect("topics");
    let collector = serving::collector::Collector::new(
        &kafka,
        serving::collector::CollectorOptions {
            topic: topic.into(),
            dead_letter_topic: "one-clock-collector-dlq".into(),
            ..Default::default()
        },
    )
    .expect("collector");
    let before = chrono::Utc::now().timestamp_millis();
    // Many records in one request, so that producing them takes well over a millisecond.
    let body: String = (0..3_000)
        .map(|i| view(&format!("c{i}"), before - 1_000) + "\n")
        .collect();
    let report = collector.ingest(body.as_bytes()).await.expect("accepted");
    let after = chrono::Utc::now().timestamp_millis();
    assert_eq!(report.accepted, 3_000);

    let stamps: BTreeSet<i64> = read_all(&broker.client_config(), topic)
        .values()
        .flatten()
        .map(|r| r.timestamp_ms)
        .collect();
    assert_eq!(
        stamps.len(),
        1,
        "one clock reading per request, not one per send: {} stamps",
        stamps.len()
    );
    let stamp = *stamps.first().unwrap();
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );
}
