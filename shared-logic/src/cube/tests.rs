use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::hll::Hll;
use crate::mergeable::Mergeable;
use crate::metrics::{PageViews, PageViewsState};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z
const URLS: [&str; 5] = ["/", "/a", "/b", "/cart", "/z"];
const COUNTRIES: [&str; 3] = ["DE", "FR", "US"];
const DEVICES: [&str; 2] = ["desktop", "mobile"];

type Key = (i64, Vec<String>);
/// A generated key and state: minute, url, country and device indexes, views - 1, users.
type Generated = (u16, usize, usize, usize, u8, Vec<u8>);

fn views(rows: &[Generated]) -> MetricViews<PageViews> {
    let mut views = MetricViews::<PageViews>::default();
    for (minute, u, c, d, n, users) in rows {
        let mut state = PageViewsState {
            views: u64::from(*n) + 1,
            users: Hll::default(),
        };
        for user in users {
            state.users.add(&format!("user-{user}"));
        }
        let key = GroupKey::new(
            WindowStart(T0 + i64::from(*minute) * 60_000),
            &[URLS[*u], COUNTRIES[*c], DEVICES[*d]],
        );
        views.merge_group(&key, &state);
    }
    views
}

/// The answer straight from the views: every key in range that passes the filters,
/// merged under its truncated window and grouped values.
fn direct(views: &MetricViews<PageViews>, s: &Selection<'_>) -> BTreeMap<Key, PageViewsState> {
    let mut out: BTreeMap<Key, PageViewsState> = BTreeMap::new();
    for (key, state) in views.iter() {
        if key.window.0 < s.from_ms || key.window.0 >= s.to_ms {
            continue;
        }
        if !s
            .filters
            .iter()
            .all(|(i, v)| key.dim(*i) == Some(v.as_str()))
        {
            continue;
        }
        let dims = s
            .group_by
            .iter()
            .map(|i| key.dim(*i).unwrap().to_string())
            .collect();
        out.entry((key.window.truncate(s.granularity_ms).0, dims))
            .or_default()
            .merge(state);
    }
    out
}

fn from_cube(cube: &Cube<PageViews>, s: &Selection<'_>) -> (BTreeMap<Key, PageViewsState>, usize) {
    let mut out: BTreeMap<Key, PageViewsState> = BTreeMap::new();
    let read = cube.select(s, |window, dims, state| {
        let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        out.entry((window.truncate(s.granularity_ms).0, dims))
            .or_default()
            .merge(state);
    });
    (out, read)
}

fn row() -> impl Strategy<Value = Generated> {
    (
        0u16..240,
        0..URLS.len(),
        0..COUNTRIES.len(),
        0..DEVICES.len(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..4),
    )
}

proptest! {
    /// Whatever the range, granularity, grouping and filters, the cube answers exactly
    /// what the full views answer.
    #[test]
    fn the_cube_answers_what_the_views_answer(
        rows in proptest::collection::vec(row(), 0..300),
        from in 0i64..240,
        len in 1i64..300,
        granularity in prop_oneof![Just(1i64), Just(60), Just(1440)],
        group_mask in 0u32..8,
        filters in proptest::collection::vec((0usize..3, 0usize..6), 0..3),
    ) {
        let views = views(&rows);
        let cube = Cube::build(views.clone(), &WindowSpec::default());
        prop_assert_eq!(cube.keys(), views.len());
        let g = granularity * 60_000;
        let from_ms = (T0 + from * 60_000).div_euclid(g) * g;
        let to_ms = (T0 + (from + len) * 60_000 + g - 1).div_euclid(g) * g;
        let group_by: Vec<usize> = (0..3).rev().filter(|i| group_mask & (1 << i) != 0).collect();
        let mut filter_list: Vec<(usize, String)> = Vec::new();
        for (i, v) in filters {
            let values: &[&str] = match i { 0 => &URLS, 1 => &COUNTRIES, _ => &DEVICES };
            if filter_list.iter().all(|(j, _)| *j != i) {
                filter_list.push((i, values.get(v).copied().unwrap_or("absent").to_string()));
            }
        }
        let s = Selection { from_ms, to_ms, granularity_ms: g, group_by: &group_by, filters: &filter_list };
        let (answer, _) = from_cube(&cube, &s);
        prop_assert_eq!(answer, direct(&views, &s));
    }
}

#[test]
fn whole_hours_without_grouping_read_one_row_per_hour() {
    let rows: Vec<_> = (0..240u16)
        .flat_map(|m| (0..URLS.len()).map(move |u| (m, u, (m % 3) as usize, 0, 1, vec![m as u8])))
        .collect();
    let views = views(&rows);
    let cube = Cube::build(views.clone(), &WindowSpec::default());
    let hours = Selection {
        from_ms: T0,
        to_ms: T0 + 4 * HOUR_MS,
        granularity_ms: HOUR_MS,
        group_by: &[],
        filters: &[],
    };
    let (answer, read) = from_cube(&cube, &hours);
    assert_eq!(read, 4, "the hour level's total cuboid");
    assert_eq!(answer, direct(&views, &hours));
    assert_eq!(answer.values().map(|s| s.views).sum::<u64>(), 240 * 5 * 2);
    let minutes_by_url = Selection {
        from_ms: T0 + 30 * 60_000,
        to_ms: T0 + 60 * 60_000,
        granularity_ms: 60_000,
        group_by: &[0],
        filters: &[],
    };
    let (answer, read) = from_cube(&cube, &minutes_by_url);
    assert_eq!(read, 30 * URLS.len(), "the url cuboid, 30 minutes of it");
    assert_eq!(answer, direct(&views, &minutes_by_url));
    let unknown = Selection {
        filters: &[(1, "XX".to_string())],
        ..minutes_by_url
    };
    assert_eq!(
        from_cube(&cube, &unknown).1,
        0,
        "a value no row has reads nothing"
    );
}

#[test]
fn keys_come_back_as_the_views_held_them() {
    let views = views(&[(0, 0, 0, 0, 3, vec![1, 2]), (61, 4, 2, 1, 0, vec![])]);
    let cube = Cube::build(views.clone(), &WindowSpec::default());
    let mut again = MetricViews::<PageViews>::default();
    cube.for_each_key(|k, s| again.merge_group(k, s));
    assert!(again == views);
    assert!(cube.rows() > cube.keys() && cube.approx_bytes() > 0);
    let empty = Cube::build(MetricViews::<PageViews>::default(), &WindowSpec::default());
    assert_eq!(empty.keys(), 0);
}
