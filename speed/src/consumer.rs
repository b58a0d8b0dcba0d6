//! `lambda speed`: the Kafka consumer that keeps the real-time views.
//!
//! It reads one topic, or several that are co-partitioned (one per event type, keyed by
//! user, with as many partitions): partition `p` of every topic feeds one partition state,
//! so a user's sessions see all of the user's events. The group uses the `range` assignor,
//! which gives partition `p` of every topic to the same member; the topics' partition
//! counts are checked at start, and an assignment that splits a partition number between
//! members stops the consumer with the reason rather than letting two members write one
//! checkpoint.
//!
//! Records are consumed in a consumer group and processed in micro-batches (bounded in
//! size and age) under one write of the views; each partition's state is restored from its
//! checkpoint the first time the partition's records arrive. Every `checkpoint_interval`
//! the states are checkpointed, the dead-letter and late producers are flushed, and only
//! then are the offsets committed. Rejected records go to the dead-letter topic (reason in
//! the `reason` header), late ones to the late topic under the side-output policy.
//! Windows older than the batch layer's published time boundary minus the lateness horizon
//! (or minus `retain_covered`, if longer) are evicted, so memory is bounded by what the
//! batch layer has not yet covered plus that margin.

use std::time::{Duration, Instant};

use lambda_io::kafka::{ClientRole, EventProducer, KafkaSettings};
use lambda_io::kafka::{ConsumeBackoff, GroupMember};
use lambda_io::manifest::Published;
use lambda_io::IoError;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use shared_logic::metric::BuiltFrom;
use shared_logic::MetricId;
use shared_logic::{Origin, RecordMeta};

use crate::checkpoint::CheckpointStore;
use crate::co_partition::{co_partitioned, split_assignment};
use crate::error::SpeedError;
pub use crate::eviction::{eviction_horizon, keep_ms};
pub use crate::latency::Latency;
pub use crate::options::{SpeedOptions, SpeedStats};
use crate::partition::Outcome;
pub use crate::replay::apply_records;
use crate::views::RealtimeViews;

struct Record {
    /// Index in [`SpeedOptions::topics`].
    topic: usize,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    /// The record's source header ([`lambda_io::kafka::source_header`]).
    source_header: Option<Vec<u8>>,
    /// Wall-clock time the consumer received it.
    received_ms: i64,
    payload: Vec<u8>,
}

/// The speed layer's consumer.
pub struct SpeedConsumer {
    member: GroupMember,
    dead_letters: EventProducer,
    late: EventProducer,
    checkpoints: CheckpointStore,
    views: RealtimeViews,
    opts: SpeedOptions,
    brokers: String,
}

impl SpeedConsumer {
    /// Creates the dead-letter and late topics when missing, joins the group and prepares
    /// the producers.
    pub async fn new(
        views: RealtimeViews,
        kafka: &KafkaSettings,
        checkpoints: CheckpointStore,
        opts: SpeedOptions,
    ) -> Result<Self, SpeedError> {
        let brokers = kafka.brokers.clone();
        if opts.topics.is_empty() {
            return Err(SpeedError::Usage("the speed layer needs a topic".into()));
        }
        co_partitioned(kafka, &opts.topics).await?;
        lambda_io::kafka::ensure_topics(
            kafka,
            &[(&opts.dead_letter_topic, 1), (&opts.late_topic, 1)],
            Duration::from_secs(30),
        )
        .await?;
        let config = kafka.client_config(
            ClientRole::Consumer,
            &[
                ("group.id", opts.group_id.as_str()),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
                ("fetch.wait.max.ms", "20"),
                // Notice a topic created after the subscription within seconds.
                ("topic.metadata.refresh.interval.ms", "5000"),
                ("queued.min.messages", "200000"),
                // Per-partition lag for the serving layer's metrics.
                ("statistics.interval.ms", "5000"),
                // Partition p of every topic to one member (co-partitioned topics).
                ("partition.assignment.strategy", "range"),
            ],
        );
        // Offsets are committed at each checkpoint.
        let member = GroupMember::join(config, &opts.topics, opts.checkpoint_interval)?;
        Ok(SpeedConsumer {
            member,
            dead_letters: EventProducer::new(kafka, &opts.dead_letter_topic)?,
            late: EventProducer::new(kafka, &opts.late_topic)?,
            checkpoints,
            views,
            opts,
            brokers,
        })
    }

    /// Consumes until `shutdown` resolves (or `stop_after_records`), then checkpoints and
    /// commits.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<SpeedStats, SpeedError> {
        tokio::pin!(shutdown);
        let mut stats = SpeedStats::default();
        let mut last_checkpoint = Instant::now();
        let mut first_record: Option<Instant> = None;
        let mut backoff = ConsumeBackoff::default();
        let mut batch: Vec<Record> = Vec::with_capacity(self.opts.batch_max_records);
        'outer: loop {
            // Collect one micro-batch.
            let mut deadline: Option<tokio::time::Instant> = None;
            while batch.len() < self.opts.batch_max_records {
                let wait = match deadline {
                    Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                    // Idle: wake up at least twice a second to follow the assignment.
                    None => self
                        .opts
                        .checkpoint_interval
                        .saturating_sub(last_checkpoint.elapsed())
                        .clamp(Duration::from_millis(10), Duration::from_millis(500)),
                };
                tokio::select! {
                    _ = &mut shutdown => break 'outer,
                    received = tokio::time::timeout(wait, self.member.consumer().recv()) => match received {
                        Err(_) => break,
                        Ok(Err(e)) => {
                            backoff.wait(&self.brokers, &e).await;
                            break;
                        }
                        Ok(Ok(m)) => {
                            backoff.reset();
                            // The subscription names every topic a record can come from.
                            let Some(topic) = self.opts.topics.iter().position(|t| t == m.topic()) else {
                                continue;
                            };
                            first_record.get_or_insert_with(Instant::now);
                            deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.opts.batch_max_age);
                            batch.push(Record {
                                topic,
                                partition: m.partition(),
                                offset: m.offset(),
                                timestamp_ms: lambda_io::kafka::record_time(m.timestamp()),
                                source_header: lambda_io::kafka::source_header(&m),
                                received_ms: chrono::Utc::now().timestamp_millis(),
                                payload: m.payload().unwrap_or_default().to_vec(),
                            });
                        }
                    }
                }
            }
            self.member.consumer().context().take_revoked();
            self.sync_assignment().await?;
            if !batch.is_empty() {
                self.apply(&mut batch, &mut stats).await?;
                if let Some(start) = first_record {
                    stats.busy = start.elapsed();
                }
            }
            let done = self
                .opts
                .stop_after_records
                .is_some_and(|n| self.views.counters().records >= n);
            if done || last_checkpoint.elapsed() >= self.opts.checkpoint_interval {
                self.checkpoint(&mut stats).await?;
                self.evict().await;
                last_checkpoint = Instant::now();
            }
            if done {
                return Ok(stats);
            }
            let held = self.held();
            if self.member.stalled(&held).await {
                // What it holds goes to the next owner through the checkpoint.
                self.checkpoint(&mut stats).await?;
                last_checkpoint = Instant::now();
                self.member.leave().await?;
                for p in self.views.partitions() {
                    self.views.remove(p);
                }
                if self.member.rejoin(&mut shutdown).await? {
                    break 'outer;
                }
            }
        }
        self.checkpoint(&mut stats).await?;
        tracing::info!(
            records = stats.records,
            checkpoints = stats.checkpoints,
            "speed layer stopped"
        );
        Ok(stats)
    }

    /// The topic partitions whose state this member holds.
    fn held(&self) -> std::collections::BTreeSet<lambda_io::kafka::TopicPartition> {
        let mut held = std::collections::BTreeSet::new();
        for p in self.views.partitions() {
            for topic in &self.opts.topics {
                held.insert((topic.clone(), p));
            }
        }
        held
    }

    /// Makes the held partitions the assigned ones: a newly assigned partition's state is
    /// restored from its checkpoint (before any of its records arrive), a revoked one's is
    /// dropped (its new owner restores it from the checkpoint). Every topic assigned with a
    /// partition gets a cursor in its state (so that it holds the watermark back until
    /// read). A partition number assigned on some topics but not on others (the topics are
    /// not co-partitioned, or the assignor is not `range`) is an error.
    async fn sync_assignment(&self) -> Result<(), SpeedError> {
        let list = match self.member.consumer().assignment() {
            Ok(list) => list,
            Err(e) => return Err(IoError::kafka(&self.brokers, "read assignment")(e).into()),
        };
        let mut assigned: std::collections::BTreeMap<i32, Vec<String>> = Default::default();
        for e in list.elements() {
            assigned
                .entry(e.partition())
                .or_default()
                .push(e.topic().to_string());
        }
        split_assignment(&self.opts.topics, &assigned)?;
        for p in self.views.partitions() {
            if !assigned.contains_key(&p) {
                self.views.remove(p);
                tracing::info!(
                    partition = p,
                    "partition revoked: its state goes to the new owner through the checkpoint"
                );
            }
        }
        for (&p, topics) in &assigned {
            if !self.views.holds(p) {
                let mut state = self
                    .checkpoints
                    .load(p, &self.views.ctx)
                    .await?
                    .unwrap_or_default();
                for topic in topics {
                    state.add_topic(topic);
                }
                tracing::info!(
                    partition = p,
                    next_offsets = ?state.next_offsets().collect::<Vec<_>>(),
                    "partition assigned; state restored"
                );
                self.views.install(p, state);
            }
        }
        Ok(())
    }

    /// Tells each held state where its topics end, as the client last heard (see
    /// [`PartitionState::watermark`]).
    fn note_ends(&self) {
        if self.opts.topics.len() < 2 {
            // One topic: its progress is the partition's whatever the end.
            return;
        }
        let ends = self.member.consumer().context().ends();
        self.views.update(|states| {
            for ((topic, p), end) in &ends {
                if let Some(state) = states.get_mut(p) {
                    if self.opts.topics.contains(topic) {
                        state.set_end(topic, *end);
                    }
                }
            }
        });
    }

    async fn apply(
        &self,
        batch: &mut Vec<Record>,
        stats: &mut SpeedStats,
    ) -> Result<(), SpeedError> {
        let mut partitions: Vec<i32> = batch.iter().map(|r| r.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        for p in partitions {
            // Records of a partition not held were fetched before a rebalance took it away.
            if self.views.holds(p) {
                self.views.touch(p);
            }
        }
        self.note_ends();
        let (ctx, time, validator) = (&self.views.ctx, self.views.time, &self.opts.validator);
        let topics = &self.opts.topics;
        let mut outputs: Vec<(usize, Outcome)> = Vec::new();
        self.views.update(|states| {
            for (i, r) in batch.iter().enumerate() {
                let Some(state) = states.get_mut(&r.partition) else {
                    continue;
                };
                // Validation's clock and the watermark's bound are the record's timestamp,
                // so a replay (and the lake writer) decides alike.
                let meta = RecordMeta {
                    origin: Origin {
                        partition: r.partition,
                        offset: r.offset,
                    },
                    record_ms: r.timestamp_ms,
                    source_header: r.source_header.as_deref(),
                };
                let outcome =
                    state.apply_record(&topics[r.topic], meta, &r.payload, validator, ctx, &time);
                if matches!(outcome, Outcome::Rejected(_) | Outcome::LateSideOutput) {
                    outputs.push((i, outcome));
                }
            }
        });
        let visible = chrono::Utc::now().timestamp_millis();
        for r in batch.iter() {
            if let Some(ts) = r.timestamp_ms {
                stats.latency.record(visible - ts, 1);
                stats.delivery.record(r.received_ms - ts, 1);
            }
            stats.processing.record(visible - r.received_ms, 1);
        }
        for (i, outcome) in outputs {
            let r = &batch[i];
            let (p, o) = (r.partition.to_string(), r.offset.to_string());
            let topic = self.opts.topics[r.topic].as_str();
            match outcome {
                Outcome::Rejected(dead) => self.dead_letters.send_with_headers(
                    &[],
                    &r.payload,
                    &[
                        ("reason", dead.reason.code()),
                        ("message", &dead.message),
                        (shared_logic::source::SOURCE_HEADER, &dead.source),
                        ("source_topic", topic),
                        ("source_partition", &p),
                        ("source_offset", &o),
                    ],
                )?,
                _ => {
                    let mut headers = vec![
                        ("source_topic", topic),
                        ("source_partition", p.as_str()),
                        ("source_offset", o.as_str()),
                    ];
                    // An accepted record's source header is a name, so text.
                    let source = r.source_header.as_deref().map(std::str::from_utf8);
                    if let Some(Ok(source)) = source {
                        headers.push((shared_logic::source::SOURCE_HEADER, source));
                    }
                    self.late.send_with_headers(&[], &r.payload, &headers)?
                }
            }
        }
        stats.records += batch.len() as u64;
        stats.batches += 1;
        batch.clear();
        Ok(())
    }

    /// Expires dedup ids, checkpoints every held partition, flushes the side outputs, then
    /// commits offsets.
    async fn checkpoint(&self, stats: &mut SpeedStats) -> Result<(), SpeedError> {
        // Dedup ids no repeat can still use go first (a repeat of them would be late, and
        // late events never change a view under drop and side-output).
        let (time, ctx) = (self.views.time, &self.views.ctx);
        self.views.update(|states| {
            for state in states.values_mut() {
                state.expire_dedup(&time, ctx);
            }
        });
        let mut offsets = TopicPartitionList::new();
        for p in self.views.partitions() {
            // What changed since the last checkpoint is taken under the lock; the write is
            // outside it.
            let prepared = self.views.update(|states| {
                states
                    .get_mut(&p)
                    .map(|state| {
                        let prepared = self.checkpoints.prepare(p, state)?;
                        let next: Vec<(String, i64)> = state
                            .next_offsets()
                            .map(|(t, o)| (t.to_string(), o))
                            .collect();
                        Ok::<_, SpeedError>((prepared, next))
                    })
                    .transpose()
            })?;
            let Some((prepared, next_offsets)) = prepared else {
                continue;
            };
            self.checkpoints.write(p, prepared, &self.views.ctx).await?;
            for (topic, next_offset) in next_offsets {
                if next_offset > 0 && self.opts.topics.contains(&topic) {
                    offsets
                        .add_partition_offset(&topic, p, Offset::Offset(next_offset))
                        .map_err(IoError::kafka(&self.brokers, "commit"))?;
                }
            }
        }
        stats.checkpoints += 1;
        self.views.record_checkpoint();
        self.views
            .record_lag(self.member.consumer().context().lag());
        self.dead_letters.flush(Duration::from_secs(60))?;
        self.late.flush(Duration::from_secs(60))?;
        if offsets.count() > 0 {
            let consumer = self.member.consumer().clone();
            let committed =
                tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                    .await
                    .map_err(|e| SpeedError::Checkpoint {
                        partition: -1,
                        reason: format!("commit task: {e}"),
                    })?;
            if let Err(e) = committed {
                // A rebalance took the partition: the checkpoint, not the commit, is what counts.
                tracing::warn!(error = %e, "offset commit refused (rebalance?); the checkpoint stands");
            }
        }
        Ok(())
    }

    /// Evicts windows the batch layer covers, keeping the lateness horizon.
    async fn evict(&self) {
        let Some(views) = &self.opts.batch_views else {
            return;
        };
        let published = match Published::load(views).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the batch manifest; nothing evicted");
                return;
            }
        };
        let keep = keep_ms(&self.views, self.opts.retain_covered);
        let horizon =
            |built| eviction_horizon(&published, keep, |m| MetricId::is_built_from(m, built));
        // The per-event metrics evict together (they share dedup keys).
        let events_before = horizon(BuiltFrom::Events);
        if let Some(t) = horizon(BuiltFrom::OrderChanges) {
            self.views.update_orders(|o| o.evict_before(t));
        }
        let sessions_before = horizon(BuiltFrom::Sessions);
        let ctx = &self.views.ctx;
        self.views.update(|states| {
            for state in states.values_mut() {
                state.evict_before(events_before, sessions_before, ctx);
            }
        });
    }
}
