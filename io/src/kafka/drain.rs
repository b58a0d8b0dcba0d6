//! Reads a topic from the beginning to the end it had when the read began, checking each
//! record with `shared-logic` (events, or Debezium change events), and summarises what
//! arrived.
//!
//! The end is each partition's high watermark taken first, so the read terminates even
//! while producers keep writing. Events are validated against each record's Kafka
//! timestamp ([`validation_clock`]), the clock the speed layer and the lake
//! writer use, so the summary gives the verdicts those layers give. Used by the demo to show that events arrived and by tests
//! to check what a topic holds.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use shared_logic::cdc::{CdcReason, CdcTable, Change, ProductTable, UserTable};
use shared_logic::{Event, Origin, Reason, RecordMeta, Validator};

use crate::error::IoError;
use crate::kafka::record_time::{record_time, validation_clock};

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

/// What a change-data-capture topic holds ([`read_changes_to_end`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeSummary {
    /// Records read.
    pub records: u64,
    /// Empty or `null` records (compaction tombstones): nothing to apply.
    pub tombstones: u64,
    /// Accepted changes by Debezium op (`c`, `u`, `d`, `r`), re-deliveries excluded.
    pub changes_by_op: BTreeMap<String, u64>,
    /// Changes delivered again (same source position): applied once.
    pub duplicates: u64,
    /// Rejected changes by reason code (what the dead-letter topic would hold).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Records per partition.
    pub records_by_partition: BTreeMap<i32, u64>,
    /// Earliest and latest `source.ts_ms` of accepted changes.
    pub source_time_range: Option<(i64, i64)>,
    /// Products known at the end (`products` table only).
    pub products: Option<usize>,
    /// Users known at the end (`users` table only).
    pub users: Option<usize>,
}

/// Reads a change topic of `table` up to its current end, checking every record as the
/// layers do: the envelope and its times against the record timestamp
/// ([`Change::parse_at`]), re-deliveries ([`Change::dedup_key`]) and,
/// for `products` and `users`, updates of unknown keys (the table is rebuilt in offset
/// order).
pub fn read_changes_to_end(
    config: &ClientConfig,
    topic: &str,
    table: CdcTable,
    timeout: Duration,
) -> Result<ChangeSummary, IoError> {
    let mut summary = ChangeSummary::default();
    let mut seen = HashSet::new();
    let mut products = ProductTable::default();
    let mut users = UserTable::default();
    for_each_record(config, topic, timeout, |meta, payload| {
        let (partition, at) = (meta.origin.partition, meta.record_ms);
        summary.records += 1;
        *summary.records_by_partition.entry(partition).or_default() += 1;
        let mut reject = |reason: CdcReason| {
            *summary
                .rejected_by_reason
                .entry(reason.code().to_string())
                .or_default() += 1;
        };
        match Change::parse_at(table, payload, validation_clock(at)) {
            Ok(None) => summary.tombstones += 1,
            Err(rejection) => reject(rejection.reason),
            Ok(Some(change)) => {
                if !seen.insert(change.dedup_key()) {
                    summary.duplicates += 1;
                    return;
                }
                let applied = match table {
                    CdcTable::Products => products.apply(&change),
                    CdcTable::Users => users.apply(&change),
                    CdcTable::Orders => Ok(()),
                };
                if let Err(rejection) = applied {
                    reject(rejection.reason);
                    return;
                }
                *summary
                    .changes_by_op
                    .entry(change.op.code().to_string())
                    .or_default() += 1;
                let t = change.ts_ms;
                summary.source_time_range = Some(match summary.source_time_range {
                    Some((lo, hi)) => (lo.min(t), hi.max(t)),
                    None => (t, t),
                });
            }
        }
    })?;
    if table == CdcTable::Products {
        summary.products = Some(
            products
                .versions()
                .iter()
                .map(|v| v.product_id.as_str())
                .collect::<HashSet<_>>()
                .len(),
        );
    }
    if table == CdcTable::Users {
        summary.users = Some(users.len());
    }
    Ok(summary)
}

/// Reads `topic` on `config`'s cluster up to its current end, validating each event against
/// its record's timestamp. Blocking: call it from a thread that may block (`spawn_blocking`
/// under tokio).
pub fn read_to_end(
    config: &ClientConfig,
    topic: &str,
    validator: &Validator,
    timeout: Duration,
) -> Result<TopicSummary, IoError> {
    let mut summary = TopicSummary::default();
    let mut seen = HashSet::new();
    for_each_record(config, topic, timeout, |meta, payload| {
        let now_ms = validation_clock(meta.record_ms);
        let result = validator
            .validate_record(payload, meta, now_ms)
            .map_err(|d| d.reason);
        summary.add(result, meta.origin.partition, &mut seen);
    })?;
    Ok(summary)
}

/// How fast a consumer reads a topic (`lambda bench broker`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FetchRate {
    /// Records read.
    pub records: u64,
    /// Records the topic held when the read began.
    pub expected: u64,
    /// From the assignment to the last record read.
    pub seconds: f64,
}

impl FetchRate {
    /// Records per second.
    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }
}

/// Reads `topic` from the beginning towards the end it had when the read began, for at most
/// `budget`, and says how many records arrived how fast: the fetch path alone (assigned
/// partitions, no group, no decoding).
pub fn fetch_rate(
    config: &ClientConfig,
    topic: &str,
    budget: Duration,
) -> Result<FetchRate, IoError> {
    let scan = scan_records(config, topic, budget, |_, _| {})?;
    Ok(FetchRate {
        records: scan.read,
        expected: scan.expected,
        seconds: scan.seconds,
    })
}

/// Calls `each(record, payload)` (its position, timestamp and source header) for every record of
/// `topic` from the beginning to the end each partition had when the read began (per
/// partition in offset order).
fn for_each_record(
    config: &ClientConfig,
    topic: &str,
    timeout: Duration,
    each: impl FnMut(RecordMeta<'_>, &[u8]),
) -> Result<u64, IoError> {
    let scan = scan_records(config, topic, timeout, each)?;
    if scan.read < scan.expected {
        if let Some(error) = scan.last_error {
            return Err(IoError::Kafka {
                brokers: brokers_of(config),
                what: format!(
                    "read {} of {} records of `{topic}` before the {} s timeout; the last consume error",
                    scan.read,
                    scan.expected,
                    timeout.as_secs()
                ),
                source: Box::new(error),
            });
        }
        return Err(IoError::Timeout {
            brokers: brokers_of(config),
            topic: topic.to_string(),
            read: scan.read,
            expected: scan.expected,
            timeout_s: timeout.as_secs(),
        });
    }
    Ok(scan.read)
}

/// The bootstrap servers a client configuration names, for error messages.
fn brokers_of(config: &ClientConfig) -> String {
    config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string()
}

/// What [`scan_records`] read.
struct Scan {
    read: u64,
    expected: u64,
    seconds: f64,
    /// The last consume error (each was retried until the deadline).
    last_error: Option<KafkaError>,
}

/// The pause after a consume error before polling again (the broker restarting, a store
/// busy with its maintenance): the read's deadline bounds the retries.
const CONSUME_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// [`for_each_record`] that stops at the deadline and says how far it got. A consume error
/// (a broker restart, a broker that does not answer for a while) is logged and the read
/// goes on: librdkafka reconnects and fetches again from where it was.
fn scan_records(
    config: &ClientConfig,
    topic: &str,
    timeout: Duration,
    mut each: impl FnMut(RecordMeta<'_>, &[u8]),
) -> Result<Scan, IoError> {
    let brokers = brokers_of(config);
    let err = |what: &str| {
        let (brokers, what) = (brokers.clone(), what.to_string());
        move |source: KafkaError| IoError::Kafka {
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
    let partitions = crate::kafka::client::partitions_of(&consumer, topic, &brokers, timeout)?;

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
    if expected == 0 {
        return Ok(Scan {
            read: 0,
            expected,
            seconds: 0.0,
            last_error: None,
        });
    }
    let started = Instant::now();
    consumer.assign(&assignment).map_err(err("assign"))?;

    let deadline = Instant::now() + timeout;
    let mut read = 0u64;
    let mut remaining: BTreeMap<i32, i64> = ends.iter().map(|(p, (_, hi))| (*p, *hi)).collect();
    let mut last = started;
    let mut last_error = None;
    while !remaining.is_empty() && Instant::now() <= deadline {
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(error)) => {
                tracing::warn!(brokers = %brokers, topic, %error, "kafka consume error while reading a topic; retrying");
                last_error = Some(error);
                std::thread::sleep(CONSUME_ERROR_PAUSE);
                continue;
            }
            Some(Ok(message)) => message,
        };
        let (partition, offset) = (message.partition(), message.offset());
        let Some(&end) = remaining.get(&partition) else {
            continue;
        };
        if offset >= end {
            continue;
        }
        let source_header = crate::kafka::record_meta::source_header(&message);
        let meta = RecordMeta {
            origin: Origin { partition, offset },
            record_ms: record_time(message.timestamp()),
            source_header: source_header.as_deref(),
        };
        each(meta, message.payload().unwrap_or_default());
        read += 1;
        last = Instant::now();
        if offset + 1 >= end {
            remaining.remove(&partition);
        }
    }
    Ok(Scan {
        read,
        expected,
        seconds: (last - started).as_secs_f64(),
        last_error,
    })
}
