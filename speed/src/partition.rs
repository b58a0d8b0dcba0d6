//! The state of one Kafka partition in the speed layer, and how a record changes it.
//!
//! State is kept per partition, so that it moves with the partition when a consumer group
//! rebalances, and so that it is a deterministic function of the partition's record
//! sequence: restoring a checkpoint and replaying the records after it gives exactly the
//! state of a run that never stopped. That is what makes the speed layer effectively
//! exactly-once. Everything here is pure; I/O is the consumer's.
//!
//! A partition's state may read several topics (one per event type, say) whose partition
//! of the same number carries the same users: the topics are keyed alike and have as many
//! partitions, and the group assigns partition `p` of every topic to one member (the
//! `range` assignor; [`crate::consumer`] checks both). Each topic has its own cursor
//! ([`TopicCursor`]): its next offset and its own event-time progress.
//!
//! Per record, in order:
//! 1. offsets below its topic's `next_offset` are already in the state (a replay after a
//!    restore): skipped;
//! 2. validation through shared-logic; a reject becomes a dead letter, and is noted in the
//!    windows of its record time (the `quality` metric's rejects);
//! 3. the dedup rule (shared-logic's key: event id within its event-time hour; first
//!    delivery wins): a repeated delivery is dropped, and noted as a duplicate in every
//!    window of the event (the `quality` metric; closed windows included, marked revised);
//! 4. lateness against this partition's watermark (see [`PartitionState::watermark`]): a
//!    window is *closed* when the watermark has passed its end plus the allowed lateness.
//!    The event counts in its open windows; closed windows follow
//!    the policy: `drop` and `side-output` leave them alone (an event whose windows are all
//!    closed is counted as dropped, or sent to the late topic), `update` counts it there
//!    too and marks the window revised;
//! 5. the event then advances the watermark, by its event time but never past its record's
//!    Kafka timestamp: one event stamped ahead cannot close the windows of the on-time
//!    events after it (issue 16);
//! 6. a counted event joins its user's sessions (the topics are keyed by user, so a user's
//!    events are all in one partition of each, and those partitions share this state): the sessions it merges are retracted from the
//!    `sessions` views and the merged session added in the windows of its start (a window
//!    already closed is marked revised). A user's sessions are forgotten once no event that
//!    could still be counted can join them.

use std::collections::{BTreeMap, BTreeSet};

use lambda_io::speed_api::Counters;
use serde::{Deserialize, Serialize};
use shared_logic::dedup::id_hash;
use shared_logic::metric::BuiltFrom;
use shared_logic::sessions::{Activity, UserSessions};
use shared_logic::window::{HourKey, WindowStart, HOUR_MS};
use shared_logic::{
    Aggregates, DeadLetter, EventRef, MetricContext, Origin, RecordMeta, Validator,
};

use crate::change_log::ChangeLog;
use crate::id_set::IdSet;

/// What happens to events whose windows have closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LatePolicy {
    /// Not counted (the count of dropped events is kept).
    Drop,
    /// Not counted; the record goes to the late-events topic.
    SideOutput,
    /// Counted in the closed window, which is marked revised.
    Update,
}

/// Event-time settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSettings {
    /// Watermark = the partition's event-time progress − this.
    pub out_of_orderness_ms: i64,
    /// A window closes when the watermark passes its end plus this.
    pub allowed_lateness_ms: i64,
    pub late_policy: LatePolicy,
}

impl Default for TimeSettings {
    fn default() -> Self {
        TimeSettings {
            out_of_orderness_ms: 5_000,
            allowed_lateness_ms: 60_000,
            late_policy: LatePolicy::Drop,
        }
    }
}

/// What a record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already in the state (replay below the restored offset).
    Replayed,
    /// Counted in its windows.
    Counted,
    /// A repeated delivery of an event already seen.
    Duplicate,
    /// Rejected by validation.
    Rejected(DeadLetter),
    /// All its windows were closed; dropped.
    LateDropped,
    /// All its windows were closed; to be sent to the late topic.
    LateSideOutput,
}

/// Where a partition's state stands on one of its topics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicCursor {
    /// The next offset to apply; everything below is in the state.
    pub next_offset: i64,
    /// This topic's event-time progress: the largest `min(event time, record time)` of its
    /// events (see [`PartitionState::watermark`]).
    pub(crate) progress: Option<i64>,
    /// Newest record timestamp seen (epoch ms): the bound of a record that carries none.
    pub(crate) last_record_time: Option<i64>,
    /// The topic partition's end as the consumer last heard it (not state: a restored
    /// cursor waits for the consumer to hear it again).
    #[serde(skip)]
    pub(crate) end: Option<i64>,
}

impl TopicCursor {
    /// Everything the broker had for this topic partition, as last heard, is applied: the
    /// topic cannot hold the watermark back.
    fn caught_up(&self) -> bool {
        self.end.is_some_and(|end| self.next_offset >= end)
    }

    /// How far an event at `event_ms` in a record stamped `record_ms` advances this
    /// topic's progress (see [`PartitionState::watermark`]).
    fn advance(&mut self, event_ms: i64, record_ms: Option<i64>, time: &TimeSettings) {
        let bound = record_ms.or(self.last_record_time);
        let reached = match (bound, self.progress) {
            (Some(b), _) => event_ms.min(b),
            (None, Some(p)) => event_ms.min(p.saturating_add(time.out_of_orderness_ms)),
            (None, None) => event_ms,
        };
        self.progress = Some(self.progress.map_or(reached, |p| p.max(reached)));
    }
}

/// The speed layer's state for one partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Topic → where the state stands on it.
    pub(crate) cursors: BTreeMap<String, TopicCursor>,
    /// Largest event time seen (epoch ms): the newest event, not the watermark.
    pub max_event_time: Option<i64>,
    /// Event-time progress the watermark trails, over the topics (see
    /// [`PartitionState::watermark`]); it never moves back.
    pub(crate) progress: Option<i64>,
    pub aggregates: Aggregates,
    /// Windows counted into after they had closed (`update` policy).
    pub revised: BTreeSet<i64>,
    /// Dedup keys per event-time hour (id hashes).
    pub(crate) seen: BTreeMap<i64, IdSet>,
    /// Each user's sessions that a countable event may still join.
    pub(crate) sessions: hashbrown::HashMap<String, UserSessions>,
    /// Reused buffer for the sessions an event merges (not state).
    #[serde(skip)]
    scratch: Vec<shared_logic::sessions::Session>,
    pub counters: Counters,
    /// Arrivals per event-time hour and producer: out of order, late (the quality report).
    pub(crate) arrivals: shared_logic::arrival::Arrivals,
    /// The first rejected records of each hour, producer and reason (the quality report).
    pub(crate) dead_letter_samples: shared_logic::dead_letter_sample::DeadLetterSamples,
    /// What changed since the last checkpoint (not state; see [`crate::changes`]).
    #[serde(skip)]
    pub(crate) changes: ChangeLog,
}

impl PartitionState {
    /// The partition's watermark, once it has seen an event: the largest event time seen,
    /// each event's capped by its record's Kafka timestamp, minus the allowed
    /// out-of-orderness. So `max(min(event_time, record_time)) − out_of_orderness`.
    ///
    /// The cap is what keeps one outlier from blinding the partition: an event stamped
    /// minutes ahead (validation allows up to the future skew) moves the watermark only as
    /// far as the producer's clock, which the on-time events around it share. A record
    /// without a timestamp is capped by the newest record timestamp of its topic; on a
    /// topic that never carried one, it moves the progress by at most the
    /// out-of-orderness per event (the first event starts it at its event time). Every
    /// input is in the record sequence or the checkpointed state, so a replay after a
    /// restore computes the same watermark.
    ///
    /// With several topics, each has its own progress, and the partition's is the
    /// smallest over the topics that still have records to deliver: a topic the consumer
    /// reads behind the others (a backlog) holds the watermark back, so its events are not
    /// late merely because another topic was read first. A topic whose every record the
    /// broker had is applied ([`PartitionState::set_end`]) holds nothing back; when all
    /// are caught up the largest counts. The partition's progress never moves back. With
    /// one topic this is that topic's progress.
    pub fn watermark(&self, time: &TimeSettings) -> Option<i64> {
        self.progress.map(|t| t - time.out_of_orderness_ms)
    }

    /// Recomputes the partition's progress from its topics' (see
    /// [`PartitionState::watermark`]).
    fn combine_progress(&mut self) {
        let behind = self.cursors.values().filter(|c| !c.caught_up());
        let reached = if self.cursors.values().all(TopicCursor::caught_up) {
            self.cursors.values().filter_map(|c| c.progress).max()
        } else {
            // A topic behind that has seen no event yet holds everything.
            behind
                .map(|c| c.progress)
                .try_fold(i64::MAX, |m, p| p.map(|p| m.min(p)))
        };
        if let Some(r) = reached {
            self.progress = Some(self.progress.map_or(r, |p| p.max(r)));
        }
    }

    /// Notes the end of `topic`'s partition as the consumer heard it from the broker, so
    /// that a topic with nothing left to deliver stops holding the watermark back. A
    /// topic not read yet gets a cursor at offset 0, which holds it back until caught up.
    pub fn set_end(&mut self, topic: &str, end: i64) {
        self.cursor_mut(topic).end = Some(end);
        self.combine_progress();
    }

    /// Makes `topic` one of the partition's topics (a cursor at offset 0 when new), so
    /// that it holds the watermark back until its records are read.
    pub fn add_topic(&mut self, topic: &str) {
        self.cursor_mut(topic);
    }

    fn cursor_mut(&mut self, topic: &str) -> &mut TopicCursor {
        if !self.cursors.contains_key(topic) {
            self.cursors
                .insert(topic.to_string(), TopicCursor::default());
        }
        self.cursors.get_mut(topic).expect("inserted above")
    }

    /// The next offset to apply on `topic` (0 when none was read).
    pub fn next_offset(&self, topic: &str) -> i64 {
        self.cursors.get(topic).map_or(0, |c| c.next_offset)
    }

    /// Topic → next offset to apply, for every topic read.
    pub fn next_offsets(&self) -> impl Iterator<Item = (&str, i64)> {
        self.cursors
            .iter()
            .map(|(topic, c)| (topic.as_str(), c.next_offset))
    }

    /// Records applied over all topics (the sum of the next offsets; with one topic, its
    /// next offset).
    pub fn offsets_sum(&self) -> i64 {
        self.cursors.values().map(|c| c.next_offset).sum()
    }

    /// Applies one record of `topic` at `offset` whose Kafka timestamp is `record_ms` and
    /// which has no source header: [`PartitionState::apply_record`].
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        validator: &Validator,
        record_ms: Option<i64>,
        ctx: &MetricContext,
        time: &TimeSettings,
    ) -> Outcome {
        let meta = RecordMeta {
            origin: Origin { partition, offset },
            record_ms,
            source_header: None,
        };
        self.apply_record(topic, meta, payload, validator, ctx, time)
    }

    /// Applies one record of `topic` (see the module docs for the rule). The record
    /// timestamp is validation's clock (the future-skew rule;
    /// [`lambda_io::kafka::validation_clock`]) and bounds the watermark; the source header
    /// names the record's source ([`shared_logic::source`]).
    pub fn apply_record(
        &mut self,
        topic: &str,
        meta: RecordMeta<'_>,
        payload: &[u8],
        validator: &Validator,
        ctx: &MetricContext,
        time: &TimeSettings,
    ) -> Outcome {
        let Origin { offset, .. } = meta.origin;
        let record_ms = meta.record_ms;
        let cursor = self.cursor_mut(topic);
        if offset < cursor.next_offset {
            return Outcome::Replayed;
        }
        cursor.next_offset = offset + 1;
        if let Some(r) = record_ms {
            cursor.last_record_time = Some(cursor.last_record_time.map_or(r, |l| l.max(r)));
        }
        self.counters.records += 1;
        let now_ms = lambda_io::kafka::validation_clock(record_ms);
        let event = match validator.validate_record(payload, meta, now_ms) {
            Ok(e) => e,
            Err(dead) => {
                self.counters.rejected += 1;
                self.note_reject(&dead, ctx, time);
                return Outcome::Rejected(dead);
            }
        };
        let t = event.event_time().0;
        let hour = HourKey::of(event.event_time()).0;
        let tie = id_hash(&event.event_id().0);
        let watermark = self.watermark(time);
        let closed = |w: WindowStart| {
            watermark.is_some_and(|wm| ctx.windows.end(w) + time.allowed_lateness_ms <= wm)
        };
        if !self.seen.entry(hour).or_default().insert(tie) {
            self.counters.duplicates += 1;
            self.note_duplicate(&event.view(), ctx, time);
            return Outcome::Duplicate;
        }
        self.changes.id(hour, tie);
        let windows: Vec<WindowStart> = ctx.windows.assign(event.event_time()).collect();
        let all_closed = windows.iter().all(|w| closed(*w));
        self.note_arrival(event.source(), t, all_closed);
        self.max_event_time = Some(self.max_event_time.map_or(t, |m| m.max(t)));
        self.cursor_mut(topic).advance(t, record_ms, time);
        self.combine_progress();
        let view = event.view();
        match time.late_policy {
            LatePolicy::Update => {
                for w in windows.iter().filter(|w| closed(**w)) {
                    self.revised.insert(w.0);
                }
                self.aggregates.update(&view, ctx);
                for w in &windows {
                    self.changes.window(BuiltFrom::Events, w.0);
                }
                self.join_session(&view, tie, ctx, closed);
                if all_closed {
                    self.counters.late_updated += 1;
                }
                self.counters.events += 1;
                Outcome::Counted
            }
            LatePolicy::Drop | LatePolicy::SideOutput if all_closed => {
                if time.late_policy == LatePolicy::Drop {
                    self.counters.late_dropped += 1;
                    Outcome::LateDropped
                } else {
                    self.counters.late_side_output += 1;
                    Outcome::LateSideOutput
                }
            }
            LatePolicy::Drop | LatePolicy::SideOutput => {
                self.aggregates.update_windows(&view, ctx, |w| !closed(w));
                for w in &windows {
                    self.changes.window(BuiltFrom::Events, w.0);
                }
                self.join_session(&view, tie, ctx, closed);
                self.counters.events += 1;
                Outcome::Counted
            }
        }
    }

    /// Adds a counted event (`tie`: its id hash) to its user's sessions and the change to
    /// the `sessions` views.
    fn join_session(
        &mut self,
        event: &EventRef<'_>,
        tie: u128,
        ctx: &MetricContext,
        closed: impl Fn(WindowStart) -> bool,
    ) {
        let activity = Activity {
            tie,
            ..Activity::of_untied(event)
        };
        let removed = &mut self.scratch;
        let added = self
            .sessions
            .entry_ref(event.user_id())
            .or_default()
            .insert_with(&activity, ctx.session_gap_ms, removed);
        self.aggregates.sessions.apply_change(removed, &added, ctx);
        self.changes.user(event.user_id());
        for session in removed.iter().chain([&added]) {
            for w in ctx.windows.assign(shared_logic::EventTime(session.start)) {
                self.changes.window(BuiltFrom::Sessions, w.0);
                if closed(w) {
                    self.revised.insert(w.0);
                }
            }
        }
        removed.clear();
    }

    /// Forgets the sessions no event at or after `horizon_ms` can join.
    fn forget_sessions(&mut self, horizon_ms: i64, ctx: &MetricContext) {
        let changes = &mut self.changes;
        self.sessions.retain(|user, s| {
            let held = s.len();
            let gone = s.forget_before(horizon_ms, ctx.session_gap_ms);
            if s.len() != held {
                changes.user(user);
            }
            !gone
        });
    }

    /// Number of users whose sessions are held.
    pub fn session_users(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets dedup keys no late delivery can still need: under `drop` and `side-output`,
    /// hours whose every window has closed (a repeat would be late anyway); under `update`,
    /// nothing until the windows themselves are evicted.
    pub fn expire_dedup(&mut self, time: &TimeSettings, ctx: &MetricContext) {
        if time.late_policy == LatePolicy::Update {
            return;
        }
        let Some(wm) = self.watermark(time) else {
            return;
        };
        // The last window an event of hour H can be in ends by H's end plus the window size.
        let horizon = wm - time.allowed_lateness_ms - ctx.windows.size_ms();
        self.seen.retain(|hour, _| (hour + 1) * HOUR_MS > horizon);
        // An event before the horizon has every window closed: it is not counted.
        self.forget_sessions(horizon, ctx);
    }

    /// Evicts what the batch layer covers (its boundaries minus the lateness horizon): the
    /// per-event metrics' windows and dedup keys before `events_before_ms`, and the
    /// `sessions` windows and the sessions behind them before `sessions_before_ms` (the
    /// sessions boundary trails while sessions are still open).
    pub fn evict_before(
        &mut self,
        events_before_ms: Option<i64>,
        sessions_before_ms: Option<i64>,
        ctx: &MetricContext,
    ) {
        if let Some(before) = events_before_ms {
            let changes = &mut self.changes;
            self.aggregates.retain_windows_of(BuiltFrom::Events, |w| {
                note_kept(changes, BuiltFrom::Events, w.0 >= before, w)
            });
            self.seen.retain(|hour, _| (hour + 1) * HOUR_MS > before);
            self.forget_arrivals_before(before);
        }
        if let Some(before) = sessions_before_ms {
            self.forget_sessions(before, ctx);
            let changes = &mut self.changes;
            self.aggregates.retain_windows_of(BuiltFrom::Sessions, |w| {
                note_kept(changes, BuiltFrom::Sessions, w.0 >= before, w)
            });
        }
        let oldest = match (events_before_ms, sessions_before_ms) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        self.revised.retain(|w| *w >= oldest);
    }

    /// Number of dedup keys held.
    pub fn dedup_keys(&self) -> usize {
        self.seen.values().map(IdSet::len).sum()
    }
}

/// `keep`, noting window `w` of the metrics built from `built` as changed when it is not
/// kept.
fn note_kept(changes: &mut ChangeLog, built: BuiltFrom, keep: bool, w: WindowStart) -> bool {
    if !keep {
        changes.window(built, w.0);
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::topics::EVENTS;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_767_225_600_000;

    fn view(id: &str, t: i64) -> Vec<u8> {
        format!(r#"{{"event_id":"{id}","event_type":"page_view","event_time":{t},"user_id":"u","url":"/"}}"#).into_bytes()
    }

    fn run(policy: LatePolicy, records: &[Vec<u8>]) -> (PartitionState, Vec<Outcome>) {
        let time = TimeSettings {
            out_of_orderness_ms: 5_000,
            allowed_lateness_ms: 60_000,
            late_policy: policy,
        };
        let ctx = MetricContext::default();
        let mut state = PartitionState::default();
        let outcomes = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                state.apply(
                    shared_logic::topics::EVENTS,
                    0,
                    i as i64,
                    r,
                    &Validator::default(),
                    Some(i64::MAX / 2),
                    &ctx,
                    &time,
                )
            })
            .collect();
        (state, outcomes)
    }

    fn views_in(state: &PartitionState, window: i64) -> u64 {
        state
            .aggregates
            .page_views
            .iter()
            .filter(|(k, _)| k.window.0 == window)
            .map(|(_, s)| s.views)
            .sum()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Sessions built event by event (merging, retracting, in any arrival order) equal
        /// the batch definition over the same events: the shared fold.
        #[test]
        fn incremental_sessions_equal_the_fold_in_any_arrival_order(
            events in proptest::collection::vec((0u8..4, 0i64..240, 0u8..3), 1..80),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let json: Vec<Vec<u8>> = events
                .iter()
                .enumerate()
                .map(|(i, (user, minute, kind))| {
                    let kind = ["page_view", "page_view", "add_to_cart"][*kind as usize];
                    format!(
                        r#"{{"event_id":"e{i}","event_type":"{kind}","event_time":{},"user_id":"u{user}","url":"/","product_id":"p","quantity":1,"country":"{}"}}"#,
                        T0 + minute * MIN / 4 * 3,
                        ["DE", "US"][i % 2]
                    )
                    .into_bytes()
                })
                .collect();
            let mut order: Vec<usize> = (0..json.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let shuffled: Vec<Vec<u8>> = order.iter().map(|i| json[*i].clone()).collect();
            let (state, _) = run(LatePolicy::Update, &shuffled);
            let parsed: Vec<shared_logic::Event> = json
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    Validator::default()
                        .validate(j, Origin { partition: 0, offset: i as i64 }, i64::MAX / 2)
                        .unwrap()
                })
                .collect();
            let expected = Aggregates::fold(&parsed, &MetricContext::default());
            proptest::prop_assert_eq!(&state.aggregates.sessions, &expected.sessions);
        }
    }

    /// Events of three users over four hours, one topic per event type, each topic in
    /// event-time order (as its producer wrote it).
    fn typed_events(n: usize, seed: u64) -> Vec<(usize, Vec<u8>)> {
        let kinds = ["page_view", "add_to_cart", "purchase"];
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::new();
        for i in 0..n {
            let kind = (next() % 3) as usize;
            let t = T0 + (i as i64) * 40_000 + (next() % 3_000) as i64;
            let user = next() % 3;
            out.push((
                kind,
                format!(
                    r#"{{"event_id":"e{i}","event_type":"{}","event_time":{t},"user_id":"u{user}","url":"/","product_id":"p","category":"toys","quantity":1,"price":"1.00","currency":"USD","country":"DE"}}"#,
                    kinds[kind]
                )
                .into_bytes(),
            ));
        }
        out
    }

    const TYPE_TOPICS: [&str; 3] = ["events.page_view", "events.add_to_cart", "events.purchase"];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Topics read in any interleaving (one far ahead of the others, as a backlog is
        /// read) count every event of a user's topics, sessions included, as the fold over
        /// all of them does: a topic still behind holds the watermark back, so nothing is
        /// late, under the `drop` policy.
        #[test]
        fn co_partitioned_topics_in_any_interleaving_equal_the_fold(
            n in 1usize..120,
            seed in proptest::prelude::any::<u64>(),
            picks in proptest::collection::vec(0u8..3, 0..400),
        ) {
            let events = typed_events(n, seed);
            let mut queues: Vec<std::collections::VecDeque<(i64, Vec<u8>)>> = vec![Default::default(); 3];
            for (kind, json) in &events {
                let offset = queues[*kind].len() as i64;
                queues[*kind].push_back((offset, json.clone()));
            }
            let time = TimeSettings::default();
            let ctx = MetricContext::default();
            let v = Validator::default();
            let mut state = PartitionState::default();
            for t in TYPE_TOPICS {
                state.add_topic(t);
            }
            let mut picks = picks.into_iter();
            while queues.iter().any(|q| !q.is_empty()) {
                let mut k = picks.next().unwrap_or(0) as usize;
                while queues[k].is_empty() {
                    k = (k + 1) % 3;
                }
                let (offset, json) = queues[k].pop_front().unwrap();
                let outcome = state.apply(TYPE_TOPICS[k], 0, offset, &json, &v, Some(i64::MAX / 2), &ctx, &time);
                proptest::prop_assert_eq!(outcome, Outcome::Counted);
            }
            let parsed: Vec<shared_logic::Event> = events
                .iter()
                .enumerate()
                .map(|(i, (_, j))| {
                    // With the record time the records were applied with.
                    let meta = shared_logic::RecordMeta {
                        origin: Origin { partition: 0, offset: i as i64 },
                        record_ms: Some(i64::MAX / 2),
                        source_header: None,
                    };
                    v.validate_record(j, meta, i64::MAX / 2).unwrap()
                })
                .collect();
            let expected = Aggregates::fold(&parsed, &ctx);
            proptest::prop_assert_eq!(&state.aggregates, &expected);
            for (k, t) in TYPE_TOPICS.iter().enumerate() {
                let written = events.iter().filter(|(kind, _)| *kind == k).count() as i64;
                proptest::prop_assert_eq!(state.next_offset(t), written);
            }
        }
    }

    #[test]
    fn a_topic_behind_holds_the_watermark_back_until_it_is_caught_up() {
        let (ctx, time, v) = (
            MetricContext::default(),
            TimeSettings::default(),
            Validator::default(),
        );
        let mut state = PartitionState::default();
        state.add_topic("b");
        // "a" runs ten minutes ahead while "b" has not been read.
        state.apply("a", 0, 0, &view("a0", T0), &v, Some(T0), &ctx, &time);
        state.apply(
            "a",
            0,
            1,
            &view("a1", T0 + 10 * MIN),
            &v,
            Some(T0 + 10 * MIN),
            &ctx,
            &time,
        );
        assert_eq!(
            state.watermark(&time),
            None,
            "b has not delivered anything yet"
        );
        // b's first event, from minute 1, is on time.
        let b = state.apply(
            "b",
            0,
            0,
            &view("b0", T0 + MIN),
            &v,
            Some(T0 + MIN),
            &ctx,
            &time,
        );
        assert_eq!(b, Outcome::Counted);
        assert_eq!(state.watermark(&time), Some(T0 + MIN - 5_000));
        // b is read to its end: a's progress counts.
        state.set_end("b", 1);
        assert_eq!(state.watermark(&time), Some(T0 + 10 * MIN - 5_000));
        // b gets a record again (behind once more): the watermark does not move back, and
        // b's event from minute 1 is now late.
        state.set_end("b", 2);
        assert_eq!(state.watermark(&time), Some(T0 + 10 * MIN - 5_000));
        let late = state.apply(
            "b",
            0,
            1,
            &view("b1", T0 + MIN),
            &v,
            Some(T0 + MIN),
            &ctx,
            &time,
        );
        assert_eq!(late, Outcome::LateDropped);
        // An empty topic read to its end (end 0) holds nothing back.
        let mut fresh = PartitionState::default();
        fresh.add_topic("empty");
        fresh.apply("a", 0, 0, &view("x", T0), &v, Some(T0), &ctx, &time);
        assert_eq!(fresh.watermark(&time), None);
        fresh.set_end("empty", 0);
        assert_eq!(fresh.watermark(&time), Some(T0 - 5_000));
        // Offsets are per topic: offset 0 of another topic is not a replay.
        assert_eq!(fresh.next_offset("a"), 1);
        assert_eq!(fresh.next_offset("empty"), 0);
        assert_eq!(
            fresh.apply("a", 0, 0, &view("x", T0), &v, Some(T0), &ctx, &time),
            Outcome::Replayed
        );
    }

    #[test]
    fn late_event_beyond_lateness_is_dropped_and_counted() {
        // The watermark passes the first minute's end + 60 s lateness at 00:02:05.
        let records = vec![
            view("a", T0 + 10_000),
            view("b", T0 + 3 * MIN),
            view("late", T0 + 20_000),
        ];
        let (state, outcomes) = run(LatePolicy::Drop, &records);
        assert_eq!(outcomes[2], Outcome::LateDropped);
        assert_eq!(views_in(&state, T0), 1);
        assert_eq!(state.counters.late_dropped, 1);
    }

    #[test]
    fn late_event_beyond_lateness_is_side_output() {
        let records = vec![
            view("a", T0 + 10_000),
            view("b", T0 + 3 * MIN),
            view("late", T0 + 20_000),
        ];
        let (state, outcomes) = run(LatePolicy::SideOutput, &records);
        assert_eq!(outcomes[2], Outcome::LateSideOutput);
        assert_eq!(views_in(&state, T0), 1);
        assert_eq!(state.counters.late_side_output, 1);
    }

    #[test]
    fn late_event_under_update_revises_the_closed_window() {
        let records = vec![
            view("a", T0 + 10_000),
            view("b", T0 + 3 * MIN),
            view("late", T0 + 20_000),
        ];
        let (state, outcomes) = run(LatePolicy::Update, &records);
        assert_eq!(outcomes[2], Outcome::Counted);
        assert_eq!(views_in(&state, T0), 2);
        assert!(state.revised.contains(&T0));
    }

    /// Applies `(record timestamp, payload)` pairs to `state`, the i-th at offset i.
    fn apply_at(
        state: &mut PartitionState,
        records: &[(i64, Vec<u8>)],
        time: &TimeSettings,
    ) -> Vec<Outcome> {
        let (ctx, v) = (MetricContext::default(), Validator::default());
        records
            .iter()
            .enumerate()
            .map(|(i, (ts, r))| {
                state.apply(
                    shared_logic::topics::EVENTS,
                    0,
                    i as i64,
                    r,
                    &v,
                    Some(*ts),
                    &ctx,
                    time,
                )
            })
            .collect()
    }

    /// [`apply_at`] on a new state under the default settings (drop policy).
    fn run_at(records: &[(i64, Vec<u8>)]) -> PartitionState {
        let mut state = PartitionState::default();
        apply_at(&mut state, records, &TimeSettings::default());
        state
    }

    #[test]
    fn one_event_ahead_of_its_record_time_does_not_close_the_on_time_windows() {
        // Issue 16: a page view 290 s ahead (within the future skew), then 100 page views a
        // second old, all produced now: none of the 100 is late.
        let now = T0 + 30 * MIN;
        let mut records = vec![(now, view("ahead", now + 290_000))];
        records.extend((0..100).map(|i| (now + i, view(&format!("e{i}"), now - 1_000))));
        let state = run_at(&records);
        assert_eq!(state.counters.late_dropped, 0, "{:?}", state.counters);
        assert_eq!(state.counters.events, 101);
        // The outlier moved the watermark only as far as its record's timestamp.
        assert_eq!(state.watermark(&TimeSettings::default()), Some(now - 5_000));
    }

    #[test]
    fn genuinely_late_events_are_still_dropped_or_side_output_when_record_times_follow() {
        // Produced as they happen: the record time supports the watermark's advance.
        let records = [
            (T0 + 10_000, view("a", T0 + 10_000)),
            (T0 + 3 * MIN, view("b", T0 + 3 * MIN)),
            (T0 + 3 * MIN + 1_000, view("late", T0 + 20_000)),
        ];
        let state = run_at(&records);
        assert_eq!(state.counters.late_dropped, 1, "{:?}", state.counters);
        assert_eq!(views_in(&state, T0), 1);
        let time = TimeSettings {
            late_policy: LatePolicy::SideOutput,
            ..TimeSettings::default()
        };
        let outcomes = apply_at(&mut PartitionState::default(), &records, &time);
        assert_eq!(outcomes[2], Outcome::LateSideOutput);
    }

    #[test]
    fn records_without_a_timestamp_are_bounded_by_the_partitions_record_times() {
        let time = TimeSettings::default();
        // One record of the events topic, partition 0, at `offset`.
        let put = |state: &mut PartitionState, offset: i64, json: &[u8], record_ms| {
            let (ctx, v) = (MetricContext::default(), Validator::default());
            state.apply(EVENTS, 0, offset, json, &v, record_ms, &ctx, &time)
        };
        let mut state = PartitionState::default();
        put(&mut state, 0, &view("a", T0), Some(T0));
        // No timestamp: not measured for future skew, capped by the last record time.
        put(&mut state, 1, &view("b", T0 + 10 * MIN), None);
        assert_eq!(state.watermark(&time), Some(T0 - 5_000));
        // A partition that never carried one moves by at most the out-of-orderness per event.
        let mut bare = PartitionState::default();
        put(&mut bare, 0, &view("a", T0), None);
        put(&mut bare, 1, &view("b", T0 + 10 * MIN), None);
        assert_eq!(bare.watermark(&time), Some(T0));
        assert_eq!(bare.counters.events, 2);
    }

    #[test]
    fn a_restored_checkpoint_replayed_gives_the_state_of_an_uninterrupted_run() {
        let records: Vec<(i64, Vec<u8>)> = (0..60)
            .map(|i| {
                // Every seventh event stamped minutes ahead of its record.
                let ahead = if i % 7 == 0 { 4 * MIN } else { 0 };
                (
                    T0 + i * 5_000,
                    view(&format!("e{i}"), T0 + i * 5_000 - 2_000 + ahead),
                )
            })
            .collect();
        let whole = run_at(&records);
        let half = run_at(&records[..30]);
        let mut restored: PartitionState =
            postcard::from_bytes(&postcard::to_stdvec(&half).unwrap()).unwrap();
        apply_at(&mut restored, &records, &TimeSettings::default());
        assert_eq!(restored, whole);
        assert_eq!(whole.counters.late_dropped, 0);
    }

    #[test]
    fn event_within_lateness_still_counts() {
        let records = vec![
            view("a", T0 + 10_000),
            view("b", T0 + MIN + 30_000),
            view("ok", T0 + 20_000),
        ];
        let (state, outcomes) = run(LatePolicy::Drop, &records);
        assert_eq!(outcomes[2], Outcome::Counted);
        assert_eq!(views_in(&state, T0), 2);
    }

    #[test]
    fn duplicates_count_once_and_replays_are_skipped() {
        let records = vec![view("a", T0), view("a", T0), b"not json".to_vec()];
        let (mut state, outcomes) = run(LatePolicy::Drop, &records);
        assert_eq!(outcomes[1], Outcome::Duplicate);
        assert!(matches!(outcomes[2], Outcome::Rejected(_)));
        let replay = state.apply(
            shared_logic::topics::EVENTS,
            0,
            1,
            &records[1],
            &Validator::default(),
            Some(0),
            &MetricContext::default(),
            &TimeSettings::default(),
        );
        assert_eq!(replay, Outcome::Replayed);
        assert_eq!(state.counters.records, 3);
    }

    #[test]
    fn state_round_trips_through_a_checkpoint_encoding() {
        let records: Vec<Vec<u8>> = (0..50)
            .map(|i| view(&format!("e{i}"), T0 + i * 7_000))
            .collect();
        let (state, _) = run(LatePolicy::Update, &records);
        let bytes = postcard::to_stdvec(&state).unwrap();
        let back: PartitionState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn dedup_keys_expire_once_their_hour_is_closed() {
        let time = TimeSettings::default();
        let ctx = MetricContext::default();
        let mut state = PartitionState::default();
        state.apply(
            shared_logic::topics::EVENTS,
            0,
            0,
            &view("a", T0),
            &Validator::default(),
            Some(i64::MAX / 2),
            &ctx,
            &time,
        );
        state.apply(
            shared_logic::topics::EVENTS,
            0,
            1,
            &view("b", T0 + 2 * HOUR_MS),
            &Validator::default(),
            Some(i64::MAX / 2),
            &ctx,
            &time,
        );
        state.expire_dedup(&time, &ctx);
        assert_eq!(state.dedup_keys(), 1);
    }

    #[test]
    fn windows_before_the_batch_boundary_are_evicted_with_their_dedup_keys() {
        let records: Vec<Vec<u8>> = (0..120)
            .map(|i| view(&format!("e{i}"), T0 + i * MIN))
            .collect();
        let (mut state, _) = run(LatePolicy::Update, &records);
        assert_eq!(state.aggregates.page_views.len(), 120);
        state.evict_before(
            Some(T0 + HOUR_MS),
            Some(T0 + HOUR_MS),
            &MetricContext::default(),
        );
        assert_eq!(state.aggregates.page_views.len(), 60);
        assert!(state
            .aggregates
            .page_views
            .iter()
            .all(|(k, _)| k.window.0 >= T0 + HOUR_MS));
        assert_eq!(state.dedup_keys(), 60);
    }
}
