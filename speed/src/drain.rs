//! Reads a topic from the beginning to the end it had when the read began, validating each
//! record with `shared-logic`, and summarises what arrived.
//!
//! The end is each partition's high watermark taken first, so the read terminates even
//! while producers keep writing. Used by the demo to show that events arrived and by tests
//! to check what a topic holds.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use shared_logic::{Event, Origin, Reason, Validator};

use crate::error::SpeedError;

/// What a topic holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopicSummary {
    /// Records read.
    pub records: u64,
    /// Records that passed validation, by event type.
    pub valid_by_type: BTreeMap<String, u64>,
    /// Valid records whose event id was already seen (duplicate deliveries).
    pub duplicates: u64,
    /// Records that failed validation, by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Records per partition.
    pub records_by_partition: BTreeMap<i32, u64>,
    /// Earliest and latest valid event time (epoch ms).
    pub event_time_range: Option<(i64, i64)>,
}

impl TopicSummary {
    fn add(&mut self, result: Result<Event, Reason>, partition: i32, seen: &mut HashSet<String>) {
        self.records += 1;
        *self.records_by_partition.entry(partition).or_default() += 1;
        match result {
            Ok(e) => {
                *self
                    .valid_by_type
                    .entry(e.event_type().as_str().to_string())
                    .or_default() += 1;
                if !seen.insert(e.event_id().0.clone()) {
                    self.duplicates += 1;
                }
                let t = e.event_time().0;
                self.event_time_range = Some(match self.event_time_range {
                    Some((lo, hi)) => (lo.min(t), hi.max(t)),
                    None => (t, t),
                });
            }
            Err(reason) => {
                *self
                    .rejected_by_reason
                    .entry(reason.code().to_string())
                    .or_default() += 1
            }
        }
    }

    /// Valid records, duplicates included.
    pub fn valid(&self) -> u64 {
        self.valid_by_type.values().sum()
    }
}

/// Reads `topic` on `config`'s cluster up to its current end. Blocking: call it from a
/// thread that may block (`spawn_blocking` under tokio).
pub fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    validator: &Validator,
    now_ms: i64,
    timeout: Duration,
) -> Result<TopicSummary, SpeedError> {
    let brokers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let err = |what: &str| {
        let (brokers, what) = (brokers.clone(), what.to_string());
        move |source: KafkaError| SpeedError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    let mut cfg = config.clone();
    cfg.set("group.id", "lambda-drain")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = cfg.create().map_err(err("create consumer"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(err("fetch metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(SpeedError::NoSuchTopic {
            brokers,
            topic: topic.to_string(),
        });
    }

    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(err("fetch watermarks"))?;
        if high > low {
            ends.insert(p, (low, high));
            assignment
                .add_partition_offset(topic, p, Offset::Offset(low))
                .map_err(err("assign"))?;
        }
    }
    let expected: u64 = ends.values().map(|(lo, hi)| (hi - lo) as u64).sum();
    let mut summary = TopicSummary::default();
    if expected == 0 {
        return Ok(summary);
    }
    consumer.assign(&assignment).map_err(err("assign"))?;

    let deadline = Instant::now() + timeout;
    let mut seen = HashSet::new();
    let mut remaining: BTreeMap<i32, i64> = ends.iter().map(|(p, (_, hi))| (*p, *hi)).collect();
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            return Err(SpeedError::Timeout {
                brokers,
                topic: topic.to_string(),
                read: summary.records,
                expected,
                timeout_s: timeout.as_secs(),
            });
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(err("consume"))?;
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = remaining.get(&partition) else {
            continue;
        };
        if offset >= end {
            continue;
        }
        let payload = message.payload().unwrap_or_default();
        let result = validator
            .validate(payload, Origin { partition, offset }, now_ms)
            .map_err(|d| d.reason);
        summary.add(result, partition, &mut seen);
        if offset + 1 >= end {
            remaining.remove(&partition);
        }
    }
    Ok(summary)
}
