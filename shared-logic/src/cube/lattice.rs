//! The rows of a [`super::Cube`]: cuboids (the rows grouped by a subset of the
//! dimensions, columns of windows, codes and states sorted by window then codes) and the
//! levels that hold a lattice of them per window size.

use crate::mergeable::Mergeable;
use crate::metric::MAX_DIMENSIONS;

/// Dictionary codes of a row's dimension values; [`ABSENT`] where a cuboid does not group.
pub(crate) type Codes = [u32; MAX_DIMENSIONS];
/// The code of a dimension a cuboid has merged away.
pub(crate) const ABSENT: u32 = u32::MAX;

/// The mask of a cuboid that groups by all of `dims` dimensions.
pub(crate) fn full_mask(dims: usize) -> u32 {
    (1u32 << dims) - 1
}

/// Rows grouped by the dimensions in `mask`, sorted by window then codes; each
/// `(window, codes)` appears once.
pub(crate) struct Cuboid<S> {
    pub(crate) mask: u32,
    pub(crate) windows: Vec<i64>,
    pub(crate) codes: Vec<Codes>,
    pub(crate) states: Vec<S>,
}

impl<S: Mergeable> Cuboid<S> {
    pub(crate) fn with_capacity(mask: u32, rows: usize) -> Self {
        Cuboid {
            mask,
            windows: Vec::with_capacity(rows),
            codes: Vec::with_capacity(rows),
            states: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.windows.shrink_to_fit();
        self.codes.shrink_to_fit();
        self.states.shrink_to_fit();
    }

    /// Appends a row (callers push in sorted order).
    pub(crate) fn push(&mut self, window: i64, codes: Codes, state: S) {
        self.windows.push(window);
        self.codes.push(codes);
        self.states.push(state);
    }

    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }

    /// The rows whose window starts in `[from_ms, to_ms)`.
    pub(crate) fn range(&self, from_ms: i64, to_ms: i64) -> (usize, usize) {
        let lo = self.windows.partition_point(|w| *w < from_ms);
        let hi = lo + self.windows[lo..].partition_point(|w| *w < to_ms);
        (lo, hi)
    }

    /// The same states grouped by the dimensions in `mask` (a subset of this cuboid's)
    /// under windows mapped by `window`, which must keep their order (a truncation).
    pub(crate) fn regroup(&self, mask: u32, window: impl Fn(i64) -> i64) -> Cuboid<S> {
        let mut keyed: Vec<(i64, Codes, u32)> = (0..self.len())
            .map(|row| {
                let mut codes = self.codes[row];
                for (i, code) in codes.iter_mut().enumerate() {
                    if mask & (1 << i) == 0 {
                        *code = ABSENT;
                    }
                }
                (window(self.windows[row]), codes, row as u32)
            })
            .collect();
        keyed.sort_unstable_by_key(|(w, c, _)| (*w, *c));
        let mut out = Cuboid::with_capacity(mask, 0);
        let mut rows = keyed.into_iter().peekable();
        while let Some((w, codes, first)) = rows.next() {
            let mut state = self.states[first as usize].clone();
            while let Some((_, _, next)) = rows.next_if(|(w2, c2, _)| *w2 == w && *c2 == codes) {
                state.merge(&self.states[next as usize]);
            }
            out.push(w, codes, state);
        }
        out.shrink_to_fit();
        out
    }
}

/// The cuboids of one window size; the full cuboid first.
pub(crate) struct Level<S> {
    pub(crate) size_ms: i64,
    pub(crate) cuboids: Vec<Cuboid<S>>,
}

impl<S: Mergeable> Level<S> {
    /// The lattice over `full` (which groups by all `dims` dimensions): each smaller
    /// grouping, largest first, is rolled up from the smallest kept cuboid that holds its
    /// dimensions, and kept when it has at most half that cuboid's rows.
    pub(crate) fn build(size_ms: i64, full: Cuboid<S>, dims: usize) -> Self {
        let mut masks: Vec<u32> = (0..full_mask(dims)).collect();
        masks.sort_by_key(|m| std::cmp::Reverse(m.count_ones()));
        let mut level = Level {
            size_ms,
            cuboids: vec![full],
        };
        for mask in masks {
            let parent = level.smallest_covering(mask);
            let rolled = parent.regroup(mask, |w| w);
            if rolled.len() * 2 <= parent.len() {
                level.cuboids.push(rolled);
            }
        }
        level
    }

    /// Whether this level's rows answer windows starting in `[from_ms, to_ms)` merged into
    /// output windows of `granularity_ms` (`None`: one window) exactly: each output window
    /// is a union of this level's windows, and each end of the range is on a window bound
    /// or in a window without rows (so no row straddles it). Only for windows that tile.
    pub(crate) fn answers(&self, from_ms: i64, to_ms: i64, granularity_ms: Option<i64>) -> bool {
        let size = self.size_ms;
        let windows = &self.cuboids[0].windows;
        let clear = |t: i64| {
            let start = t.div_euclid(size) * size;
            // Cheapest tests first: a query over a month asks this of hundreds of cubes,
            // and a search in each is a cache miss per step.
            start == t
                || windows.first().is_none_or(|w| start < *w)
                || windows.last().is_none_or(|w| start > *w)
                || windows.binary_search(&start).is_err()
        };
        size > 0 && granularity_ms.is_none_or(|g| g % size == 0) && clear(from_ms) && clear(to_ms)
    }

    /// The kept cuboid with the fewest rows among those that group by every dimension
    /// in `mask` (the full cuboid always does).
    pub(crate) fn smallest_covering(&self, mask: u32) -> &Cuboid<S> {
        self.cuboids
            .iter()
            .filter(|c| c.mask & mask == mask)
            .min_by_key(|c| c.len())
            .unwrap_or(&self.cuboids[0])
    }
}
