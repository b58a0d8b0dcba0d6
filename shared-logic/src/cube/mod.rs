//! Rolled-up, dictionary-encoded views for answering queries: a [`Cube`] holds one
//! metric's states over some span (the serving layer builds one per published hour file)
//! so that a query's cost follows the rows it answers, not the keys stored.
//!
//! Layout (the shape of Druid's segments and Kylin's cuboids, in memory):
//! - each dimension's values are in a sorted [`dictionary::Dictionary`]; a row holds codes;
//! - a **level** is a window size: the views' own windows and, for tumbling windows that
//!   divide an hour, whole hours; [`Cube::roll_up`] merges cubes (a day's hours) into one
//!   whose only level is a coarser size (days);
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
use crate::mergeable::Mergeable;
use crate::metric::{Metric, MAX_DIMENSIONS};
use crate::metric_views::MetricViews;
use crate::window::{WindowSpec, WindowStart, HOUR_MS};

use dictionary::{Dictionary, DictionaryBuilder};
use lattice::{Codes, Cuboid, Level, ABSENT};

/// What a query reads from a [`Cube`]: windows starting in `[from_ms, to_ms)`, output
/// windows of `granularity_ms` (`None`: one output window over the whole range), the
/// dimensions grouped (indexes into the metric's dimensions, in output order) and
/// `(dimension index, value)` filters.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub granularity_ms: Option<i64>,
    pub group_by: &'a [usize],
    pub filters: &'a [(usize, String)],
}

/// One metric's states, dictionary-encoded and rolled up (see the module docs).
pub struct Cube<M: Metric> {
    dicts: Vec<Dictionary>,
    /// The views' own windows first, then coarser ones; a roll-up's single level.
    levels: Vec<Level<M::State>>,
    /// Built from views (`levels[0]` holds the views' own windows, which answer any
    /// selection by definition) rather than rolled up from cubes.
    from_views: bool,
    /// The windows tile time (tumbling): rows roll up into coarser windows.
    tiled: bool,
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
            let (dicts, remaps) = dictionary::finish_all(builders);
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
        let tiled = matches!(windows, WindowSpec::Tumbling { .. });
        let hourly = tiled && base_size < HOUR_MS && HOUR_MS % base_size == 0;
        let hour_full =
            hourly.then(|| full.regroup(full.mask, |w| w.div_euclid(HOUR_MS) * HOUR_MS));
        let mut levels = vec![Level::build(base_size, full, dims)];
        if let Some(hour_full) = hour_full {
            levels.push(Level::build(HOUR_MS, hour_full, dims));
        }
        Cube {
            dicts,
            levels,
            from_views: true,
            tiled,
        }
    }

    /// One cube over all of `parts` (a day's hour cubes, say) whose only level has
    /// windows of `size_ms`, rolled up from each part's coarsest level; `None` when a
    /// part's windows do not tile time or do not divide `size_ms`. Such a cube answers
    /// only the selections its level answers exactly (see [`Cube::select`]).
    pub fn roll_up(parts: &[&Cube<M>], size_ms: i64) -> Option<Self> {
        let dims = M::DIMENSIONS.len().min(MAX_DIMENSIONS);
        let mut sources = Vec::with_capacity(parts.len());
        for part in parts {
            let level = part.levels.last()?;
            if !part.tiled || size_ms <= 0 || size_ms % level.size_ms != 0 {
                return None;
            }
            sources.push(&level.cuboids[0]);
        }
        let mut builders: Vec<DictionaryBuilder<'_>> =
            (0..dims).map(|_| DictionaryBuilder::default()).collect();
        // Per part and dimension, the provisional code of each of the part's codes.
        let provisional: Vec<Vec<Vec<u32>>> = parts
            .iter()
            .map(|part| {
                part.dicts
                    .iter()
                    .zip(&mut builders)
                    .map(|(dict, builder)| dict.values().map(|v| builder.intern(v)).collect())
                    .collect()
            })
            .collect();
        let (dicts, remaps) = dictionary::finish_all(builders);
        let rows: usize = sources.iter().map(|c| c.len()).sum();
        let mut keyed: Vec<(i64, Codes, u32, u32)> = Vec::with_capacity(rows);
        for (p, cuboid) in sources.iter().enumerate() {
            for row in 0..cuboid.len() {
                let mut codes = cuboid.codes[row];
                for (d, code) in codes.iter_mut().enumerate().take(dims) {
                    *code = remaps[d][provisional[p][d][*code as usize] as usize];
                }
                let window = cuboid.windows[row].div_euclid(size_ms) * size_ms;
                keyed.push((window, codes, p as u32, row as u32));
            }
        }
        keyed.sort_unstable_by_key(|(w, c, _, _)| (*w, *c));
        let mut full = Cuboid::with_capacity(lattice::full_mask(dims), 0);
        let mut keyed = keyed.into_iter().peekable();
        while let Some((window, codes, p, row)) = keyed.next() {
            let mut state = sources[p as usize].states[row as usize].clone();
            while let Some((_, _, p, row)) =
                keyed.next_if(|(w, c, _, _)| *w == window && *c == codes)
            {
                state.merge(&sources[p as usize].states[row as usize]);
            }
            full.push(window, codes, state);
        }
        full.shrink_to_fit();
        Some(Cube {
            dicts,
            levels: vec![Level::build(size_ms, full, dims)],
            from_views: false,
            tiled: true,
        })
    }

    /// Calls `emit` with each row of the smallest cuboid that answers `selection`: its
    /// window (of the coarsest level that answers exactly: each output window and the
    /// range's ends fall on the level's window bounds, or on windows that hold no rows;
    /// the views' own windows always do), the values of the grouped dimensions in
    /// `group_by` order, and the state. Several rows may share a window and grouped values
    /// (when the cuboid read groups by more dimensions than asked): the caller merges them.
    /// Returns the number of rows read; `None` (and no row) when no level of a rolled-up
    /// cube answers exactly.
    pub fn select<'c>(
        &'c self,
        selection: &Selection<'_>,
        mut emit: impl FnMut(WindowStart, &[&'c str], &'c M::State),
    ) -> Option<usize> {
        let exact = |l: &Level<M::State>| {
            l.answers(selection.from_ms, selection.to_ms, selection.granularity_ms)
        };
        let level = self
            .levels
            .iter()
            .enumerate()
            .rev()
            .find(|(i, l)| (*i == 0 && self.from_views) || exact(l))
            .map(|(_, l)| l)?;
        let mut needed = 0u32;
        let mut wanted = [ABSENT; MAX_DIMENSIONS];
        for (i, value) in selection.filters {
            let Some(dict) = self.dicts.get(*i) else {
                return Some(0);
            };
            let Some(code) = dict.code(value) else {
                return Some(0);
            };
            wanted[*i] = code;
            needed |= 1 << i;
        }
        for i in selection.group_by {
            if *i >= self.dicts.len() {
                return Some(0);
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
        Some(hi - lo)
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
