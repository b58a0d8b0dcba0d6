//! A deterministic, mergeable quantile sketch of non-negative integers (delays in
//! milliseconds): the data-quality figures' p50 / p95 / p99 of event-to-arrival delay.
//!
//! Log-linear buckets, as HdrHistogram: values below 64 have a bucket each (exact); above,
//! a bucket is the value's power of two and the 6 bits after its leading one, so a bucket
//! spans at most 1/64 of its lower bound. A sketch is the list of its non-empty buckets and
//! their counts, sorted by bucket; merging adds counts bucket by bucket. It holds no float
//! and no order: the sketch is a function of the *multiset* of values added, so the batch
//! layer and the speed layer, whatever their grouping and order of merges, hold the same
//! sketch to the bit, and report the same quantiles. (DDSketch and t-digest keep float sums,
//! whose rounding depends on the merge order.)
//!
//! Error: a quantile is the nearest-rank value's bucket midpoint, within 1/128 (0.8 %) of
//! that value (exact below 64). Memory: 10 bytes per non-empty bucket, at most
//! [`BUCKETS`] (37 KiB) whatever the number of values; delays of one source and hour
//! usually fill a few dozen.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::LogicError;
use crate::mergeable::{add_count, Mergeable};

/// Bits of a value kept after its leading one (and values below `2^SUB_BITS` are exact).
const SUB_BITS: u32 = 6;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Number of buckets: the exact ones, then `SUB_BUCKETS` per power of two up to `2^63`.
pub const BUCKETS: usize = (SUB_BUCKETS + (64 - SUB_BITS as u64) * SUB_BUCKETS) as usize;

/// A quantile sketch. `Default` is the empty sketch (the merge identity).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuantileSketch {
    /// Non-empty buckets and their counts, sorted by bucket.
    buckets: Vec<(u16, u64)>,
}

/// The bucket of `value`.
fn bucket_of(value: u64) -> u16 {
    if value < SUB_BUCKETS {
        return value as u16;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let mantissa = (value >> shift) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + mantissa) as u16
}

/// The lowest and highest value of `bucket`.
fn bounds_of(bucket: u16) -> (u64, u64) {
    let b = u64::from(bucket);
    if b < SUB_BUCKETS {
        return (b, b);
    }
    let shift = (b - SUB_BUCKETS) / SUB_BUCKETS;
    let mantissa = (b - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + mantissa) << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl QuantileSketch {
    /// Adds one value.
    pub fn add(&mut self, value: u64) {
        self.add_count(value, 1);
    }

    /// Adds `count` occurrences of `value`.
    pub fn add_count(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        let bucket = bucket_of(value);
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => self.buckets[i].1 = add_count(self.buckets[i].1, count),
            Err(i) => self.buckets.insert(i, (bucket, count)),
        }
    }

    /// Number of values added (saturating).
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0, |n, (_, c)| add_count(n, *c))
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The `q`-quantile (`q` in `[0, 1]`, clamped): the midpoint of the bucket holding the
    /// value of nearest rank `ceil(q * count)` (at least 1); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (bucket, count) in &self.buckets {
            seen = add_count(seen, *count);
            if seen >= rank {
                let (low, high) = bounds_of(*bucket);
                return Some(low + (high - low) / 2);
            }
        }
        self.buckets.last().map(|(b, _)| bounds_of(*b).1)
    }

    /// Number of values in buckets past `threshold`'s: exact for thresholds below 64 and at
    /// the end of a bucket; otherwise it leaves out values above `threshold` in its bucket.
    pub fn count_above(&self, threshold: u64) -> u64 {
        self.buckets
            .iter()
            .filter(|(b, _)| bounds_of(*b).0 > threshold)
            .fold(0, |n, (_, c)| add_count(n, *c))
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u16, u64)>()
    }

    /// The encoding of a state: for each bucket, its number (2 bytes) and count (8 bytes),
    /// little-endian, in bucket order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buckets.len() * 10);
        for (bucket, count) in &self.buckets {
            out.extend_from_slice(&bucket.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Decodes [`Self::to_bytes`]; anything else (a bucket out of range, out of order or
    /// empty, a partial entry) is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LogicError> {
        let bad = |reason: String| LogicError::Decode {
            what: "quantile sketch",
            reason,
        };
        if !bytes.len().is_multiple_of(10) || bytes.len() / 10 > BUCKETS {
            return Err(bad(format!(
                "{} bytes is not a list of buckets",
                bytes.len()
            )));
        }
        let mut buckets = Vec::with_capacity(bytes.len() / 10);
        for entry in bytes.chunks_exact(10) {
            let bucket = u16::from_le_bytes([entry[0], entry[1]]);
            let mut count = [0u8; 8];
            count.copy_from_slice(&entry[2..]);
            let count = u64::from_le_bytes(count);
            if usize::from(bucket) >= BUCKETS || count == 0 {
                return Err(bad(format!("bucket {bucket} with count {count}")));
            }
            if buckets.last().is_some_and(|(last, _)| *last >= bucket) {
                return Err(bad(format!("bucket {bucket} out of order")));
            }
            buckets.push((bucket, count));
        }
        Ok(QuantileSketch { buckets })
    }
}

impl Mergeable for QuantileSketch {
    fn merge(&mut self, other: &Self) {
        if other.buckets.is_empty() {
            return;
        }
        let (a, b) = (&self.buckets, &other.buckets);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0, add_count(a[i].1, b[j].1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.buckets = out;
    }
}

impl Serialize for QuantileSketch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for QuantileSketch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(d)?;
        QuantileSketch::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sketch(values: &[u64]) -> QuantileSketch {
        let mut s = QuantileSketch::default();
        values.iter().for_each(|v| s.add(*v));
        s
    }

    /// The exact nearest-rank quantile.
    fn exact(values: &[u64], q: f64) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn buckets_cover_every_value_once_in_order() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(63), 63);
        assert_eq!(bucket_of(64), 64);
        assert_eq!(usize::from(bucket_of(u64::MAX)), BUCKETS - 1);
        let mut next = 0u64;
        for b in 0..BUCKETS as u16 {
            let (low, high) = bounds_of(b);
            assert_eq!(low, next, "bucket {b} starts where the previous ended");
            assert!(high >= low);
            assert_eq!((bucket_of(low), bucket_of(high)), (b, b));
            // A bucket spans at most 1/64 of its lowest value.
            assert!(high - low <= low / 64, "bucket {b}: {low}..={high}");
            next = high.wrapping_add(1);
        }
        assert_eq!(next, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn small_values_are_exact_and_quantiles_take_the_nearest_rank() {
        let s = sketch(&[5, 1, 3, 2, 4]);
        assert_eq!(s.count(), 5);
        assert_eq!(s.quantile(0.0), Some(1));
        assert_eq!(s.quantile(0.5), Some(3));
        assert_eq!(s.quantile(0.99), Some(5));
        assert_eq!(s.quantile(1.0), Some(5));
        assert_eq!(s.quantile(f64::NAN), Some(1));
        assert_eq!(QuantileSketch::default().quantile(0.5), None);
        assert_eq!(s.count_above(3), 2);
        assert_eq!(s.count_above(63), 0);
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut s = QuantileSketch::default();
        s.add_count(1_000, u64::MAX);
        s.add(1_000);
        s.merge(&s.clone());
        assert_eq!(s.count(), u64::MAX);
        assert!(s.quantile(0.5).is_some());
    }

    #[test]
    fn bytes_that_are_not_a_sketch_are_an_error() {
        let good = sketch(&[1, 100, 10_000]).to_bytes();
        assert_eq!(
            QuantileSketch::from_bytes(&good).unwrap(),
            sketch(&[1, 100, 10_000])
        );
        let mut unordered = good[10..20].to_vec();
        unordered.extend_from_slice(&good[..10]);
        let mut out_of_range = vec![0xff, 0xff];
        out_of_range.extend_from_slice(&1u64.to_le_bytes());
        let mut zero = vec![1, 0];
        zero.extend_from_slice(&0u64.to_le_bytes());
        for bad in [&good[..9], &unordered[..], &out_of_range[..], &zero[..]] {
            assert!(QuantileSketch::from_bytes(bad).is_err(), "{bad:?}");
        }
        let twice = [&good[..10], &good[..10]].concat();
        assert!(QuantileSketch::from_bytes(&twice).is_err());
    }

    proptest! {
        #[test]
        fn merges_are_a_commutative_monoid_and_equal_one_sketch_of_all(
            a in prop::collection::vec(any::<u64>(), 0..60),
            b in prop::collection::vec(0u64..100_000, 0..60),
            c in prop::collection::vec(0u64..200, 0..60),
        ) {
            let (sa, sb, sc) = (sketch(&a), sketch(&b), sketch(&c));
            let ab_c = crate::mergeable::check_laws(&sa, &sb, &sc)
                .map_err(TestCaseError::fail)?;
            // A function of the multiset: the same values in any order and grouping.
            let all: Vec<u64> = a.iter().chain(&b).chain(&c).copied().rev().collect();
            prop_assert_eq!(&ab_c, &sketch(&all));
            let back = QuantileSketch::from_bytes(&ab_c.to_bytes()).unwrap();
            prop_assert_eq!(&back, &ab_c);
            let postcard = postcard::to_allocvec(&ab_c).unwrap();
            prop_assert_eq!(postcard::from_bytes::<QuantileSketch>(&postcard).unwrap(), ab_c);
        }

        #[test]
        fn quantiles_are_within_a_128th_of_the_exact_nearest_rank(
            values in prop::collection::vec(prop_oneof![0u64..100, 0u64..10_000_000, any::<u64>()], 1..300),
            q in 0.0f64..=1.0,
        ) {
            let s = sketch(&values);
            let (got, want) = (s.quantile(q).unwrap(), exact(&values, q));
            let error = got.abs_diff(want);
            prop_assert!(error <= want / 128, "q {}: got {}, exact {}", q, got, want);
            // Above a threshold: exactly the values past the end of the threshold's bucket.
            let t = exact(&values, q);
            let past_bucket = values.iter().filter(|v| **v > bounds_of(bucket_of(t)).1).count();
            let above = values.iter().filter(|v| **v > t).count();
            prop_assert_eq!(s.count_above(t), past_bucket as u64);
            prop_assert!(past_bucket <= above);
        }
    }
}
