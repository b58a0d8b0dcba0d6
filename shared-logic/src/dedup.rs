//! The dedup rule, shared by both layers: an `event_id` delivered more than once is one
//! event, and when deliveries differ, the first in `(partition, offset)` order wins.

use hashbrown::HashMap;

use crate::event::{Event, EventId, Origin};

/// True when a delivery at `candidate` replaces the one kept at `kept`.
pub fn wins(candidate: Origin, kept: Origin) -> bool {
    candidate < kept
}

/// Keeps one delivery per event id: the winner by [`wins`]. The result is ordered by origin,
/// so the output does not depend on the order of the input.
pub fn first_wins(events: impl IntoIterator<Item = Event>) -> Vec<Event> {
    let mut kept: HashMap<EventId, Event> = HashMap::new();
    for event in events {
        match kept.get_mut(event.event_id()) {
            Some(current) if wins(event.origin(), current.origin()) => *current = event,
            Some(_) => {}
            None => {
                kept.insert(event.event_id().clone(), event);
            }
        }
    }
    let mut winners: Vec<Event> = kept.into_values().collect();
    winners.sort_unstable_by_key(|e| e.origin());
    winners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validator;

    fn event(id: &str, url: &str, partition: i32, offset: i64) -> Event {
        let json = format!(
            r#"{{"event_id":"{id}","event_type":"page_view","event_time":1000,"user_id":"u","url":"{url}"}}"#
        );
        Validator::default()
            .validate(json.as_bytes(), Origin { partition, offset }, 10_000)
            .unwrap()
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
}
