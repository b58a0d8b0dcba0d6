//! The map under [`crate::MetricViews`]: keys and states in one dense vector that grows by
//! a quarter, found through a hash index of 4-byte positions.
//!
//! A hash map that holds its entries in its buckets is between 44 % and 87.5 % full (it
//! doubles), so at an unlucky size a million keys of 64 bytes take twice their bytes. Here
//! the entries are in a vector at least 80 % full (it grows by a quarter), and only the
//! index (5 bytes a bucket) has the doubling's slack (issue 21). Removal moves the last
//! entry into the hole, so iteration order is arbitrary, as a hash map's is.

use std::hash::BuildHasher;

use hashbrown::hash_table::HashTable;
use hashbrown::{DefaultHashBuilder, Equivalent};

use crate::group_key::GroupKey;

/// Keys and states, in no particular order.
#[derive(Clone)]
pub(crate) struct GroupTable<S> {
    entries: Vec<(GroupKey, S)>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl<S> Default for GroupTable<S> {
    fn default() -> Self {
        GroupTable {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<S> GroupTable<S> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the key `probe` stands for is, and its hash.
    fn find<Q: std::hash::Hash + Equivalent<GroupKey> + ?Sized>(
        &self,
        probe: &Q,
    ) -> (Option<usize>, u64) {
        let hash = self.hasher.hash_one(probe);
        let entries = &self.entries;
        let at = self
            .index
            .find(hash, |&i| probe.equivalent(&entries[i as usize].0))
            .map(|&i| i as usize);
        (at, hash)
    }

    pub(crate) fn get<Q: std::hash::Hash + Equivalent<GroupKey> + ?Sized>(
        &self,
        probe: &Q,
    ) -> Option<&S> {
        self.find(probe).0.map(|i| &self.entries[i].1)
    }

    pub(crate) fn get_mut<Q: std::hash::Hash + Equivalent<GroupKey> + ?Sized>(
        &mut self,
        probe: &Q,
    ) -> Option<&mut S> {
        self.find(probe).0.map(|i| &mut self.entries[i].1)
    }

    /// The state of `probe`'s key, inserted as `S::default()` under `make()` when absent.
    pub(crate) fn get_or_default<Q: std::hash::Hash + Equivalent<GroupKey> + ?Sized>(
        &mut self,
        probe: &Q,
        make: impl FnOnce() -> GroupKey,
    ) -> &mut S
    where
        S: Default,
    {
        let i = match self.find(probe) {
            (Some(i), _) => i,
            (None, hash) => self.push(hash, make(), S::default()),
        };
        &mut self.entries[i].1
    }

    /// Inserts a key that is not held (the caller has looked).
    pub(crate) fn insert_new(&mut self, key: GroupKey, state: S) {
        let hash = self.hasher.hash_one(&key);
        self.push(hash, key, state);
    }

    fn push(&mut self, hash: u64, key: GroupKey, state: S) -> usize {
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact((self.entries.len() / 4).max(16));
        }
        let i = self.entries.len();
        self.entries.push((key, state));
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .insert_unique(hash, i as u32, |&j| hasher.hash_one(&entries[j as usize].0));
        i
    }

    /// Removes `probe`'s key.
    pub(crate) fn remove<Q: std::hash::Hash + Equivalent<GroupKey> + ?Sized>(&mut self, probe: &Q) {
        let hash = self.hasher.hash_one(probe);
        let entries = &self.entries;
        let Ok(slot) = self
            .index
            .find_entry(hash, |&i| probe.equivalent(&entries[i as usize].0))
        else {
            return;
        };
        let (i, _) = slot.remove();
        let i = i as usize;
        let last = self.entries.len() - 1;
        if i != last {
            // The last entry moves into the hole: its index entry follows.
            let moved = self.hasher.hash_one(&self.entries[last].0);
            if let Some(at) = self.index.find_mut(moved, |&j| j as usize == last) {
                *at = i as u32;
            }
        }
        self.entries.swap_remove(i);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&GroupKey, &S)> {
        self.entries.iter().map(|(k, s)| (k, s))
    }

    pub(crate) fn into_entries(self) -> impl Iterator<Item = (GroupKey, S)> {
        self.entries.into_iter()
    }

    /// Keeps the entries for which `keep` holds; the index is rebuilt when any goes.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&GroupKey, &mut S) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(k, s)| keep(k, s));
        if self.entries.len() != before {
            self.entries
                .shrink_to(self.entries.len() + self.entries.len() / 4);
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index.clear();
        let (entries, hasher) = (&self.entries, &self.hasher);
        for (i, (key, _)) in entries.iter().enumerate() {
            self.index
                .insert_unique(hasher.hash_one(key), i as u32, |&j| {
                    hasher.hash_one(&entries[j as usize].0)
                });
        }
    }
}

impl<S: PartialEq> PartialEq for GroupTable<S> {
    /// Equal when they hold the same keys with equal states, in whatever order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, s)| other.get(k) == Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowStart;
    use proptest::prelude::*;

    fn key(i: u16) -> GroupKey {
        GroupKey::new(WindowStart(i as i64 % 7), &[&format!("/p/{i}")])
    }

    proptest! {
        /// Inserts, removals and retains give the map a `HashMap` gives.
        #[test]
        fn the_table_is_the_map_of_its_operations(
            ops in proptest::collection::vec((0u8..4, 0u16..300), 0..600),
        ) {
            let mut table: GroupTable<u32> = GroupTable::default();
            let mut model: std::collections::HashMap<GroupKey, u32> = Default::default();
            for (op, i) in ops {
                let k = key(i);
                match op {
                    0 | 1 => {
                        *table.get_or_default(&k, || k.clone()) += 1;
                        *model.entry(k).or_default() += 1;
                    }
                    2 => {
                        table.remove(&k);
                        model.remove(&k);
                    }
                    _ => {
                        table.retain(|k, _| k.window.0 != i as i64 % 7);
                        model.retain(|k, _| k.window.0 != i as i64 % 7);
                    }
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for (k, v) in &model {
                prop_assert_eq!(table.get(k), Some(v));
            }
            let mut rebuilt: GroupTable<u32> = GroupTable::default();
            for (k, v) in model {
                rebuilt.insert_new(k, v);
            }
            prop_assert!(rebuilt == table);
        }
    }
}
