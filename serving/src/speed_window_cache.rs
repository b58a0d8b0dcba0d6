//! The speed instances' grouped rows this process keeps, window by window, per instance,
//! metric and grouping, so that a read asks an instance only for what changed.
//!
//! A dashboard refreshing "page views per URL per minute over the last hour" every few
//! seconds reads sixty windows of which one or two still change; reading, sending and
//! decoding all sixty every time was most of an answer's work. Each entry holds every
//! window of the range it was last read for (`[known_from, known_to)`) exactly as of the
//! instance's views version ([`ViewsVersion`]); the next read sends that [`Since`], and the
//! instance answers the windows it does not know and those changed after the version,
//! naming the changed ones even when they now hold no rows ([`Answered`]). The entry then
//! holds the new range: the answered windows replaced, those outside it dropped.
//!
//! Exactness rests on the speed side: every change of a window bumps its version, a
//! change of the partitions held counts as a change of every window, and a restarted
//! instance starts a new epoch (`speed::rollups`). An answer without a version (a metric
//! whose views change without window notes) is taken whole and nothing is kept.
//!
//! Memory: at most [`MAX_ENTRIES`] entries and [`MAX_ROWS`] rows; the least recently
//! read entries go first.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use lambda_io::speed_api::{Answered, Since, ViewsVersion};
use shared_logic::{Grouping, WindowStart};

use crate::speed_rows::SpeedRows;

/// Entries kept (instance × metric × grouping).
pub const MAX_ENTRIES: usize = 64;
/// Rows kept over all entries.
pub const MAX_ROWS: usize = 4_000_000;

/// One instance's rows of one window (`SpeedRows<M::State>`).
type WindowRows = Arc<dyn Any + Send + Sync>;

/// What is kept of one instance, metric and grouping.
#[derive(Default)]
pub struct Entry {
    /// The version and range the windows are exact for; none before the first read.
    since: Option<Since>,
    windows: BTreeMap<i64, WindowRows>,
    rows: usize,
}

impl Entry {
    /// What to tell the instance this entry holds.
    pub fn since(&self) -> Option<Since> {
        self.since
    }

    /// Takes an instance's answer for windows starting in `[from_ms, to_ms)` (`fresh`: its
    /// rows by window, read at `version` answering `answered`, or without a version: not
    /// incremental) and returns every window's rows of the range, in window order.
    pub fn update<S: Send + Sync + 'static>(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        fresh: BTreeMap<i64, SpeedRows<S>>,
        read: Option<(ViewsVersion, Answered)>,
    ) -> Vec<Arc<SpeedRows<S>>> {
        let fresh = fresh.into_iter().map(|(w, rows)| (w, Arc::new(rows)));
        let Some((version, answered)) = read else {
            *self = Entry::default();
            return fresh.map(|(_, rows)| rows).collect();
        };
        match (self.since, &answered) {
            (Some(since), Answered::Changed(changed)) => {
                self.windows.retain(|w, _| {
                    (from_ms..to_ms).contains(w)
                        && since.knows(*w)
                        && changed.binary_search(w).is_err()
                });
            }
            _ => self.windows.clear(),
        }
        for (window, rows) in fresh {
            self.windows.insert(window, rows);
        }
        self.since = Some(Since {
            version,
            known_from: from_ms,
            known_to: to_ms,
        });
        let mut out = Vec::with_capacity(self.windows.len());
        self.rows = 0;
        for rows in self.windows.values() {
            if let Ok(rows) = rows.clone().downcast::<SpeedRows<S>>() {
                self.rows += rows.len();
                out.push(rows);
            }
        }
        out
    }
}

/// The entries, by instance (its index), metric and grouping.
#[derive(Default)]
pub struct WindowCache {
    entries: Mutex<HashMap<Key, Kept>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    instance: usize,
    metric: &'static str,
    grouping: Grouping,
}

struct Kept {
    entry: Arc<tokio::sync::Mutex<Entry>>,
    last_read: u64,
}

impl WindowCache {
    /// The entry of `instance`, `metric` and `grouping` (a new one if none is kept); the
    /// least recently read entries are dropped while more than the bounds are kept. A
    /// reader locks the entry for its read, so two reads of one entry take turns.
    pub fn entry(
        &self,
        instance: usize,
        metric: &'static str,
        grouping: &Grouping,
    ) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = entries.values().map(|k| k.last_read).max().unwrap_or(0) + 1;
        let key = Key {
            instance,
            metric,
            grouping: grouping.clone(),
        };
        let entry = {
            let kept = entries.entry(key.clone()).or_insert_with(|| Kept {
                entry: Arc::default(),
                last_read: now,
            });
            kept.last_read = now;
            kept.entry.clone()
        };
        loop {
            let rows: usize = entries
                .values()
                .map(|k| k.entry.try_lock().map_or(0, |e| e.rows))
                .sum();
            if entries.len() <= MAX_ENTRIES && rows <= MAX_ROWS {
                break;
            }
            let oldest = entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, kept)| kept.last_read)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
        entry
    }
}

/// Adds a row to the rows of its window in `windows` (each holding `width` values).
pub fn push_by_window<S>(
    windows: &mut BTreeMap<i64, SpeedRows<S>>,
    width: usize,
    window: WindowStart,
    dims: &[&str],
    state: S,
) {
    windows
        .entry(window.0)
        .or_insert_with(|| SpeedRows::new(width))
        .push(window, dims, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(windows: &[(i64, &str, u64)]) -> BTreeMap<i64, SpeedRows<u64>> {
        let mut out = BTreeMap::new();
        for (w, url, v) in windows {
            push_by_window(&mut out, 1, WindowStart(*w), &[url], *v);
        }
        out
    }

    fn version(version: u64) -> ViewsVersion {
        ViewsVersion { epoch: 7, version }
    }

    fn flat(pieces: &[Arc<SpeedRows<u64>>]) -> Vec<(i64, String, u64)> {
        pieces
            .iter()
            .flat_map(|p| p.iter().map(|(w, d, s)| (w.0, d[0].to_string(), *s)))
            .collect()
    }

    fn update(
        entry: &mut Entry,
        from: i64,
        to: i64,
        fresh: BTreeMap<i64, SpeedRows<u64>>,
        read: Option<(ViewsVersion, Answered)>,
    ) -> Vec<(i64, String, u64)> {
        flat(&entry.update(from, to, fresh, read))
    }

    #[test]
    fn an_entry_replaces_changed_windows_keeps_the_others_and_drops_what_left_the_range() {
        let mut entry = Entry::default();
        let first = update(
            &mut entry,
            0,
            4,
            rows(&[(0, "/a", 1), (1, "/a", 2), (2, "/b", 3), (3, "/c", 4)]),
            Some((version(5), Answered::All)),
        );
        assert_eq!(first.len(), 4);
        assert_eq!(
            entry.since(),
            Some(Since {
                version: version(5),
                known_from: 0,
                known_to: 4
            })
        );
        // Window 1 changed, window 2 changed to nothing (evicted), window 4 is new to the
        // entry, window 0 left the range.
        let next = update(
            &mut entry,
            1,
            5,
            rows(&[(1, "/a", 20), (4, "/d", 5)]),
            Some((version(9), Answered::Changed(vec![1, 2]))),
        );
        assert_eq!(
            next,
            vec![
                (1, "/a".into(), 20),
                (3, "/c".into(), 4),
                (4, "/d".into(), 5)
            ]
        );
        // An answer that is not incremental is taken whole, and nothing is kept.
        let whole = update(&mut entry, 1, 5, rows(&[(3, "/c", 6)]), None);
        assert_eq!(whole, vec![(3, "/c".into(), 6)]);
        assert_eq!(entry.since(), None);
        assert_eq!(entry.rows, 0);
        // `All` replaces everything.
        update(
            &mut entry,
            0,
            5,
            rows(&[(0, "/a", 1)]),
            Some((version(1), Answered::All)),
        );
        let all = update(
            &mut entry,
            0,
            5,
            rows(&[(2, "/x", 1)]),
            Some((version(2), Answered::All)),
        );
        assert_eq!(all, vec![(2, "/x".into(), 1)]);
    }

    #[test]
    fn the_cache_keeps_at_most_its_entries_dropping_the_least_recently_read() {
        let cache = WindowCache::default();
        let grouping = |i: usize| Grouping {
            group_by: vec![i % 3],
            filters: vec![(0, i.to_string())],
            sketches: false,
        };
        let first = cache.entry(0, "page_views", &grouping(0));
        for i in 1..=MAX_ENTRIES {
            cache.entry(0, "page_views", &grouping(i));
        }
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert!(!entries.values().any(|k| Arc::ptr_eq(&k.entry, &first)));
    }
}
