//! A query's shape over one metric's keys, applied where the keys are held: which
//! dimensions it keeps (in output order), which `(dimension, value)` pairs a key must have,
//! and whether it reads the distinct-count sketches. The speed layer groups its million
//! keys by it before it hands them over, so a reader gets the rows it answers (a minute's
//! URLs) rather than every key; the merge of the groups is the monoid merge of the keys
//! they cover, so grouping first and merging later gives the same states as merging the
//! keys.

use crate::group_key::{GroupKey, GroupKeyRef};
use crate::metric::{Metric, MAX_DIMENSIONS};
use crate::metric_views::MetricViews;

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grouping {
    /// Indexes into the metric's dimensions, in output order.
    pub group_by: Vec<usize>,
    /// `(dimension index, value)` pairs a key must match.
    pub filters: Vec<(usize, String)>,
    /// Whether the states keep their sketches (see
    /// [`Metric::clear_sketches`]); without them every value outside
    /// [`Metric::SKETCHED_VALUES`] is still exact.
    pub sketches: bool,
}

impl Grouping {
    /// Whether `key` has every filtered value.
    pub fn matches(&self, key: &GroupKey) -> bool {
        matches(key, &self.filters)
    }

    /// Merges `state` of `key` into `out` under the key's window and grouped values, if the
    /// key matches the filters; without its sketches unless they are wanted.
    pub fn group_into<M: Metric>(
        &self,
        out: &mut MetricViews<M>,
        key: &GroupKey,
        state: &M::State,
    ) {
        if !self.matches(key) {
            return;
        }
        let mut dims = [""; MAX_DIMENSIONS];
        let n = self.group_by.len().min(MAX_DIMENSIONS);
        for (slot, i) in dims.iter_mut().zip(&self.group_by) {
            *slot = key.dim(*i).unwrap_or_default();
        }
        let probe = GroupKeyRef {
            window: key.window,
            dims: &dims[..n],
        };
        if self.sketches {
            out.merge_ref(&probe, state);
        } else {
            let mut bare = state.clone();
            M::clear_sketches(&mut bare);
            out.merge_ref(&probe, &bare);
        }
    }
}

/// Whether `key` has every `(dimension index, value)` of `filters`.
pub fn matches(key: &GroupKey, filters: &[(usize, String)]) -> bool {
    filters
        .iter()
        .all(|(i, value)| key.dim(*i) == Some(value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PageViews, PageViewsState};
    use crate::window::WindowStart;
    use crate::Mergeable;
    use proptest::prelude::*;

    fn state(views: u64, users: &[&str]) -> PageViewsState {
        let mut s = PageViewsState {
            views,
            ..Default::default()
        };
        for u in users {
            s.users.add(u);
        }
        s
    }

    proptest! {
        /// Grouping keys then merging the groups gives what merging the keys then grouping
        /// gives, in any order of keys and with any filter: the monoid merge commutes with
        /// the projection.
        #[test]
        fn grouping_commutes_with_the_merge(
            keys in proptest::collection::vec(
                (0i64..3, 0usize..3, 0usize..2, 0u64..5, proptest::collection::vec(0u8..6, 0..3)),
                0..40,
            ),
            group_by in proptest::sample::subsequence(vec![0usize, 1], 0..=2),
            filter in proptest::option::of(0usize..2),
            sketches in any::<bool>(),
        ) {
            let urls = ["/a", "/b", "/c"];
            let countries = ["US", "DE"];
            let grouping = Grouping {
                group_by: group_by.clone(),
                filters: filter.map(|c| vec![(1, countries[c].to_string())]).unwrap_or_default(),
                sketches,
            };
            let mut all = MetricViews::<PageViews>::default();
            let mut grouped = MetricViews::<PageViews>::default();
            for (w, u, c, v, users) in &keys {
                let names: Vec<String> = users.iter().map(|x| format!("u{x}")).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let key = GroupKey::new(WindowStart(w * 60_000), &[urls[*u], countries[*c], "desktop"]);
                let s = state(*v, &names);
                all.merge_group(&key, &s);
                grouping.group_into(&mut grouped, &key, &s);
            }
            let mut expected = MetricViews::<PageViews>::default();
            for (key, s) in all.iter() {
                grouping.group_into(&mut expected, key, s);
            }
            prop_assert_eq!(&grouped, &expected);
            // Each group is the merge of the matching keys it covers.
            for (gkey, s) in grouped.iter() {
                let mut merged = PageViewsState::default();
                for (key, ks) in all.iter() {
                    let same = key.window == gkey.window
                        && grouping.matches(key)
                        && group_by.iter().zip(gkey.dims()).all(|(i, v)| key.dim(*i) == Some(v));
                    if same {
                        merged.merge(ks);
                    }
                }
                if !sketches {
                    merged.users = Default::default();
                }
                prop_assert_eq!(s, &merged);
            }
        }
    }
}
