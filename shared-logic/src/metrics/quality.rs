//! The `quality` metric: the data-quality figures of each window, producer and event type
//! that do not depend on when a layer saw a record ([`QualityState`]): valid events,
//! duplicate deliveries, the unknown shares of the optional dimensions, completeness, the
//! delay quantiles (Kafka record time minus event time) and the newest event time.
//!
//! The dimension is called `producer` (the record's source: the `lambda-source` header,
//! else the event's `source` field, else `unknown`; [`crate::source`]) because `source`
//! already names where a served row came from (batch, speed or both).

use crate::event::EventRef;
use crate::metric::{Metric, MetricContext, Value, ValueKind};
use crate::quality::QualityState;

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
    fn quality_is_per_producer_and_event_type_and_counts_noted_duplicates() {
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
