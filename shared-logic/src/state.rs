//! Mergeable aggregate state and the keyed views built from it.
//!
//! The shape follows DataFusion's `Accumulator`: a state is *updated* with events
//! ([`crate::Metric::update`]), *merged* with other states ([`Mergeable::merge`]), *stored*
//! (serde, canonical bytes) and *evaluated* into values ([`crate::Metric::values`]). Batch
//! folds the lake into [`Aggregates`], speed folds micro-batches into them, serving merges
//! them; partitions, micro-batches and speed instances combine by the same merge.

use std::fmt;
use std::hash::{Hash, Hasher};

use hashbrown::{Equivalent, HashMap};
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventRef};
use crate::metric::{
    Funnel, Metric, MetricContext, Orders, OrdersState, PageViews, Revenue, Sessions,
    SessionsState, MAX_DIMENSIONS,
};
use crate::sessions::{Activity, Session, UserSessions};
use crate::window::WindowStart;

/// A commutative monoid: `Default` is the identity and `merge` is associative and
/// commutative. Proven for every state by the property tests in this crate.
///
/// Laws, for all states `a`, `b`, `c`:
/// - identity: `a ⊕ 0 = a`
/// - associativity: `(a ⊕ b) ⊕ c = a ⊕ (b ⊕ c)`
/// - commutativity: `a ⊕ b = b ⊕ a`
pub trait Mergeable: Default + Clone + PartialEq + fmt::Debug {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: &Self);
}

impl Mergeable for u64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

impl Mergeable for i64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

/// The key of one aggregate: a window and the metric's dimension values, in the order of
/// [`Metric::DIMENSIONS`].
///
/// The values are packed into one allocation (`u32` length, then the bytes, per value):
/// hour-sized folds hold hundreds of thousands of keys, and one allocation per key instead
/// of one per value is a measured part of the batch layer's speed.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    pub window: WindowStart,
    packed: Box<[u8]>,
}

impl GroupKey {
    /// A key from a window and dimension values.
    pub fn new(window: WindowStart, dims: &[&str]) -> Self {
        let mut packed = Vec::with_capacity(dims.iter().map(|d| d.len() + 4).sum());
        for d in dims {
            packed.extend_from_slice(&(d.len() as u32).to_le_bytes());
            packed.extend_from_slice(d.as_bytes());
        }
        GroupKey {
            window,
            packed: packed.into_boxed_slice(),
        }
    }

    /// The same dimension values under another window (rollups).
    pub fn with_window(&self, window: WindowStart) -> Self {
        GroupKey {
            window,
            packed: self.packed.clone(),
        }
    }

    /// The dimension values as bytes, in order.
    fn dim_bytes(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest: &[u8] = &self.packed;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (value, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            Some(value)
        })
    }

    /// The dimension values, in order.
    pub fn dims(&self) -> impl Iterator<Item = &str> + '_ {
        self.dim_bytes().map(|value| {
            // SAFETY: `packed` is private and only ever built by `GroupKey::new` from `&str`
            // values, at boundaries this iterator reproduces, so each piece is valid UTF-8.
            unsafe { std::str::from_utf8_unchecked(value) }
        })
    }

    /// The `i`-th dimension value.
    pub fn dim(&self, i: usize) -> Option<&str> {
        self.dims().nth(i)
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("window", &self.window)
            .field("dims", &self.dims().collect::<Vec<_>>())
            .finish()
    }
}

/// Orders by window, then by the packed values (deterministic; not the strings' order).
impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.window
            .cmp(&other.window)
            .then_with(|| self.packed.cmp(&other.packed))
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashes a window and dimension values; owned and borrowed keys hash through this one
/// function, so that a borrowed probe finds its owned key.
fn hash_key<'a, H: Hasher>(window: WindowStart, dims: impl Iterator<Item = &'a [u8]>, h: &mut H) {
    window.hash(h);
    for d in dims {
        h.write_u32(d.len() as u32);
        h.write(d);
    }
}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_key(self.window, self.dim_bytes(), h);
    }
}

/// A borrowed [`GroupKey`], so that the hot path looks keys up without allocating.
struct GroupKeyRef<'a> {
    window: WindowStart,
    dims: &'a [&'a str],
}

impl Hash for GroupKeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_key(self.window, self.dims.iter().map(|d| d.as_bytes()), h);
    }
}

impl Equivalent<GroupKey> for GroupKeyRef<'_> {
    fn equivalent(&self, key: &GroupKey) -> bool {
        if self.window != key.window {
            return false;
        }
        let mut theirs = key.dim_bytes();
        self.dims
            .iter()
            .all(|d| theirs.next() == Some(d.as_bytes()))
            && theirs.next().is_none()
    }
}

/// One metric's states by window and dimensions.
pub struct MetricViews<M: Metric> {
    groups: HashMap<GroupKey, M::State>,
}

impl<M: Metric> Default for MetricViews<M> {
    fn default() -> Self {
        MetricViews {
            groups: HashMap::new(),
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
            let state = match self.groups.get_mut(&probe) {
                Some(state) => state,
                None => {
                    let key = GroupKey::new(window, dims);
                    self.groups.entry(key).or_default()
                }
            };
            M::update(state, event, ctx);
        }
    }

    /// Merges one keyed state in.
    pub fn merge_group(&mut self, key: &GroupKey, state: &M::State) {
        match self.groups.get_mut(key) {
            Some(mine) => mine.merge(state),
            None => {
                self.groups.insert(key.clone(), state.clone());
            }
        }
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

    /// Unordered iteration over keys and states.
    pub fn iter(&self) -> impl Iterator<Item = (&GroupKey, &M::State)> {
        self.groups.iter()
    }

    /// The same states rolled up into windows of `size_ms` (minute -> hour -> day): each
    /// key's window is truncated and states that meet are merged.
    pub fn roll_up(&self, size_ms: i64) -> Self {
        let mut out = Self::default();
        for (key, state) in &self.groups {
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

impl MetricViews<Sessions> {
    /// Applies what one event did to its user's sessions: retracts the sessions it merged
    /// and adds the merged one. The common case (the event extends one session, whose start
    /// stays) is one update per window.
    pub fn apply_change(&mut self, removed: &[Session], added: &Session, ctx: &MetricContext) {
        if let [only] = removed {
            if (only.start, only.start_tie) == (added.start, added.start_tie) {
                let mut delta = SessionsState::default();
                delta.add(added, 1);
                delta.add(only, -1);
                self.add_to_session_windows(added, &delta, ctx);
                return;
            }
        }
        for s in removed {
            self.apply_session(s, -1, ctx);
        }
        self.apply_session(added, 1, ctx);
    }

    /// Adds (`sign` = 1) or retracts (`sign` = -1) a session in the windows of its start;
    /// a key whose sums return to zero is removed, so that views built in different orders
    /// hold the same keys.
    pub fn apply_session(&mut self, session: &Session, sign: i64, ctx: &MetricContext) {
        let mut delta = SessionsState::default();
        delta.add(session, sign);
        self.add_to_session_windows(session, &delta, ctx);
    }

    fn add_to_session_windows(
        &mut self,
        session: &Session,
        delta: &SessionsState,
        ctx: &MetricContext,
    ) {
        let dims = [session.country.as_str(), session.device.as_str()];
        self.add_signed(session.start, &dims, delta, ctx);
    }
}

/// A state that is a group (signed sums): deltas can be retracted, and a key whose sums
/// return to zero holds nothing.
pub trait Signed: Mergeable {
    /// True when every sum is zero.
    fn is_zero(&self) -> bool;
}

impl Signed for SessionsState {
    fn is_zero(&self) -> bool {
        *self == SessionsState::default()
    }
}

impl Signed for OrdersState {
    fn is_zero(&self) -> bool {
        *self == OrdersState::default()
    }
}

impl<M: Metric> MetricViews<M>
where
    M::State: Signed,
{
    /// Merges a signed `delta` into the windows of `time` under `dims`; a key whose sums
    /// return to zero is removed, so that views built in different orders hold the same
    /// keys.
    fn add_signed(&mut self, time: i64, dims: &[&str], delta: &M::State, ctx: &MetricContext) {
        for window in ctx.windows.assign(crate::EventTime(time)) {
            let probe = GroupKeyRef { window, dims };
            let state = match self.groups.get_mut(&probe) {
                Some(state) => state,
                None => self.groups.entry(GroupKey::new(window, dims)).or_default(),
            };
            state.merge(delta);
            if state.is_zero() {
                self.groups.remove(&probe);
            }
        }
    }
}

impl MetricViews<Orders> {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one order delta in the windows of its
    /// time; a key whose sums return to zero is removed, so that views built in different
    /// orders hold the same keys.
    pub fn apply_delta(&mut self, delta: &crate::cdc::OrderDelta, sign: i64, ctx: &MetricContext) {
        let dims = [delta.category.as_str(), delta.country.as_str()];
        let mut change = OrdersState::default();
        change.add(delta, sign);
        self.add_signed(delta.time, &dims, &change, ctx);
    }
}

impl<M: Metric> Mergeable for MetricViews<M> {
    fn merge(&mut self, other: &Self) {
        for (key, state) in &other.groups {
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
        for (key, state) in other.groups {
            match self.groups.get_mut(&key) {
                Some(mine) => mine.merge(&state),
                None => {
                    self.groups.insert(key, state);
                }
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
            views
                .groups
                .insert(GroupKey::new(WindowStart(window), &dims), state);
        }
        Ok(views)
    }
}

/// The states of every metric: what one fold over some events produces.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Aggregates {
    pub page_views: MetricViews<PageViews>,
    pub funnel: MetricViews<Funnel>,
    pub revenue: MetricViews<Revenue>,
    /// Built from sessions, not by the per-event fold: see [`crate::sessions`].
    pub sessions: MetricViews<Sessions>,
    /// Built from the orders change stream, not from events: see [`crate::cdc`].
    #[serde(default)]
    pub orders: MetricViews<Orders>,
}

impl Aggregates {
    /// Folds one (already deduplicated) event into those of its windows where `accept` holds.
    pub fn update_windows(
        &mut self,
        event: &EventRef<'_>,
        ctx: &MetricContext,
        accept: impl Fn(WindowStart) -> bool,
    ) {
        self.page_views.update_windows(event, ctx, &accept);
        self.funnel.update_windows(event, ctx, &accept);
        self.revenue.update_windows(event, ctx, &accept);
    }

    /// Folds one (already deduplicated) event into every metric.
    pub fn update(&mut self, event: &EventRef<'_>, ctx: &MetricContext) {
        self.page_views.update(event, ctx);
        self.funnel.update(event, ctx);
        self.revenue.update(event, ctx);
    }

    /// Folds many (deduplicated) events into every metric, sessions included (each user's
    /// events sessionized, each session in the windows of its start).
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>, ctx: &MetricContext) -> Self {
        let mut agg = Aggregates::default();
        let mut users: HashMap<&str, UserSessions> = HashMap::new();
        for e in events {
            let view = e.view();
            agg.update(&view, ctx);
            users
                .entry(e.user_id())
                .or_default()
                .insert(&Activity::of(&view), ctx.session_gap_ms);
        }
        for sessions in users.values() {
            for s in sessions.sessions() {
                agg.sessions.apply_session(s, 1, ctx);
            }
        }
        agg
    }

    /// Total number of keys across metrics.
    pub fn len(&self) -> usize {
        self.page_views.len()
            + self.funnel.len()
            + self.revenue.len()
            + self.sessions.len()
            + self.orders.len()
    }

    /// True when no metric holds state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every metric rolled up into windows of `size_ms`.
    pub fn roll_up(&self, size_ms: i64) -> Self {
        Aggregates {
            page_views: self.page_views.roll_up(size_ms),
            funnel: self.funnel.roll_up(size_ms),
            revenue: self.revenue.roll_up(size_ms),
            sessions: self.sessions.roll_up(size_ms),
            orders: self.orders.roll_up(size_ms),
        }
    }

    /// Keeps only windows for which `keep` holds, in every metric.
    pub fn retain_windows(&mut self, mut keep: impl FnMut(WindowStart) -> bool) {
        self.page_views.retain(|k| keep(k.window));
        self.funnel.retain(|k| keep(k.window));
        self.revenue.retain(|k| keep(k.window));
        self.sessions.retain(|k| keep(k.window));
        self.orders.retain(|k| keep(k.window));
    }
}

impl Mergeable for Aggregates {
    fn merge(&mut self, other: &Self) {
        self.page_views.merge(&other.page_views);
        self.funnel.merge(&other.funnel);
        self.revenue.merge(&other.revenue);
        self.sessions.merge(&other.sessions);
        self.orders.merge(&other.orders);
    }
}

impl Aggregates {
    /// [`Mergeable::merge`] consuming `other` (no clones).
    pub fn merge_owned(&mut self, other: Aggregates) {
        self.page_views.merge_owned(other.page_views);
        self.funnel.merge_owned(other.funnel);
        self.revenue.merge_owned(other.revenue);
        self.sessions.merge_owned(other.sessions);
        self.orders.merge_owned(other.orders);
    }
}
