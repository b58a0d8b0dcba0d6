//! Sliding windows, per metric, as **panes**: both layers keep storing each metric in the
//! tumbling windows of [`crate::MetricContext::windows`] (the panes), and a sliding window
//! `[s, s + size)` (a start every `slide`) is assembled at query time by merging the panes
//! it holds. Every state is mergeable, distinct-count sketches included, so the assembly
//! is exact; rollups to hours and days keep going from the panes, so nothing is counted
//! twice (a fold into overlapping windows would count each event `size / slide` times in
//! an hour). `MetricViews::slide` is the assembly; the property test in
//! `tests/sliding_laws.rs` proves it equal to folding every event straight into the
//! overlapping windows.
//!
//! Configured per metric (`--sliding-window page_views=10m/1m`, `sliding-windows` in the
//! TOML file); part of the logic fingerprint.

use std::collections::BTreeMap;

use crate::durations::{duration_text, parse_duration};
use crate::error::LogicError;
use crate::event::EventTime;
use crate::window::{WindowSpec, WindowStart, DAY_MS};

/// A sliding window: `size_ms` long, a new one every `slide_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlidingWindow {
    pub size_ms: i64,
    pub slide_ms: i64,
}

impl SlidingWindow {
    /// Checks the window against the pane size: the slide a positive multiple of the
    /// pane, the size a multiple of the slide (two panes at least), at most a day.
    pub fn new(size_ms: i64, slide_ms: i64, pane_ms: i64) -> Result<Self, LogicError> {
        let ok = pane_ms > 0
            && slide_ms > 0
            && slide_ms % pane_ms == 0
            && DAY_MS % slide_ms == 0
            && size_ms > slide_ms
            && size_ms % slide_ms == 0
            && size_ms <= DAY_MS;
        if !ok {
            return Err(LogicError::Window(format!(
                "sliding window of {} every {}: the slide must be a multiple of the {} windows the layers keep and divide a day, and the size a larger multiple of the slide, at most a day",
                duration_text(size_ms),
                duration_text(slide_ms),
                duration_text(pane_ms)
            )));
        }
        Ok(SlidingWindow { size_ms, slide_ms })
    }

    /// The sliding windows holding the pane (or event time) `start`, latest first.
    pub fn windows_of(&self, start: i64) -> impl Iterator<Item = WindowStart> {
        WindowSpec::Sliding {
            size_ms: self.size_ms,
            slide_ms: self.slide_ms,
        }
        .assign(EventTime(start))
    }

    /// `10m/1m`: the form the flag takes.
    pub fn text(&self) -> String {
        format!(
            "{}/{}",
            duration_text(self.size_ms),
            duration_text(self.slide_ms)
        )
    }
}

/// The sliding windows configured, by metric name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlidingWindows(BTreeMap<String, SlidingWindow>);

impl SlidingWindows {
    /// Parses `metric=size/slide` entries (`page_views=10m/1m`; units `s`, `m`, `h`),
    /// checked against the metric names (`crate::registry::NAMES`) and the pane size.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
        pane_ms: i64,
        metrics: &[&str],
    ) -> Result<Self, LogicError> {
        let mut out = BTreeMap::new();
        for entry in entries {
            let bad = |why: &str| {
                LogicError::Window(format!(
                    "sliding window `{entry}`: {why} (expected metric=size/slide, as page_views=10m/1m)"
                ))
            };
            let (metric, spec) = entry.split_once('=').ok_or_else(|| bad("no `=`"))?;
            let metric = metric.trim();
            if !metrics.contains(&metric) {
                return Err(bad(&format!(
                    "no metric `{metric}`; metrics: {}",
                    metrics.join(", ")
                )));
            }
            let (size, slide) = spec.split_once('/').ok_or_else(|| bad("no `/`"))?;
            let (size, slide) = (
                parse_duration(size).ok_or_else(|| bad("the size is not a duration"))?,
                parse_duration(slide).ok_or_else(|| bad("the slide is not a duration"))?,
            );
            let window = SlidingWindow::new(size, slide, pane_ms)?;
            if out.insert(metric.to_string(), window).is_some() {
                return Err(bad("the metric is given twice"));
            }
        }
        Ok(SlidingWindows(out))
    }

    /// The sliding window of `metric`, if one is configured.
    pub fn of(&self, metric: &str) -> Option<SlidingWindow> {
        self.0.get(metric).copied()
    }

    /// True when no metric has one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `page_views=10m/1m,…`: what the logic fingerprint carries.
    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|(m, w)| format!("{m}={}", w.text()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricContext;

    const METRICS: &[&str] = &["page_views", "funnel", "revenue"];

    #[test]
    fn entries_parse_and_bad_ones_say_why() {
        let w = SlidingWindows::parse(["page_views=10m/1m", "revenue = 1h/5m"], 60_000, METRICS)
            .unwrap();
        assert_eq!(
            w.of("page_views"),
            Some(SlidingWindow {
                size_ms: 600_000,
                slide_ms: 60_000
            })
        );
        assert_eq!(w.text(), "page_views=10m/1m,revenue=1h/5m");
        for (bad, why) in [
            ("page_views", "no `=`"),
            ("nope=10m/1m", "no metric `nope`"),
            ("page_views=10m", "no `/`"),
            ("page_views=10x/1m", "not a duration"),
            ("page_views=10m/90s", "multiple of the 1m windows"),
            ("page_views=1m/1m", "larger multiple"),
            ("page_views=25h/1h", "at most a day"),
        ] {
            let err = SlidingWindows::parse([bad], 60_000, METRICS)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(SlidingWindows::parse(["funnel=5m/1m", "funnel=6m/1m"], 60_000, METRICS).is_err());
    }

    #[test]
    fn sliding_windows_are_part_of_the_fingerprint_only_when_configured() {
        let plain = MetricContext::default();
        assert!(!plain.fingerprint().contains("sliding"));
        let sliding = MetricContext {
            sliding: SlidingWindows::parse(["page_views=10m/1m"], 60_000, METRICS).unwrap(),
            ..MetricContext::default()
        };
        assert!(sliding
            .fingerprint()
            .ends_with("-sliding-page_views=10m/1m"));
        assert_ne!(sliding.fingerprint(), plain.fingerprint());
    }
}
