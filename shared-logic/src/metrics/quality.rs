//! The `quality` metric: the data-quality figures of each window, producer and event type
//! that do not depend on when a layer saw a record ([`QualityState`]): valid events,
//! duplicate deliveries, the unknown shares of the optional dimensions, completeness, the
//! delay quantiles (Kafka record time minus event time), the newest event time, and the
//! records validation rejected (in the window of their record time, under event type
//! `unknown`).
//!
//! The dimension is called `producer` (the record's source: the `lambda-source` header,
//! else the event's `source` field, else `unknown`; [`crate::source`]) because `source`
//! already names where a served row came from (batch, speed or both).

use crate::event::{EventRef, UNKNOWN};
use crate::metric::{Metric, MetricContext, Value, ValueKind};
use crate::quality::QualityState;
use crate::validate::Reason;

/// `quality`: the data-quality figures by producer and event type.
pub struct Quality;

impl Metric for Quality {
    const NAME: &'static str = "quality";
    const DIMENSIONS: &'static [&'static str] = &["producer", "event_type"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("events", ValueKind::Count),
        ("duplicates", ValueKind::Count),
        ("duplicate_share", ValueKind::Ratio),
        ("unknown_country_share", ValueKind::Ratio),
        ("unknown_device_share", ValueKind::Ratio),
        ("unknown_category_share", ValueKind::Ratio),
        ("completeness", ValueKind::Ratio),
        ("timed", ValueKind::Count),
        ("delay_p50_ms", ValueKind::Millis),
        ("delay_p95_ms", ValueKind::Millis),
        ("delay_p99_ms", ValueKind::Millis),
        ("ahead", ValueKind::Count),
        ("newest_event", ValueKind::Time),
        ("rejected", ValueKind::Count),
        ("validity", ValueKind::Ratio),
    ];
    type State = QualityState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        true
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.source();
        out[1] = event.event_type().as_str();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, _ctx: &MetricContext) {
        state.update(event);
    }

    const NOTES_DUPLICATES: bool = true;
    fn note_duplicate(state: &mut Self::State) {
        state.note_duplicate();
    }

    const NOTES_REJECTS: bool = true;
    fn reject_dimension_values<'a>(source: &'a str, out: &mut [&'a str]) {
        out[0] = source;
        out[1] = UNKNOWN;
    }
    fn note_reject(state: &mut Self::State, reason: Reason) {
        state.note_reject(reason);
    }

    fn values(state: &Self::State) -> Vec<Value> {
        let f = state.figures();
        let share = |s: Option<f64>| Value::Ratio(s);
        vec![
            Value::Count(f.events),
            Value::Count(f.duplicates),
            share(f.duplicate_share),
            share(f.unknown_country_share),
            share(f.unknown_device_share),
            share(f.unknown_category_share),
            share(f.completeness),
            Value::Count(f.timed),
            Value::Millis(f.delay_p50_ms),
            Value::Millis(f.delay_p95_ms),
            Value::Millis(f.delay_p99_ms),
            Value::Count(f.ahead),
            Value::Time(f.newest_event_ms),
            Value::Count(f.rejected),
            share(f.validity),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Origin, RecordMeta};
    use crate::metric::MetricContext;
    use crate::metrics::tests::{key, n, T0};
    use crate::registry::Aggregates;
    use crate::validate::Validator;
    use crate::window::{WindowStart, DAY_MS};

    fn event(id: &str, kind: &str, extra: &str, meta: RecordMeta<'_>) -> crate::Event {
        let json = format!(
            r#"{{"event_id":"{id}","event_type":"{kind}","event_time":{T0},"user_id":"u","url":"/","country":"US"{extra}}}"#
        );
        Validator::default()
            .validate_record(json.as_bytes(), meta, T0 + DAY_MS)
            .expect("fixture events are valid")
    }

    #[test]
    fn quality_is_per_producer_and_event_type_and_counts_noted_duplicates_and_rejects() {
        let ctx = MetricContext::default();
        let at = |record_ms| RecordMeta {
            origin: Origin::import_line(0),
            record_ms: Some(record_ms),
            source_header: Some(b"web"),
        };
        let cart = r#","product_id":"p","quantity":1,"device":"mobile""#;
        let events = [
            event("a", "page_view", r#","device":"mobile""#, at(T0 + 500)),
            event("b", "page_view", "", at(T0 + 1_500)),
            event("c", "add_to_cart", cart, at(T0 + 100)),
            // No header: the JSON field names the producer.
            event(
                "d",
                "page_view",
                r#","source":"App","device":"tablet""#,
                RecordMeta::at(Origin::import_line(0)),
            ),
        ];
        let mut agg = Aggregates::fold(&events, &ctx);
        agg.note_duplicate_windows(&events[0].view(), &ctx, |_| true);
        // Rejected by `accept`: not noted.
        agg.note_duplicate_windows(&events[2].view(), &ctx, |_| false);
        // A reject: in the window of its record time, under event type `unknown`.
        agg.note_reject("web", Reason::BadType, T0 + 5, &ctx);
        let rows = crate::metrics::tests::values::<Quality>(&agg.roll_up(DAY_MS));
        let newest = Value::Time(Some(T0));
        assert_eq!(
            rows,
            vec![
                (
                    key(&["app", "page_view"]),
                    vec![
                        n(1),
                        n(0),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(1.0)),
                        Value::Ratio(Some(1.0)),
                        n(0),
                        Value::Millis(None),
                        Value::Millis(None),
                        Value::Millis(None),
                        n(0),
                        newest,
                        n(0),
                        Value::Ratio(Some(1.0)),
                    ]
                ),
                (
                    key(&["web", "add_to_cart"]),
                    vec![
                        n(1),
                        n(0),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(1.0)),
                        Value::Ratio(Some(1.0)),
                        n(1),
                        Value::Millis(Some(100)),
                        Value::Millis(Some(100)),
                        Value::Millis(Some(100)),
                        n(0),
                        newest,
                        n(0),
                        Value::Ratio(Some(1.0)),
                    ]
                ),
                (
                    key(&["web", "page_view"]),
                    vec![
                        n(2),
                        n(1),
                        Value::Ratio(Some(1.0 / 3.0)),
                        Value::Ratio(Some(0.0)),
                        Value::Ratio(Some(0.5)),
                        Value::Ratio(Some(1.0)),
                        Value::Ratio(Some(0.5)),
                        n(2),
                        // Delays of 500 and 1,500 ms, as the sketch's buckets hold
                        // them (within 1/128).
                        Value::Millis(Some(501)),
                        Value::Millis(Some(1_495)),
                        Value::Millis(Some(1_495)),
                        n(0),
                        newest,
                        n(0),
                        Value::Ratio(Some(1.0)),
                    ]
                ),
                (
                    key(&["web", "unknown"]),
                    vec![
                        n(0),
                        n(0),
                        Value::Ratio(None),
                        Value::Ratio(None),
                        Value::Ratio(None),
                        Value::Ratio(None),
                        Value::Ratio(None),
                        n(0),
                        Value::Millis(None),
                        Value::Millis(None),
                        Value::Millis(None),
                        n(0),
                        Value::Time(None),
                        n(1),
                        Value::Ratio(Some(0.0)),
                    ]
                ),
            ]
        );
        assert_eq!(
            agg.quality.iter().next().map(|(k, _)| k.window),
            Some(WindowStart(T0))
        );
    }
}
