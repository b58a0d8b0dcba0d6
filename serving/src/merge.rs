//! The merge of batch and real-time views at query time.
//!
//! Each hour is answered by exactly one layer: the batch layer where its coverage map says
//! the hour is covered, the speed layer otherwise (DESIGN.md). The pieces are then merged
//! with the monoid merge (Summingbird's sum) into the requested granularity and grouping, so
//! no window is counted twice and none is missed, whatever the timing of batch runs.
//! Every row says where it came from and whether it is final: batch-covered, or past the
//! speed watermark plus the allowed lateness.

use std::borrow::Cow;
use std::collections::BTreeSet;

use hashbrown::HashMap;

use shared_logic::grouping::matches;
use shared_logic::metric::MAX_DIMENSIONS;
use shared_logic::window::{HourKey, WindowSpec, WindowStart, HOUR_MS};
use shared_logic::{GroupKey, Mergeable};
use shared_logic::{Metric, MetricViews};

use crate::speed_rows::SpeedRows;

/// Which layer answered a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Batch,
    Speed,
    /// A rollup over hours answered by both layers.
    #[serde(rename = "batch+speed")]
    BatchAndSpeed,
}

impl Source {
    /// The source of a row merged from rows of these two sources.
    pub(crate) fn join(self, other: Source) -> Source {
        if self == other {
            self
        } else {
            Source::BatchAndSpeed
        }
    }
}

/// One merged row: a window of the requested granularity, the grouped dimension values,
/// the merged state, and its provenance.
/// Dimension values and states are borrowed from the batch cubes where a row is one
/// cube row, and owned where pieces were merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a, S: Clone> {
    pub window_start: i64,
    pub window_end: i64,
    pub dims: Vec<Cow<'a, str>>,
    pub state: Cow<'a, S>,
    pub source: Source,
    pub is_final: bool,
}

impl<S: Clone> Row<'_, S> {
    /// The same row owning its values.
    pub fn into_owned(self) -> Row<'static, S> {
        Row {
            window_start: self.window_start,
            window_end: self.window_end,
            dims: self
                .dims
                .into_iter()
                .map(|d| Cow::Owned(d.into_owned()))
                .collect(),
            state: Cow::Owned(self.state.into_owned()),
            source: self.source,
            is_final: self.is_final,
        }
    }
}

/// What a query asks for.
#[derive(Debug, Clone)]
pub struct Query {
    /// Windows starting in `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Output window size (a multiple of the metric windows: minute, hour, day, or the
    /// whole range, which is then one window starting at `from_ms`).
    pub granularity_ms: i64,
    /// Indexes (into the metric's dimensions) to group by; the others are merged away.
    pub group_by: Vec<usize>,
    /// `(dimension index, value)` pairs a row must match.
    pub filters: Vec<(usize, String)>,
    /// Whether the answer reads the distinct-count sketches (any of the metric's
    /// [`shared_logic::Metric::SKETCHED_VALUES`]); without, the speed layer hands its
    /// states over without them, and those values are not to be read from the rows.
    pub sketches: bool,
}

impl Query {
    /// The output window size, or `None` when the granularity is the whole range (one
    /// window starting at `from_ms`).
    pub fn output_granularity(&self) -> Option<i64> {
        (self.to_ms.checked_sub(self.from_ms) != Some(self.granularity_ms))
            .then_some(self.granularity_ms)
    }
}

/// What the speed layer knows about time.
#[derive(Debug, Clone, Copy)]
pub struct SpeedClock {
    pub watermark: Option<i64>,
    pub allowed_lateness_ms: i64,
}

/// Accumulates pieces from both layers into the rows of one query.
///
/// Batch pieces count only for covered hours and speed pieces only for the others, so
/// feeding a merger everything each layer holds answers each hour from exactly one layer.
pub struct Merger<'q, M: Metric> {
    query: &'q Query,
    covered: &'q BTreeSet<HourKey>,
    windows: WindowSpec,
    /// Rows of batch cubes and grouped speed rows, borrowed; merged by sorting in
    /// [`Merger::finish`] (which is also the answer's order), so a row costs no hashing
    /// and no copy, and rows handed over in order cost no sorting either.
    pieces: Vec<Piece<'q, M::State>>,
    /// Rows from full keys (the speed layer's), each with the latest end of the speed
    /// windows merged into it (finality is decided in [`Merger::finish`] against the speed
    /// clock read after the states).
    rows: HashMap<GroupKey, (Row<'q, M::State>, Option<i64>)>,
}

/// A batch cube's or the speed layer's grouped row for the answer: its output window,
/// grouped values and state, which layer it came from, and for a speed row the end of its
/// speed window (for finality).
struct Piece<'q, S> {
    start: i64,
    dims: [&'q str; MAX_DIMENSIONS],
    state: &'q S,
    source: Source,
    speed_end: Option<i64>,
}

impl<'q, M: Metric> Merger<'q, M> {
    /// An empty answer to `query`, with the batch layer's coverage and the speed clock.
    pub fn new(query: &'q Query, covered: &'q BTreeSet<HourKey>, windows: WindowSpec) -> Self {
        Merger {
            query,
            covered,
            windows,
            pieces: Vec::new(),
            rows: HashMap::new(),
        }
    }

    /// Adds a batch state; ignored unless its hour is covered.
    pub fn add_batch(&mut self, key: &GroupKey, state: &M::State) {
        if self.covered.contains(&HourKey::of_window(key.window)) {
            self.add(key, state, Source::Batch, None);
        }
    }

    /// Adds a row a batch [`shared_logic::cube::Cube`] selected for this query (in range and
    /// past its filters): its window and the values of the grouped dimensions, in
    /// `group_by` order. Ignored unless its hour is covered.
    pub fn add_batch_row(&mut self, window: WindowStart, grouped: &[&'q str], state: &'q M::State) {
        if self.covered.contains(&HourKey::of_window(window)) {
            let mut dims = [""; MAX_DIMENSIONS];
            for (slot, value) in dims.iter_mut().zip(grouped) {
                *slot = value;
            }
            self.pieces.push(Piece {
                start: self.output_window(window),
                dims,
                state,
                source: Source::Batch,
                speed_end: None,
            });
        }
    }

    /// Adds the rows the speed layer grouped for this query (in range and past its
    /// filters: a window, the values of the grouped dimensions in `group_by` order, a
    /// state); a row is ignored when its hour is covered by batch. Rows in order of window
    /// and values (as the speed layer hands them over) merge without sorting.
    pub fn add_speed_rows(&mut self, rows: &'q SpeedRows<M::State>) {
        self.pieces.reserve(rows.len());
        for (window, dims, state) in rows.iter() {
            if !self.covered.contains(&HourKey::of_window(window)) {
                self.pieces.push(Piece {
                    start: self.output_window(window),
                    dims,
                    state,
                    source: Source::Speed,
                    speed_end: Some(self.windows.end(window)),
                });
            }
        }
    }

    /// Adds a speed state; ignored when its hour is covered by batch.
    pub fn add_speed(&mut self, key: &GroupKey, state: &M::State) {
        if !self.covered.contains(&HourKey::of_window(key.window)) {
            let end = self.windows.end(key.window);
            self.add(key, state, Source::Speed, Some(end));
        }
    }

    fn add(&mut self, key: &GroupKey, state: &M::State, source: Source, speed_end: Option<i64>) {
        let query = self.query;
        if key.window.0 < query.from_ms
            || key.window.0 >= query.to_ms
            || !matches(key, &query.filters)
        {
            return;
        }
        let mut dims = [""; MAX_DIMENSIONS];
        let n = query.group_by.len().min(MAX_DIMENSIONS);
        for (slot, i) in dims.iter_mut().zip(&query.group_by) {
            *slot = key.dim(*i).unwrap_or_default();
        }
        let start = WindowStart(self.output_window(key.window));
        let grouped = &dims[..n];
        let row_key = GroupKey::new(start, grouped);
        match self.rows.get_mut(&row_key) {
            Some((row, end)) => {
                row.state.to_mut().merge(state);
                row.source = row.source.join(source);
                *end = (*end).max(speed_end);
            }
            None => {
                let row = Row {
                    window_start: start.0,
                    window_end: self.window_end(start.0),
                    dims: grouped.iter().map(|d| Cow::Owned(d.to_string())).collect(),
                    state: Cow::Owned(state.clone()),
                    source,
                    is_final: true,
                };
                self.rows.insert(row_key, (row, speed_end));
            }
        }
    }

    /// The start of the output window holding `window`: the window truncated to the
    /// granularity, or `from` when the granularity is the whole range (`all`).
    fn output_window(&self, window: WindowStart) -> i64 {
        match self.query.output_granularity() {
            Some(g) => window.truncate(g).0,
            None => self.query.from_ms,
        }
    }

    fn window_end(&self, start: i64) -> i64 {
        start + self.query.granularity_ms.max(self.windows.size_ms())
    }

    /// The rows, ordered by window start, then grouped dimension values. A row is final
    /// when all of it is batch or its speed windows are past `clock`'s watermark plus the
    /// allowed lateness.
    pub fn finish(mut self, clock: SpeedClock) -> Vec<Row<'q, M::State>> {
        let n = self.query.group_by.len().min(MAX_DIMENSIONS);
        let mut pieces = std::mem::take(&mut self.pieces);
        // Stable: runs already in order (each speed instance's rows) are merged, not sorted.
        pieces.sort_by(|a, b| (a.start, &a.dims[..n]).cmp(&(b.start, &b.dims[..n])));
        let mut rows = Vec::with_capacity(pieces.len() + self.rows.len());
        let mut ends = Vec::with_capacity(rows.capacity());
        let mut pieces = pieces.into_iter().peekable();
        while let Some(first) = pieces.next() {
            let mut state = Cow::Borrowed(first.state);
            let (mut source, mut end) = (first.source, first.speed_end);
            while let Some(next) =
                pieces.next_if(|p| p.start == first.start && p.dims[..n] == first.dims[..n])
            {
                state.to_mut().merge(next.state);
                source = source.join(next.source);
                end = end.max(next.speed_end);
            }
            if !self.rows.is_empty() {
                let key = GroupKey::new(WindowStart(first.start), &first.dims[..n]);
                if let Some((other, other_end)) = self.rows.remove(&key) {
                    state.to_mut().merge(&other.state);
                    source = source.join(other.source);
                    end = end.max(other_end);
                }
            }
            rows.push(Row {
                window_start: first.start,
                window_end: self.window_end(first.start),
                dims: first.dims[..n].iter().map(|d| Cow::Borrowed(*d)).collect(),
                state,
                source,
                is_final: true,
            });
            ends.push(end);
        }
        let sorted = self.rows.is_empty();
        for (row, end) in self.rows.into_values() {
            rows.push(row);
            ends.push(end);
        }
        for (row, end) in rows.iter_mut().zip(ends) {
            row.is_final = end.is_none_or(|end| {
                M::SETTLES_WITH_WATERMARK
                    && clock
                        .watermark
                        .is_some_and(|wm| wm >= end.saturating_add(clock.allowed_lateness_ms))
            });
        }
        if !sorted {
            rows.sort_by(|a, b| (a.window_start, &a.dims).cmp(&(b.window_start, &b.dims)));
        }
        rows
    }
}

/// Merges batch views (`batch`, holding the covered hours) and speed views into rows.
pub fn merge<M: Metric>(
    batch: &MetricViews<M>,
    covered: &BTreeSet<HourKey>,
    speed: &MetricViews<M>,
    clock: SpeedClock,
    windows: &WindowSpec,
    query: &Query,
) -> Vec<Row<'static, M::State>> {
    let mut merger = Merger::<M>::new(query, covered, *windows);
    for (k, s) in batch.iter() {
        merger.add_batch(k, s);
    }
    for (k, s) in speed.iter() {
        merger.add_speed(k, s);
    }
    merger
        .finish(clock)
        .into_iter()
        .map(Row::into_owned)
        .collect()
}

/// The part of `[from_ms, to_ms)` the speed layer must answer: from the start of the first
/// hour the batch layer does not cover to the end of the last one, clipped to the range;
/// `None` when batch covers every hour of it, so covered history never waits for (or fails
/// with) the speed layer. Covered hours inside the span are read and then ignored by
/// [`Merger::add_speed`]. The walk is bounded by the number of covered hours, not by the
/// length of the range.
pub fn speed_span(from_ms: i64, to_ms: i64, covered: &BTreeSet<HourKey>) -> Option<(i64, i64)> {
    if from_ms >= to_ms {
        return None;
    }
    let mut first = HourKey(from_ms.div_euclid(HOUR_MS));
    let mut last = HourKey((to_ms - 1).div_euclid(HOUR_MS));
    while first <= last && covered.contains(&first) {
        first = HourKey(first.0 + 1);
    }
    if first > last {
        return None;
    }
    while covered.contains(&last) {
        last = HourKey(last.0 - 1);
    }
    let end = last.start_ms().saturating_add(HOUR_MS);
    Some((from_ms.max(first.start_ms()), to_ms.min(end)))
}

/// Rows keyed as views again (for comparisons in tests and for `verify`).
pub fn rows_as_views<M: Metric>(rows: &[Row<'_, M::State>]) -> MetricViews<M> {
    let mut views = MetricViews::<M>::default();
    for row in rows {
        let dims: Vec<&str> = row.dims.iter().map(|d| d.as_ref()).collect();
        views.merge_group(
            &GroupKey::new(WindowStart(row.window_start), &dims),
            &row.state,
        );
    }
    views
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::dedup::first_wins;
    use shared_logic::generate::{Generator, GeneratorConfig};
    use shared_logic::metrics::{Funnel, PageViews};
    use shared_logic::{Aggregates, Event, MetricContext, Origin, Validator};

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z

    fn events() -> Vec<Event> {
        let cfg = GeneratorConfig {
            events_per_second: 4.0,
            duplicate_fraction: 0.02,
            ..GeneratorConfig::default()
        };
        let v = Validator::default();
        let all = Generator::new(cfg)
            .take(40_000) // about 2.8 hours
            .enumerate()
            .filter_map(|(i, r)| {
                v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                    .ok()
            });
        first_wins(all)
    }

    fn fold_hours(events: &[Event], hours: impl Fn(HourKey) -> bool) -> Aggregates {
        let picked: Vec<Event> = events
            .iter()
            .filter(|e| hours(HourKey::of(e.event_time())))
            .cloned()
            .collect();
        Aggregates::fold(&picked, &MetricContext::default())
    }

    fn all_minutes() -> Query {
        Query {
            from_ms: i64::MIN,
            to_ms: i64::MAX,
            granularity_ms: 60_000,
            group_by: vec![0, 1, 2],
            filters: vec![],
            sketches: true,
        }
    }

    fn hour(n: i64) -> HourKey {
        HourKey::of_window(WindowStart(T0 + n * HOUR_MS))
    }

    #[test]
    fn the_speed_span_leaves_out_covered_hours_at_both_ends() {
        let covered: BTreeSet<HourKey> = [hour(0), hour(1), hour(3), hour(5)].into();
        let at = |n: i64| T0 + n * HOUR_MS;
        assert_eq!(speed_span(at(0), at(2), &covered), None, "all covered");
        assert_eq!(
            speed_span(at(0), at(3) + 60_000, &covered),
            Some((at(2), at(3))),
            "only the hole; the covered hour 3 it reaches into is left out"
        );
        assert_eq!(
            speed_span(at(1) + 120_000, at(7), &covered),
            Some((at(2), at(7))),
            "from the first uncovered hour to the end"
        );
        assert_eq!(
            speed_span(at(6) + 60_000, at(6) + 120_000, &covered),
            Some((at(6) + 60_000, at(6) + 120_000)),
            "clipped to the range"
        );
        assert_eq!(speed_span(at(1), at(1), &covered), None, "empty range");
        let far = speed_span(0, i64::MAX, &covered).unwrap();
        assert_eq!(far, (0, i64::MAX), "no overflow at the ends");
    }

    proptest::proptest! {
        /// Every hour of the range the batch layer does not cover is inside the span, and
        /// the span starts and ends in uncovered hours.
        #[test]
        fn the_speed_span_holds_every_uncovered_hour(
            hours in proptest::collection::btree_set(0i64..48, 0..48),
            from in 0i64..48 * 60,
            len in 1i64..48 * 60,
        ) {
            let covered: BTreeSet<HourKey> = hours.iter().map(|h| hour(*h)).collect();
            let (from, to) = (T0 + from * 60_000, T0 + (from + len) * 60_000);
            let span = speed_span(from, to, &covered);
            let mut minute = from;
            while minute < to {
                let uncovered = !covered.contains(&HourKey(minute.div_euclid(HOUR_MS)));
                let inside = span.is_some_and(|(a, b)| (a..b).contains(&minute));
                proptest::prop_assert!(!uncovered || inside, "minute {} is left out", minute);
                minute += 60_000;
            }
            if let Some((a, b)) = span {
                proptest::prop_assert!(from <= a && a < b && b <= to);
                proptest::prop_assert!(!covered.contains(&HourKey(a.div_euclid(HOUR_MS))));
                proptest::prop_assert!(!covered.contains(&HourKey((b - 1).div_euclid(HOUR_MS))));
            }
        }
    }

    #[test]
    fn every_window_is_answered_once_whatever_the_boundary() {
        let events = events();
        let direct = Aggregates::fold(&events, &MetricContext::default());
        let windows = WindowSpec::default();
        let clock = SpeedClock {
            watermark: None,
            allowed_lateness_ms: 60_000,
        };
        // Speed still holds every hour; batch has computed 0..k for each boundary position.
        let speed = fold_hours(&events, |_| true);
        for k in 0..=3 {
            let covered: BTreeSet<HourKey> = (0..k).map(hour).collect();
            let batch = fold_hours(&events, |h| covered.contains(&h));
            let rows = merge::<PageViews>(
                &batch.page_views,
                &covered,
                &speed.page_views,
                clock,
                &windows,
                &all_minutes(),
            );
            assert!(
                rows_as_views::<PageViews>(&rows) == direct.page_views,
                "boundary after {k} hours"
            );
            assert!(rows.iter().all(|r| (r.source == Source::Batch)
                == covered.contains(&HourKey::of_window(WindowStart(r.window_start)))));
        }
    }

    /// The speed layer's rows of `views` grouped for `query`, as one instance hands them
    /// over (in order), or shuffled.
    fn speed_rows(
        views: &MetricViews<PageViews>,
        query: &Query,
        shuffled: bool,
    ) -> SpeedRows<shared_logic::metrics::PageViewsState> {
        let grouping = shared_logic::Grouping {
            group_by: query.group_by.clone(),
            filters: query.filters.clone(),
            sketches: true,
        };
        let mut grouped = MetricViews::<PageViews>::default();
        for (k, s) in views.in_windows(query.from_ms, query.to_ms) {
            grouping.group_into(&mut grouped, k, s);
        }
        let mut rows: Vec<_> = grouped.into_groups().collect();
        rows.sort_by(|(a, _), (b, _)| a.window.cmp(&b.window).then_with(|| a.dims().cmp(b.dims())));
        if shuffled {
            rows.reverse();
            let half = rows.len() / 2;
            rows.rotate_left(half);
        }
        let mut out = SpeedRows::new(query.group_by.len());
        for (k, s) in rows {
            let dims: Vec<&str> = k.dims().collect();
            out.push(k.window, &dims, s);
        }
        out
    }

    #[test]
    fn grouped_speed_rows_merge_as_full_keys_do_from_any_number_of_instances() {
        let events = events();
        let windows = WindowSpec::default();
        let covered: BTreeSet<HourKey> = [hour(1)].into();
        let batch = fold_hours(&events, |h| covered.contains(&h));
        // Two instances, each holding every other event (the same keys in both).
        let halves: Vec<Vec<Event>> = (0..2)
            .map(|r| events.iter().skip(r).step_by(2).cloned().collect())
            .collect();
        let speed: Vec<Aggregates> = halves
            .iter()
            .map(|h| fold_hours(h, |h| !covered.contains(&h)))
            .collect();
        let mut all_speed = speed[0].page_views.clone();
        all_speed.merge(&speed[1].page_views);
        let last = events.iter().map(|e| e.event_time().0).max().unwrap();
        let clock = SpeedClock {
            watermark: Some(last - 30 * 60_000),
            allowed_lateness_ms: 60_000,
        };
        let cube = shared_logic::cube::Cube::build(batch.page_views.clone(), &windows);
        for (granularity_ms, group_by, filters) in [
            (60_000, vec![0], vec![]),
            (60_000, vec![0, 2], vec![]),
            (60_000, vec![2, 1], vec![(2, "mobile".to_string())]),
            (HOUR_MS, vec![1], vec![(2, "mobile".to_string())]),
            (3 * HOUR_MS, vec![], vec![]),
            (3 * HOUR_MS, vec![2, 1], vec![]),
        ] {
            let query = Query {
                from_ms: T0,
                to_ms: T0 + 3 * HOUR_MS,
                granularity_ms,
                group_by,
                filters,
                sketches: true,
            };
            let expected = merge::<PageViews>(
                &batch.page_views,
                &covered,
                &all_speed,
                clock,
                &windows,
                &query,
            );
            // The speed layer's keys as they are (`add_speed`), or grouped by each instance
            // in order or shuffled (`add_speed_rows`).
            for (full_keys, shuffled) in [(true, false), (false, false), (false, true)] {
                let held: Vec<_> = speed
                    .iter()
                    .map(|a| speed_rows(&a.page_views, &query, shuffled))
                    .collect();
                let mut merger = Merger::<PageViews>::new(&query, &covered, windows);
                let selection = shared_logic::cube::Selection {
                    from_ms: query.from_ms,
                    to_ms: query.to_ms,
                    granularity_ms: query.output_granularity(),
                    group_by: &query.group_by,
                    filters: &query.filters,
                };
                cube.select(&selection, |w, dims, s| merger.add_batch_row(w, dims, s))
                    .unwrap();
                for (rows, instance) in held.iter().zip(&speed) {
                    if full_keys {
                        for (k, s) in instance.page_views.iter() {
                            merger.add_speed(k, s);
                        }
                    } else {
                        merger.add_speed_rows(rows);
                    }
                }
                let rows: Vec<_> = merger
                    .finish(clock)
                    .into_iter()
                    .map(Row::into_owned)
                    .collect();
                assert_eq!(
                    rows, expected,
                    "{query:?}, full keys: {full_keys}, shuffled: {shuffled}"
                );
            }
            let sources: BTreeSet<&str> = expected
                .iter()
                .map(|r| match (r.source, r.is_final) {
                    (Source::BatchAndSpeed, _) => "both",
                    (Source::Speed, false) => "open speed",
                    _ => "other",
                })
                .collect();
            match granularity_ms {
                60_000 => assert!(sources.contains("open speed"), "{sources:?}"),
                g if g == 3 * HOUR_MS => assert!(sources.contains("both"), "{sources:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn a_granularity_of_the_whole_range_is_one_window_from_its_start() {
        let events = events();
        let windows = WindowSpec::default();
        let covered: BTreeSet<HourKey> = [hour(1)].into();
        let batch = fold_hours(&events, |h| covered.contains(&h));
        let speed = fold_hours(&events, |h| !covered.contains(&h));
        let clock = SpeedClock {
            watermark: None,
            allowed_lateness_ms: 60_000,
        };
        // Hours 1 and 2: not aligned to the two-hour granularity it spans.
        let query = Query {
            from_ms: T0 + HOUR_MS,
            to_ms: T0 + 3 * HOUR_MS,
            granularity_ms: 2 * HOUR_MS,
            group_by: vec![1],
            filters: vec![],
            sketches: true,
        };
        let rows = merge::<Funnel>(
            &batch.funnel,
            &covered,
            &speed.funnel,
            clock,
            &windows,
            &query,
        );
        assert!(!rows.is_empty());
        assert!(rows
            .iter()
            .all(|r| r.window_start == T0 + HOUR_MS && r.window_end == T0 + 3 * HOUR_MS));
        let hourly = Query {
            granularity_ms: HOUR_MS,
            ..query.clone()
        };
        let by_hour = merge::<Funnel>(
            &batch.funnel,
            &covered,
            &speed.funnel,
            clock,
            &windows,
            &hourly,
        );
        let mut summed = MetricViews::<Funnel>::default();
        for r in &by_hour {
            let dims: Vec<&str> = r.dims.iter().map(|d| d.as_ref()).collect();
            summed.merge_group(&GroupKey::new(WindowStart(T0 + HOUR_MS), &dims), &r.state);
        }
        assert!(rows_as_views::<Funnel>(&rows) == summed);
    }

    #[test]
    fn a_recomputed_dirty_hour_replaces_the_old_batch_answer() {
        let events = events();
        let windows = WindowSpec::default();
        let clock = SpeedClock {
            watermark: None,
            allowed_lateness_ms: 60_000,
        };
        let covered: BTreeSet<HourKey> = [hour(0), hour(1)].into();
        // The first batch run of hour 1 missed late data (half its events); speed dropped it too.
        let partial: Vec<Event> = events
            .iter()
            .enumerate()
            .filter(|(i, e)| HourKey::of(e.event_time()) != hour(1) || i % 2 == 0)
            .map(|(_, e)| e.clone())
            .collect();
        let stale_batch = fold_hours(&partial, |h| covered.contains(&h));
        let speed = fold_hours(&partial, |h| !covered.contains(&h));
        let stale = merge::<Funnel>(
            &stale_batch.funnel,
            &covered,
            &speed.funnel,
            clock,
            &windows,
            &all_minutes(),
        );
        assert!(
            rows_as_views::<Funnel>(&stale)
                != Aggregates::fold(&events, &MetricContext::default()).funnel
        );
        // The dirty run recomputes hour 1 from the lake, which has everything.
        let fresh_batch = fold_hours(&events, |h| covered.contains(&h));
        let fresh = merge::<Funnel>(
            &fresh_batch.funnel,
            &covered,
            &speed.funnel,
            clock,
            &windows,
            &all_minutes(),
        );
        let expected = fold_hours(&partial, |h| !covered.contains(&h)).funnel;
        let mut expected_all = fold_hours(&events, |h| covered.contains(&h)).funnel;
        expected_all.merge(&expected);
        assert!(rows_as_views::<Funnel>(&fresh) == expected_all);
    }

    #[test]
    fn rollups_group_filter_and_mark_their_sources() {
        let events = events();
        let windows = WindowSpec::default();
        let covered: BTreeSet<HourKey> = [hour(0)].into();
        let batch = fold_hours(&events, |h| covered.contains(&h));
        let speed = fold_hours(&events, |h| !covered.contains(&h));
        let last = events.iter().map(|e| e.event_time().0).max().unwrap();
        let clock = SpeedClock {
            watermark: Some(last - 5_000),
            allowed_lateness_ms: 60_000,
        };
        let query = Query {
            from_ms: T0,
            to_ms: T0 + 2 * HOUR_MS,
            granularity_ms: 2 * HOUR_MS,
            group_by: vec![1],
            filters: vec![(2, "mobile".into())],
            sketches: true,
        };
        let rows = merge::<PageViews>(
            &batch.page_views,
            &covered,
            &speed.page_views,
            clock,
            &windows,
            &query,
        );
        assert!(!rows.is_empty());
        for r in &rows {
            assert_eq!(r.window_start, T0);
            assert_eq!(r.source, Source::BatchAndSpeed);
            assert!(
                r.is_final,
                "both hours are past the watermark plus lateness"
            );
        }
        let views: u64 = rows.iter().map(|r| r.state.views).sum();
        let direct = events
            .iter()
            .filter(|e| {
                e.event_type() == shared_logic::EventType::PageView
                    && e.device().as_str() == "mobile"
            })
            .filter(|e| e.event_time().0 >= T0 && e.event_time().0 < T0 + 2 * HOUR_MS)
            .count() as u64;
        assert_eq!(views, direct);
        // The speed hour's last minutes are not final yet with an earlier watermark.
        let early = SpeedClock {
            watermark: Some(T0 + HOUR_MS + 30 * 60_000),
            ..clock
        };
        let minute_rows = merge::<PageViews>(
            &batch.page_views,
            &covered,
            &speed.page_views,
            early,
            &windows,
            &all_minutes(),
        );
        assert!(minute_rows
            .iter()
            .any(|r| !r.is_final && r.source == Source::Speed));
        assert!(minute_rows
            .iter()
            .filter(|r| r.source == Source::Batch)
            .all(|r| r.is_final));
    }
}
