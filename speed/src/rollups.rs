//! The real-time views grouped the way readers ask for them ([`Grouping`]), window by
//! window, kept until a write touches the window.
//!
//! A dashboard panel over the last hour asks for the same few groupings (page views per
//! URL per minute) every few seconds, over a state of a million keys of which only the
//! newest minute or two still change. Grouping every key anew for every answer costs the
//! whole state per answer; here each window's grouped rows are computed once and kept,
//! and a window's rows are forgotten as soon as any partition writes into it a metric of
//! the same kind ([`BuiltFrom`]: an event extending a session that started an hour ago
//! changes the `sessions` window of an hour ago, not the page views there;
//! [`Rollups::touched`], fed by the partitions' change notes), or the partitions held
//! change ([`Rollups::clear`]). A read then groups only the windows it does not hold, in
//! one pass over the keys (none when it holds them all). Druid's per-segment result cache
//! is the same idea with segments for windows.
//!
//! Exactness: a kept window's rows are the grouping of exactly the keys the window holds,
//! because nothing can change a window without its note reaching [`Rollups::touched`]
//! under the views' write lock, and rows are computed and kept under the read lock.
//! Memory: bounded by a byte budget; the oldest windows go first.
//!
//! Versions: every note bumps a counter and records it as the version of the window for
//! that kind of metric, so a
//! reader holding an earlier answer (a serving process) asks only for the windows changed
//! since ([`Since`]); a change of the partitions held moves the floor every window
//! without a recorded version counts from, and a new process starts a new epoch.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};

use lambda_io::speed_api::{Answered, Since, ViewsVersion};
use shared_logic::metric::BuiltFrom;
use shared_logic::window::WindowSpec;
use shared_logic::{Aggregates, GroupKey, Grouping, Metric, MetricViews, Registered};

/// Windows one read may keep; a wider read groups its keys without keeping them.
pub const MAX_KEPT_WINDOWS_PER_READ: usize = 10_080;
/// Default budget of kept rows (bytes, estimated).
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;
/// Windows whose versions are recorded; older records are dropped and the floor raised.
const MAX_VERSIONED_WINDOWS: usize = 1 << 16;
/// Changed windows an incremental answer lists; more, and it answers every window.
const MAX_CHANGED_LISTED: usize = 1024;

/// A metric and a grouping: what a kept window's rows answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    metric: &'static str,
    built: BuiltFrom,
    grouping: Grouping,
}

/// One window's grouped rows of one shape (`Vec<(GroupKey, M::State)>`).
struct Kept {
    rows: Box<dyn Any + Send + Sync>,
    bytes: usize,
}

/// The kept rows, by window start.
pub struct Rollups {
    windows: BTreeMap<i64, HashMap<Shape, Kept>>,
    bytes: usize,
    budget: usize,
    /// This lifetime of the views (random: a restarted instance starts a new one).
    epoch: u64,
    /// The number of the last note.
    version: u64,
    /// The version of the last note of each window and kind of metric.
    changed: BTreeMap<(i64, BuiltFrom), u64>,
    /// The version every window without a record in `changed` counts as changed at.
    floor: u64,
}

impl Default for Rollups {
    fn default() -> Self {
        Rollups::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl Rollups {
    /// No rows kept, at most about `budget` bytes of them.
    pub fn with_budget(budget: usize) -> Self {
        use std::hash::BuildHasher;
        Rollups {
            windows: BTreeMap::new(),
            bytes: 0,
            budget,
            epoch: std::collections::hash_map::RandomState::new()
                .hash_one(std::time::SystemTime::now()),
            version: 0,
            changed: BTreeMap::new(),
            floor: 0,
        }
    }

    /// Forgets the rows of a window whose keys changed in the metrics built from `built`.
    pub fn touched(&mut self, built: BuiltFrom, window: i64) {
        if let Some(shapes) = self.windows.get_mut(&window) {
            shapes.retain(|shape, kept| {
                let stays = shape.built != built;
                if !stays {
                    self.bytes -= kept.bytes;
                }
                stays
            });
            if shapes.is_empty() {
                self.windows.remove(&window);
            }
        }
        self.version += 1;
        self.changed.insert((window, built), self.version);
        if self.changed.len() > MAX_VERSIONED_WINDOWS {
            if let Some((_, dropped)) = self.changed.pop_first() {
                self.floor = self.floor.max(dropped);
            }
        }
    }

    /// Forgets everything (the partitions held changed): every window counts as changed.
    pub fn clear(&mut self) {
        self.windows.clear();
        self.bytes = 0;
        self.version += 1;
        self.floor = self.version;
        self.changed.clear();
    }

    /// The version the views are at.
    pub fn version(&self) -> ViewsVersion {
        ViewsVersion {
            epoch: self.epoch,
            version: self.version,
        }
    }

    /// Which of the windows `starts` of a metric built from `built` a reader holding
    /// `since` must be sent: all of them without a `since` of this epoch and floor, else
    /// those it does not know and those changed (in that kind of metric) after its version.
    fn answered(&self, since: Option<&Since>, starts: &[i64], built: BuiltFrom) -> Answered {
        let Some(since) = since.filter(|s| {
            s.version.epoch == self.epoch
                && s.version.version >= self.floor
                && s.version.version <= self.version
        }) else {
            return Answered::All;
        };
        let changed: Vec<i64> = starts
            .iter()
            .copied()
            .filter(|w| since.knows(*w))
            .filter(|w| {
                self.changed
                    .get(&(*w, built))
                    .is_some_and(|v| *v > since.version.version)
            })
            .collect();
        if changed.len() > MAX_CHANGED_LISTED {
            return Answered::All;
        }
        Answered::Changed(changed)
    }

    /// Estimated bytes kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn get<M: Metric>(&self, window: i64, shape: &Shape) -> Option<&[(GroupKey, M::State)]> {
        let kept = self.windows.get(&window)?.get(shape)?;
        kept.rows
            .downcast_ref::<Vec<(GroupKey, M::State)>>()
            .map(Vec::as_slice)
    }

    fn keep<M: Metric>(&mut self, window: i64, shape: Shape, rows: Vec<(GroupKey, M::State)>) {
        let bytes = rows
            .iter()
            .map(|(_, s)| {
                std::mem::size_of::<(GroupKey, M::State)>()
                    + M::sketches(s).iter().map(|h| h.heap_bytes()).sum::<usize>()
            })
            .sum::<usize>()
            + std::mem::size_of::<Shape>();
        if bytes > self.budget {
            return;
        }
        while self.bytes + bytes > self.budget {
            let Some((_, shapes)) = self.windows.pop_first() else {
                break;
            };
            self.bytes -= shapes.values().map(|k| k.bytes).sum::<usize>();
        }
        let kept = Kept {
            rows: Box::new(rows),
            bytes,
        };
        if let Some(old) = self.windows.entry(window).or_default().insert(shape, kept) {
            self.bytes -= old.bytes;
        }
        self.bytes += bytes;
    }
}

/// The window starts of `windows` in `[from_ms, to_ms)`, if there are at most `limit`.
fn window_starts(windows: &WindowSpec, from_ms: i64, to_ms: i64, limit: usize) -> Option<Vec<i64>> {
    let slide = i128::from(windows.slide_ms());
    let (from, to) = (i128::from(from_ms), i128::from(to_ms));
    let first = from.div_euclid(slide) * slide;
    let first = if first < from { first + slide } else { first };
    if first >= to {
        return Some(Vec::new());
    }
    let count = (to - 1 - first) / slide + 1;
    if count > limit as i128 {
        return None;
    }
    (0..count)
        .map(|i| i64::try_from(first + i * slide).ok())
        .collect()
}

/// Hands `out` the rows of metric `M` grouped by `grouping`, for windows starting in
/// `[from_ms, to_ms)`, over the `sources` (every partition's aggregates): the kept rows
/// of windows `rollups` holds, the others grouped from the keys (and kept, when `keep`).
/// Each row is one window and grouped values; a window's rows are the merge over sources.
/// Rows come in order of window start, then grouped values (each compared as a string,
/// in `group_by` order), so a reader can merge them as a sorted run.
///
/// With `since` (what the reader holds), only the windows [`Answered`] names are handed
/// over; the version read at and the windows answered are returned, or nothing when the
/// answer is not incremental (not kept: every window of the range is in it).
#[allow(clippy::too_many_arguments)]
pub fn select<'a, M: Registered>(
    rollups: &std::sync::Mutex<Rollups>,
    sources: impl Iterator<Item = &'a Aggregates>,
    windows: &WindowSpec,
    from_ms: i64,
    to_ms: i64,
    grouping: &Grouping,
    keep: bool,
    since: Option<&Since>,
    mut out: impl FnMut(&GroupKey, &M::State),
) -> Option<(ViewsVersion, Answered)> {
    let starts = keep
        .then(|| window_starts(windows, from_ms, to_ms, MAX_KEPT_WINDOWS_PER_READ))
        .flatten();
    let Some(starts) = starts else {
        let mut grouped = MetricViews::<M>::default();
        for aggregates in sources {
            for (key, state) in M::views_in(aggregates).in_windows(from_ms, to_ms) {
                grouping.group_into(&mut grouped, key, state);
            }
        }
        let mut rows: Vec<_> = grouped.into_groups().collect();
        sort_rows(&mut rows);
        rows.iter().for_each(|(k, s)| out(k, s));
        return None;
    };
    let shape = Shape {
        metric: M::NAME,
        built: M::BUILT_FROM,
        grouping: grouping.clone(),
    };
    let mut kept = rollups.lock().unwrap_or_else(|p| p.into_inner());
    let answered = kept.answered(since, &starts, M::BUILT_FROM);
    let starts: Vec<i64> = match (&answered, since) {
        (Answered::Changed(changed), Some(since)) => starts
            .into_iter()
            .filter(|w| !since.knows(*w) || changed.binary_search(w).is_ok())
            .collect(),
        _ => starts,
    };
    let missing: Vec<i64> = starts
        .iter()
        .copied()
        .filter(|start| kept.get::<M>(*start, &shape).is_none())
        .collect();
    let mut fresh: BTreeMap<i64, Vec<(GroupKey, M::State)>> = BTreeMap::new();
    if let (Some(&low), Some(&high)) = (missing.first(), missing.last()) {
        let mut grouped = MetricViews::<M>::default();
        for aggregates in sources {
            for (key, state) in M::views_in(aggregates).in_windows(low, high + 1) {
                if missing.binary_search(&key.window.0).is_ok() {
                    grouping.group_into(&mut grouped, key, state);
                }
            }
        }
        fresh = missing.iter().map(|w| (*w, Vec::new())).collect();
        for (key, state) in grouped.into_groups() {
            if let Some(rows) = fresh.get_mut(&key.window.0) {
                rows.push((key, state));
            }
        }
        fresh.values_mut().for_each(|rows| sort_rows(rows));
    }
    for start in &starts {
        let rows = match fresh.get(start) {
            Some(rows) => rows.as_slice(),
            None => kept.get::<M>(*start, &shape).unwrap_or_default(),
        };
        rows.iter().for_each(|(k, s)| out(k, s));
    }
    for (window, rows) in fresh {
        kept.keep::<M>(window, shape.clone(), rows);
    }
    Some((kept.version(), answered))
}

/// Sorts rows by window start, then grouped values compared as strings.
fn sort_rows<S>(rows: &mut [(GroupKey, S)]) {
    rows.sort_unstable_by(|(a, _), (b, _)| {
        a.window.cmp(&b.window).then_with(|| a.dims().cmp(b.dims()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::metrics::{PageViews, PageViewsState};
    use shared_logic::WindowStart;
    use std::sync::Mutex;

    fn page_views(keys: &[(i64, &str, &str, u64)]) -> Aggregates {
        let mut aggregates = Aggregates::default();
        for (w, url, country, views) in keys {
            let key = GroupKey::new(WindowStart(w * 60_000), &[url, country, "desktop"]);
            let mut state = PageViewsState {
                views: *views,
                ..Default::default()
            };
            state.users.add(country);
            aggregates.page_views.merge_group(&key, &state);
        }
        aggregates
    }

    fn by_url(sketches: bool) -> Grouping {
        Grouping {
            group_by: vec![0],
            filters: Vec::new(),
            sketches,
        }
    }

    fn read(
        rollups: &Mutex<Rollups>,
        parts: &[Aggregates],
        grouping: &Grouping,
        keep: bool,
    ) -> Vec<(i64, Vec<String>, u64, u64)> {
        let mut rows = Vec::new();
        select::<PageViews>(
            rollups,
            parts.iter(),
            &WindowSpec::default(),
            0,
            10 * 60_000,
            grouping,
            keep,
            None,
            |k, s| {
                rows.push((
                    k.window.0,
                    k.dims().map(str::to_string).collect(),
                    s.views,
                    s.users.estimate(),
                ))
            },
        );
        assert!(rows.is_sorted(), "rows in order of window, then values");
        rows
    }

    #[test]
    fn kept_rows_answer_as_the_keys_do_until_a_window_is_touched() {
        let parts = vec![
            page_views(&[(0, "/a", "US", 1), (0, "/a", "DE", 2), (1, "/b", "US", 3)]),
            page_views(&[(0, "/a", "FR", 4), (2, "/a", "US", 5)]),
        ];
        let rollups = Mutex::new(Rollups::default());
        let fresh = read(&rollups, &parts, &by_url(true), false);
        assert_eq!(
            fresh,
            vec![
                (0, vec!["/a".to_string()], 7, 3),
                (60_000, vec!["/b".to_string()], 3, 1),
                (120_000, vec!["/a".to_string()], 5, 1),
            ]
        );
        assert_eq!(
            rollups.lock().unwrap().bytes(),
            0,
            "not kept when told not to"
        );
        assert_eq!(read(&rollups, &parts, &by_url(true), true), fresh);
        assert!(rollups.lock().unwrap().bytes() > 0);
        // Kept: a change the views were not told of is not seen (which is why every write
        // notes its windows)...
        let mut changed = parts.clone();
        changed[1] = page_views(&[(0, "/a", "FR", 40), (2, "/a", "US", 5)]);
        assert_eq!(read(&rollups, &changed, &by_url(true), true), fresh);
        // ...and once noted, the window is grouped again, the others still kept.
        rollups.lock().unwrap().touched(BuiltFrom::Events, 0);
        let after = read(&rollups, &changed, &by_url(true), true);
        assert_eq!(after[0], (0, vec!["/a".to_string()], 43, 3));
        assert_eq!(after[1..], fresh[1..]);
        // Without sketches: the same counts, no distinct users.
        let bare = read(&rollups, &changed, &by_url(false), true);
        assert!(bare.iter().all(|r| r.3 == 0));
        assert_eq!(
            bare.iter().map(|r| r.2).collect::<Vec<_>>(),
            after.iter().map(|r| r.2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_budget_bounds_the_kept_rows_and_answers_stay_whole() {
        let keys: Vec<(i64, String)> = (0..10).map(|w| (w, format!("/u{w}"))).collect();
        let keys: Vec<(i64, &str, &str, u64)> = keys
            .iter()
            .map(|(w, u)| (*w, u.as_str(), "US", 1))
            .collect();
        let parts = vec![page_views(&keys)];
        let one_window =
            std::mem::size_of::<(GroupKey, PageViewsState)>() + std::mem::size_of::<Shape>();
        let rollups = Mutex::new(Rollups::with_budget(3 * one_window));
        let all = read(&rollups, &parts, &by_url(false), true);
        assert_eq!(all.len(), 10);
        assert!(rollups.lock().unwrap().bytes() <= 3 * one_window);
        assert_eq!(read(&rollups, &parts, &by_url(false), true), all);
    }

    /// A step of the incremental-read property: a write into a partition's window, the
    /// eviction of a partition's windows before one, a change of the partitions held, or
    /// a read of windows `[from, to)` by the reader keeping what it read.
    #[derive(Debug, Clone)]
    enum Step {
        Write(usize, i64, &'static str, u64),
        Evict(usize, i64),
        Reassigned,
        Read(i64, i64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..2usize, 0..6i64, prop::sample::select(vec!["/a", "/b", "/c"]), 1..5u64)
                .prop_map(|(p, w, u, v)| Step::Write(p, w, u, v)),
            1 => (0..2usize, 0..6i64).prop_map(|(p, w)| Step::Evict(p, w)),
            1 => Just(Step::Reassigned),
            4 => (0..6i64, 1..4i64).prop_map(|(w, n)| Step::Read(w, w + n)),
        ]
    }

    type Row = (i64, Vec<String>, u64);

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// A reader that keeps every window it read and asks only for the windows changed
        /// since (or unknown to it), replacing those and dropping the ones outside its new
        /// range, holds exactly what a full grouping of the keys gives, read after read.
        #[test]
        fn a_reader_asking_only_for_changed_windows_holds_what_a_full_read_gives(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            let mut keys: Vec<BTreeMap<(i64, &str), u64>> = vec![BTreeMap::new(); 2];
            let rollups = Mutex::new(Rollups::default());
            let mut since: Option<Since> = None;
            let mut held: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
            let grouping = by_url(false);
            for step in steps {
                match step {
                    Step::Write(p, w, url, views) => {
                        *keys[p].entry((w, url)).or_default() += views;
                        rollups.lock().unwrap().touched(BuiltFrom::Events, w * 60_000);
                    }
                    Step::Evict(p, before) => {
                        let gone: Vec<(i64, &str)> =
                            keys[p].range(..(before, "")).map(|(k, _)| *k).collect();
                        for key in gone {
                            keys[p].remove(&key);
                            rollups.lock().unwrap().touched(BuiltFrom::Events, key.0 * 60_000);
                        }
                    }
                    Step::Reassigned => rollups.lock().unwrap().clear(),
                    Step::Read(from, to) => {
                        let parts: Vec<Aggregates> = keys
                            .iter()
                            .map(|k| {
                                let k: Vec<_> =
                                    k.iter().map(|((w, u), v)| (*w, *u, "US", *v)).collect();
                                page_views(&k)
                            })
                            .collect();
                        let (from, to) = (from * 60_000, to * 60_000);
                        let mut fresh: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
                        let answered = select::<PageViews>(
                            &rollups, parts.iter(), &WindowSpec::default(), from, to,
                            &grouping, true, since.as_ref(),
                            |k, s| fresh.entry(k.window.0).or_default().push(
                                (k.window.0, k.dims().map(str::to_string).collect(), s.views)),
                        );
                        let (version, answered) = answered.expect("kept reads are versioned");
                        match (&answered, since) {
                            (Answered::Changed(changed), Some(s)) => held.retain(|w, _| {
                                (from..to).contains(w) && s.knows(*w)
                                    && changed.binary_search(w).is_err()
                            }),
                            _ => held.clear(),
                        }
                        held.extend(fresh);
                        since = Some(Since { version, known_from: from, known_to: to });
                        let mut full = Vec::new();
                        select::<PageViews>(
                            &Mutex::new(Rollups::default()), parts.iter(),
                            &WindowSpec::default(), from, to, &grouping, false, None,
                            |k, s| full.push(
                                (k.window.0, k.dims().map(str::to_string).collect(), s.views)),
                        );
                        let kept: Vec<Row> = held.values().flatten().cloned().collect();
                        proptest::prop_assert_eq!(kept, full);
                    }
                }
            }
        }
    }

    #[test]
    fn an_answer_to_another_epoch_or_an_older_floor_is_whole() {
        let mut rollups = Rollups::default();
        rollups.touched(BuiltFrom::Events, 0);
        let at = rollups.version();
        let since = |version| Since {
            version,
            known_from: 0,
            known_to: 180_000,
        };
        let starts = [0, 60_000, 120_000];
        assert_eq!(
            rollups.answered(Some(&since(at)), &starts, BuiltFrom::Events),
            Answered::Changed(vec![])
        );
        rollups.touched(BuiltFrom::Events, 60_000);
        assert_eq!(
            rollups.answered(Some(&since(at)), &starts, BuiltFrom::Events),
            Answered::Changed(vec![60_000])
        );
        let other = ViewsVersion {
            epoch: at.epoch.wrapping_add(1),
            ..at
        };
        assert_eq!(
            rollups.answered(Some(&since(other)), &starts, BuiltFrom::Events),
            Answered::All
        );
        let ahead = ViewsVersion {
            version: at.version + 10,
            ..at
        };
        assert_eq!(
            rollups.answered(Some(&since(ahead)), &starts, BuiltFrom::Events),
            Answered::All
        );
        rollups.clear();
        assert_eq!(
            rollups.answered(Some(&since(at)), &starts, BuiltFrom::Events),
            Answered::All
        );
        assert_eq!(
            rollups.answered(None, &starts, BuiltFrom::Events),
            Answered::All
        );
    }

    #[test]
    fn window_starts_are_the_slides_in_the_range() {
        let minute = WindowSpec::default();
        assert_eq!(
            window_starts(&minute, 30_000, 180_000, 10),
            Some(vec![60_000, 120_000])
        );
        assert_eq!(window_starts(&minute, 0, 0, 10), Some(vec![]));
        assert_eq!(window_starts(&minute, 0, 60_000 * 11, 10), None);
        assert_eq!(window_starts(&minute, i64::MIN, i64::MAX, 10), None);
        let sliding = WindowSpec::sliding(300_000, 60_000).unwrap();
        assert_eq!(
            window_starts(&sliding, -60_000, 60_001, 10),
            Some(vec![-60_000, 0, 60_000])
        );
    }
}
