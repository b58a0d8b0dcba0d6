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

/// Each sketch a metric names estimates exactly the value it names, in every metric:
/// what a consumer merging the sketches of regrouped rows relies on.
#[test]
fn each_sketch_estimates_the_value_it_names() {
    use crate::registry::{visit_all, MetricVisitor};

    #[derive(Clone)]
    struct Check<'a>(&'a Aggregates);
    impl MetricVisitor for Check<'_> {
        type Output = usize;
        fn visit<M: Registered>(self) -> usize {
            let mut checked = 0;
            for (_, state) in self.0.views::<M>().iter() {
                let values = M::values(state);
                let sketches = M::sketches(state);
                assert_eq!(sketches.len(), M::SKETCHES.len(), "{}", M::NAME);
                for ((name, value), sketch) in M::SKETCHES.iter().zip(sketches) {
                    let i = M::VALUES.iter().position(|(v, _)| v == value);
                    let i =
                        i.unwrap_or_else(|| panic!("{}: sketch {name} names no value", M::NAME));
                    assert_eq!(
                        values[i],
                        Value::Count(sketch.estimate()),
                        "{}.{name}",
                        M::NAME
                    );
                    checked += 1;
                }
            }
            checked
        }
    }
    let events: Vec<Event> = (0..40)
        .map(|i| {
            let kind = ["page_view", "add_to_cart", "purchase"][i % 3];
            let extra = match kind {
                "purchase" => r#","product_id":"p1","category":"toys","quantity":1,"price":"1.00","currency":"USD""#,
                "add_to_cart" => r#","product_id":"p1","category":"toys","quantity":1"#,
                _ => r#","url":"/a""#,
            };
            event(&format!("e{i}"), kind, i as i64 * 1000, &format!("u{}", i % 7), extra)
        })
        .collect();
    let checked: usize = visit_all(Check(&fold_day(&events))).into_iter().sum();
    assert!(checked >= 5, "only {checked} sketches checked");
}

/// A state without its sketches keeps every value but the ones its metric declares sketched
/// ([`Metric::SKETCHED_VALUES`]), and each declared one does depend on a sketch: what a
/// reader that drops the sketches of the rows it does not need relies on.
#[test]
fn clearing_the_sketches_changes_only_the_sketched_values() {
    use crate::registry::{visit_all, MetricVisitor};

    #[derive(Clone)]
    struct Check<'a>(&'a Aggregates);
    impl MetricVisitor for Check<'_> {
        type Output = usize;
        fn visit<M: Registered>(self) -> usize {
            let mut changed = vec![false; M::VALUES.len()];
            for name in M::SKETCHED_VALUES {
                assert!(
                    M::VALUES.iter().any(|(v, _)| v == name),
                    "{}: sketched value {name} is not a value",
                    M::NAME
                );
            }
            for (_, state) in self.0.views::<M>().iter() {
                let mut cleared = state.clone();
                M::clear_sketches(&mut cleared);
                assert!(M::sketches(&cleared).iter().all(|s| s.is_empty()));
                let (before, after) = (M::values(state), M::values(&cleared));
                for (i, (name, _)) in M::VALUES.iter().enumerate() {
                    if before[i] != after[i] {
                        assert!(
                            M::SKETCHED_VALUES.contains(name),
                            "{}.{name} changed without the sketches but is not declared sketched",
                            M::NAME
                        );
                        changed[i] = true;
                    }
                }
            }
            for (i, (name, _)) in M::VALUES.iter().enumerate() {
                if M::SKETCHED_VALUES.contains(name) {
                    assert!(changed[i], "{}.{name} never read a sketch", M::NAME);
                }
            }
            M::SKETCHED_VALUES.len()
        }
    }
    let events: Vec<Event> = (0..60)
        .map(|i| {
            let kind = ["page_view", "add_to_cart", "purchase"][i % 3];
            let extra = match kind {
                "purchase" => r#","product_id":"p1","category":"toys","quantity":1,"price":"1.00","currency":"USD""#,
                "add_to_cart" => r#","product_id":"p1","category":"toys","quantity":1"#,
                _ => r#","url":"/a","category":"toys""#,
            };
            event(&format!("e{i}"), kind, i as i64 * 1000, &format!("u{}", i % 7), extra)
        })
        .collect();
    let declared: usize = visit_all(Check(&fold_day(&events))).into_iter().sum();
    assert_eq!(declared, 8);
}
