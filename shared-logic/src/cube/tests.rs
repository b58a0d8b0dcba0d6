use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::hll::Hll;
use crate::mergeable::Mergeable;
use crate::metrics::{PageViews, PageViewsState};
use crate::window::DAY_MS;

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
        out.entry((output_window(s, key.window), dims))
            .or_default()
            .merge(state);
    }
    out
}

/// The output window holding `window`: truncated to the granularity, or the range's start.
fn output_window(s: &Selection<'_>, window: WindowStart) -> i64 {
    s.granularity_ms.map_or(s.from_ms, |g| window.truncate(g).0)
}

/// The answer from `cubes` (each read with `s`, rows merged), and the rows read; `None`
/// when a cube does not answer `s`.
fn from_cubes(
    cubes: &[&Cube<PageViews>],
    s: &Selection<'_>,
) -> Option<(BTreeMap<Key, PageViewsState>, usize)> {
    let mut out: BTreeMap<Key, PageViewsState> = BTreeMap::new();
    let mut read = 0;
    for cube in cubes {
        read += cube.select(s, |window, dims, state| {
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            out.entry((output_window(s, window), dims))
                .or_default()
                .merge(state);
        })?;
    }
    Some((out, read))
}

fn from_cube(cube: &Cube<PageViews>, s: &Selection<'_>) -> (BTreeMap<Key, PageViewsState>, usize) {
    from_cubes(&[cube], s).expect("a cube built from views answers every selection")
}

/// The filters of generated `(dimension, value index)` pairs (an index past the values is
/// a value no row has), one per dimension.
fn filter_list(filters: Vec<(usize, usize)>) -> Vec<(usize, String)> {
    let mut list: Vec<(usize, String)> = Vec::new();
    for (i, v) in filters {
        let values: &[&str] = match i {
            0 => &URLS,
            1 => &COUNTRIES,
            _ => &DEVICES,
        };
        if list.iter().all(|(j, _)| *j != i) {
            list.push((i, values.get(v).copied().unwrap_or("absent").to_string()));
        }
    }
    list
}

fn granularity() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        Just(Some(60_000)),
        Just(Some(HOUR_MS)),
        Just(Some(2 * HOUR_MS)),
        Just(Some(DAY_MS)),
        Just(None)
    ]
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
        from in -30i64..240,
        len in 1i64..300,
        granularity in granularity(),
        aligned in any::<bool>(),
        group_mask in 0u32..8,
        filters in proptest::collection::vec((0usize..3, 0usize..6), 0..3),
    ) {
        let views = views(&rows);
        let cube = Cube::build(views.clone(), &WindowSpec::default());
        prop_assert_eq!(cube.keys(), views.len());
        // Ranges on the granularity's bounds, or on any minute (as a moving dashboard asks).
        let g = if aligned { granularity.unwrap_or(HOUR_MS) } else { 60_000 };
        let from_ms = (T0 + from * 60_000).div_euclid(g) * g;
        let to_ms = (T0 + (from + len) * 60_000 + g - 1).div_euclid(g) * g;
        let group_by: Vec<usize> = (0..3).rev().filter(|i| group_mask & (1 << i) != 0).collect();
        let filter_list = filter_list(filters);
        let s = Selection { from_ms, to_ms, granularity_ms: granularity, group_by: &group_by, filters: &filter_list };
        let (answer, _) = from_cube(&cube, &s);
        prop_assert_eq!(answer, direct(&views, &s));
    }

    /// A roll-up of the cubes of consecutive spans (hours, or runs of them) answers what
    /// their views answer whenever it answers, and it answers every selection whose
    /// output windows and range ends hold its windows whole.
    #[test]
    fn a_roll_up_answers_what_its_parts_answer(
        rows in proptest::collection::vec(row(), 0..300),
        hours_per_part in 1i64..3,
        roll_hours in prop_oneof![Just(2i64), Just(4), Just(24)],
        from in -30i64..240,
        len in 1i64..300,
        granularity in granularity(),
        group_mask in 0u32..8,
        filters in proptest::collection::vec((0usize..3, 0usize..6), 0..3),
    ) {
        let all = views(&rows);
        let part_ms = hours_per_part * HOUR_MS;
        let mut parts: BTreeMap<i64, Vec<Generated>> = BTreeMap::new();
        for r in &rows {
            parts.entry((i64::from(r.0) * 60_000).div_euclid(part_ms)).or_default().push(r.clone());
        }
        let cubes: Vec<Cube<PageViews>> = parts
            .values()
            .map(|rows| Cube::build(views(rows), &WindowSpec::default()))
            .collect();
        let refs: Vec<&Cube<PageViews>> = cubes.iter().collect();
        let roll_ms = roll_hours * HOUR_MS;
        let rolled = Cube::roll_up(&refs, roll_ms).expect("minute windows roll up");
        prop_assert!(rolled.keys() <= all.len());
        let from_ms = T0 + from * 60_000;
        let to_ms = from_ms + len * 60_000;
        let group_by: Vec<usize> = (0..3).rev().filter(|i| group_mask & (1 << i) != 0).collect();
        let filter_list = filter_list(filters);
        let s = Selection { from_ms, to_ms, granularity_ms: granularity, group_by: &group_by, filters: &filter_list };
        let holds_whole = |t: i64| t.rem_euclid(roll_ms) == 0 || (t.div_euclid(roll_ms) * roll_ms - T0) >= 240 * 60_000 || t.div_euclid(roll_ms) * roll_ms + roll_ms <= T0;
        let whole = granularity.is_none_or(|g| g % roll_ms == 0) && holds_whole(from_ms) && holds_whole(to_ms);
        match from_cubes(&[&rolled], &s) {
            Some((answer, _)) => prop_assert_eq!(answer, direct(&all, &s)),
            None => prop_assert!(!whole, "a selection holding the windows whole is answered"),
        }
    }
}

#[test]
fn windows_that_do_not_tile_time_do_not_roll_up() {
    let sliding = WindowSpec::Sliding {
        size_ms: 2 * 60_000,
        slide_ms: 60_000,
    };
    let cube = Cube::build(views(&[(0, 0, 0, 0, 1, vec![])]), &sliding);
    assert!(Cube::roll_up(&[&cube], DAY_MS).is_none());
    let minutes = Cube::build(views(&[(0, 0, 0, 0, 1, vec![])]), &WindowSpec::default());
    assert!(
        Cube::roll_up(&[&minutes], 90_000).is_none(),
        "90 s is no whole number of hours"
    );
}

#[test]
fn a_day_roll_up_reads_one_row_per_day_and_group() {
    let rows: Vec<Generated> = (0..240u16)
        .flat_map(|m| (0..URLS.len()).map(move |u| (m, u, (m % 3) as usize, 0, 1, vec![m as u8])))
        .collect();
    let hours: Vec<Cube<PageViews>> = (0..4)
        .map(|h| {
            let rows: Vec<Generated> = rows.iter().filter(|r| r.0 / 60 == h).cloned().collect();
            Cube::build(views(&rows), &WindowSpec::default())
        })
        .collect();
    let refs: Vec<&Cube<PageViews>> = hours.iter().collect();
    let day = Cube::roll_up(&refs, DAY_MS).unwrap();
    // A range from 20:17 the day before to 00:43 the next day, in one window: whole.
    let total_by_url = Selection {
        from_ms: T0 - 4 * HOUR_MS + 17 * 60_000,
        to_ms: T0 + DAY_MS + 43 * 60_000,
        granularity_ms: None,
        group_by: &[0],
        filters: &[],
    };
    let (answer, read) = from_cubes(&[&day], &total_by_url).unwrap();
    assert_eq!(read, URLS.len(), "the url cuboid of the day level");
    assert_eq!(answer, direct(&views(&rows), &total_by_url));
    let hourly = Selection {
        granularity_ms: Some(HOUR_MS),
        ..total_by_url
    };
    assert!(
        day.select(&hourly, |_, _, _| {}).is_none(),
        "days do not answer hours"
    );
    let inside = Selection {
        from_ms: T0 + HOUR_MS,
        ..total_by_url
    };
    assert!(
        day.select(&inside, |_, _, _| {}).is_none(),
        "the range cuts the day"
    );
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
        granularity_ms: Some(HOUR_MS),
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
        granularity_ms: Some(60_000),
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
