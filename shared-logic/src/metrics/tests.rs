//! Fixtures the tests beside each metric definition share: hand-written events, validated
//! as the layers validate them, folded into every metric and rolled up into one day, so
//! that a test can compare a metric's values with numbers computed by hand.

use crate::event::{Event, Origin};
use crate::metric::{MetricContext, Value};
use crate::registry::{Aggregates, Registered};
use crate::validate::Validator;
use crate::window::DAY_MS;

/// 2026-03-01T10:00:00Z: EUR is 1.085 USD, GBP 1.265, JPY 0.0066 (the shipped table).
pub(crate) const T0: i64 = 1_772_359_200_000;

/// One event at `T0 + offset_ms`: `kind` is the event type, `extra` more JSON fields
/// (without braces, starting with a comma when not empty).
pub(crate) fn event(id: &str, kind: &str, offset_ms: i64, user: &str, extra: &str) -> Event {
    let json = format!(
        r#"{{"event_id":"{id}","event_type":"{kind}","event_time":{},"user_id":"{user}","country":"US","device":"desktop"{extra}}}"#,
        T0 + offset_ms
    );
    Validator::default()
        .validate(json.as_bytes(), Origin::import_line(0), T0 + DAY_MS)
        .expect("fixture events are valid")
}

/// The events folded into every metric (default context) and rolled up into one day.
pub(crate) fn fold_day(events: &[Event]) -> Aggregates {
    Aggregates::fold(events, &MetricContext::default()).roll_up(DAY_MS)
}

/// Metric `M`'s values per key (dimension values), sorted by dimension values.
pub(crate) fn values<M: Registered>(agg: &Aggregates) -> Vec<(Vec<String>, Vec<Value>)> {
    let mut rows: Vec<_> = agg
        .views::<M>()
        .iter()
        .map(|(k, s)| (k.dims().map(str::to_string).collect(), M::values(s)))
        .collect();
    rows.sort_by(|a: &(Vec<String>, _), b| a.0.cmp(&b.0));
    rows
}

/// The dimension values of a key, for comparisons.
pub(crate) fn key(dims: &[&str]) -> Vec<String> {
    dims.iter().map(|d| d.to_string()).collect()
}

/// Shorthand for an expected count.
pub(crate) fn n(v: u64) -> Value {
    Value::Count(v)
}

/// Shorthand for an expected ratio.
pub(crate) fn r(v: f64) -> Value {
    Value::Ratio(Some(v))
}
