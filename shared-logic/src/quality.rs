//! The data-quality figures of one window, source and event type that do not depend on
//! when a layer saw a record: the mergeable state both layers will fold (the `quality`
//! metric of issue 20 wraps it), and the figures it reports.
//!
//! - **volume**: valid events, and duplicate deliveries the layer dropped (the layers note
//!   them: a duplicate never reaches a metric's update);
//! - **completeness**: of the valid events, how many had no country, device or category
//!   (they became `unknown`), and how many had both the dimensions every event type
//!   carries, country and device (a category belongs to product pages and product events
//!   only: its share is reported, not required);
//! - **timeliness**: the distribution of each event's delay, its Kafka record time minus
//!   its event time in ms ([`QuantileSketch`]), over the events that have a record time;
//!   an event stamped before it happened (a producer clock ahead) counts as delay 0 and as
//!   `ahead`;
//! - **freshness**: the newest event time;
//! - **validity**: the records the validator rejected, in all and by reason code; a
//!   rejected record has no event time to trust, so the layers note it in the window of its
//!   Kafka record time (under event type `unknown`).
//!
//! Every field is a count, a max or a sketch, each a function of the set of events folded:
//! the batch view of an hour and the speed view of the same hour hold the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Device, EventRef, UNKNOWN};
use crate::mergeable::{add_count, Mergeable};
use crate::quantile::QuantileSketch;

/// The quality state of one group of events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QualityState {
    /// Valid events folded.
    pub events: u64,
    /// Duplicate deliveries dropped (noted by the layer).
    pub duplicates: u64,
    /// Events without a country, device or category.
    pub unknown_country: u64,
    pub unknown_device: u64,
    pub unknown_category: u64,
    /// Events with a country and a device.
    pub complete: u64,
    /// Delay (record time − event time, ms, at least 0) of the events with a record time.
    pub delay: QuantileSketch,
    /// Events whose record time is before their event time.
    pub ahead: u64,
    /// Newest event time, epoch ms.
    pub newest_event_ms: Option<i64>,
    /// Records rejected by validation (noted by the layer).
    pub rejected: u64,
    /// The same by reason code (at most one entry per [`crate::validate::Reason`]).
    pub rejected_by_reason: BTreeMap<String, u64>,
}

/// What a state reports (ratios `None` over no events).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityFigures {
    pub events: u64,
    pub duplicates: u64,
    /// Duplicates over deliveries (events + duplicates).
    pub duplicate_share: Option<f64>,
    pub unknown_country_share: Option<f64>,
    pub unknown_device_share: Option<f64>,
    pub unknown_category_share: Option<f64>,
    /// Events with a country and a device over events.
    pub completeness: Option<f64>,
    /// Events measured for delay (those with a record time).
    pub timed: u64,
    pub delay_p50_ms: Option<u64>,
    pub delay_p95_ms: Option<u64>,
    pub delay_p99_ms: Option<u64>,
    pub ahead: u64,
    pub newest_event_ms: Option<i64>,
    pub rejected: u64,
    /// Valid events over records (valid events + rejected).
    pub validity: Option<f64>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl QualityState {
    /// Folds one valid (first-delivered) event.
    pub fn update(&mut self, event: &EventRef<'_>) {
        self.events = add_count(self.events, 1);
        let no_country = event.country() == UNKNOWN;
        let no_device = event.device() == Device::Unknown;
        let no_category = event.category() == UNKNOWN;
        self.unknown_country = add_count(self.unknown_country, no_country as u64);
        self.unknown_device = add_count(self.unknown_device, no_device as u64);
        self.unknown_category = add_count(self.unknown_category, no_category as u64);
        let complete = !(no_country || no_device);
        self.complete = add_count(self.complete, complete as u64);
        let t = event.event_time().0;
        if let Some(record_ms) = event.record_ms() {
            let delay = record_ms.saturating_sub(t);
            self.ahead = add_count(self.ahead, (delay < 0) as u64);
            self.delay.add(delay.max(0) as u64);
        }
        self.newest_event_ms = Some(self.newest_event_ms.map_or(t, |n| n.max(t)));
    }

    /// Notes a duplicate delivery the layer dropped.
    pub fn note_duplicate(&mut self) {
        self.duplicates = add_count(self.duplicates, 1);
    }

    /// Notes a record validation rejected for `reason`.
    pub fn note_reject(&mut self, reason: crate::validate::Reason) {
        self.rejected = add_count(self.rejected, 1);
        let n = self
            .rejected_by_reason
            .entry(reason.code().to_string())
            .or_default();
        *n = add_count(*n, 1);
    }

    /// The figures of this (possibly merged) state.
    pub fn figures(&self) -> QualityFigures {
        QualityFigures {
            events: self.events,
            duplicates: self.duplicates,
            duplicate_share: share(self.duplicates, self.events.saturating_add(self.duplicates)),
            unknown_country_share: share(self.unknown_country, self.events),
            unknown_device_share: share(self.unknown_device, self.events),
            unknown_category_share: share(self.unknown_category, self.events),
            completeness: share(self.complete, self.events),
            timed: self.delay.count(),
            delay_p50_ms: self.delay.quantile(0.50),
            delay_p95_ms: self.delay.quantile(0.95),
            delay_p99_ms: self.delay.quantile(0.99),
            ahead: self.ahead,
            newest_event_ms: self.newest_event_ms,
            rejected: self.rejected,
            validity: share(self.events, self.events.saturating_add(self.rejected)),
        }
    }
}

impl Mergeable for QualityState {
    fn merge(&mut self, other: &Self) {
        self.events = add_count(self.events, other.events);
        self.duplicates = add_count(self.duplicates, other.duplicates);
        self.unknown_country = add_count(self.unknown_country, other.unknown_country);
        self.unknown_device = add_count(self.unknown_device, other.unknown_device);
        self.unknown_category = add_count(self.unknown_category, other.unknown_category);
        self.complete = add_count(self.complete, other.complete);
        self.delay.merge(&other.delay);
        self.ahead = add_count(self.ahead, other.ahead);
        self.newest_event_ms = match (self.newest_event_ms, other.newest_event_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.rejected = add_count(self.rejected, other.rejected);
        for (reason, n) in &other.rejected_by_reason {
            let mine = self.rejected_by_reason.entry(reason.clone()).or_default();
            *mine = add_count(*mine, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Origin, RecordMeta};
    use crate::mergeable::check_laws;
    use crate::validate::Validator;
    use proptest::prelude::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z

    /// A page view at `t` recorded at `record_ms`, with the optional dimensions of `extra`.
    fn event(id: u32, t: i64, record_ms: Option<i64>, extra: &str) -> crate::event::Event {
        let json = format!(
            r#"{{"event_id":"q{id}","event_type":"page_view","event_time":{t},"user_id":"u","url":"/"{extra}}}"#
        );
        let meta = RecordMeta {
            origin: Origin::import_line(id as i64),
            record_ms,
            source_header: None,
        };
        Validator::default()
            .validate_record(json.as_bytes(), meta, i64::MAX / 2)
            .unwrap()
    }

    fn fold(events: &[crate::event::Event]) -> QualityState {
        let mut state = QualityState::default();
        for e in events {
            state.update(&e.view());
        }
        state
    }

    #[test]
    fn figures_count_unknown_dimensions_delays_and_the_newest_event() {
        let full = r#","country":"de","device":"mobile","category":"toys""#;
        let events = [
            event(1, T0, Some(T0 + 1_000), full),
            event(2, T0 + 5_000, Some(T0 + 5_000 + 40), r#","country":"de""#),
            event(3, T0 + 9_000, None, full),
            // Stamped 2 s before it happened: delay 0, and ahead.
            event(4, T0 + 2_000, Some(T0), full),
        ];
        let mut state = fold(&events);
        state.note_duplicate();
        state.note_reject(crate::validate::Reason::MissingField);
        let f = state.figures();
        assert_eq!((f.events, f.duplicates), (4, 1));
        assert_eq!((f.rejected, f.validity), (1, Some(0.8)));
        assert_eq!(state.rejected_by_reason["missing_field"], 1);
        assert_eq!(f.duplicate_share, Some(0.2));
        assert_eq!(f.unknown_country_share, Some(0.0));
        assert_eq!(f.unknown_device_share, Some(0.25));
        assert_eq!(f.unknown_category_share, Some(0.25));
        assert_eq!(f.completeness, Some(0.75));
        assert_eq!((f.timed, f.ahead), (3, 1));
        // Delays 0, 40 and 1,000 ms: the middle exact, the largest within 1/128.
        assert_eq!(f.delay_p50_ms, Some(40));
        let p99 = f.delay_p99_ms.unwrap();
        assert!(p99.abs_diff(1_000) <= 1_000 / 128, "{p99}");
        assert_eq!(f.newest_event_ms, Some(T0 + 9_000));
    }

    #[test]
    fn no_events_report_no_ratios_and_no_delays() {
        let f = QualityState::default().figures();
        assert_eq!(f.events, 0);
        assert_eq!(f.completeness, None);
        assert_eq!(f.duplicate_share, None);
        assert_eq!((f.delay_p50_ms, f.newest_event_ms), (None, None));
    }

    fn any_state() -> impl Strategy<Value = QualityState> {
        proptest::collection::vec(
            (
                0u32..1_000,
                0i64..7_200_000,
                proptest::option::of(-60_000i64..600_000),
                0u8..8,
            ),
            0..40,
        )
        .prop_map(|rows| {
            let extras = [
                "",
                r#","country":"fr""#,
                r#","device":"desktop""#,
                r#","category":"books""#,
                r#","country":"fr","device":"tablet","category":"books""#,
            ];
            let events: Vec<_> = rows
                .iter()
                .map(|(id, t, delay, k)| {
                    event(
                        *id,
                        T0 + t,
                        delay.map(|d| T0 + t + d),
                        extras[*k as usize % extras.len()],
                    )
                })
                .collect();
            let mut state = fold(&events);
            for _ in 0..rows.len() % 3 {
                state.note_duplicate();
            }
            let reasons = crate::validate::Reason::ALL;
            for (id, ..) in rows.iter().filter(|(id, ..)| id % 4 == 0) {
                state.note_reject(reasons[*id as usize % reasons.len()]);
            }
            state
        })
    }

    proptest! {
        #[test]
        fn the_state_is_a_commutative_monoid(a in any_state(), b in any_state(), c in any_state()) {
            check_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn folding_in_parts_and_merging_equals_folding_at_once(
            rows in proptest::collection::vec((0i64..7_200_000, proptest::option::of(-60_000i64..600_000)), 1..60),
            cut in 0usize..60,
        ) {
            let events: Vec<_> = rows
                .iter()
                .enumerate()
                .map(|(i, (t, d))| event(i as u32, T0 + t, d.map(|d| T0 + t + d), ""))
                .collect();
            let cut = cut.min(events.len());
            let mut parts = fold(&events[..cut]);
            parts.merge(&fold(&events[cut..]));
            prop_assert_eq!(parts, fold(&events));
        }
    }
}
