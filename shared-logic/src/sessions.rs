//! Session windows: the one rule that turns a user's events into sessions, used by the
//! batch layer (over the lake) and the speed layer (incrementally, as events arrive).
//!
//! A user's session is a maximal run of their events in which consecutive events are at
//! most the *gap* apart (default 30 minutes); a session also ends at midnight UTC, so a
//! session never spans two days (as in web analytics tools) and the data one session can
//! depend on is bounded. Every valid event is activity; page views are counted apart. The
//! session's dimensions (country, device) are those of its first event (ties in time broken
//! by the event id's hash), and it belongs to the windows of its start.
//!
//! Sessions are a function of the *set* of a user's events: [`UserSessions::insert`] merges
//! the new event with every session it touches (within the gap of its span, same day), so
//! any insertion order ends in the same sessions (property-tested below). A late event that
//! bridges two sessions merges them; the caller retracts the sessions it returns as removed
//! and adds the merged one, which is why the `sessions` state is a group (signed sums), not
//! only a monoid.

use serde::{Deserialize, Serialize};

use crate::dedup::id_hash;
use crate::event::{Device, EventRef, EventType, UNKNOWN};
use crate::window::DAY_MS;

/// Default inactivity gap that ends a session.
pub const DEFAULT_GAP_MS: i64 = 30 * 60_000;

/// One event as sessions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity<'a> {
    /// Event time, epoch ms.
    pub time: i64,
    /// Orders events of equal time (the event id's hash).
    pub tie: u128,
    pub page_view: bool,
    pub country: &'a str,
    pub device: Device,
}

impl<'a> Activity<'a> {
    /// The activity of a validated event.
    pub fn of(event: &EventRef<'a>) -> Self {
        Activity {
            tie: id_hash(event.event_id()),
            ..Self::of_untied(event)
        }
    }

    /// The same without hashing the event id (`tie` 0): for callers that have the hash.
    pub fn of_untied(event: &EventRef<'a>) -> Self {
        Activity {
            time: event.event_time().0,
            tie: 0,
            page_view: event.event_type() == EventType::PageView,
            country: event.country(),
            device: event.device(),
        }
    }
}

/// A country code held inline (sessions are created per event on the speed path, so they
/// must not allocate). Validated countries are two letters or `unknown`; a longer value,
/// which validation never produces, is held as `unknown` by both layers alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Country {
    len: u8,
    bytes: [u8; 15],
}

impl Country {
    /// The code for a country value.
    pub fn new(text: &str) -> Self {
        let text = if text.len() <= 15 { text } else { UNKNOWN };
        let mut bytes = [0u8; 15];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Country {
            len: text.len() as u8,
            bytes,
        }
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        // SAFETY: the fields are private and only `Country::new` sets them, copying a whole
        // `&str` (never a cut one) into `bytes[..len]`; serde's derived `Deserialize` is the
        // other way in, and goes through `Country::new` (`from = "String"` below).
        unsafe { std::str::from_utf8_unchecked(&self.bytes[..self.len as usize]) }
    }
}

impl From<String> for Country {
    fn from(text: String) -> Self {
        Country::new(&text)
    }
}

impl From<Country> for String {
    fn from(c: Country) -> Self {
        c.as_str().to_string()
    }
}

impl std::fmt::Debug for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl PartialEq<&str> for Country {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One session of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Time of the first event, epoch ms.
    pub start: i64,
    /// The first event's tie-break (which event of equal time is first).
    pub start_tie: u128,
    /// Time of the last event, epoch ms.
    pub end: i64,
    pub events: u32,
    pub page_views: u32,
    /// The first event's country and device.
    pub country: Country,
    pub device: Device,
}

impl Session {
    fn of(a: &Activity<'_>) -> Self {
        Session {
            start: a.time,
            start_tie: a.tie,
            end: a.time,
            events: 1,
            page_views: a.page_view as u32,
            country: Country::new(a.country),
            device: a.device,
        }
    }

    /// Length from the first to the last event, ms.
    pub fn duration_ms(&self) -> i64 {
        self.end - self.start
    }

    /// A session of one event.
    pub fn is_bounce(&self) -> bool {
        self.events == 1
    }

    fn absorb(&mut self, other: &Session) {
        if (other.start, other.start_tie) < (self.start, self.start_tie) {
            self.start = other.start;
            self.start_tie = other.start_tie;
            self.country = other.country;
            self.device = other.device;
        }
        self.end = self.end.max(other.end);
        self.events += other.events;
        self.page_views += other.page_views;
    }
}

/// The UTC day of a time.
fn day(t: i64) -> i64 {
    t.div_euclid(DAY_MS)
}

/// What one inserted event changed: sessions that no longer exist, and the one that now
/// holds the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub removed: Vec<Session>,
    pub added: Session,
}

/// A user's sessions, ordered by start; any two are more than the gap apart or on
/// different days.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSessions {
    sessions: Vec<Session>,
}

impl UserSessions {
    /// Adds one (deduplicated) event: it joins every session within `gap_ms` of it on the
    /// same day, merging them, or starts a session of its own.
    pub fn insert(&mut self, a: &Activity<'_>, gap_ms: i64) -> Change {
        let mut removed = Vec::new();
        let added = self.insert_with(a, gap_ms, &mut removed);
        Change { removed, added }
    }

    /// [`UserSessions::insert`] into a caller's buffer (cleared first) for the removed
    /// sessions; returns the session that now holds the event. The per-event path of the
    /// speed layer: no allocation when the event joins one session.
    pub fn insert_with(
        &mut self,
        a: &Activity<'_>,
        gap_ms: i64,
        removed: &mut Vec<Session>,
    ) -> Session {
        removed.clear();
        let d = day(a.time);
        // Sessions are ordered by start and more than the gap apart (or on other days), so
        // the ones the event touches are a contiguous run: from the first that ends at or
        // after `time - gap` on the event's day, while they start by `time + gap` that day.
        let first = self
            .sessions
            .partition_point(|s| day(s.end) < d || s.end + gap_ms < a.time);
        let last = first
            + self.sessions[first..]
                .partition_point(|s| day(s.start) == d && s.start - gap_ms <= a.time);
        let mut added = Session::of(a);
        if last == first + 1 {
            // One session: it absorbs the event in place (its position cannot change, as
            // it stays between the same neighbours).
            let s = &mut self.sessions[first];
            removed.push(*s);
            added.absorb(s);
            *s = added;
            return added;
        }
        removed.extend(self.sessions.drain(first..last));
        for s in removed.iter() {
            added.absorb(s);
        }
        let at = self
            .sessions
            .partition_point(|s| (s.start, s.start_tie) < (added.start, added.start_tie));
        if self.sessions.len() == self.sessions.capacity() {
            // Most users hold one or two sessions: room for one more, not the four a
            // vector's first growth reserves (64 bytes a session; the speed layer holds
            // every recent user's, issue 21).
            self.sessions.reserve_exact(1);
        }
        self.sessions.insert(at, added);
        added
    }

    /// Forgets sessions that no event at or after `horizon_ms` can join (their contribution
    /// to the views stays); true when none is left.
    pub fn forget_before(&mut self, horizon_ms: i64, gap_ms: i64) -> bool {
        self.sessions
            .retain(|s| s.end + gap_ms >= horizon_ms && day(s.end) >= day(horizon_ms));
        self.sessions.is_empty()
    }

    /// The sessions, ordered by start.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// The sessions of one user's events, in any order.
pub fn sessionize<'a>(events: impl IntoIterator<Item = Activity<'a>>, gap_ms: i64) -> UserSessions {
    let mut out = UserSessions::default();
    for a in events {
        out.insert(&a, gap_ms);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIN: i64 = 60_000;
    const GAP: i64 = 30 * MIN;
    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn act(time: i64, tie: u128) -> Activity<'static> {
        Activity {
            time,
            tie,
            page_view: !tie.is_multiple_of(3),
            country: if tie.is_multiple_of(2) { "DE" } else { "US" },
            device: Device::Mobile,
        }
    }

    /// The definition, directly: sort, split where the gap or the day changes.
    fn reference(mut events: Vec<Activity<'static>>) -> Vec<(i64, i64, u32, u32, String)> {
        events.sort_by_key(|a| (a.time, a.tie));
        let mut out: Vec<(i64, i64, u32, u32, String)> = Vec::new();
        for a in events {
            match out.last_mut() {
                Some(s) if a.time - s.1 <= GAP && day(a.time) == day(s.0) => {
                    s.1 = a.time;
                    s.2 += 1;
                    s.3 += a.page_view as u32;
                }
                _ => out.push((a.time, a.time, 1, a.page_view as u32, a.country.to_string())),
            }
        }
        out
    }

    fn summary(s: &UserSessions) -> Vec<(i64, i64, u32, u32, String)> {
        s.sessions()
            .iter()
            .map(|s| {
                (
                    s.start,
                    s.end,
                    s.events,
                    s.page_views,
                    s.country.as_str().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_user_with_one_session_holds_room_for_one() {
        let mut s = UserSessions::default();
        s.insert(&act(T0, 1), GAP);
        s.insert(&act(T0 + MIN, 2), GAP);
        assert_eq!((s.len(), s.sessions.capacity()), (1, 1));
        s.insert(&act(T0 + 65 * MIN, 3), GAP);
        assert_eq!((s.len(), s.sessions.capacity()), (2, 2));
    }

    #[test]
    fn a_late_event_that_bridges_two_sessions_merges_them() {
        let mut s = UserSessions::default();
        s.insert(&act(T0 + 10 * MIN, 1), GAP);
        s.insert(&act(T0 + 20 * MIN, 2), GAP);
        s.insert(&act(T0 + 65 * MIN, 3), GAP);
        assert_eq!(s.len(), 2);
        let change = s.insert(&act(T0 + 45 * MIN, 4), GAP);
        assert_eq!(change.removed.len(), 2);
        assert_eq!(change.added.start, T0 + 10 * MIN);
        assert_eq!(change.added.end, T0 + 65 * MIN);
        assert_eq!(change.added.events, 4);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_session_ends_at_midnight_and_after_the_gap() {
        let day_end = T0 + DAY_MS;
        let s = sessionize(
            [
                act(day_end - 5 * MIN, 1),
                act(day_end + 5 * MIN, 2),
                act(day_end + 36 * MIN, 3),
            ],
            GAP,
        );
        let starts: Vec<i64> = s.sessions().iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![day_end - 5 * MIN, day_end + 5 * MIN, day_end + 36 * MIN]
        );
        // Exactly the gap apart still joins.
        assert_eq!(sessionize([act(T0, 1), act(T0 + GAP, 2)], GAP).len(), 1);
    }

    #[test]
    fn the_first_event_gives_the_dimensions_ties_by_id_hash() {
        let s = sessionize([act(T0 + MIN, 3), act(T0 + MIN, 2)], GAP);
        assert_eq!(s.sessions()[0].start_tie, 2);
        assert_eq!(s.sessions()[0].country, "DE");
    }

    #[test]
    fn forgetting_keeps_sessions_a_later_event_can_still_join() {
        let mut s = sessionize([act(T0, 1), act(T0 + 2 * GAP, 2)], GAP);
        assert!(!s.forget_before(T0 + GAP + 1, GAP));
        assert_eq!(s.len(), 1);
        assert!(s.forget_before(T0 + 4 * GAP, GAP));
    }

    proptest! {
        /// Sessions depend on the set of events only: any arrival order gives the sessions
        /// of the sorted definition.
        #[test]
        fn any_insertion_order_gives_the_sessions_of_the_definition(
            times in prop::collection::vec(0i64..(2 * DAY_MS / MIN), 1..60),
            seed in any::<u64>(),
        ) {
            let events: Vec<Activity<'static>> = times
                .iter()
                .enumerate()
                .map(|(i, m)| act(T0 + DAY_MS / 2 + m * MIN / 3, i as u128))
                .collect();
            let mut shuffled = events.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let expected = reference(events.clone());
            prop_assert_eq!(summary(&sessionize(events, GAP)), expected.clone());
            prop_assert_eq!(summary(&sessionize(shuffled, GAP)), expected);
        }
    }
}
