//! Producing generated records to a topic and reading a topic back, record by record, for
//! tests that compare a layer with a direct computation over the same records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use shared_logic::generate::Record;
use shared_logic::{Event, Origin, Validator};

/// One record as the broker holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    /// Header name → value (text), e.g. a dead letter's `reason`.
    pub headers: BTreeMap<String, String>,
}

/// Creates `topic` with `partitions` and produces `records` keyed by user.
pub async fn produce(brokers: &str, topic: &str, partitions: i32, records: &[Record]) {
    let settings = KafkaSettings::new(brokers);
    ensure_topics(&settings, &[(topic, partitions)], Duration::from_secs(30))
        .await
        .expect("topic created");
    let producer = EventProducer::new(&settings, topic).expect("producer");
    for r in records {
        producer.send(r.key.as_bytes(), &r.json).expect("queued");
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("acknowledged");
}

/// Every record of `topic`, per partition in offset order (reads to the high watermarks).
pub fn read_all(config: &ClientConfig, topic: &str) -> BTreeMap<i32, Vec<Stored>> {
    let mut cfg = config.clone();
    cfg.set("group.id", "lambda-tests-reader")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cfg.create().expect("reader");
    let timeout = Duration::from_secs(20);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .expect("watermarks");
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Offset(low))
                .unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out: BTreeMap<i32, Vec<Stored>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out
        .iter()
        .map(|(p, v)| v.last().map(|s| s.offset + 1).unwrap_or(0) >= ends[p])
        .filter(|done| *done)
        .count()
        < ends.len()
    {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("message");
        out.entry(m.partition()).or_default().push(Stored {
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
            payload: m.payload().unwrap_or_default().to_vec(),
            key: m.key().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    out
}

/// Stored topic records validated as both layers do (the record's Kafka timestamp is the
/// clock and its record time; the origin is its partition and offset; the `lambda-source`
/// header names its source): the valid events and the rejects.
pub fn topic_validated(
    stored: &BTreeMap<i32, Vec<Stored>>,
) -> (Vec<Event>, Vec<shared_logic::DeadLetter>) {
    let v = Validator::default();
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    for r in stored.values().flatten() {
        let meta = shared_logic::RecordMeta {
            origin: Origin {
                partition: r.partition,
                offset: r.offset,
            },
            record_ms: Some(r.timestamp_ms),
            source_header: r
                .headers
                .get(shared_logic::source::SOURCE_HEADER)
                .map(String::as_bytes),
        };
        match v.validate_record(&r.payload, meta, r.timestamp_ms) {
            Ok(e) => events.push(e),
            Err(d) => rejects.push(d),
        }
    }
    (events, rejects)
}

/// The valid events of stored topic records ([`topic_validated`]).
pub fn topic_events(stored: &BTreeMap<i32, Vec<Stored>>) -> Vec<Event> {
    topic_validated(stored).0
}

/// `lambda_io::kafka::drain::read_to_end` of `topic` with the default validator, on a
/// blocking thread: what `lambda inspect` reports of the topic.
pub async fn summarize(
    config: ClientConfig,
    topic: &str,
    timeout: Duration,
) -> lambda_io::kafka::drain::TopicSummary {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        lambda_io::kafka::drain::read_to_end(&config, &topic, &Validator::default(), timeout)
    })
    .await
    .expect("the reading thread")
    .expect("topic read to its end")
}
