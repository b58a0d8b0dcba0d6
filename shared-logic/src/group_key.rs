//! The key of one aggregate: a window and a metric's dimension values, packed into one
//! allocation, and its borrowed form for allocation-free lookups on the hot path.

use std::fmt;
use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;

use crate::window::WindowStart;

/// The key of one aggregate: a window and the metric's dimension values, in the order of
/// [`Metric::DIMENSIONS`].
///
/// The values are packed into one allocation (`u32` length, then the bytes, per value):
/// hour-sized folds hold hundreds of thousands of keys, and one allocation per key instead
/// of one per value is a measured part of the batch layer's speed.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    pub window: WindowStart,
    packed: Box<[u8]>,
}

impl GroupKey {
    /// A key from a window and dimension values.
    pub fn new(window: WindowStart, dims: &[&str]) -> Self {
        let mut packed = Vec::with_capacity(dims.iter().map(|d| d.len() + 4).sum());
        for d in dims {
            packed.extend_from_slice(&(d.len() as u32).to_le_bytes());
            packed.extend_from_slice(d.as_bytes());
        }
        GroupKey {
            window,
            packed: packed.into_boxed_slice(),
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
        let mut rest: &[u8] = &self.packed;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (value, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            Some(value)
        })
    }

    /// The dimension values, in order.
    pub fn dims(&self) -> impl Iterator<Item = &str> + '_ {
        self.dim_bytes().map(|value| {
            // SAFETY: `packed` is private and only ever built by `GroupKey::new` from `&str`
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

/// Orders by window, then by the packed values (deterministic; not the strings' order).
impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.window
            .cmp(&other.window)
            .then_with(|| self.packed.cmp(&other.packed))
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
