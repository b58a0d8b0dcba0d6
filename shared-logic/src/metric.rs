//! What a metric is: the [`Metric`] contract (dimensions, mergeable state, update and
//! evaluation), the [`MetricContext`] its meaning depends on, and the kinds of values it
//! reports. The metrics themselves are in [`crate::metrics`]; the list of them is
//! [`crate::registry`].
//!
//! A metric says which events it counts ([`Metric::applies_to`]), how an event picks its
//! dimension values, how an event updates the state, and how a (merged) state evaluates to
//! values. Derived values (conversion rates, average order value) are computed from merged
//! state in [`Metric::values`], never stored or merged themselves.

use serde::{Deserialize, Serialize};

use crate::event::EventRef;
use crate::hll::Hll;
use crate::mergeable::Mergeable;
use crate::money::Rates;
use crate::window::WindowSpec;

/// Most dimensions any metric has.
pub const MAX_DIMENSIONS: usize = 4;

/// The configuration a metric's meaning depends on. Batch and speed must use equal contexts
/// for their views to be comparable; [`MetricContext::fingerprint`] identifies one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricContext {
    pub windows: WindowSpec,
    pub rates: Rates,
    /// Inactivity that ends a session (the `sessions` metric), ms.
    pub session_gap_ms: i64,
    /// In which window a cancelled, refunded or deleted order's revenue is reversed (the
    /// `orders` metric).
    pub reversal: crate::cdc::ReversalWindow,
    /// Metrics answered in sliding windows, assembled from the panes `windows` keeps.
    pub sliding: crate::sliding::SlidingWindows,
}

impl Default for MetricContext {
    /// One-minute tumbling windows, the shipped rates table, revenue in USD.
    fn default() -> Self {
        MetricContext {
            windows: WindowSpec::default(),
            rates: Rates::default_usd(),
            session_gap_ms: crate::sessions::DEFAULT_GAP_MS,
            reversal: crate::cdc::ReversalWindow::default(),
            sliding: crate::sliding::SlidingWindows::default(),
        }
    }
}

impl MetricContext {
    /// Identifies the logic version, window spec, rates table, session gap, reversal
    /// window and sliding windows (only when some metric has one, so a context without
    /// keeps the fingerprint it had before they existed).
    pub fn fingerprint(&self) -> String {
        let mut text = format!(
            "v{}-{:?}-{:016x}-gap{}-reversal-{:?}",
            crate::LOGIC_VERSION,
            self.windows,
            self.rates.fingerprint(),
            self.session_gap_ms,
            self.reversal
        );
        if !self.sliding.is_empty() {
            text.push_str(&format!("-sliding-{}", self.sliding.text()));
        }
        text
    }
}

/// The type of a reported value (the column type in view files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Unsigned count or distinct-count estimate.
    Count,
    /// Minor units of the reporting currency.
    Money,
    /// Derived ratio (nullable).
    Ratio,
    /// A duration in milliseconds, such as a delay quantile (nullable: none measured).
    Millis,
    /// An instant, epoch milliseconds UTC, such as the newest event time (nullable).
    Time,
}

/// A value a metric reports. In JSON: a number, `null` for an absent ratio, duration or
/// instant, and an instant as RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count or an estimate of distinct values.
    Count(u64),
    /// Money in minor units of the reporting currency.
    Money(i64),
    /// A derived ratio; `None` when its denominator is zero.
    Ratio(Option<f64>),
    /// A duration in ms; `None` when nothing was measured.
    Millis(Option<u64>),
    /// An instant, epoch ms; `None` when there is none.
    Time(Option<i64>),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Count(n) => s.serialize_u64(n),
            Value::Money(m) => s.serialize_i64(m),
            Value::Ratio(r) => r.serialize(s),
            Value::Millis(d) => d.serialize(s),
            Value::Time(t) => t.map(crate::instant::format_instant).serialize(s),
        }
    }
}

/// What a metric's states are built from, which decides the path that builds them in each
/// layer. Both layers fold [`BuiltFrom::Events`] metrics event by event (a new metric of
/// this kind needs nothing outside `shared-logic`); the other two have a path of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltFrom {
    /// Each event updates the state ([`Metric::update`]).
    Events,
    /// Each user's sessions (see [`crate::sessions`]).
    Sessions,
    /// The order deltas of the `orders` change stream (see [`crate::cdc`]).
    OrderChanges,
}

/// One metric: dimensions, mergeable state, update and evaluation.
pub trait Metric: 'static {
    /// The metric's name in the API and in view paths.
    const NAME: &'static str;
    /// Dimension names, in key order.
    const DIMENSIONS: &'static [&'static str];
    /// Value names and kinds, in the order [`Metric::values`] returns them.
    const VALUES: &'static [(&'static str, ValueKind)];
    /// The aggregate state.
    type State: Mergeable + Send + Sync + Serialize + for<'de> Deserialize<'de> + 'static;

    /// What the states are built from.
    const BUILT_FROM: BuiltFrom = BuiltFrom::Events;

    /// Whether the event counts towards this metric at all.
    fn applies_to(event: &EventRef<'_>) -> bool;
    /// Writes the event's dimension values into `out[..DIMENSIONS.len()]`.
    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]);
    /// Folds the event into the state.
    fn update(state: &mut Self::State, event: &EventRef<'_>, ctx: &MetricContext);
    /// Whether the state counts duplicate deliveries: each layer calls
    /// [`Metric::note_duplicate`] for every delivery its dedup rule drops, in the windows
    /// and dimensions of the dropped delivery (the `quality` metric).
    const NOTES_DUPLICATES: bool = false;
    /// Notes one dropped duplicate delivery (see [`Metric::NOTES_DUPLICATES`]).
    fn note_duplicate(_state: &mut Self::State) {}
    /// Whether the state counts records validation rejected ([`Metric::note_reject`]): each
    /// layer notes every reject that has a Kafka record time, in the windows of that time
    /// (a rejected record's event time is not to be trusted) and under the dimensions of
    /// [`Metric::reject_dimension_values`] (the `quality` metric).
    const NOTES_REJECTS: bool = false;
    /// Writes the dimension values of a record rejected from `source` into `out`.
    fn reject_dimension_values<'a>(_source: &'a str, _out: &mut [&'a str]) {}
    /// Notes one rejected record (see [`Metric::NOTES_REJECTS`]).
    fn note_reject(_state: &mut Self::State, _reason: crate::validate::Reason) {}
    /// Evaluates a (possibly merged) state; the same order as [`Metric::VALUES`].
    fn values(state: &Self::State) -> Vec<Value>;
    /// The distinct-count sketches in the state, by name (`users`), and the value each
    /// one estimates: what a consumer merges when it regroups rows (summing estimates
    /// over-counts users seen in several rows).
    const SKETCHES: &'static [(&'static str, &'static str)] = &[];
    /// The state's sketches, in the order of [`Metric::SKETCHES`].
    fn sketches(_state: &Self::State) -> Vec<&Hll> {
        Vec::new()
    }
    /// The same sketches, to change (see [`Metric::clear_sketches`]).
    fn sketches_mut(_state: &mut Self::State) -> Vec<&mut Hll> {
        Vec::new()
    }
    /// The values read from a sketch (the estimates, and ratios of them): the values a
    /// state without its sketches gets wrong. Every other value is the same with or
    /// without them (tested for every metric).
    const SKETCHED_VALUES: &'static [&'static str] = &[];
    /// Empties the state's sketches: what a reader that needs none of
    /// [`Metric::SKETCHED_VALUES`] keeps of a state, so that moving and merging it costs
    /// its counters only (a minute's sketch of a busy URL holds hundreds of hashes).
    fn clear_sketches(state: &mut Self::State) {
        for sketch in Self::sketches_mut(state) {
            *sketch = Hll::default();
        }
    }
    /// Whether a real-time window is settled once the watermark passes its end plus the
    /// allowed lateness. True for per-event metrics; a session keeps growing after the
    /// window of its start closes, so real-time `sessions` windows stay provisional.
    const SETTLES_WITH_WATERMARK: bool = true;
}

/// A derived ratio; `None` when the denominator is zero.
pub fn ratio(num: u64, den: u64) -> Value {
    Value::Ratio(if den == 0 {
        None
    } else {
        Some(num as f64 / den as f64)
    })
}

/// Money from an exact sum in minor units: clamped into the `i64` range of the view column
/// (±9.2 × 10^18, which no state reaches from validated events; see [`crate::mergeable`]).
pub fn money(sum: i128) -> Value {
    Value::Money(sum.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

/// A count from a signed sum (a retractable count of a group state): negative sums, which
/// only a partial view can hold, count as zero; clamped into `u64`.
pub fn count(sum: i128) -> u64 {
    sum.clamp(0, u64::MAX as i128) as u64
}

/// Name, dimensions and values of a metric, for catalogues such as `GET /v1/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricInfo {
    pub name: &'static str,
    pub dimensions: &'static [&'static str],
    pub values: &'static [(&'static str, ValueKind)],
}

/// The catalogue entry of metric `M`.
pub fn info<M: Metric>() -> MetricInfo {
    MetricInfo {
        name: M::NAME,
        dimensions: M::DIMENSIONS,
        values: M::VALUES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_divides_numerator_by_denominator_and_is_absent_over_zero() {
        assert_eq!(ratio(1, 4), Value::Ratio(Some(0.25)));
        assert_eq!(ratio(3, 2), Value::Ratio(Some(1.5)));
        assert_eq!(ratio(0, 7), Value::Ratio(Some(0.0)));
        assert_eq!(ratio(5, 0), Value::Ratio(None));
    }

    #[test]
    fn values_are_numbers_null_or_rfc3339_text_in_json() {
        let json = serde_json::to_string(&[
            Value::Count(3),
            Value::Money(-5),
            Value::Ratio(None),
            Value::Millis(Some(250)),
            Value::Time(Some(1_767_225_600_000)),
            Value::Time(None),
        ])
        .unwrap();
        assert_eq!(json, r#"[3,-5,null,250,"2026-01-01T00:00:00Z",null]"#);
    }

    #[test]
    fn sums_are_clamped_into_their_columns() {
        assert_eq!(money(-1234), Value::Money(-1234));
        assert_eq!(money(i64::MAX as i128 + 1), Value::Money(i64::MAX));
        assert_eq!(money(i128::MIN), Value::Money(i64::MIN));
        assert_eq!(count(-3), 0);
        assert_eq!(count(42), 42);
        assert_eq!(count(i128::MAX), u64::MAX);
    }
}
