//! The dedup rule, shared by both layers: an `event_id` delivered more than once is one
//! event, and when deliveries differ, the first in `(partition, offset)` order wins.
//!
//! Scope: duplicates are recognised within the UTC hour of their event time (the batch
//! layer's unit). A redelivery whose event time falls in another hour is a different
//! event in both layers; this keeps the speed layer's dedup state bounded by the lateness
//! horizon and lets the batch layer compute each hour alone.

use hashbrown::HashMap;

use crate::event::{Event, EventId, Origin};
use crate::window::HourKey;

/// The 128-bit hash of an event id that both layers use to recognise duplicates without
/// keeping the ids themselves (XXH3-128, seed 0; a collision within an hour has a
/// probability below 10^-20 for a billion events).
pub fn id_hash(event_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
}

/// True when a delivery at `candidate` replaces the one kept at `kept`.
pub fn wins(candidate: Origin, kept: Origin) -> bool {
    candidate < kept
}

/// Keeps one delivery per event id: the winner by [`wins`]. The result is ordered by origin,
/// so the output does not depend on the order of the input.
pub fn first_wins(events: impl IntoIterator<Item = Event>) -> Vec<Event> {
    split_duplicates(events).0
}

/// The winning delivery of every event id (as [`first_wins`]) and the losing deliveries,
/// the duplicates a layer drops; both ordered by origin.
pub fn split_duplicates(events: impl IntoIterator<Item = Event>) -> (Vec<Event>, Vec<Event>) {
    let mut kept: HashMap<(EventId, HourKey), Event> = HashMap::new();
    let mut lost = Vec::new();
    for event in events {
        let key = (event.event_id().clone(), HourKey::of(event.event_time()));
        match kept.get_mut(&key) {
            Some(current) if wins(event.origin(), current.origin()) => {
                lost.push(std::mem::replace(current, event));
            }
            Some(_) => lost.push(event),
            None => {
                kept.insert(key, event);
            }
        }
    }
    let mut winners: Vec<Event> = kept.into_values().collect();
    winners.sort_unstable_by_key(|e| e.origin());
    lost.sort_unstable_by_key(|e| e.origin());
    (winners, lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validator;

    fn event_at(id: &str, url: &str, time: i64, partition: i32, offset: i64) -> Event {
        let json = format!(
            r#"{{"event_id":"{id}","event_type":"page_view","event_time":{time},"user_id":"u","url":"{url}"}}"#
        );
        Validator::default()
            .validate(json.as_bytes(), Origin { partition, offset }, 100_000_000)
            .unwrap()
    }

    fn event(id: &str, url: &str, partition: i32, offset: i64) -> Event {
        event_at(id, url, 1000, partition, offset)
    }

    #[test]
    fn duplicate_delivery_counts_once_and_the_first_position_wins() {
        let events = vec![
            event("a", "/late", 1, 9),
            event("b", "/b", 0, 5),
            event("a", "/first", 1, 2),
            event("a", "/other", 2, 0),
        ];
        let kept = first_wins(events);
        assert_eq!(kept.len(), 2);
        let a = kept.iter().find(|e| e.event_id().0 == "a").unwrap();
        assert_eq!(a.url(), "/first");
        assert_eq!(
            a.origin(),
            Origin {
                partition: 1,
                offset: 2
            }
        );
    }

    #[test]
    fn a_redelivery_in_another_hour_is_another_event() {
        let kept = first_wins(vec![
            event_at("a", "/x", 1000, 0, 1),
            event_at("a", "/x", 3_600_000 + 5, 0, 2),
        ]);
        assert_eq!(kept.len(), 2);
    }
}
