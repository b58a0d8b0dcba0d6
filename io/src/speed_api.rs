//! The speed layer's contract with its readers: what `GET /v1/speed/status` answers
//! ([`Status`]), the headers that `GET /v1/speed/views/{metric}` sets next to the Parquet
//! views, and [`RealtimeSource`], the in-process handle through which a serving layer in
//! the same process reads the real-time views without depending on the speed crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared_logic::{Aggregates, GroupKey, Grouping, MetricId};

/// Header of a views answer: the instance's watermark (epoch ms).
pub const WATERMARK_HEADER: &str = "x-lambda-watermark";
/// Header of a views answer: the newest visible event time (epoch ms).
pub const NEWEST_EVENT_HEADER: &str = "x-lambda-newest-event";
/// Header of a views answer: the allowed lateness (ms).
pub const ALLOWED_LATENESS_HEADER: &str = "x-lambda-allowed-lateness";

/// Counts kept per partition (and summed for the instance).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub records: u64,
    pub events: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub late_dropped: u64,
    pub late_side_output: u64,
    pub late_updated: u64,
}

impl Counters {
    /// Adds another partition's counts.
    pub fn add(&mut self, o: &Counters) {
        self.records += o.records;
        self.events += o.events;
        self.rejected += o.rejected;
        self.duplicates += o.duplicates;
        self.late_dropped += o.late_dropped;
        self.late_side_output += o.late_side_output;
        self.late_updated += o.late_updated;
    }
}

/// What the change streams did, counted by outcome (`orders` and `daily_sales`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeCounters {
    pub order_changes: u64,
    pub product_changes: u64,
    #[serde(default)]
    pub user_changes: u64,
    pub duplicates: u64,
    pub late: u64,
    pub rejected: u64,
    /// Held changes whose deltas changed because a product or user version arrived after
    /// them.
    pub rederived: u64,
}

/// What the speed layer knows about time and progress, without the views themselves.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Minimum of the active partitions' watermarks.
    pub watermark: Option<i64>,
    /// Newest event time that is visible (freshness = now − this).
    pub newest_event_ms: Option<i64>,
    /// Partition → next offset: what the views include (with several topics, the sum of
    /// their next offsets: the records read).
    pub offsets: BTreeMap<i32, i64>,
    /// Partition → records behind the partition's end, as last reported by the client.
    pub lag: BTreeMap<i32, i64>,
    /// Wall-clock time (epoch ms) of the last checkpoint.
    pub last_checkpoint_ms: Option<i64>,
    pub counters: Counters,
}

/// The body of `/v1/speed/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Which computation of the views this instance serves (`--views-version`).
    pub views_version: u32,
    pub progress: Progress,
    pub allowed_lateness_ms: i64,
    pub out_of_orderness_ms: i64,
    /// Fingerprint of the metric logic, windows and rates the views are computed with.
    pub logic: String,
    pub revised_windows: Vec<i64>,
    pub live_keys: usize,
    pub dedup_keys: usize,
    /// Users whose open sessions are held.
    pub session_users: usize,
    /// What the change streams did (the `orders` metric).
    #[serde(default)]
    pub changes: ChangeCounters,
    /// Order changes held for re-derivation when a product version arrives.
    #[serde(default)]
    pub held_order_changes: usize,
}

/// The real-time views of a speed layer running in this process.
pub trait RealtimeSource: Send + Sync {
    /// Hands every group of aggregates that holds views (one per partition and change
    /// stream partition) to `visit` under one consistent read, and says how far the views
    /// are.
    fn visit_aggregates(&self, visit: &mut dyn FnMut(&Aggregates)) -> Progress;
    /// Hands `visit` the states of `metric` (as `&M::State`) grouped by `grouping`, one per
    /// window starting in `[from_ms, to_ms)` and grouped values, merged over what is held,
    /// under one consistent read, in order of window start and then grouped values
    /// (compared as strings); says how far the views are.
    fn select(
        &self,
        metric: MetricId,
        from_ms: i64,
        to_ms: i64,
        grouping: &Grouping,
        visit: &mut dyn FnMut(&GroupKey, &dyn std::any::Any),
    ) -> Progress;
    /// The partitions whose state is held (none before the first assignment).
    fn partitions(&self) -> Vec<i32>;
    /// The allowed lateness the views are kept with (ms).
    fn allowed_lateness_ms(&self) -> i64;
    /// What `/v1/speed/status` would answer.
    fn status(&self) -> Status;
}
