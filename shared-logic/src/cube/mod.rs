//! Rolled-up, dictionary-encoded views for answering queries: a [`Cube`] holds one
//! metric's states over some span (the serving layer builds one per published hour file)
//! so that a query's cost follows the rows it answers, not the keys stored.
//!
//! Layout (the shape of Druid's segments and Kylin's cuboids, in memory):
//! - each dimension's values are in a sorted [`dictionary::Dictionary`]; a row holds codes;
//! - a **level** is a window size: the views' own windows and, for tumbling windows that
//!   divide an hour, whole hours;
//! - per level, **cuboids**: the rows grouped by a subset of the dimensions (a lattice),
//!   each sorted by window then codes, so a time range is a binary search. The full
//!   cuboid is always there; a smaller one is kept when it has at most half the rows of
//!   the smallest kept cuboid it is rolled up from (otherwise reading that one costs at
//!   most twice as much), see [`lattice`].
//!
//! Exactness: a rolled-up row is the monoid merge of the rows it covers, so any query's
//! answer from any cuboid equals the answer from the full views (property-tested in
//! `tests.rs`): a rollup is a different grouping of the same merge, never an approximation.

mod dictionary;
mod lattice;
#[cfg(test)]
mod tests;

use crate::group_key::GroupKey;
use crate::metric::{Metric, MAX_DIMENSIONS};
use crate::metric_views::MetricViews;
use crate::window::{WindowSpec, WindowStart, HOUR_MS};

use dictionary::{Dictionary, DictionaryBuilder};
use lattice::{Codes, Cuboid, Level, ABSENT};

/// What a query reads from a [`Cube`]: windows starting in `[from_ms, to_ms)`, output
/// windows of `granularity_ms`, the dimensions grouped (indexes into the metric's
/// dimensions, in output order) and `(dimension index, value)` filters.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub granularity_ms: i64,
    pub group_by: &'a [usize],
    pub filters: &'a [(usize, String)],
}

/// One metric's states, dictionary-encoded and rolled up (see the module docs).
pub struct Cube<M: Metric> {
    dicts: Vec<Dictionary>,
    /// The views' own windows first, then coarser ones.
    levels: Vec<Level<M::State>>,
}

impl<M: Metric> Cube<M> {
    /// Builds the cube of `views`, whose windows follow `windows`.
    pub fn build(views: MetricViews<M>, windows: &WindowSpec) -> Self {
        let dims = M::DIMENSIONS.len().min(MAX_DIMENSIONS);
        let mut groups: Vec<(GroupKey, M::State)> = views.into_groups().collect();
        let (dicts, mut keyed) = {
            let mut builders: Vec<DictionaryBuilder<'_>> =
                (0..dims).map(|_| DictionaryBuilder::default()).collect();
            let mut keyed: Vec<(i64, Codes, u32)> = Vec::with_capacity(groups.len());
            for (i, (key, _)) in groups.iter().enumerate() {
                let mut codes = [ABSENT; MAX_DIMENSIONS];
                for ((code, value), builder) in codes.iter_mut().zip(key.dims()).zip(&mut builders)
                {
                    *code = builder.intern(value);
                }
                keyed.push((key.window.0, codes, i as u32));
            }
            let mut dicts = Vec::with_capacity(dims);
            let mut remaps = Vec::with_capacity(dims);
            for builder in builders {
                let (dict, remap) = builder.finish();
                dicts.push(dict);
                remaps.push(remap);
            }
            for (_, codes, _) in &mut keyed {
                for (code, remap) in codes.iter_mut().zip(&remaps) {
                    *code = remap[*code as usize];
                }
            }
            (dicts, keyed)
        };
        keyed.sort_unstable_by_key(|(w, c, _)| (*w, *c));
        let mut full = Cuboid::with_capacity(lattice::full_mask(dims), keyed.len());
        for (window, codes, i) in keyed {
            full.push(window, codes, std::mem::take(&mut groups[i as usize].1));
        }
        drop(groups);
        let base_size = windows.size_ms();
        let hourly = matches!(windows, WindowSpec::Tumbling { size_ms } if *size_ms < HOUR_MS && HOUR_MS % *size_ms == 0);
        let hour_full =
            hourly.then(|| full.regroup(full.mask, |w| w.div_euclid(HOUR_MS) * HOUR_MS));
        let mut levels = vec![Level::build(base_size, full, dims)];
        if let Some(hour_full) = hour_full {
            levels.push(Level::build(HOUR_MS, hour_full, dims));
        }
        Cube { dicts, levels }
    }

    /// Calls `emit` with each row of the smallest cuboid that answers `selection`: its
    /// window (of the level read: the views' windows, or hours when the selection's
    /// granularity and range are whole hours), the values of the grouped dimensions in
    /// `group_by` order, and the state. Several rows may share a window and grouped values
    /// (when the cuboid read groups by more dimensions than asked): the caller merges them.
    /// Returns the number of rows read.
    pub fn select<'c>(
        &'c self,
        selection: &Selection<'_>,
        mut emit: impl FnMut(WindowStart, &[&'c str], &'c M::State),
    ) -> usize {
        let aligned = |size: i64| {
            size > 0
                && selection.granularity_ms % size == 0
                && selection.from_ms.rem_euclid(size) == 0
                && selection.to_ms.rem_euclid(size) == 0
        };
        let level = self
            .levels
            .iter()
            .rev()
            .find(|l| aligned(l.size_ms))
            .unwrap_or(&self.levels[0]);
        let mut needed = 0u32;
        let mut wanted = [ABSENT; MAX_DIMENSIONS];
        for (i, value) in selection.filters {
            let Some(dict) = self.dicts.get(*i) else {
                return 0;
            };
            let Some(code) = dict.code(value) else {
                return 0;
            };
            wanted[*i] = code;
            needed |= 1 << i;
        }
        for i in selection.group_by {
            if *i >= self.dicts.len() {
                return 0;
            }
            needed |= 1 << i;
        }
        let cuboid = level.smallest_covering(needed);
        let (lo, hi) = cuboid.range(selection.from_ms, selection.to_ms);
        let filters: Vec<(usize, u32)> = selection
            .filters
            .iter()
            .map(|(i, _)| (*i, wanted[*i]))
            .collect();
        let mut grouped: [&'c str; MAX_DIMENSIONS] = [""; MAX_DIMENSIONS];
        let n = selection.group_by.len().min(MAX_DIMENSIONS);
        for row in lo..hi {
            let codes = &cuboid.codes[row];
            if filters.iter().any(|(i, code)| codes[*i] != *code) {
                continue;
            }
            for (slot, i) in grouped.iter_mut().zip(selection.group_by) {
                *slot = self.dicts[*i].value(codes[*i]);
            }
            emit(
                WindowStart(cuboid.windows[row]),
                &grouped[..n],
                &cuboid.states[row],
            );
        }
        hi - lo
    }

    /// Every state of the views' own windows under its full key (unordered), as the views
    /// held them.
    pub fn for_each_key(&self, mut visit: impl FnMut(&GroupKey, &M::State)) {
        let full = &self.levels[0].cuboids[0];
        let mut dims = [""; MAX_DIMENSIONS];
        let n = self.dicts.len();
        for row in 0..full.len() {
            for (i, slot) in dims.iter_mut().enumerate().take(n) {
                *slot = self.dicts[i].value(full.codes[row][i]);
            }
            let key = GroupKey::new(WindowStart(full.windows[row]), &dims[..n]);
            visit(&key, &full.states[row]);
        }
    }

    /// Number of keys in the views' own windows (the full cuboid).
    pub fn keys(&self) -> usize {
        self.levels[0].cuboids[0].len()
    }

    /// Rows held over every level and cuboid.
    pub fn rows(&self) -> usize {
        self.levels
            .iter()
            .flat_map(|l| &l.cuboids)
            .map(|c| c.len())
            .sum()
    }

    /// The cuboids kept, as `(level window size, grouped dimension names, rows)`.
    pub fn layout(&self) -> Vec<(i64, Vec<&'static str>, usize)> {
        self.levels
            .iter()
            .flat_map(|l| {
                l.cuboids.iter().map(move |c| {
                    let names = (0..self.dicts.len())
                        .filter(|i| c.mask & (1 << i) != 0)
                        .map(|i| M::DIMENSIONS[i])
                        .collect();
                    (l.size_ms, names, c.len())
                })
            })
            .collect()
    }

    /// Bytes held by the dictionaries and the rows, states counted by their inline size.
    pub fn approx_bytes(&self) -> usize {
        let row = std::mem::size_of::<i64>()
            + std::mem::size_of::<Codes>()
            + std::mem::size_of::<M::State>();
        self.dicts.iter().map(Dictionary::heap_bytes).sum::<usize>() + self.rows() * row
    }
}
