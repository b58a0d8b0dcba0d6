//! A deterministic, mergeable distinct-count sketch: exact for small sets, HyperLogLog
//! beyond.
//!
//! Fixed hash (XXH3-64, seed 0, over the UTF-8 bytes of the value) and fixed precision
//! (p = 12, 4096 registers). A sketch holding at most [`EXACT_LIMIT`] distinct hashes keeps
//! them (sorted) and counts them exactly; beyond that it keeps the 4096 HyperLogLog
//! registers of every hash it has seen. Either way the sketch is a function of the *set* of
//! values added, never of the order or grouping of adds and merges, so a rollup or a
//! batch+speed merge gives the same sketch, and the same estimate, to the bit.
//!
//! Error: exact up to 256 distinct values (barring a 64-bit hash collision); above, the
//! relative standard error of HyperLogLog with 4096 registers, 1.04 / sqrt(4096) ≈ 1.6 %
//! (linear counting below 2.5 × 4096, the raw estimate above).
//!
//! Memory: 24 bytes inline; a single value is held inline, 2 to 256 in a boxed slice of
//! exactly their size (8 bytes each, at most 2 KiB), 4 KiB once dense. Most keys of a
//! minute's views see one or two users, so the inline case is what the speed layer's million
//! keys mostly hold (issue 21).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::LogicError;
use crate::mergeable::Mergeable;

/// Precision: the number of hash bits that choose a register.
pub const PRECISION: u32 = 12;
/// Number of registers.
pub const REGISTERS: usize = 1 << PRECISION;
/// Largest number of distinct hashes kept (and counted) exactly.
pub const EXACT_LIMIT: usize = 256;
const MAX_RANK: u8 = (64 - PRECISION + 1) as u8;

/// A distinct-count sketch. `Default` is the empty sketch (the merge identity).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hll {
    repr: Repr,
}

/// Which form a sketch takes is a function of its number of distinct hashes, so the derived
/// equality is the sketches' equality.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Repr {
    /// No value.
    #[default]
    Empty,
    /// One distinct hash.
    One(u64),
    /// 2 to `EXACT_LIMIT` distinct hashes, sorted, in a slice of exactly their number.
    Exact(Box<[u64]>),
    /// The registers of more than `EXACT_LIMIT` distinct hashes.
    Dense(Box<[u8; REGISTERS]>),
}

/// The sorted union of two sorted, deduplicated hash lists. Branch-free steps: the hashes
/// are random, so a branch on their order is mispredicted half the time.
fn union(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; a.len() + b.len()];
    let (mut i, mut j, mut k) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out[k] = x.min(y);
        k += 1;
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    let rest = if i < a.len() { &a[i..] } else { &b[j..] };
    out[k..k + rest.len()].copy_from_slice(rest);
    out.truncate(k + rest.len());
    out
}

/// The registers of some hashes.
fn registers_of(hashes: &[u64]) -> Box<[u8; REGISTERS]> {
    let mut regs = Box::new([0u8; REGISTERS]);
    for &h in hashes {
        let (i, r) = register_of(h);
        regs[i] = regs[i].max(r);
    }
    regs
}

/// `2^-r` for every register value `r`.
const INVERSE_POWERS: [f64; 256] = {
    let mut table = [0f64; 256];
    let mut r = 0;
    while r < 256 {
        table[r] = f64::from_bits((1023 - r as u64) << 52);
        r += 1;
    }
    table
};

/// The hash every layer uses for distinct counting.
pub fn hash_value(value: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(value.as_bytes())
}

fn register_of(hash: u64) -> (usize, u8) {
    let index = (hash >> (64 - PRECISION)) as usize;
    // A sentinel bit bounds the rank at 64 - p + 1 when the remaining bits are all zero.
    let rank = ((hash << PRECISION) | (1 << (PRECISION - 1))).leading_zeros() as u8 + 1;
    (index, rank)
}

impl Hll {
    /// Adds a value.
    pub fn add(&mut self, value: &str) {
        self.add_hash(hash_value(value));
    }

    /// Adds a value by its [`hash_value`].
    pub fn add_hash(&mut self, hash: u64) {
        match &mut self.repr {
            Repr::Dense(regs) => {
                let (i, r) = register_of(hash);
                regs[i] = regs[i].max(r);
            }
            Repr::Empty => self.repr = Repr::One(hash),
            Repr::One(h) => {
                if *h != hash {
                    let pair = if *h < hash { [*h, hash] } else { [hash, *h] };
                    self.repr = Repr::Exact(Box::new(pair));
                }
            }
            Repr::Exact(hashes) => {
                if let Err(at) = hashes.binary_search(&hash) {
                    let mut grown = Vec::with_capacity(hashes.len() + 1);
                    grown.extend_from_slice(&hashes[..at]);
                    grown.push(hash);
                    grown.extend_from_slice(&hashes[at..]);
                    self.repr = Self::of_sorted(grown);
                }
            }
        }
    }

    /// The sketch of some sorted, deduplicated hashes.
    fn of_sorted(hashes: Vec<u64>) -> Repr {
        match hashes.len() {
            0 => Repr::Empty,
            1 => Repr::One(hashes[0]),
            n if n <= EXACT_LIMIT => Repr::Exact(hashes.into_boxed_slice()),
            _ => Repr::Dense(registers_of(&hashes)),
        }
    }

    /// The hashes held while exact (empty when dense).
    fn exact(&self) -> &[u64] {
        match &self.repr {
            Repr::Empty | Repr::Dense(_) => &[],
            Repr::One(h) => std::slice::from_ref(h),
            Repr::Exact(hashes) => hashes,
        }
    }

    fn densify(&mut self) {
        if !matches!(self.repr, Repr::Dense(_)) {
            self.repr = Repr::Dense(registers_of(self.exact()));
        }
    }

    /// The number of distinct values added: exact while small, estimated beyond.
    pub fn estimate(&self) -> u64 {
        let regs = match &self.repr {
            Repr::Dense(regs) => regs,
            _ => return self.exact().len() as u64,
        };
        let m = REGISTERS as f64;
        // 2^-r from a table, summed in eight independent lanes: the estimate of a dense
        // sketch is evaluated once per served row, and `powi` per register was most of an
        // uncached funnel answer. The sums are exact (powers of two of at most 53 bits'
        // spread), so the lanes give the sequential sum.
        let mut lanes = [0f64; 8];
        let mut zeros = 0usize;
        for chunk in regs.chunks_exact(8) {
            for (lane, r) in lanes.iter_mut().zip(chunk) {
                *lane += INVERSE_POWERS[*r as usize];
                zeros += usize::from(*r == 0);
            }
        }
        let sum: f64 = lanes.iter().sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// Bytes held on the heap (for memory budgets).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Empty | Repr::One(_) => 0,
            Repr::Exact(hashes) => hashes.len() * std::mem::size_of::<u64>(),
            Repr::Dense(_) => REGISTERS,
        }
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        matches!(&self.repr, Repr::Empty)
    }

    /// Canonical bytes: `0x01` + sorted hashes (u64 LE) while exact, `0x02` + 4096
    /// registers when dense.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.repr {
            Repr::Dense(regs) => {
                let mut out = Vec::with_capacity(1 + REGISTERS);
                out.push(2);
                out.extend_from_slice(&regs[..]);
                out
            }
            _ => {
                let hashes = self.exact();
                let mut out = Vec::with_capacity(1 + hashes.len() * 8);
                out.push(1);
                for h in hashes {
                    out.extend_from_slice(&h.to_le_bytes());
                }
                out
            }
        }
    }

    /// Decodes [`Hll::to_bytes`], checking every invariant.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LogicError> {
        let bad = |reason: &str| LogicError::Decode {
            what: "distinct-count sketch",
            reason: reason.to_string(),
        };
        match bytes.split_first() {
            Some((1, rest)) => {
                if rest.len() % 8 != 0 || rest.len() / 8 > EXACT_LIMIT {
                    return Err(bad("exact body has the wrong length"));
                }
                let hashes: Vec<u64> = rest
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect();
                if !hashes.windows(2).all(|w| w[0] < w[1]) {
                    return Err(bad("exact hashes are not strictly sorted"));
                }
                Ok(Hll {
                    repr: Self::of_sorted(hashes),
                })
            }
            Some((2, rest)) => {
                let regs: [u8; REGISTERS] = rest
                    .try_into()
                    .map_err(|_| bad("dense body is not 4096 bytes"))?;
                if regs.iter().any(|&r| r > MAX_RANK) || regs.iter().all(|&r| r == 0) {
                    return Err(bad("dense registers out of range or empty"));
                }
                Ok(Hll {
                    repr: Repr::Dense(Box::new(regs)),
                })
            }
            _ => Err(bad("unknown tag")),
        }
    }
}

impl Mergeable for Hll {
    fn merge(&mut self, other: &Self) {
        match &other.repr {
            Repr::Empty => {}
            Repr::One(h) => self.add_hash(*h),
            Repr::Exact(theirs) => match &mut self.repr {
                Repr::Dense(_) => {
                    for &h in theirs.iter() {
                        self.add_hash(h);
                    }
                }
                _ => self.repr = Self::of_sorted(union(self.exact(), theirs)),
            },
            Repr::Dense(theirs) => {
                self.densify();
                if let Repr::Dense(mine) = &mut self.repr {
                    for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                        *m = (*m).max(*t);
                    }
                }
            }
        }
    }
}

impl Serialize for Hll {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(d)?;
        Hll::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sketch(values: impl IntoIterator<Item = u64>) -> Hll {
        let mut h = Hll::default();
        for v in values {
            h.add(&format!("user-{v}"));
        }
        h
    }

    #[test]
    fn small_cardinalities_are_exact() {
        for n in [0u64, 1, 2, 3, 10, 100, 256] {
            assert_eq!(sketch(0..n).estimate(), n, "n = {n}");
        }
    }

    #[test]
    fn large_cardinalities_are_within_the_documented_error() {
        for n in [2_000u64, 20_000, 200_000] {
            let est = sketch(0..n).estimate() as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err < 3.0 * 0.0163, "n = {n}, estimate {est}, error {err}");
        }
    }

    #[test]
    fn the_table_and_lanes_give_the_per_register_formula() {
        for (r, p) in INVERSE_POWERS.iter().enumerate() {
            assert_eq!(*p, 2f64.powi(-(r as i32)), "2^-{r}");
        }
        // The textbook evaluation, one power of two per register.
        fn per_register(regs: &[u8; REGISTERS]) -> u64 {
            let m = REGISTERS as f64;
            let sum: f64 = regs.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
            let zeros = regs.iter().filter(|&&r| r == 0).count();
            let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
            let e = if raw <= 2.5 * m && zeros > 0 {
                m * (m / zeros as f64).ln()
            } else {
                raw
            };
            e.round() as u64
        }
        for n in [300u64, 1_000, 5_000, 12_000, 40_000, 150_000, 1_000_000] {
            let h = sketch(0..n);
            let Repr::Dense(regs) = &h.repr else {
                panic!("{n} values are dense")
            };
            assert_eq!(h.estimate(), per_register(regs), "n = {n}");
        }
    }

    #[test]
    fn repeated_values_do_not_count_twice() {
        let mut h = sketch(0..50);
        for v in 0..50 {
            h.add(&format!("user-{v}"));
        }
        assert_eq!(h.estimate(), 50);
    }

    #[test]
    fn sketch_densifies_past_the_exact_limit_and_round_trips() {
        let small = sketch(0..100);
        assert!(matches!(small.repr, Repr::Exact(_)));
        assert!(matches!(sketch(0..1).repr, Repr::One(_)));
        assert!(matches!(sketch(0..0).repr, Repr::Empty));
        let big = sketch(0..5_000);
        assert!(matches!(big.repr, Repr::Dense(_)));
        for h in [
            small,
            big,
            Hll::default(),
            sketch(0..1),
            sketch(0..2),
            sketch(0..256),
        ] {
            assert_eq!(Hll::from_bytes(&h.to_bytes()).unwrap(), h);
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(Hll::from_bytes(&[]).is_err());
        assert!(Hll::from_bytes(&[9]).is_err());
        assert!(Hll::from_bytes(&[1, 0]).is_err());
        let mut unsorted = vec![1];
        unsorted.extend_from_slice(&5u64.to_le_bytes());
        unsorted.extend_from_slice(&4u64.to_le_bytes());
        assert!(Hll::from_bytes(&unsorted).is_err());
        assert!(Hll::from_bytes(&[2, 0, 0]).is_err());
    }

    #[test]
    fn a_sketch_is_24_bytes_and_each_form_starts_at_its_count() {
        assert_eq!(std::mem::size_of::<Hll>(), 24);
        for (n, form) in [
            (0, "empty"),
            (1, "one"),
            (2, "exact"),
            (256, "exact"),
            (257, "dense"),
        ] {
            let h = sketch(0..n);
            let got = match h.repr {
                Repr::Empty => "empty",
                Repr::One(_) => "one",
                Repr::Exact(_) => "exact",
                Repr::Dense(_) => "dense",
            };
            assert_eq!(got, form, "n = {n}");
            // Built by merges of single values, in reverse, the same form and bytes.
            let mut merged = Hll::default();
            for v in (0..n).rev() {
                merged.merge(&sketch([v]));
            }
            assert_eq!(merged, h, "n = {n}");
            assert_eq!(merged.to_bytes(), h.to_bytes());
        }
    }

    #[test]
    fn bytes_of_the_previous_representation_decode_to_the_same_sketch() {
        // Format 1 as the previous code wrote it: tag 1 then the sorted hashes, even for 0 or 1.
        for n in [0u64, 1, 2, 200] {
            let h = sketch(0..n);
            let mut hashes: Vec<u64> = (0..n).map(|v| hash_value(&format!("user-{v}"))).collect();
            hashes.sort_unstable();
            let mut old = vec![1u8];
            for x in hashes {
                old.extend_from_slice(&x.to_le_bytes());
            }
            assert_eq!(Hll::from_bytes(&old).unwrap(), h);
            assert_eq!(h.to_bytes(), old);
        }
    }

    proptest! {
        /// Any grouping and order of adds and merges of the same values gives the same
        /// sketch, across the one, exact and dense forms.
        #[test]
        fn any_grouping_of_adds_and_merges_gives_the_sketch_of_the_set(
            values in proptest::collection::vec(0u64..400, 0..700),
            cut in 0usize..700,
        ) {
            let cut = cut.min(values.len());
            let mut left = sketch(values[..cut].iter().copied());
            let mut right = Hll::default();
            for v in values[cut..].iter().rev() {
                right.merge(&sketch([*v]));
            }
            left.merge(&right);
            let whole = sketch(values.iter().copied());
            prop_assert_eq!(left.to_bytes(), whole.to_bytes());
            prop_assert_eq!(left, whole);
        }

        #[test]
        fn merge_equals_sketch_of_the_union(a in proptest::collection::vec(0u64..3_000, 0..600),
                                            b in proptest::collection::vec(0u64..3_000, 0..600)) {
            let mut merged = sketch(a.iter().copied());
            merged.merge(&sketch(b.iter().copied()));
            prop_assert_eq!(&merged, &sketch(a.iter().chain(b.iter()).copied()));
            let mut other_way = sketch(b.iter().copied());
            other_way.merge(&sketch(a.iter().copied()));
            prop_assert_eq!(merged, other_way);
        }
    }
}
