//! One metric's views: its states by window and dimension values ([`MetricViews`]), updated
//! event by event, merged, rolled up and serialised in key order (so that equal views give
//! equal bytes).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::EventRef;
use crate::group_key::{GroupKey, GroupKeyRef};
use crate::group_table::GroupTable;
use crate::mergeable::{Mergeable, Signed};
use crate::metric::{Metric, MetricContext, MAX_DIMENSIONS};
use crate::window::WindowStart;

/// One metric's states by window and dimensions.
pub struct MetricViews<M: Metric> {
    groups: GroupTable<M::State>,
}

impl<M: Metric> Default for MetricViews<M> {
    fn default() -> Self {
        MetricViews {
            groups: GroupTable::default(),
        }
    }
}

impl<M: Metric> Clone for MetricViews<M> {
    fn clone(&self) -> Self {
        MetricViews {
            groups: self.groups.clone(),
        }
    }
}

impl<M: Metric> PartialEq for MetricViews<M> {
    fn eq(&self, other: &Self) -> bool {
        self.groups == other.groups
    }
}

impl<M: Metric> fmt::Debug for MetricViews<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

impl<M: Metric> MetricViews<M> {
    /// Folds one event into every window it belongs to, if the metric applies to it.
    pub fn update(&mut self, event: &EventRef<'_>, ctx: &MetricContext) {
        self.update_windows(event, ctx, |_| true);
    }

    /// Folds one event into those of its windows for which `accept` holds (the speed
    /// layer leaves closed windows alone under the drop and side-output policies).
    pub fn update_windows(
        &mut self,
        event: &EventRef<'_>,
        ctx: &MetricContext,
        accept: impl Fn(WindowStart) -> bool,
    ) {
        self.apply_windows(event, ctx, accept, |state| M::update(state, event, ctx));
    }

    /// Notes a duplicate delivery of `event` (which the layer dropped) in those of its
    /// windows where `accept` holds, if the metric counts duplicates
    /// ([`Metric::NOTES_DUPLICATES`]).
    pub fn note_duplicate_windows(
        &mut self,
        event: &EventRef<'_>,
        ctx: &MetricContext,
        accept: impl Fn(WindowStart) -> bool,
    ) {
        if M::NOTES_DUPLICATES {
            self.apply_windows(event, ctx, accept, M::note_duplicate);
        }
    }

    /// Notes a record rejected for `reason`, from `source`, with Kafka record time
    /// `record_ms`, in the windows of that time, if the metric counts rejects
    /// ([`Metric::NOTES_REJECTS`]).
    pub fn note_reject_windows(
        &mut self,
        source: &str,
        reason: crate::validate::Reason,
        record_ms: i64,
        ctx: &MetricContext,
    ) {
        if !M::NOTES_REJECTS {
            return;
        }
        let mut dims = [""; MAX_DIMENSIONS];
        M::reject_dimension_values(source, &mut dims);
        let dims = &dims[..M::DIMENSIONS.len()];
        for window in ctx.windows.assign(crate::event::EventTime(record_ms)) {
            let probe = GroupKeyRef { window, dims };
            let state = self
                .groups
                .get_or_default(&probe, || GroupKey::new(window, dims));
            M::note_reject(state, reason);
        }
    }

    /// Runs `apply` on the state of each of the event's windows where `accept` holds.
    fn apply_windows(
        &mut self,
        event: &EventRef<'_>,
        ctx: &MetricContext,
        accept: impl Fn(WindowStart) -> bool,
        apply: impl Fn(&mut M::State),
    ) {
        if !M::applies_to(event) {
            return;
        }
        let mut dims = [""; MAX_DIMENSIONS];
        M::dimension_values(event, &mut dims);
        let dims = &dims[..M::DIMENSIONS.len()];
        for window in ctx
            .windows
            .assign(event.event_time())
            .filter(|w| accept(*w))
        {
            let probe = GroupKeyRef { window, dims };
            let state = self
                .groups
                .get_or_default(&probe, || GroupKey::new(window, dims));
            apply(state);
        }
    }

    /// Merges one keyed state in.
    pub fn merge_group(&mut self, key: &GroupKey, state: &M::State) {
        match self.groups.get_mut(key) {
            Some(mine) => mine.merge(state),
            None => self.groups.insert_new(key.clone(), state.clone()),
        }
    }

    /// Merges one state in under a borrowed key (no key is built unless it is new).
    pub(crate) fn merge_ref(&mut self, probe: &GroupKeyRef<'_>, state: &M::State) {
        self.groups
            .get_or_default(probe, || GroupKey::new(probe.window, probe.dims))
            .merge(state);
    }

    /// Number of keys (window × dimension values).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when no key holds state.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The state of one key.
    pub fn get(&self, key: &GroupKey) -> Option<&M::State> {
        self.groups.get(key)
    }

    /// All keys and states, sorted by key (deterministic output order).
    pub fn sorted(&self) -> Vec<(&GroupKey, &M::State)> {
        let mut rows: Vec<_> = self.groups.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }

    /// Unordered iteration over the keys and states of windows starting in
    /// `[from_ms, to_ms)`.
    pub fn in_windows(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = (&GroupKey, &M::State)> {
        self.groups
            .iter()
            .filter(move |(k, _)| k.window.0 >= from_ms && k.window.0 < to_ms)
    }

    /// Unordered iteration over keys and states.
    pub fn iter(&self) -> impl Iterator<Item = (&GroupKey, &M::State)> {
        self.groups.iter()
    }

    /// The keys and states, moved out (unordered).
    pub fn into_groups(self) -> impl Iterator<Item = (GroupKey, M::State)> {
        self.groups.into_entries()
    }

    /// The same states rolled up into windows of `size_ms` (minute -> hour -> day): each
    /// key's window is truncated and states that meet are merged.
    pub fn roll_up(&self, size_ms: i64) -> Self {
        let mut out = Self::default();
        for (key, state) in self.groups.iter() {
            let rolled = key.with_window(key.window.truncate(size_ms));
            out.merge_group(&rolled, state);
        }
        out
    }

    /// Keeps only the keys for which `keep` holds (eviction of old windows).
    pub fn retain(&mut self, mut keep: impl FnMut(&GroupKey) -> bool) {
        self.groups.retain(|k, _| keep(k));
    }
}

impl<M: Metric> MetricViews<M>
where
    M::State: Signed,
{
    /// Merges a signed `delta` into the windows of `time` under `dims`; a key whose sums
    /// return to zero is removed, so that views built in different orders hold the same
    /// keys.
    pub(crate) fn add_signed(
        &mut self,
        time: i64,
        dims: &[&str],
        delta: &M::State,
        ctx: &MetricContext,
    ) {
        for window in ctx.windows.assign(crate::EventTime(time)) {
            let probe = GroupKeyRef { window, dims };
            let state = self
                .groups
                .get_or_default(&probe, || GroupKey::new(window, dims));
            state.merge(delta);
            if state.is_zero() {
                self.groups.remove(&probe);
            }
        }
    }
}

impl<M: Metric> Mergeable for MetricViews<M> {
    fn merge(&mut self, other: &Self) {
        for (key, state) in other.groups.iter() {
            self.merge_group(key, state);
        }
    }
}

impl<M: Metric> MetricViews<M> {
    /// The same as [`Mergeable::merge`], consuming `other`: keys and states move instead of
    /// being cloned, and the smaller side is folded into the larger.
    pub fn merge_owned(&mut self, mut other: Self) {
        if other.groups.len() > self.groups.len() {
            std::mem::swap(&mut self.groups, &mut other.groups);
        }
        for (key, state) in other.groups.into_entries() {
            match self.groups.get_mut(&key) {
                Some(mine) => mine.merge(&state),
                None => self.groups.insert_new(key, state),
            }
        }
    }
}

/// Serialised as a sequence of `(window, dimension values, state)`, sorted by key so that
/// equal views give equal bytes (checkpoints, HTTP).
impl<M: Metric> Serialize for MetricViews<M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let rows = self.sorted();
        let mut seq = s.serialize_seq(Some(rows.len()))?;
        for (key, state) in rows {
            let dims: Vec<&str> = key.dims().collect();
            seq.serialize_element(&(key.window.0, dims, state))?;
        }
        seq.end()
    }
}

impl<'de, M: Metric> Deserialize<'de> for MetricViews<M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rows: Vec<(i64, Vec<String>, M::State)> = Deserialize::deserialize(d)?;
        let mut views = MetricViews::default();
        for (window, dims, state) in rows {
            let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
            let key = GroupKey::new(WindowStart(window), &dims);
            // A repeated key (not written by `serialize`) keeps its last state, as a map's
            // insert would.
            *views.groups.get_or_default(&key, || key.clone()) = state;
        }
        Ok(views)
    }
}

impl<M: Metric> MetricViews<M> {
    /// Sliding windows assembled from these panes (see [`crate::sliding`]): each pane merged
    /// into every window of `window` that holds it.
    pub fn slide(&self, window: crate::sliding::SlidingWindow) -> MetricViews<M> {
        let mut out = MetricViews::default();
        for (key, state) in self.iter() {
            let dims: Vec<&str> = key.dims().collect();
            for start in window.windows_of(key.window.0) {
                out.merge_group(&GroupKey::new(start, &dims), state);
            }
        }
        out
    }
}
