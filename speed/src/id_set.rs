//! A compact set of 128-bit event-id hashes (the dedup keys of one event-time hour): 16
//! bytes a slot, 83 % to 94 % of slots in use, no allocation per id.
//!
//! The table is a sorted array with gaps ("ordered linear probing"): an id's home slot is
//! its hash scaled to the table's length, and the ids are kept in increasing order, each at
//! or after its home. A lookup starts at the home and stops at the first slot that is empty
//! or holds a larger id, so a miss (every new event) reads a few slots even when the table
//! is nearly full; an insert shifts the rest of its run one slot on. Growing by an eighth
//! rebuilds in one pass in order, without hashing. Zero marks an empty slot; the id hash
//! zero is held beside the table.
//!
//! The set is a set: equality, the serialised form (ids in increasing order) and the
//! answers do not depend on the order of inserts.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ids per slot at most (load 15/16), then the table grows by an eighth.
const MAX_LOAD: (usize, usize) = (15, 16);
/// Slots allocated past the homes at a time, for runs that overflow the end.
const OVERFLOW: usize = 64;
/// Slots of a new table.
const MIN_SLOTS: usize = 16;

/// A set of id hashes.
#[derive(Debug, Clone, Default)]
pub struct IdSet {
    /// Ids in increasing order, zero for an empty slot; the last slots may lie past
    /// `homes` (runs that overflow the end).
    slots: Vec<u128>,
    /// Number of home slots (the range ids are scaled to).
    homes: usize,
    len: usize,
    has_zero: bool,
}

impl IdSet {
    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.len + self.has_zero as usize
    }

    /// True when no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u128>()
    }

    fn home(&self, id: u128) -> usize {
        (((id >> 64) as u64 as u128 * self.homes as u128) >> 64) as usize
    }

    /// The slot holding `id`, or where it belongs: the first slot from its home that is
    /// empty or holds a larger id.
    fn find(&self, id: u128) -> Result<usize, usize> {
        let mut i = self.home(id);
        while let Some(&s) = self.slots.get(i) {
            if s == 0 || s > id {
                return Err(i);
            }
            if s == id {
                return Ok(i);
            }
            i += 1;
        }
        Err(i)
    }

    /// True when `id` is held.
    pub fn contains(&self, id: u128) -> bool {
        if id == 0 {
            return self.has_zero;
        }
        self.homes > 0 && self.find(id).is_ok()
    }

    /// Adds `id`; false when it was already held.
    pub fn insert(&mut self, id: u128) -> bool {
        if id == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        if (self.len + 1) * MAX_LOAD.1 > self.homes * MAX_LOAD.0 {
            self.grow();
        }
        let at = match self.find(id) {
            Ok(_) => return false,
            Err(at) => at,
        };
        // The run from `at` moves one slot on, into its first empty slot.
        let end = self.slots[at..]
            .iter()
            .position(|&s| s == 0)
            .map_or(self.slots.len(), |p| at + p);
        if end == self.slots.len() {
            self.overflow();
        }
        self.slots.copy_within(at..end, at + 1);
        self.slots[at] = id;
        self.len += 1;
        true
    }

    /// One more slot past the end, for a run that overflows it. The table is allocated
    /// with room for a few; beyond, it grows by a few more (never doubling, as a plain
    /// push past the capacity would).
    fn overflow(&mut self) {
        if self.slots.len() == self.slots.capacity() {
            self.slots.reserve_exact(OVERFLOW);
        }
        self.slots.push(0);
    }

    /// Rebuilds into an eighth more home slots (at least [`MIN_SLOTS`]).
    fn grow(&mut self) {
        let homes = (self.homes + self.homes / 8).max(MIN_SLOTS);
        let old = std::mem::take(&mut self.slots);
        self.rebuild(homes, old.into_iter().filter(|&s| s != 0));
    }

    /// Places `ids` (increasing, nonzero) into a table of `homes` home slots.
    fn rebuild(&mut self, homes: usize, ids: impl Iterator<Item = u128>) {
        self.homes = homes;
        self.slots = Vec::with_capacity(homes + OVERFLOW);
        self.slots.resize(homes, 0);
        self.len = 0;
        let mut next = 0;
        for id in ids {
            let at = self.home(id).max(next);
            if at >= self.slots.len() {
                self.overflow();
            }
            self.slots[at] = id;
            next = at + 1;
            self.len += 1;
        }
    }

    /// The ids in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        let zero = self.has_zero.then_some(0);
        zero.into_iter()
            .chain(self.slots.iter().copied().filter(|&s| s != 0))
    }

    /// A set of `ids` given in increasing order (as [`IdSet::iter`] gives them).
    fn from_sorted(ids: Vec<u128>) -> Self {
        let has_zero = ids.first() == Some(&0);
        let nonzero = &ids[has_zero as usize..];
        let mut set = IdSet {
            has_zero,
            ..IdSet::default()
        };
        if !nonzero.is_empty() {
            // Room for an eighth more before the first growth.
            let homes = (nonzero.len() * MAX_LOAD.1 / MAX_LOAD.0 * 9 / 8).max(MIN_SLOTS);
            set.rebuild(homes, nonzero.iter().copied());
        }
        set
    }
}

impl PartialEq for IdSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for IdSet {}

impl Extend<u128> for IdSet {
    fn extend<I: IntoIterator<Item = u128>>(&mut self, ids: I) {
        for id in ids {
            self.insert(id);
        }
    }
}

/// Serialised as the ids in increasing order.
impl Serialize for IdSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for id in self.iter() {
            seq.serialize_element(&id)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for IdSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ids: Vec<u128> = Deserialize::deserialize(d)?;
        if !ids.windows(2).all(|w| w[0] < w[1]) {
            return Err(serde::de::Error::custom(
                "id hashes are not strictly increasing",
            ));
        }
        Ok(IdSet::from_sorted(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A well-spread 128-bit value per integer (splitmix64 twice).
    fn spread(i: u64) -> u128 {
        let mix = |mut z: u64| {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        ((mix(i) as u128) << 64) | mix(i ^ 0xFFFF) as u128
    }

    #[test]
    fn a_million_ids_take_at_most_20_bytes_each_and_are_all_found() {
        let mut set = IdSet::default();
        for i in 0..1_000_000 {
            assert!(set.insert(spread(i)));
        }
        assert!(!set.insert(spread(17)));
        assert_eq!(set.len(), 1_000_000);
        assert!((0..1_000_000).all(|i| set.contains(spread(i))));
        assert!(!(1_000_000..1_001_000).any(|i| set.contains(spread(i))));
        assert!(set.heap_bytes() <= 20 * 1_000_000, "{}", set.heap_bytes());
        // Runs that overflow the end never double the table.
        let mut crowded = IdSet::default();
        for i in 0..10_000u64 {
            crowded.insert(u128::MAX - i as u128);
        }
        assert!(crowded.heap_bytes() <= 16 * (crowded.homes + 10_000 + OVERFLOW));
    }

    #[test]
    fn zero_and_the_largest_id_are_ids_like_any_other() {
        let mut set = IdSet::default();
        for id in [0, u128::MAX, 1, u128::MAX - 1, 0] {
            set.insert(id);
        }
        assert_eq!(set.len(), 4);
        assert!(set.contains(0) && set.contains(u128::MAX) && !set.contains(2));
        let back: IdSet = postcard::from_bytes(&postcard::to_stdvec(&set).unwrap()).unwrap();
        assert_eq!(back, set);
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            [0, 1, u128::MAX - 1, u128::MAX]
        );
    }

    proptest! {
        /// The set holds exactly the ids inserted, whatever their order and clustering
        /// (ids drawn from a narrow range collide on their home slots), equal sets compare
        /// equal and serialise to the same bytes.
        #[test]
        fn the_set_is_the_set_of_ids_inserted_in_any_order(
            ids in proptest::collection::vec(
                prop_oneof![any::<u128>(), (0u128..64).prop_map(|x| x << 100), 0u128..4],
                0..400,
            ),
            seed in any::<u64>(),
        ) {
            let expected: std::collections::BTreeSet<u128> = ids.iter().copied().collect();
            let mut a = IdSet::default();
            for &id in &ids {
                let held = a.contains(id);
                prop_assert_eq!(a.insert(id), !held);
            }
            let mut shuffled = ids.clone();
            shuffled.sort_by_key(|id| spread(*id as u64 ^ seed));
            let mut b = IdSet::default();
            b.extend(shuffled);
            prop_assert_eq!(a.iter().collect::<Vec<_>>(), expected.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(postcard::to_stdvec(&a).unwrap(), postcard::to_stdvec(&b).unwrap());
            let back: IdSet = postcard::from_bytes(&postcard::to_stdvec(&a).unwrap()).unwrap();
            prop_assert_eq!(&back, &a);
            for id in expected {
                prop_assert!(b.contains(id));
            }
        }
    }
}
