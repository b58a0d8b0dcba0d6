//! Window assignment from event time, and the hour key that batch coverage is tracked by.
//!
//! One function, [`WindowSpec::assign`], decides which windows an event belongs to, for
//! both layers. Windows are half-open `[start, start + size)` in UTC milliseconds, aligned
//! to the epoch.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::LogicError;
use crate::event::EventTime;

const MINUTE_MS: i64 = 60_000;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The start of a window, in UTC milliseconds. Distinct from [`EventTime`] so that an
/// event time cannot be used where a window is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowStart(pub i64);

impl WindowStart {
    /// The start of the enclosing window of `size_ms` (used for rollups: minute → hour → day).
    pub fn truncate(self, size_ms: i64) -> WindowStart {
        WindowStart(self.0 - self.0.rem_euclid(size_ms))
    }
}

impl fmt::Display for WindowStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        EventTime(self.0).fmt(f)
    }
}

/// How events are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WindowSpec {
    /// Back-to-back windows of `size_ms`; each event is in exactly one.
    Tumbling { size_ms: i64 },
    /// Windows of `size_ms` starting every `slide_ms`; each event is in `size_ms / slide_ms`.
    Sliding { size_ms: i64, slide_ms: i64 },
}

impl Default for WindowSpec {
    /// One-minute tumbling windows.
    fn default() -> Self {
        WindowSpec::Tumbling { size_ms: MINUTE_MS }
    }
}

impl WindowSpec {
    /// A tumbling spec, checked: the size must be positive and divide a day, so that
    /// windows roll up into hours and days without straddling them.
    pub fn tumbling(size_ms: i64) -> Result<Self, LogicError> {
        if size_ms <= 0 || DAY_MS % size_ms != 0 {
            return Err(LogicError::Window(format!(
                "tumbling size {size_ms} ms must be positive and divide a day"
            )));
        }
        Ok(WindowSpec::Tumbling { size_ms })
    }

    /// A sliding spec, checked: the slide must be positive and divide the size.
    pub fn sliding(size_ms: i64, slide_ms: i64) -> Result<Self, LogicError> {
        if slide_ms <= 0 || size_ms <= 0 || size_ms % slide_ms != 0 || DAY_MS % slide_ms != 0 {
            return Err(LogicError::Window(format!(
                "sliding size {size_ms} ms must be a positive multiple of slide {slide_ms} ms, which must divide a day"
            )));
        }
        Ok(WindowSpec::Sliding { size_ms, slide_ms })
    }

    /// Window length in milliseconds.
    pub fn size_ms(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { size_ms } | WindowSpec::Sliding { size_ms, .. } => size_ms,
        }
    }

    /// How far apart window starts are (the size, for tumbling windows).
    pub fn slide_ms(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { size_ms } => size_ms,
            WindowSpec::Sliding { slide_ms, .. } => slide_ms,
        }
    }

    /// The windows that contain `time`, latest start first.
    pub fn assign(&self, time: EventTime) -> impl Iterator<Item = WindowStart> {
        let slide = self.slide_ms();
        let size = self.size_ms();
        let last = time.0 - time.0.rem_euclid(slide);
        let count = size / slide;
        (0..count).map(move |i| WindowStart(last - i * slide))
    }

    /// The exclusive end of the window starting at `start`.
    pub fn end(&self, start: WindowStart) -> i64 {
        start.0 + self.size_ms()
    }
}

/// A UTC hour: the unit the batch layer computes, and the unit of the coverage map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HourKey(pub i64);

impl HourKey {
    /// The hour an event time falls in.
    pub fn of(time: EventTime) -> Self {
        HourKey(time.0.div_euclid(HOUR_MS))
    }

    /// The hour holding a window; windows never straddle hours when their size divides an hour.
    pub fn of_window(start: WindowStart) -> Self {
        HourKey(start.0.div_euclid(HOUR_MS))
    }

    /// Start of the hour in UTC milliseconds.
    pub fn start_ms(self) -> i64 {
        self.0 * HOUR_MS
    }

    /// Parses `2026-11-24T10` (the form used on the command line and in the lake layout).
    pub fn parse(s: &str) -> Option<Self> {
        let t = chrono::NaiveDateTime::parse_from_str(&format!("{s}:00:00"), "%Y-%m-%dT%H:%M:%S")
            .ok()?;
        Some(HourKey(t.and_utc().timestamp_millis().div_euclid(HOUR_MS)))
    }
}

impl fmt::Display for HourKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.start_ms()) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H")),
            None => write!(f, "hour#{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tumbling_minute_assigns_the_enclosing_minute() {
        let spec = WindowSpec::default();
        let w: Vec<_> = spec.assign(EventTime(125_000)).collect();
        assert_eq!(w, vec![WindowStart(120_000)]);
        let w: Vec<_> = spec.assign(EventTime(-1)).collect();
        assert_eq!(w, vec![WindowStart(-60_000)]);
    }

    #[test]
    fn sliding_assigns_every_overlapping_window() {
        let spec = WindowSpec::sliding(300_000, 60_000).unwrap();
        let w: Vec<_> = spec.assign(EventTime(125_000)).collect();
        assert_eq!(
            w,
            vec![
                WindowStart(120_000),
                WindowStart(60_000),
                WindowStart(0),
                WindowStart(-60_000),
                WindowStart(-120_000)
            ]
        );
    }

    #[test]
    fn bad_specs_are_rejected() {
        assert!(WindowSpec::tumbling(0).is_err());
        assert!(WindowSpec::tumbling(7_000).is_err());
        assert!(WindowSpec::sliding(300_000, 70_000).is_err());
        assert!(WindowSpec::sliding(300_000, 0).is_err());
    }

    #[test]
    fn hour_key_round_trips_through_text() {
        let h = HourKey::parse("2026-11-24T10").unwrap();
        assert_eq!(h.to_string(), "2026-11-24T10");
        assert_eq!(HourKey::of(EventTime(h.start_ms() + 59 * 60_000)), h);
        assert!(HourKey::parse("2026-11-24T25").is_none());
    }

    proptest! {
        #[test]
        fn every_assigned_window_contains_the_event(t in -10_000_000_000i64..10_000_000_000, k in 1i64..10) {
            let spec = WindowSpec::sliding(60_000 * k, 60_000).unwrap();
            let starts: Vec<_> = spec.assign(EventTime(t)).collect();
            prop_assert_eq!(starts.len() as i64, k);
            for s in starts {
                prop_assert!(s.0 <= t && t < spec.end(s));
                prop_assert_eq!(s.0.rem_euclid(60_000), 0);
            }
        }
    }
}
