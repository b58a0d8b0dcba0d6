//! Sliding windows at query time: the merged pane rows (batch and speed windows of the
//! slide, [`crate::merge`]) assembled into windows of the metric's size starting every
//! slide (see [`shared_logic::sliding`]). A window's source joins its panes' sources; it is
//! final when every pane of it is: each pane row final, and each pane without a row settled
//! (batch-covered, or past the speed watermark plus the allowed lateness).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use shared_logic::sliding::SlidingWindow;
use shared_logic::Mergeable;

use crate::merge::{Row, Source};

/// One window being assembled.
struct Assembling<S> {
    state: S,
    source: Source,
    all_final: bool,
    panes: BTreeSet<i64>,
}

/// The windows of `window` starting in `[from_ms, to_ms)` assembled from `panes` (rows of
/// the slide's granularity, any grouping); `settled(pane_start)` says whether a pane
/// without a row is final. Sorted by start and dimensions, as the merge's rows are.
pub fn assemble<S: Mergeable + Clone>(
    panes: &[Row<'_, S>],
    window: SlidingWindow,
    from_ms: i64,
    to_ms: i64,
    settled: impl Fn(i64) -> bool,
) -> Vec<Row<'static, S>> {
    let mut windows: BTreeMap<(i64, Vec<String>), Assembling<S>> = BTreeMap::new();
    for pane in panes {
        let dims: Vec<String> = pane.dims.iter().map(|d| d.to_string()).collect();
        for start in window.windows_of(pane.window_start) {
            if start.0 < from_ms || start.0 >= to_ms {
                continue;
            }
            let entry = windows
                .entry((start.0, dims.clone()))
                .or_insert_with(|| Assembling {
                    state: pane.state.as_ref().clone(),
                    source: pane.source,
                    all_final: true,
                    panes: BTreeSet::new(),
                });
            if !entry.panes.insert(pane.window_start) {
                continue;
            }
            if entry.panes.len() > 1 {
                entry.state.merge(pane.state.as_ref());
                entry.source = entry.source.join(pane.source);
            }
            entry.all_final &= pane.is_final;
        }
    }
    windows
        .into_iter()
        .map(|((start, dims), w)| {
            let end = start + window.size_ms;
            let missing_settled = (start..end)
                .step_by(window.slide_ms as usize)
                .filter(|p| !w.panes.contains(p))
                .all(&settled);
            Row {
                window_start: start,
                window_end: end,
                dims: dims.into_iter().map(Cow::Owned).collect(),
                state: Cow::Owned(w.state),
                source: w.source,
                is_final: w.all_final && missing_settled,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(start: i64, dim: &str, n: u64, source: Source, is_final: bool) -> Row<'static, u64> {
        Row {
            window_start: start,
            window_end: start + 60_000,
            dims: vec![Cow::Owned(dim.to_string())],
            state: Cow::Owned(n),
            source,
            is_final,
        }
    }

    #[test]
    fn windows_merge_their_panes_and_are_final_only_when_every_pane_is() {
        let w = SlidingWindow::new(180_000, 60_000, 60_000).unwrap();
        let m = 60_000;
        let panes = [
            pane(0, "a", 1, Source::Batch, true),
            pane(m, "a", 2, Source::Batch, true),
            pane(2 * m, "a", 4, Source::Speed, true),
            pane(3 * m, "a", 8, Source::Speed, false),
            pane(m, "b", 16, Source::Batch, true),
        ];
        // Panes from 3m on (no row) are not settled.
        let rows = assemble(&panes, w, 0, 3 * m, |p| p < 3 * m);
        let got: Vec<(i64, &str, u64, Source, bool)> = rows
            .iter()
            .map(|r| {
                (
                    r.window_start,
                    r.dims[0].as_ref(),
                    *r.state,
                    r.source,
                    r.is_final,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "a", 7, Source::BatchAndSpeed, true),
                (0, "b", 16, Source::Batch, true),
                (m, "a", 14, Source::BatchAndSpeed, false),
                (m, "b", 16, Source::Batch, false),
                (2 * m, "a", 12, Source::Speed, false),
            ]
        );
        assert!(rows.iter().all(|r| r.window_end == r.window_start + 3 * m));
    }
}
