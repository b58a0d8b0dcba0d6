//! The source of a record (issue 20, the data-quality figures' dimension) and its record
//! time, from the producer to the lake: the collector copies `X-Lambda-Source` into the
//! Kafka header `lambda-source` (a value that is no source name refuses the request), a
//! record without the header keeps its JSON field `source`, and the lake writer keeps the
//! normalised source and the Kafka record timestamp in the events and dead-letter tables
//! (the topic drain reading the header as they do).

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMillisecondType;
use lambda_tests::lake_files::table_files;
use lambda_tests::pipeline::Pipeline;
use lambda_tests::topic::read_all;
use lambda_tests::Broker;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use speed::partition::TimeSettings;

fn view(id: &str, event_ms: i64, extra: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":{event_ms},"user_id":"u-{id}","url":"/"{extra}}}"#
    )
}

/// Every row of a lake table's current files.
fn table_rows(dir: &std::path::Path) -> Vec<arrow::array::RecordBatch> {
    table_files(dir)
        .into_iter()
        .flat_map(|file| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                .and_then(|b| b.build())
                .unwrap()
                .map(|b| b.unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_header_and_record_time_reach_the_lake_from_the_collector() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = "event-sources";
    let pipeline =
        Pipeline::start(broker.brokers(), topic, TimeSettings::default(), dir.path()).await;
    let collector = pipeline.state.collector.as_ref().expect("a collector");
    let now = chrono::Utc::now().timestamp_millis();

    // The header wins over the field; without it the field counts; neither is `unknown`.
    let body = [view("h1", now, r#","source":"ios""#), view("h2", now, "")].join("\n");
    let report = collector
        .ingest_from(body.as_bytes(), Some(b" Web "))
        .await
        .expect("accepted");
    assert_eq!((report.accepted, report.rejected), (2, 0));
    let body = [
        view("f1", now, r#","source":"iOS""#),
        view("n1", now, ""),
        // Rejected (no user), counted under the source it names.
        r#"{"event_id":"bad","event_type":"page_view","event_time":1,"source":"android"}"#
            .to_string(),
        // A source that is no name rejects the event.
        view("x1", now, r#","source":"web shop""#),
    ]
    .join("\n");
    let report = collector.ingest(body.as_bytes()).await.expect("accepted");
    assert_eq!((report.accepted, report.rejected), (2, 2));
    let reasons: Vec<&str> = report.errors.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["missing_field", "invalid_value"]);

    // A header that is no source name refuses the whole request, producing nothing.
    let err = collector
        .ingest_from(view("r1", now, "").as_bytes(), Some(b"a b"))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("X-Lambda-Source"), "{err}");

    // On the topic: the header only on the records of the request that named one.
    let stored = read_all(&broker.client_config(), topic);
    let headers: BTreeMap<String, Option<String>> = stored
        .values()
        .flatten()
        .map(|r| {
            let id = serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string();
            (id, r.headers.get("lambda-source").cloned())
        })
        .collect();
    let expected: BTreeMap<String, Option<String>> = [
        ("h1", Some("web")),
        ("h2", Some("web")),
        ("f1", None),
        ("n1", None),
    ]
    .into_iter()
    .map(|(id, h)| (id.to_string(), h.map(str::to_string)))
    .collect();
    assert_eq!(headers, expected);
    let stamps: BTreeMap<String, i64> = stored
        .values()
        .flatten()
        .map(|r| {
            let v = serde_json::from_slice::<serde_json::Value>(&r.payload).unwrap();
            (v["event_id"].as_str().unwrap().to_string(), r.timestamp_ms)
        })
        .collect();
    // The collector's dead letters name the source they could read.
    let dlq = read_all(&broker.client_config(), &format!("{topic}-dlq"));
    let mut dead: Vec<(String, String)> = dlq
        .values()
        .flatten()
        .map(|r| {
            (
                r.headers["reason"].clone(),
                r.headers["lambda-source"].clone(),
            )
        })
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        [
            ("invalid_value".to_string(), "unknown".to_string()),
            ("missing_field".to_string(), "android".to_string())
        ]
    );

    pipeline.wait_for_records(4).await;
    let lake_dir = pipeline.lake_dir.clone();
    pipeline.stop().await;

    // In the lake: the normalised source and the Kafka record timestamp of every event.
    let mut kept = BTreeMap::new();
    for batch in table_rows(&lake_dir.join("events")) {
        let events = shared_logic::schema::from_record_batch(&batch).unwrap();
        for e in events {
            kept.insert(
                e.event_id().0.clone(),
                (e.source().to_string(), e.record_ms()),
            );
        }
    }
    let expected: BTreeMap<String, (String, Option<i64>)> = [
        ("h1", "web"),
        ("h2", "web"),
        ("f1", "ios"),
        ("n1", "unknown"),
    ]
    .into_iter()
    .map(|(id, s)| (id.to_string(), (s.to_string(), Some(stamps[id]))))
    .collect();
    assert_eq!(kept, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_writer_files_a_rejected_records_source_and_record_time() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = "event-sources-dead";
    let pipeline =
        Pipeline::start(broker.brokers(), topic, TimeSettings::default(), dir.path()).await;
    let now = chrono::Utc::now().timestamp_millis();
    // Produced straight to the topic (not through the collector, which would refuse them):
    // a record with a header and a broken body, and one naming its source in the body.
    let records = [
        (Some("checkout"), "{broken".to_string(), now - 5_000),
        (
            None,
            r#"{"event_id":"d2","event_type":"page_view","event_time":1,"source":"Batch-Job"}"#
                .to_string(),
            now - 4_000,
        ),
        (None, view("ok", now, ""), now - 3_000),
        // A header that is no source name rejects a valid body.
        (Some("a b"), view("named-badly", now, ""), now - 2_000),
    ];
    let producer: rdkafka::producer::FutureProducer =
        broker.client_config().create().expect("producer");
    for (header, payload, stamp) in &records {
        let mut record = rdkafka::producer::FutureRecord::<[u8], [u8]>::to(topic)
            .payload(payload.as_bytes())
            .timestamp(*stamp);
        if let Some(h) = header {
            record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
                rdkafka::message::Header {
                    key: "lambda-source",
                    value: Some(*h),
                },
            ));
        }
        producer
            .send(record, std::time::Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }
    pipeline.wait_for_records(4).await;
    // The topic drain gives the verdicts the layers give.
    let summary = lambda_io::kafka::drain::read_to_end(
        &broker.client_config(),
        topic,
        &shared_logic::Validator::default(),
        std::time::Duration::from_secs(60),
    )
    .expect("drain");
    let rejected: Vec<(&str, u64)> = summary
        .rejected_by_reason
        .iter()
        .map(|(r, n)| (r.as_str(), *n))
        .collect();
    assert_eq!(
        rejected,
        [
            ("invalid_value", 1),
            ("malformed_json", 1),
            ("missing_field", 1)
        ]
    );
    let lake_dir = pipeline.lake_dir.clone();
    pipeline.stop().await;

    let mut dead = Vec::new();
    for batch in table_rows(&lake_dir.join("dead-letter")) {
        let sources = batch
            .column_by_name("source")
            .expect("source")
            .as_string::<i32>();
        let times = batch
            .column_by_name("record_time")
            .expect("record_time")
            .as_primitive::<TimestampMillisecondType>();
        let reasons = batch.column_by_name("reason").unwrap().as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert!(!times.is_null(i));
            dead.push((
                reasons.value(i).to_string(),
                sources.value(i).to_string(),
                times.value(i),
            ));
        }
    }
    dead.sort();
    assert_eq!(
        dead,
        [
            (
                "invalid_value".to_string(),
                "unknown".to_string(),
                now - 2_000
            ),
            (
                "malformed_json".to_string(),
                "checkout".to_string(),
                now - 5_000
            ),
            (
                "missing_field".to_string(),
                "batch-job".to_string(),
                now - 4_000
            ),
        ]
    );
}
