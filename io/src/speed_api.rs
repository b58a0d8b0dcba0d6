//! The speed layer's contract with its readers: what `GET /v1/speed/status` answers
//! ([`Status`]), what `GET /v1/speed/quality` answers ([`QualityNotes`]), the headers that `GET /v1/speed/views/{metric}` sets next to the Parquet
//! views, and [`RealtimeSource`], the in-process handle through which a serving layer in
//! the same process reads the real-time views without depending on the speed crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared_logic::arrival::ArrivalEntry;
use shared_logic::dead_letter_sample::DeadLetterSample;
use shared_logic::{Aggregates, GroupKey, Grouping, MetricId};

/// Header of a views answer: the instance's watermark (epoch ms).
pub const WATERMARK_HEADER: &str = "x-lambda-watermark";
/// Header of a views answer: the newest visible event time (epoch ms).
pub const NEWEST_EVENT_HEADER: &str = "x-lambda-newest-event";
/// Header of a views answer: the allowed lateness (ms).
pub const ALLOWED_LATENESS_HEADER: &str = "x-lambda-allowed-lateness";

/// Header of a grouped views answer: the version of the instance's views it was read at
/// ([`ViewsVersion`]); absent when the answer cannot be read incrementally.
pub const VIEWS_VERSION_HEADER: &str = "x-lambda-views-version";
/// Header of a grouped views answer to a request with `since=`: `all` when every window
/// of the range is in the answer, else the comma-separated starts of the windows of the
/// known range that changed since (answered whole, even when they now hold no rows).
pub const CHANGED_WINDOWS_HEADER: &str = "x-lambda-changed-windows";
/// Request parameters of an incremental read: the version the reader's copy is at, and
/// the window-start range `[known_from, known_to)` it holds exactly.
pub const SINCE_PARAM: &str = "since";
pub const KNOWN_FROM_PARAM: &str = "known_from";
pub const KNOWN_TO_PARAM: &str = "known_to";

/// The version of one speed instance's grouped views: `epoch` names the instance's
/// lifetime (a restart starts a new one), `version` counts the window changes within it.
/// Written `<epoch>-<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewsVersion {
    pub epoch: u64,
    pub version: u64,
}

impl std::fmt::Display for ViewsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.epoch, self.version)
    }
}

impl std::str::FromStr for ViewsVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a views version (<epoch>-<version>)");
        let (epoch, version) = text.split_once('-').ok_or_else(bad)?;
        Ok(ViewsVersion {
            epoch: epoch.parse().map_err(|_| bad())?,
            version: version.parse().map_err(|_| bad())?,
        })
    }
}

/// What a reader already holds of one metric and grouping: every window starting in
/// `[known_from, known_to)` exactly as of `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    pub version: ViewsVersion,
    pub known_from: i64,
    pub known_to: i64,
}

impl Since {
    /// Whether the reader holds the window starting at `start`.
    pub fn knows(&self, start: i64) -> bool {
        (self.known_from..self.known_to).contains(&start)
    }
}

/// Which windows of the asked range an incremental answer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Every window of the range.
    All,
    /// The windows outside the reader's known range, and these (sorted) starts inside it,
    /// which changed since the reader's version.
    Changed(Vec<i64>),
}

impl Answered {
    /// The header text: `all`, or the changed starts separated by commas.
    pub fn header(&self) -> String {
        match self {
            Answered::All => "all".into(),
            Answered::Changed(starts) => starts
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Reads [`Answered::header`]'s text.
    pub fn parse(text: &str) -> Result<Answered, String> {
        if text == "all" {
            return Ok(Answered::All);
        }
        let mut starts = text
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>()
                    .map_err(|_| format!("`{s}` is not a window start"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        starts.sort_unstable();
        Ok(Answered::Changed(starts))
    }
}

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

/// The body of `/v1/speed/quality?from=&to=`: what only the speed layer saw of the hours
/// starting in the range (see `shared_logic::arrival`), summed over the partitions held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityNotes {
    /// Per event-time hour and producer: events arrived, out of order, late.
    pub arrivals: Vec<ArrivalEntry>,
    /// The first rejected records of each record-time hour, producer and reason.
    pub dead_letters: Vec<DeadLetterSample>,
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
    /// What `/v1/speed/quality` would answer for the hours starting in `[from_ms, to_ms)`.
    fn quality_notes(&self, from_ms: i64, to_ms: i64) -> QualityNotes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_answered_windows_round_trip_and_bad_text_is_an_error() {
        let v = ViewsVersion {
            epoch: u64::MAX,
            version: 42,
        };
        assert_eq!(v.to_string().parse::<ViewsVersion>(), Ok(v));
        for bad in ["", "1", "1-", "-2", "a-2", "1-2-3", "1--2"] {
            assert!(bad.parse::<ViewsVersion>().is_err(), "{bad}");
        }
        for answered in [
            Answered::All,
            Answered::Changed(vec![]),
            Answered::Changed(vec![-60_000, 0, 120_000]),
        ] {
            assert_eq!(Answered::parse(&answered.header()), Ok(answered));
        }
        assert_eq!(
            Answered::parse("120000,0"),
            Ok(Answered::Changed(vec![0, 120_000]))
        );
        assert!(Answered::parse("1,x").is_err());
    }
}
