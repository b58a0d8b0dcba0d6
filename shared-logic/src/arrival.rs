//! Arrival-time quality figures: per event-time hour and producer, how many events arrived,
//! how many of them *out of order* (behind the newest event their partition had already
//! seen) and how many *late* (after every window of theirs had closed: beyond the allowed
//! lateness, so dropped, sent to the late topic or counted as a revision, as the late
//! policy says).
//!
//! They depend on the order records arrived in, which only the layer that read them in
//! that order saw: the speed layer counts them per partition as it applies records
//! (`speed::partition`), and the quality report serves them as the speed layer's. The batch
//! layer reads an hour of the lake in no arrival order and has none. The counts merge by
//! addition (partitions, instances), a commutative monoid like every state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mergeable::{add_count, Mergeable};
use crate::window::HourKey;

/// What arrived of one producer's events of one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalCounts {
    /// Valid events, each counted once (duplicate deliveries are not arrivals).
    pub events: u64,
    /// Of those, behind the newest event of their partition when they arrived.
    pub out_of_order: u64,
    /// Of those, after every window of theirs had closed.
    pub late: u64,
}

impl ArrivalCounts {
    fn add(&mut self, other: &ArrivalCounts) {
        self.events = add_count(self.events, other.events);
        self.out_of_order = add_count(self.out_of_order, other.out_of_order);
        self.late = add_count(self.late, other.late);
    }

    /// `out_of_order / events` (none without events).
    pub fn out_of_order_share(&self) -> Option<f64> {
        share(self.out_of_order, self.events)
    }

    /// `late / events` (none without events).
    pub fn late_share(&self) -> Option<f64> {
        share(self.late, self.events)
    }
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// One producer's arrivals of one hour, as the speed layer serves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalEntry {
    /// Start of the event-time hour, epoch ms.
    pub hour_ms: i64,
    pub producer: String,
    #[serde(flatten)]
    pub counts: ArrivalCounts,
}

/// Arrival counts per event-time hour and producer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrivals {
    hours: BTreeMap<i64, BTreeMap<String, ArrivalCounts>>,
}

impl Arrivals {
    /// Notes one event of `producer` in event-time `hour`.
    pub fn note(&mut self, hour: HourKey, producer: &str, out_of_order: bool, late: bool) {
        let producers = self.hours.entry(hour.0).or_default();
        let counts = match producers.get_mut(producer) {
            Some(c) => c,
            None => producers.entry(producer.to_string()).or_default(),
        };
        counts.add(&ArrivalCounts {
            events: 1,
            out_of_order: u64::from(out_of_order),
            late: u64::from(late),
        });
    }

    /// Keeps the hours `keep` accepts.
    pub fn retain_hours(&mut self, mut keep: impl FnMut(HourKey) -> bool) {
        self.hours.retain(|h, _| keep(HourKey(*h)));
    }

    /// The counts of `producer` in `hour`, when any event of theirs arrived.
    pub fn get(&self, hour: HourKey, producer: &str) -> Option<&ArrivalCounts> {
        self.hours.get(&hour.0)?.get(producer)
    }

    /// Hours held.
    pub fn hours(&self) -> usize {
        self.hours.len()
    }

    /// The entries of the hours `[from, to)`, in order of hour and producer.
    pub fn entries(&self, from: HourKey, to: HourKey) -> Vec<ArrivalEntry> {
        if from >= to {
            return Vec::new();
        }
        self.hours
            .range(from.0..to.0)
            .flat_map(|(h, producers)| {
                producers.iter().map(|(p, c)| ArrivalEntry {
                    hour_ms: HourKey(*h).start_ms(),
                    producer: p.clone(),
                    counts: *c,
                })
            })
            .collect()
    }

    /// Adds one entry (as read from a speed instance).
    pub fn add_entry(&mut self, entry: &ArrivalEntry) {
        let hour = entry.hour_ms.div_euclid(crate::window::HOUR_MS);
        self.hours
            .entry(hour)
            .or_default()
            .entry(entry.producer.clone())
            .or_default()
            .add(&entry.counts);
    }
}

impl Mergeable for Arrivals {
    fn merge(&mut self, other: &Self) {
        for (hour, producers) in &other.hours {
            let mine = self.hours.entry(*hour).or_default();
            for (producer, counts) in producers {
                mine.entry(producer.clone()).or_default().add(counts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mergeable::check_laws;
    use crate::window::HOUR_MS;
    use proptest::prelude::*;

    fn arrivals() -> impl Strategy<Value = Arrivals> {
        proptest::collection::vec((0i64..4, 0usize..3, any::<bool>(), any::<bool>()), 0..20)
            .prop_map(|notes| {
                let mut a = Arrivals::default();
                for (hour, producer, ooo, late) in notes {
                    a.note(
                        HourKey(hour),
                        ["web", "ios", "unknown"][producer],
                        ooo,
                        late,
                    );
                }
                a
            })
    }

    proptest! {
        #[test]
        fn arrivals_are_a_commutative_monoid(a in arrivals(), b in arrivals(), c in arrivals()) {
            check_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn entries_read_back_into_the_same_arrivals(a in arrivals()) {
            let mut back = Arrivals::default();
            for e in a.entries(HourKey(0), HourKey(4)) {
                back.add_entry(&e);
            }
            prop_assert_eq!(back, a);
        }
    }

    #[test]
    fn counts_and_shares_per_hour_and_producer() {
        let mut a = Arrivals::default();
        a.note(HourKey(1), "web", false, false);
        a.note(HourKey(1), "web", true, false);
        a.note(HourKey(1), "web", true, true);
        a.note(HourKey(1), "web", false, false);
        a.note(HourKey(2), "ios", false, false);
        let web = a.get(HourKey(1), "web").unwrap();
        assert_eq!(
            *web,
            ArrivalCounts {
                events: 4,
                out_of_order: 2,
                late: 1
            }
        );
        assert_eq!(web.out_of_order_share(), Some(0.5));
        assert_eq!(web.late_share(), Some(0.25));
        assert_eq!(ArrivalCounts::default().late_share(), None);
        assert_eq!(a.get(HourKey(2), "web"), None);
        let entries = a.entries(HourKey(2), HourKey(3));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].hour_ms, 2 * HOUR_MS);
        assert_eq!(entries[0].producer, "ios");
        a.retain_hours(|h| h.0 >= 2);
        assert_eq!(a.hours(), 1);
        assert!(a.entries(HourKey(3), HourKey(2)).is_empty());
        let json = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(json["events"], 1);
        assert_eq!(json["producer"], "ios");
    }
}
