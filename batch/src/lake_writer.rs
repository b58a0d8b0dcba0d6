//! `lambda lake`: the lake writer. Consumes the events topic (or several: one per event
//! type, say) in a consumer group, validates with shared-logic, and writes Parquet files
//! that roll by size and by age. Each topic partition is a source of its own: its buffer,
//! its offset range, its application transaction.
//!
//! Exactly once into the lake's Delta tables ([`crate::lake_tables`]), across crashes at
//! any point and across rebalances:
//! - a flush covers one partition's offset range `[first, last]`; per table it has records
//!   for, it is one Delta commit carrying the application transaction
//!   `<topic>/<partition>/<group>` at version `last` ([`crate::flush_commit`]);
//! - a record destined to a table whose transaction version is at or above its offset is
//!   already there and is skipped: checked when a partition is first seen (so a resumed
//!   writer does not even buffer what it had committed) and again on the refreshed table
//!   just before each commit (a zombie writer that lost its partition cannot commit a range
//!   twice: the commit conflicts, and on the new snapshot its records are committed ones);
//! - Kafka offsets are committed (`last + 1`) after the Delta commits: only a hint where
//!   to resume. The Delta log is the truth.
//!
//! Files written by a flush that died before its commit are in no snapshot; `lambda lake
//! vacuum` deletes them.
//!
//! A group the broker leaves stuck (a partition nobody reads past the session timeout, the
//! roll age and a margin: [`lambda_io::kafka::GroupMember`]) is left and joined again;
//! everything buffered is flushed first.
//!
//! Validation's clock is the record's Kafka timestamp ([`lambda_io::kafka::validation_clock`]),
//! as in the speed layer, never this process's wall clock: a record gets the same verdict
//! here, in the speed layer, and in the run that re-reads it after a crash.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lambda_io::kafka::{ConsumeBackoff, GroupMember};
use lambda_io::Lake;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use shared_logic::cdc::{CdcTable, Change};
use shared_logic::{Event, Origin, RecordMeta, Validator};

use crate::cdc_files::RawChange;
use crate::error::BatchError;
use crate::flush_commit::{app_id, commit_flush};
use crate::lake_tables::{LakeTable, LakeTables};
use crate::writer::{Flush, Rejected};

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The topics read (at least one).
    pub topics: Vec<String>,
    pub group_id: String,
    /// Roll a partition's file when its buffered records reach this many bytes.
    pub roll_bytes: usize,
    /// ... or when its oldest buffered record is this old.
    pub roll_age: Duration,
    pub validator: Validator,
    /// The topic is a change stream of this table: its records are checked as Debezium
    /// change events and written as raw change files ([`crate::cdc_files`]).
    pub cdc: Option<CdcTable>,
}

impl Default for WriterOptions {
    /// 64 MiB or 60 s: at 50,000 events/s (about 15 MB/s of JSON) over a few partitions,
    /// files of tens of MB, a few per partition per minute.
    fn default() -> Self {
        WriterOptions {
            topics: vec![shared_logic::topics::EVENTS.to_string()],
            group_id: "lambda-lake".to_string(),
            roll_bytes: 64 << 20,
            roll_age: Duration::from_secs(60),
            validator: Validator::default(),
            cdc: None,
        }
    }
}

/// Running totals of the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub records: u64,
    pub events: u64,
    pub changes: u64,
    pub dead_letters: u64,
    pub flushes: u64,
    /// Records skipped because their table already held them (a range re-read after a
    /// crash or a rebalance).
    pub already_committed: u64,
    /// Table commits lost to a concurrent commit and re-planned.
    pub conflicts: u64,
}

struct PartitionBuffer {
    first: i64,
    last: i64,
    events: Vec<Event>,
    changes: Vec<RawChange>,
    dead_letters: Vec<Rejected>,
    bytes: usize,
    opened: Instant,
}

/// A source partition: (index of the topic in [`WriterOptions::topics`], partition).
type Source = (usize, i32);

/// The lake writer. Create with [`LakeWriter::new`], drive with [`LakeWriter::run`].
pub struct LakeWriter {
    tables: LakeTables,
    member: GroupMember,
    opts: WriterOptions,
    buffers: HashMap<Source, PartitionBuffer>,
    /// Per source seen since its assignment: each table's transaction version then.
    committed: HashMap<Source, HashMap<LakeTable, i64>>,
    stats: WriterStats,
    brokers: String,
}

fn kafka_err(brokers: &str, what: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> BatchError {
    let text = format!("kafka ({brokers}): {what}");
    move |e| BatchError::Usage(format!("{text}: {e}"))
}

impl LakeWriter {
    /// Joins the consumer group and subscribes to the topics.
    pub fn new(lake: Lake, kafka: &ClientConfig, opts: WriterOptions) -> Result<Self, BatchError> {
        if opts.topics.is_empty() {
            return Err(BatchError::Usage("the lake writer needs a topic".into()));
        }
        let brokers = kafka
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let mut cfg = kafka.clone();
        cfg.set("group.id", &opts.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        let member = GroupMember::join(cfg, &opts.topics, opts.roll_age)?;
        Ok(LakeWriter {
            tables: LakeTables::new(lake),
            member,
            opts,
            buffers: HashMap::new(),
            committed: HashMap::new(),
            stats: WriterStats::default(),
            brokers,
        })
    }

    /// Totals so far.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Consumes until `shutdown` resolves, then flushes and commits everything buffered.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<WriterStats, BatchError> {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut backoff = ConsumeBackoff::default();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.drop_revoked();
                    let aged: Vec<Source> = self.buffers.iter().filter(|(_, b)| b.opened.elapsed() >= self.opts.roll_age).map(|(p, _)| *p).collect();
                    for source in aged {
                        self.flush(source).await?;
                    }
                    if self.stuck_group_left(&mut shutdown).await? {
                        break;
                    }
                }
                message = self.member.consumer().recv() => {
                    match message {
                        Ok(m) => {
                            backoff.reset();
                            let topic = self.opts.topics.iter().position(|t| t == m.topic());
                            let (partition, offset) = (m.partition(), m.offset());
                            let record_ms = lambda_io::kafka::record_time(m.timestamp());
                            let source_header = lambda_io::kafka::source_header(&m);
                            let payload = m.payload().unwrap_or_default().to_vec();
                            drop(m);
                            // The subscription names every topic a record can come from.
                            let Some(topic) = topic else { continue };
                            let source = (topic, partition);
                            self.drop_revoked();
                            if !self.committed.contains_key(&source) {
                                self.load_committed(source).await?;
                            }
                            let meta = RecordMeta {
                                origin: Origin { partition, offset },
                                record_ms,
                                source_header: source_header.as_deref(),
                            };
                            if self.accept(source, meta, &payload) {
                                self.flush(source).await?;
                            }
                        }
                        Err(e) => backoff.wait(&self.brokers, &e).await,
                    }
                }
            }
        }
        let sources: Vec<Source> = self.buffers.keys().copied().collect();
        for source in sources {
            self.flush(source).await?;
        }
        tracing::info!(
            records = self.stats.records,
            flushes = self.stats.flushes,
            "lake writer stopped"
        );
        Ok(self.stats)
    }

    /// When the group has left a partition unread past the watchdog's bound: flushes what
    /// is buffered, leaves the group and joins it again. True when `shutdown` came while it
    /// waited to join (nothing is buffered then).
    async fn stuck_group_left<F: std::future::Future<Output = ()>>(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut F>,
    ) -> Result<bool, BatchError> {
        let held = match self.member.assigned() {
            Ok(held) => held,
            Err(e) => {
                tracing::debug!(error = %e, "assignment unknown; the watchdog waits");
                return Ok(false);
            }
        };
        if !self.member.stalled(&held).await {
            return Ok(false);
        }
        let sources: Vec<Source> = self.buffers.keys().copied().collect();
        for source in sources {
            self.flush(source).await?;
        }
        self.member.leave().await?;
        self.committed.clear();
        Ok(self.member.rejoin(shutdown).await?)
    }

    /// The tables this writer writes.
    fn targets(&self) -> [LakeTable; 2] {
        match self.opts.cdc {
            None => [LakeTable::Events, LakeTable::DeadLetter],
            Some(t) => [LakeTable::Cdc(t), LakeTable::DeadLetter],
        }
    }

    /// Reads what the tables hold of a source partition just seen (assigned).
    async fn load_committed(&mut self, source: Source) -> Result<(), BatchError> {
        let (topic, partition) = (&self.opts.topics[source.0], source.1);
        let app = app_id(topic, partition, &self.opts.group_id);
        let mut versions = HashMap::new();
        for table in self.targets() {
            let version = self
                .tables
                .latest(table)
                .await?
                .transaction_version(&app)
                .await?;
            versions.insert(table, version.unwrap_or(i64::MIN));
        }
        tracing::info!(
            topic = %topic,
            partition,
            ?versions,
            "partition's positions in the lake's tables"
        );
        self.committed.insert(source, versions);
        Ok(())
    }

    fn drop_revoked(&mut self) {
        let revoked = self.member.consumer().context().take_revoked();
        for (topic, p) in revoked {
            let Some(t) = self.opts.topics.iter().position(|name| *name == topic) else {
                continue;
            };
            self.committed.remove(&(t, p));
            if self.buffers.remove(&(t, p)).is_some() {
                tracing::info!(
                    topic = %topic,
                    partition = p,
                    "partition revoked: its buffer is dropped, the new owner re-reads it"
                );
            }
        }
    }

    /// Buffers one record of `source` (its Kafka timestamp and source header in `meta`);
    /// true when the partition's buffer should roll.
    fn accept(&mut self, source: Source, meta: RecordMeta<'_>, payload: &[u8]) -> bool {
        let Origin { partition, offset } = meta.origin;
        let now = lambda_io::kafka::validation_clock(meta.record_ms);
        let buffer = self
            .buffers
            .entry(source)
            .or_insert_with(|| PartitionBuffer {
                first: offset,
                last: offset,
                events: Vec::new(),
                changes: Vec::new(),
                dead_letters: Vec::new(),
                bytes: 0,
                opened: Instant::now(),
            });
        buffer.last = offset;
        buffer.bytes += payload.len() + 64;
        let origin = meta.origin;
        let committed = self.committed.get(&source);
        let held = |table: LakeTable| {
            committed
                .and_then(|c| c.get(&table))
                .is_some_and(|v| offset <= *v)
        };
        self.stats.records += 1;
        let before = self.stats.already_committed;
        match self.opts.cdc {
            None => match self.opts.validator.validate_record(payload, meta, now) {
                Ok(_) if held(LakeTable::Events) => self.stats.already_committed += 1,
                Ok(e) => buffer.events.push(e),
                Err(_) if held(LakeTable::DeadLetter) => self.stats.already_committed += 1,
                Err(d) => buffer.dead_letters.push(d.into()),
            },
            Some(table) => match Change::parse_at(table, payload, now) {
                Ok(Some(_)) if held(LakeTable::Cdc(table)) => self.stats.already_committed += 1,
                Err(_) if held(LakeTable::DeadLetter) => self.stats.already_committed += 1,
                Ok(Some(c)) => buffer.changes.push(RawChange {
                    table,
                    partition,
                    offset,
                    key: c.key,
                    op: c.op.code(),
                    ts_ms: c.ts_ms,
                    payload: payload.to_vec(),
                }),
                // A tombstone (compaction after a delete) carries nothing.
                Ok(None) => {}
                Err(r) => buffer.dead_letters.push(Rejected {
                    raw: payload.to_vec(),
                    reason: r.reason.code(),
                    message: r.message,
                    origin,
                    source: shared_logic::source::unknown(),
                    record_ms: meta.record_ms,
                    stream: crate::lake_tables::LakeTable::Cdc(table).name(),
                }),
            },
        }
        if self.stats.already_committed != before {
            buffer.bytes -= payload.len() + 64;
        }
        buffer.bytes >= self.opts.roll_bytes
    }

    async fn flush(&mut self, source: Source) -> Result<(), BatchError> {
        let Some(buffer) = self.buffers.remove(&source) else {
            return Ok(());
        };
        let (topic, partition) = (self.opts.topics[source.0].clone(), source.1);
        let (first, last) = (buffer.first, buffer.last);
        let flush = Flush {
            source: topic.clone(),
            partition,
            first,
            last,
            events: buffer.events,
            changes: buffer.changes,
            dead_letters: buffer.dead_letters,
            received_ms: chrono::Utc::now().timestamp_millis(),
        };
        let app = app_id(&topic, partition, &self.opts.group_id);
        let started = Instant::now();
        let report = commit_flush(&mut self.tables, flush, &app).await?;
        let committed_in = started.elapsed();

        // The range is in the tables: the Kafka offset is only where to resume.
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&topic, partition, Offset::Offset(last + 1))
            .map_err(kafka_err(&self.brokers, "commit"))?;
        let consumer = self.member.consumer().clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                .await
                .map_err(|e| BatchError::Usage(format!("commit task failed: {e}")))?;
        if let Err(e) = committed {
            // Not ours any more (rebalance): the new owner resumes from the tables' versions.
            tracing::warn!(topic = %topic, partition, first, last, error = %e, "offset commit refused; the partition's new owner skips what the tables hold");
        }
        self.stats.flushes += 1;
        self.stats.events += report.events;
        self.stats.changes += report.changes;
        self.stats.dead_letters += report.dead_letters;
        self.stats.already_committed += report.already_committed;
        self.stats.conflicts += report.conflicts;
        tracing::info!(
            topic = %topic,
            partition,
            first,
            last,
            events = report.events,
            changes = report.changes,
            dead_letters = report.dead_letters,
            already_committed = report.already_committed,
            conflicts = report.conflicts,
            files = report.files.len(),
            commit_ms = committed_in.as_millis() as u64,
            "flushed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn writer() -> LakeWriter {
        let dir = std::env::temp_dir().join("lambda-lake-writer-unit");
        let lake = Lake::open(dir.to_str().unwrap(), true).unwrap();
        let mut kafka = ClientConfig::new();
        // Never contacted: the test only buffers.
        kafka.set("bootstrap.servers", "127.0.0.1:1");
        LakeWriter::new(lake, &kafka, WriterOptions::default()).unwrap()
    }

    fn view(id: &str, event_ms: i64) -> Vec<u8> {
        format!(r#"{{"event_id":"{id}","event_type":"page_view","event_time":{event_ms},"user_id":"u","url":"/"}}"#).into_bytes()
    }

    fn meta(offset: i64, record_ms: Option<i64>, source_header: Option<&[u8]>) -> RecordMeta<'_> {
        RecordMeta {
            origin: Origin {
                partition: 0,
                offset,
            },
            record_ms,
            source_header,
        }
    }

    #[tokio::test]
    async fn future_skew_is_judged_against_the_record_timestamp_not_the_wall_clock() {
        let mut w = writer();
        let now = chrono::Utc::now().timestamp_millis();
        // Valid at the wall clock, but 24 h ahead of the clock that stamped the record.
        w.accept(
            (0, 0),
            meta(0, Some(now - 24 * 60 * MIN), None),
            &view("behind", now),
        );
        // Ahead of the wall clock, within the skew of its record's (fast) clock.
        w.accept(
            (0, 0),
            meta(1, Some(now + 8 * MIN), None),
            &view("ahead", now + 10 * MIN),
        );
        // No timestamp: no clock every layer would agree on, so not measured.
        w.accept((0, 0), meta(2, None, None), &view("bare", now + 60 * MIN));
        let buffer = &w.buffers[&(0, 0)];
        let rejected: Vec<(i64, &str)> = buffer
            .dead_letters
            .iter()
            .map(|d| (d.origin.offset, d.reason))
            .collect();
        assert_eq!(rejected, vec![(0, "future_event_time")]);
        assert_eq!(buffer.events.len(), 2);
    }

    #[tokio::test]
    async fn events_and_dead_letters_keep_the_source_header_and_record_time() {
        let mut w = writer();
        let now = chrono::Utc::now().timestamp_millis();
        w.accept((0, 0), meta(0, Some(now), Some(b"Web")), &view("a", now));
        w.accept((0, 0), meta(1, Some(now + 1), None), &view("b", now));
        w.accept((0, 0), meta(2, Some(now + 2), Some(b"ios")), b"{broken");
        let buffer = &w.buffers[&(0, 0)];
        let events: Vec<(&str, Option<i64>)> = buffer
            .events
            .iter()
            .map(|e| (e.source(), e.record_ms()))
            .collect();
        assert_eq!(events, vec![("web", Some(now)), ("unknown", Some(now + 1))]);
        let letters: Vec<(&str, Option<i64>)> = buffer
            .dead_letters
            .iter()
            .map(|d| (d.source.as_str(), d.record_ms))
            .collect();
        assert_eq!(letters, vec![("ios", Some(now + 2))]);
    }
}
