//! The real-time views: every assigned partition's state, readable while consumption goes
//! on. [`RealtimeViews`] is the in-process handle (cheap to clone) that the consumer writes
//! through and the serving layer (or the HTTP endpoint) reads through.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use lambda_io::speed_api::{
    Answered, ChangeCounters, Counters, Progress, QualityNotes, RealtimeSource, Since, Status,
    ViewsVersion,
};
use shared_logic::arrival::Arrivals;
use shared_logic::dead_letter_sample::DeadLetterSamples;
use shared_logic::mergeable::Mergeable;
use shared_logic::metric::BuiltFrom;
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{
    Aggregates, GroupKey, Grouping, MetricContext, MetricId, MetricVisitor, Registered,
};

use crate::orders::OrderStreams;
use crate::partition::{PartitionState, TimeSettings};
use crate::rollups::{self, Rollups};

struct Inner {
    partitions: BTreeMap<i32, PartitionState>,
    last_message: BTreeMap<i32, Instant>,
    newest_visible_ms: Option<i64>,
    last_checkpoint_ms: Option<i64>,
    lag: BTreeMap<i32, i64>,
    /// The `orders` and `daily_sales` views, from the change streams (see
    /// [`crate::orders`]).
    orders: OrderStreams,
    /// Grouped rows of the windows no write touched since (see [`crate::rollups`]).
    rollups: Mutex<Rollups>,
}

/// Shared handle on the speed layer's state.
#[derive(Clone)]
pub struct RealtimeViews {
    inner: Arc<RwLock<Inner>>,
    pub ctx: MetricContext,
    pub time: TimeSettings,
    /// A partition silent for this long does not hold back the instance's watermark.
    pub idle_timeout: std::time::Duration,
    /// Which computation of the views this is (a replay from offset 0 makes a new one).
    pub views_version: u32,
}

/// A consistent read of the views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub aggregates: Aggregates,
    /// Minimum of the active partitions' watermarks.
    pub watermark: Option<i64>,
    /// Windows counted into after they had closed.
    pub revised: Vec<i64>,
    pub counters: Counters,
    /// Newest event time that is visible (freshness = now − this).
    pub newest_event_ms: Option<i64>,
    /// Partition → next offset: what the views include.
    pub offsets: BTreeMap<i32, i64>,
}

impl RealtimeViews {
    /// Empty views.
    pub fn new(ctx: MetricContext, time: TimeSettings, idle_timeout: std::time::Duration) -> Self {
        RealtimeViews {
            inner: Arc::new(RwLock::new(Inner {
                partitions: BTreeMap::new(),
                last_message: BTreeMap::new(),
                newest_visible_ms: None,
                last_checkpoint_ms: None,
                lag: BTreeMap::new(),
                orders: OrderStreams::default(),
                rollups: Mutex::default(),
            })),
            ctx,
            time,
            idle_timeout,
            views_version: 1,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the state of `partition` is held here.
    pub fn holds(&self, partition: i32) -> bool {
        self.read().partitions.contains_key(&partition)
    }

    /// Installs a partition's (restored or fresh) state.
    pub fn install(&self, partition: i32, state: PartitionState) {
        let mut inner = self.write();
        inner.partitions.insert(partition, state);
        inner.last_message.insert(partition, Instant::now());
        inner
            .rollups
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Drops a partition (revoked: its new owner restores it from the checkpoint).
    pub fn remove(&self, partition: i32) {
        let mut inner = self.write();
        inner.partitions.remove(&partition);
        inner.last_message.remove(&partition);
        inner
            .rollups
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Runs `f` on the states of the given partitions under one write lock (a micro-batch).
    pub fn update<R>(&self, f: impl FnOnce(&mut BTreeMap<i32, PartitionState>) -> R) -> R {
        let mut inner = self.write();
        let result = f(&mut inner.partitions);
        let Inner {
            partitions,
            rollups,
            ..
        } = &mut *inner;
        let rollups = rollups.get_mut().unwrap_or_else(|p| p.into_inner());
        for state in partitions.values_mut() {
            for (built, window) in state.changes.take_touched() {
                rollups.touched(built, window);
            }
        }
        let newest = inner
            .partitions
            .values()
            .filter_map(|p| p.max_event_time)
            .max();
        inner.newest_visible_ms = newest;
        result
    }

    /// Runs `f` on the `orders` state under the write lock.
    pub fn update_orders<R>(&self, f: impl FnOnce(&mut OrderStreams) -> R) -> R {
        f(&mut self.write().orders)
    }

    /// What the change streams did so far.
    pub fn order_counters(&self) -> ChangeCounters {
        self.read().orders.counters
    }

    /// Records that messages of `partition` arrived now (for the idle timeout).
    pub fn touch(&self, partition: i32) {
        self.write().last_message.insert(partition, Instant::now());
    }

    /// A copy of one partition's state (for checkpoints).
    pub fn partition_state(&self, partition: i32) -> Option<PartitionState> {
        self.read().partitions.get(&partition).cloned()
    }

    /// Partitions held.
    pub fn partitions(&self) -> Vec<i32> {
        self.read().partitions.keys().copied().collect()
    }

    /// The views merged across partitions, limited to windows starting in `[from_ms, to_ms)`.
    pub fn snapshot(&self, from_ms: i64, to_ms: i64) -> Snapshot {
        let inner = self.read();
        let mut out = Snapshot {
            newest_event_ms: inner.newest_visible_ms,
            watermark: self.watermark_of(&inner),
            ..Snapshot::default()
        };
        let mut revised = std::collections::BTreeSet::new();
        for (p, state) in &inner.partitions {
            let mut part = state.aggregates.clone();
            part.retain_windows(|w| w.0 >= from_ms && w.0 < to_ms);
            out.aggregates.merge_owned(part);
            out.counters.add(&state.counters);
            out.offsets.insert(*p, state.offsets_sum());
            revised.extend(
                state
                    .revised
                    .iter()
                    .copied()
                    .filter(|w| *w >= from_ms && *w < to_ms),
            );
        }
        for part in inner.orders.partitions.values() {
            let mut changed = part.aggregates.clone();
            changed.retain_windows(|w| w.0 >= from_ms && w.0 < to_ms);
            out.aggregates.merge_owned(changed);
        }
        out.revised = revised.into_iter().collect();
        out
    }

    /// Minimum watermark over partitions that received messages within the idle timeout
    /// (or over all, when every partition is idle).
    fn watermark_of(&self, inner: &Inner) -> Option<i64> {
        let mut watermark: Option<i64> = None;
        let mut any_active = false;
        for (p, state) in &inner.partitions {
            let active = inner
                .last_message
                .get(p)
                .is_some_and(|t| t.elapsed() < self.idle_timeout);
            let Some(wm) = state.watermark(&self.time) else {
                continue;
            };
            watermark = match (watermark, active, any_active) {
                (None, _, _) => Some(wm),
                (Some(m), true, true) => Some(m.min(wm)),
                (Some(_), true, false) => Some(wm),
                (Some(m), false, false) => Some(m.min(wm)),
                (Some(m), false, true) => Some(m),
            };
            any_active |= active;
        }
        watermark
    }

    /// Calls `f` with every state of metric `M` whose window starts in `[from_ms, to_ms)`,
    /// partition by partition, under one read lock and without copying (the serving
    /// layer merges them straight into its answer).
    pub fn visit<M: Registered>(
        &self,
        from_ms: i64,
        to_ms: i64,
        mut f: impl FnMut(&GroupKey, &M::State),
    ) -> Progress {
        self.visit_aggregates(&mut |aggregates| {
            for (key, s) in M::views_in(aggregates).in_windows(from_ms, to_ms) {
                f(key, s);
            }
        })
    }

    /// Calls `f` with the rows of metric `M` grouped by `grouping`, for windows starting in
    /// `[from_ms, to_ms)`: one row per window and grouped values, merged over partitions,
    /// from the rows kept of windows no write touched since (see [`crate::rollups`]).
    pub fn select<M: Registered>(
        &self,
        from_ms: i64,
        to_ms: i64,
        grouping: &Grouping,
        f: impl FnMut(&GroupKey, &M::State),
    ) -> Progress {
        self.select_since::<M>(from_ms, to_ms, grouping, None, f).0
    }

    /// [`RealtimeViews::select`] for a reader holding `since`: only the windows changed
    /// since, or unknown to it (see [`rollups::select`]); with the version read at and the
    /// windows answered, when the answer is incremental.
    pub fn select_since<M: Registered>(
        &self,
        from_ms: i64,
        to_ms: i64,
        grouping: &Grouping,
        since: Option<&Since>,
        f: impl FnMut(&GroupKey, &M::State),
    ) -> (Progress, Option<(ViewsVersion, Answered)>) {
        let inner = self.read();
        let orders = inner.orders.partitions.values().map(|p| &p.aggregates);
        let sources = inner
            .partitions
            .values()
            .map(|p| &p.aggregates)
            .chain(orders);
        // The change streams' views change without window notes: never kept.
        let keep = M::BUILT_FROM != BuiltFrom::OrderChanges;
        let answered = rollups::select::<M>(
            &inner.rollups,
            sources,
            &self.ctx.windows,
            from_ms,
            to_ms,
            grouping,
            keep,
            since,
            f,
        );
        (self.progress_of(&inner), answered)
    }

    /// Watermark, freshness, offsets, lag, checkpoint time and counters.
    pub fn progress(&self) -> Progress {
        self.progress_of(&self.read())
    }

    fn progress_of(&self, inner: &Inner) -> Progress {
        let mut counters = Counters::default();
        for state in inner.partitions.values() {
            counters.add(&state.counters);
        }
        Progress {
            watermark: self.watermark_of(inner),
            newest_event_ms: inner.newest_visible_ms,
            offsets: inner
                .partitions
                .iter()
                .map(|(p, s)| (*p, s.offsets_sum()))
                .collect(),
            lag: inner.lag.clone(),
            last_checkpoint_ms: inner.last_checkpoint_ms,
            counters,
        }
    }

    /// Windows counted into after they had closed (under the update policy).
    pub fn revised_windows(&self) -> Vec<i64> {
        let inner = self.read();
        let all: std::collections::BTreeSet<i64> = inner
            .partitions
            .values()
            .flat_map(|p| p.revised.iter().copied())
            .collect();
        all.into_iter().collect()
    }

    /// Records that a checkpoint completed now.
    pub fn record_checkpoint(&self) {
        self.write().last_checkpoint_ms = Some(chrono::Utc::now().timestamp_millis());
    }

    /// Records the client's latest per-partition lag (records behind the end).
    pub fn record_lag(&self, lag: BTreeMap<i32, i64>) {
        self.write().lag = lag;
    }

    /// Counters summed over partitions.
    pub fn counters(&self) -> Counters {
        let mut total = Counters::default();
        for state in self.read().partitions.values() {
            total.add(&state.counters);
        }
        total
    }

    /// Users whose sessions are held (a countable event may still join them), across
    /// partitions.
    pub fn session_users(&self) -> usize {
        self.read()
            .partitions
            .values()
            .map(|p| p.session_users())
            .sum()
    }

    /// Live keys (window × dimensions) across metrics and partitions, and dedup keys.
    pub fn live_keys(&self) -> (usize, usize) {
        let inner = self.read();
        let keys = inner.partitions.values().map(|p| p.aggregates.len()).sum();
        let dedup = inner.partitions.values().map(|p| p.dedup_keys()).sum();
        (keys, dedup)
    }
}

impl RealtimeViews {
    /// What `/v1/speed/quality` answers: the arrival counts and dead-letter samples of the
    /// hours starting in `[from_ms, to_ms)`, merged over the partitions held.
    pub fn quality_notes(&self, from_ms: i64, to_ms: i64) -> QualityNotes {
        let inner = self.read();
        let mut arrivals = Arrivals::default();
        let mut samples = DeadLetterSamples::default();
        for p in inner.partitions.values() {
            arrivals.merge(&p.arrivals);
            samples.merge(&p.dead_letter_samples);
        }
        // The first hour starting at or after `ms`.
        let hour =
            |ms: i64| HourKey(ms.div_euclid(HOUR_MS) + i64::from(ms.rem_euclid(HOUR_MS) != 0));
        QualityNotes {
            arrivals: arrivals.entries(hour(from_ms), hour(to_ms)),
            dead_letters: samples.within(from_ms, to_ms),
        }
    }

    /// What `/v1/speed/status` answers for these views.
    pub fn status(&self) -> Status {
        let (live_keys, dedup_keys) = self.live_keys();
        Status {
            views_version: self.views_version,
            progress: self.progress(),
            allowed_lateness_ms: self.time.allowed_lateness_ms,
            out_of_orderness_ms: self.time.out_of_orderness_ms,
            logic: self.ctx.fingerprint(),
            revised_windows: self.revised_windows(),
            live_keys,
            dedup_keys,
            session_users: self.session_users(),
            changes: self.order_counters(),
            held_order_changes: self.update_orders(|o| o.held_changes()),
        }
    }
}

impl RealtimeSource for RealtimeViews {
    fn visit_aggregates(&self, visit: &mut dyn FnMut(&Aggregates)) -> Progress {
        let inner = self.read();
        let orders = inner.orders.partitions.values().map(|p| &p.aggregates);
        for aggregates in inner
            .partitions
            .values()
            .map(|p| &p.aggregates)
            .chain(orders)
        {
            visit(aggregates);
        }
        self.progress_of(&inner)
    }

    fn select(
        &self,
        metric: MetricId,
        from_ms: i64,
        to_ms: i64,
        grouping: &Grouping,
        visit: &mut dyn FnMut(&GroupKey, &dyn std::any::Any),
    ) -> Progress {
        metric.visit(Select {
            views: self,
            from_ms,
            to_ms,
            grouping,
            visit,
        })
    }

    fn partitions(&self) -> Vec<i32> {
        RealtimeViews::partitions(self)
    }

    fn allowed_lateness_ms(&self) -> i64 {
        self.time.allowed_lateness_ms
    }

    fn status(&self) -> Status {
        RealtimeViews::status(self)
    }

    fn quality_notes(&self, from_ms: i64, to_ms: i64) -> QualityNotes {
        RealtimeViews::quality_notes(self, from_ms, to_ms)
    }
}

/// [`RealtimeViews::select`] for a metric chosen at run time, states handed over as `Any`.
struct Select<'a> {
    views: &'a RealtimeViews,
    from_ms: i64,
    to_ms: i64,
    grouping: &'a Grouping,
    visit: &'a mut dyn FnMut(&GroupKey, &dyn std::any::Any),
}

impl MetricVisitor for Select<'_> {
    type Output = Progress;

    fn visit<M: Registered>(self) -> Progress {
        let visit = self.visit;
        self.views
            .select::<M>(self.from_ms, self.to_ms, self.grouping, |key, state| {
                visit(key, state as &dyn std::any::Any)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::metrics::PageViews;
    use shared_logic::Validator;

    const T0: i64 = 1_767_225_600_000;

    fn page_view(id: usize, t: i64, url: &str) -> Vec<u8> {
        page_view_of(id, t, url, &format!("u{id}"))
    }

    fn page_view_of(id: usize, t: i64, url: &str, user: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"e{id}","event_type":"page_view","event_time":{t},"user_id":"{user}","url":"{url}"}}"#)
            .into_bytes()
    }

    /// Applies page views to partition `p`, as the consumer does (one micro-batch).
    fn apply(views: &RealtimeViews, p: i32, events: &[(i64, &str)], first_id: usize) {
        let records: Vec<Vec<u8>> = events
            .iter()
            .enumerate()
            .map(|(i, (t, url))| page_view(first_id + i, *t, url))
            .collect();
        apply_records(views, p, &records);
    }

    /// Applies records to partition `p` in one micro-batch.
    fn apply_records(views: &RealtimeViews, p: i32, records: &[Vec<u8>]) {
        let (ctx, time) = (views.ctx.clone(), views.time);
        views.update(|parts| {
            let state = parts.get_mut(&p).expect("partition held");
            for record in records {
                let offset = state.next_offset(shared_logic::topics::EVENTS);
                state.apply(
                    shared_logic::topics::EVENTS,
                    p,
                    offset,
                    record,
                    &Validator::default(),
                    Some(i64::MAX / 2),
                    &ctx,
                    &time,
                );
            }
        });
    }

    /// The rows grouped by url, through the kept rows, and grouped anew from every key.
    type Rows = Vec<(i64, String, u64)>;

    fn both(views: &RealtimeViews) -> (Rows, Rows) {
        let grouping = Grouping {
            group_by: vec![0],
            filters: Vec::new(),
            sketches: false,
        };
        let mut kept = Vec::new();
        views.select::<PageViews>(T0, T0 + 3_600_000, &grouping, |k, s| {
            kept.push((k.window.0, k.dims().collect::<String>(), s.views))
        });
        let mut fresh = shared_logic::MetricViews::<PageViews>::default();
        views.visit::<PageViews>(T0, T0 + 3_600_000, |k, s| {
            grouping.group_into(&mut fresh, k, s)
        });
        let mut fresh: Vec<_> = fresh
            .iter()
            .map(|(k, s)| (k.window.0, k.dims().collect::<String>(), s.views))
            .collect();
        kept.sort();
        fresh.sort();
        (kept, fresh)
    }

    #[test]
    fn every_write_path_reaches_the_kept_rows() {
        let views = RealtimeViews::new(
            MetricContext::default(),
            TimeSettings::default(),
            std::time::Duration::from_secs(60),
        );
        views.install(0, PartitionState::default());
        apply(
            &views,
            0,
            &[(T0, "/a"), (T0 + 1_000, "/b"), (T0 + 61_000, "/a")],
            0,
        );
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept.len(), 3);
        // A write into a kept window.
        apply(&views, 0, &[(T0 + 2_000, "/a")], 10);
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept[0], (T0, "/a".to_string(), 2));
        // A checkpoint's delta between the write and the read keeps the note.
        views.update(|parts| parts.get_mut(&0).unwrap().start_tracking());
        assert_eq!(both(&views).0, both(&views).1);
        views.update(|parts| {
            let state = parts.get_mut(&0).unwrap();
            state.apply(
                shared_logic::topics::EVENTS,
                0,
                state.next_offset(shared_logic::topics::EVENTS),
                &page_view(20, T0 + 3_000, "/b"),
                &Validator::default(),
                Some(i64::MAX / 2),
                &views.ctx,
                &views.time,
            );
            let _ = state.take_delta();
        });
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept[1], (T0, "/b".to_string(), 2));
        // Eviction of what the batch layer covers.
        views.update(|parts| {
            parts.get_mut(&0).unwrap().evict_before(
                Some(T0 + 60_000),
                None,
                &MetricContext::default(),
            )
        });
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept, vec![(T0 + 60_000, "/a".to_string(), 1)]);
        // A partition assigned, then revoked.
        let mut other = PartitionState::default();
        let ctx = MetricContext::default();
        other.apply(
            shared_logic::topics::EVENTS,
            1,
            0,
            &page_view(30, T0 + 62_000, "/a"),
            &Validator::default(),
            Some(i64::MAX / 2),
            &ctx,
            &views.time,
        );
        views.install(1, other);
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept, vec![(T0 + 60_000, "/a".to_string(), 2)]);
        views.remove(1);
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
        assert_eq!(kept, vec![(T0 + 60_000, "/a".to_string(), 1)]);
    }

    /// What an incremental read of metric `M` by url over the hour from T0 answers to a
    /// reader holding `since`, and whether the rows it holds then equal a full grouping.
    fn read_since<M: Registered>(
        views: &RealtimeViews,
        since: Option<&Since>,
        group_by: Vec<usize>,
    ) -> (Since, Answered) {
        let grouping = Grouping {
            group_by,
            filters: Vec::new(),
            sketches: false,
        };
        let (_, answered) =
            views.select_since::<M>(T0, T0 + 3_600_000, &grouping, since, |_, _| {});
        let (version, answered) = answered.expect("kept reads are versioned");
        let since = Since {
            version,
            known_from: T0,
            known_to: T0 + 3_600_000,
        };
        (since, answered)
    }

    #[test]
    fn an_event_growing_an_old_session_changes_only_the_sessions_window_it_started_in() {
        use shared_logic::metrics::Sessions;
        let views = RealtimeViews::new(
            MetricContext::default(),
            TimeSettings::default(),
            std::time::Duration::from_secs(60),
        );
        views.install(0, PartitionState::default());
        apply_records(&views, 0, &[page_view_of(1, T0, "/a", "ann")]);
        let (pages, _) = read_since::<PageViews>(&views, None, vec![0]);
        let (sessions, _) = read_since::<Sessions>(&views, None, vec![]);
        // Ann comes back 20 minutes later: her session (started at T0) grows.
        let later = T0 + 20 * 60_000;
        apply_records(&views, 0, &[page_view_of(2, later, "/b", "ann")]);
        let (_, answered) = read_since::<PageViews>(&views, Some(&pages), vec![0]);
        assert_eq!(
            answered,
            Answered::Changed(vec![later]),
            "the page views of T0 did not change"
        );
        let (_, answered) = read_since::<Sessions>(&views, Some(&sessions), vec![]);
        assert_eq!(
            answered,
            Answered::Changed(vec![T0]),
            "the session starting at T0 did"
        );
        let (kept, fresh) = both(&views);
        assert_eq!(kept, fresh);
    }
}
