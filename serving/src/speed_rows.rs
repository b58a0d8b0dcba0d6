//! The speed layer's grouped rows of one query, held by the answer while the merge
//! borrows them ([`crate::merge::Merger::add_speed_rows`]), as it borrows batch cube rows:
//! the grouped values of every row live in one string, so a query's tens of thousands of
//! rows cost a few allocations, not one per value.

use shared_logic::metric::MAX_DIMENSIONS;
use shared_logic::WindowStart;

/// Rows of `width` grouped values each: a window, the values, a state.
#[derive(Debug, Clone)]
pub struct SpeedRows<S> {
    width: usize,
    /// Every row's values, one after the other.
    text: String,
    /// Where each value ends in `text`: row `i`'s values end at `ends[i * width..][..width]`.
    ends: Vec<usize>,
    rows: Vec<(WindowStart, S)>,
}

impl<S> SpeedRows<S> {
    /// No rows yet; each will hold `width` grouped values (at most [`MAX_DIMENSIONS`]).
    pub fn new(width: usize) -> Self {
        SpeedRows {
            width: width.min(MAX_DIMENSIONS),
            text: String::new(),
            ends: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; values past the width are left out, missing ones are empty.
    pub fn push(&mut self, window: WindowStart, grouped: &[&str], state: S) {
        let mut values = grouped.iter();
        for _ in 0..self.width {
            self.text
                .push_str(values.next().copied().unwrap_or_default());
            self.ends.push(self.text.len());
        }
        self.rows.push((window, state));
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows in the order they were added: window, values (the first `width` slots),
    /// state.
    pub fn iter(&self) -> impl Iterator<Item = (WindowStart, [&str; MAX_DIMENSIONS], &S)> + '_ {
        let width = self.width;
        self.rows
            .iter()
            .enumerate()
            .map(move |(i, (window, state))| {
                let mut values = [""; MAX_DIMENSIONS];
                let mut start = match i * width {
                    0 => 0,
                    at => self.ends[at - 1],
                };
                for (slot, end) in values.iter_mut().zip(&self.ends[i * width..][..width]) {
                    *slot = &self.text[start..*end];
                    start = *end;
                }
                (*window, values, state)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_they_went_in() {
        let mut rows = SpeedRows::new(2);
        assert!(rows.is_empty());
        rows.push(WindowStart(60_000), &["/a", "de"], 1);
        rows.push(WindowStart(0), &["", "fr"], 2);
        rows.push(WindowStart(120_000), &["/ü"], 3);
        rows.push(WindowStart(180_000), &["/b", "us", "ignored"], 4);
        let back: Vec<(i64, Vec<&str>, i32)> = rows
            .iter()
            .map(|(w, values, s)| (w.0, values[..2].to_vec(), *s))
            .collect();
        assert_eq!(
            back,
            vec![
                (60_000, vec!["/a", "de"], 1),
                (0, vec!["", "fr"], 2),
                (120_000, vec!["/ü", ""], 3),
                (180_000, vec!["/b", "us"], 4),
            ]
        );
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn rows_without_grouped_values_hold_only_their_windows() {
        let mut rows = SpeedRows::new(0);
        rows.push(WindowStart(0), &[], "x");
        rows.push(WindowStart(1), &["dropped"], "y");
        let back: Vec<_> = rows.iter().map(|(w, v, s)| (w.0, v, *s)).collect();
        assert_eq!(
            back,
            vec![
                (0, [""; MAX_DIMENSIONS], "x"),
                (1, [""; MAX_DIMENSIONS], "y")
            ]
        );
    }
}
