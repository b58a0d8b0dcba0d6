//! The key of one aggregate: a window and a metric's dimension values, packed inline (no
//! heap allocation) when they are short, and its borrowed form for allocation-free lookups
//! on the hot path.

use std::fmt;
use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;

use crate::window::WindowStart;

/// Bytes of dimension values (with one byte per value for its length) held inside the key.
const INLINE: usize = 23;

/// The key of one aggregate: a window and the metric's dimension values, in the order of
/// [`Metric::DIMENSIONS`](crate::Metric::DIMENSIONS).
///
/// A key is 32 bytes. Values whose lengths plus one byte each fit in 23 bytes (the common
/// case: a URL path, a country code and a device) live inside the key; longer ones in one
/// allocation. The speed layer holds a million keys, and a heap allocation per key was a
/// measured part of its memory (issue 21); the batch layer's folds gain the same.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    pub window: WindowStart,
    packed: Packed,
}

/// The dimension values. Which form a key takes is a function of its values, so the derived
/// equality is the values' equality.
#[derive(Clone, PartialEq, Eq)]
enum Packed {
    /// Per value, its length + 1 (one byte) then its bytes; a zero byte or the end closes.
    Inline([u8; INLINE]),
    /// Per value, its length (`u32` LE) then its bytes.
    Heap(Box<[u8]>),
}

impl Packed {
    fn new(dims: &[&str]) -> Self {
        let inline_len: usize = dims.iter().map(|d| d.len() + 1).sum();
        if inline_len <= INLINE && dims.iter().all(|d| d.len() < u8::MAX as usize) {
            let mut bytes = [0u8; INLINE];
            let mut at = 0;
            for d in dims {
                bytes[at] = d.len() as u8 + 1;
                bytes[at + 1..at + 1 + d.len()].copy_from_slice(d.as_bytes());
                at += 1 + d.len();
            }
            return Packed::Inline(bytes);
        }
        let mut packed = Vec::with_capacity(dims.iter().map(|d| d.len() + 4).sum());
        for d in dims {
            packed.extend_from_slice(&(d.len() as u32).to_le_bytes());
            packed.extend_from_slice(d.as_bytes());
        }
        Packed::Heap(packed.into_boxed_slice())
    }
}

impl GroupKey {
    /// A key from a window and dimension values.
    pub fn new(window: WindowStart, dims: &[&str]) -> Self {
        GroupKey {
            window,
            packed: Packed::new(dims),
        }
    }

    /// The same dimension values under another window (rollups).
    pub fn with_window(&self, window: WindowStart) -> Self {
        GroupKey {
            window,
            packed: self.packed.clone(),
        }
    }

    /// The dimension values as bytes, in order.
    fn dim_bytes(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (mut rest, inline): (&[u8], bool) = match &self.packed {
            Packed::Inline(bytes) => (bytes, true),
            Packed::Heap(bytes) => (bytes, false),
        };
        std::iter::from_fn(move || {
            let (len, tail) = if inline {
                let (&len, tail) = rest.split_first()?;
                (len.checked_sub(1)? as usize, tail)
            } else {
                let (len, tail) = rest.split_first_chunk::<4>()?;
                (u32::from_le_bytes(*len) as usize, tail)
            };
            let (value, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            Some(value)
        })
    }

    /// The dimension values, in order.
    pub fn dims(&self) -> impl Iterator<Item = &str> + '_ {
        self.dim_bytes().map(|value| {
            // SAFETY: `packed` is private and only ever built by `Packed::new` from `&str`
            // values, at boundaries this iterator reproduces, so each piece is valid UTF-8.
            unsafe { std::str::from_utf8_unchecked(value) }
        })
    }

    /// The `i`-th dimension value.
    pub fn dim(&self, i: usize) -> Option<&str> {
        self.dims().nth(i)
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKey")
            .field("window", &self.window)
            .field("dims", &self.dims().collect::<Vec<_>>())
            .finish()
    }
}

/// Orders by window, then by the values as `(u32 LE length, bytes)` pairs in turn: the
/// order of the byte strings that concatenate those pairs (deterministic, not the strings'
/// order, and the same order as before keys were held inline, so sorted outputs keep
/// their row order).
impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.window.cmp(&other.window).then_with(|| {
            let len = |v: &[u8]| (v.len() as u32).to_le_bytes();
            let (mut mine, mut theirs) = (self.dim_bytes(), other.dim_bytes());
            loop {
                match (mine.next(), theirs.next()) {
                    (None, None) => return std::cmp::Ordering::Equal,
                    (None, Some(_)) => return std::cmp::Ordering::Less,
                    (Some(_), None) => return std::cmp::Ordering::Greater,
                    (Some(a), Some(b)) if a == b => {}
                    (Some(a), Some(b)) => return len(a).cmp(&len(b)).then_with(|| a.cmp(b)),
                }
            }
        })
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashes a window and dimension values; owned and borrowed keys hash through this one
/// function, so that a borrowed probe finds its owned key.
fn hash_key<'a, H: Hasher>(window: WindowStart, dims: impl Iterator<Item = &'a [u8]>, h: &mut H) {
    window.hash(h);
    for d in dims {
        h.write_u32(d.len() as u32);
        h.write(d);
    }
}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_key(self.window, self.dim_bytes(), h);
    }
}

/// A borrowed [`GroupKey`], so that the hot path looks keys up without allocating.
pub(crate) struct GroupKeyRef<'a> {
    pub(crate) window: WindowStart,
    pub(crate) dims: &'a [&'a str],
}

impl Hash for GroupKeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_key(self.window, self.dims.iter().map(|d| d.as_bytes()), h);
    }
}

impl Equivalent<GroupKey> for GroupKeyRef<'_> {
    fn equivalent(&self, key: &GroupKey) -> bool {
        if self.window != key.window {
            return false;
        }
        let mut theirs = key.dim_bytes();
        self.dims
            .iter()
            .all(|d| theirs.next() == Some(d.as_bytes()))
            && theirs.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The packing keys had before they were held inline: the order they must keep.
    fn old_packing(dims: &[&str]) -> Vec<u8> {
        let mut packed = Vec::new();
        for d in dims {
            packed.extend_from_slice(&(d.len() as u32).to_le_bytes());
            packed.extend_from_slice(d.as_bytes());
        }
        packed
    }

    #[test]
    fn a_key_is_32_bytes_and_short_values_are_inline() {
        assert_eq!(std::mem::size_of::<GroupKey>(), 32);
        let short = GroupKey::new(WindowStart(0), &["US", "desktop", "electronics"]);
        assert!(matches!(short.packed, Packed::Inline(_)));
        let long = GroupKey::new(WindowStart(0), &["/c/electronics", "US", "desktop"]);
        assert!(matches!(long.packed, Packed::Heap(_)));
        assert_eq!(
            long.dims().collect::<Vec<_>>(),
            ["/c/electronics", "US", "desktop"]
        );
    }

    #[test]
    fn empty_values_and_values_at_the_inline_bounds_round_trip() {
        let max = "x".repeat(22);
        let over = "y".repeat(23);
        let byte_max = "z".repeat(255);
        for dims in [
            vec![],
            vec![""],
            vec!["", "", ""],
            vec!["a", ""],
            vec![max.as_str()],
            vec![over.as_str()],
            vec![byte_max.as_str(), ""],
        ] {
            let key = GroupKey::new(WindowStart(7), &dims);
            assert_eq!(key.dims().collect::<Vec<_>>(), dims);
            assert_eq!(key.dim(dims.len()), None);
        }
    }

    proptest! {
        /// Inline or not, keys order as their old packing did, are equal exactly when
        /// their values are, and a borrowed probe finds its owned key.
        #[test]
        fn keys_order_as_the_old_packing_and_compare_by_value(
            a in proptest::collection::vec("[a-c/]{0,12}", 0..4),
            b in proptest::collection::vec("[a-c/]{0,12}", 0..4),
        ) {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let b: Vec<&str> = b.iter().map(String::as_str).collect();
            let (ka, kb) = (GroupKey::new(WindowStart(1), &a), GroupKey::new(WindowStart(1), &b));
            prop_assert_eq!(ka.cmp(&kb), old_packing(&a).cmp(&old_packing(&b)));
            prop_assert_eq!(ka == kb, a == b);
            let mut map = hashbrown::HashMap::new();
            map.insert(ka.clone(), ());
            let (pa, pb) = (
                GroupKeyRef { window: WindowStart(1), dims: &a },
                GroupKeyRef { window: WindowStart(1), dims: &b },
            );
            prop_assert!(map.contains_key(&pa));
            prop_assert_eq!(map.contains_key(&pb), a == b);
        }
    }
}
