//! A deterministic, mergeable sample of records: the `K` distinct records of smallest
//! hash (bottom-k sampling), for the data-quality figures' "sample dead letters".
//!
//! A record is a short text (a dead letter's raw bytes, cut at [`MAX_SAMPLE_BYTES`] on a
//! character boundary, and its message). The sample keeps the `K` distinct records whose
//! XXH3-64 hash is smallest, ties broken by the record itself. Merging takes the union and
//! keeps the `K` smallest again, so the sample is a function of the *set* of records seen:
//! the batch layer and the speed layer, whatever their grouping and order, show the same
//! examples, and a sample of a day is the sample of its hours merged. The hash makes the
//! choice uniform over distinct records without a random source. Memory: at most `K`
//! records of at most [`MAX_SAMPLE_BYTES`] plus their message's.

use serde::{Deserialize, Serialize};

use crate::mergeable::Mergeable;

/// Longest raw record or message kept in a sample, in bytes.
pub const MAX_SAMPLE_BYTES: usize = 512;

/// One sampled record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sampled {
    /// XXH3-64 of `raw` and `message` (as cut).
    pub hash: u64,
    pub raw: String,
    pub message: String,
}

impl Sampled {
    /// A record, cut to [`MAX_SAMPLE_BYTES`] (invalid UTF-8 replaced), and its hash.
    pub fn new(raw: &[u8], message: &str) -> Sampled {
        let raw = cut(&String::from_utf8_lossy(raw)).to_string();
        let message = cut(message).to_string();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(raw.as_bytes());
        hasher.update(&[0]);
        hasher.update(message.as_bytes());
        Sampled {
            hash: hasher.digest(),
            raw,
            message,
        }
    }
}

/// `text` cut to at most [`MAX_SAMPLE_BYTES`] on a character boundary.
fn cut(text: &str) -> &str {
    &text[..text.floor_char_boundary(MAX_SAMPLE_BYTES)]
}

/// The `K` distinct records of smallest hash seen. `Default` is the empty sample (the
/// merge identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Sampled>", into = "Vec<Sampled>")]
pub struct BottomK<const K: usize> {
    /// Sorted by (hash, raw, message), distinct, at most `K`.
    records: Vec<Sampled>,
}

impl<const K: usize> Default for BottomK<K> {
    fn default() -> Self {
        BottomK {
            records: Vec::new(),
        }
    }
}

impl<const K: usize> BottomK<K> {
    /// Offers one record.
    pub fn add(&mut self, record: Sampled) {
        if self.records.len() == K && self.records.last().is_some_and(|last| record >= *last) {
            return;
        }
        if let Err(at) = self.records.binary_search(&record) {
            self.records.insert(at, record);
            self.records.truncate(K);
        }
    }

    /// The records kept, smallest hash first.
    pub fn records(&self) -> &[Sampled] {
        &self.records
    }

    /// Whether the sample keeps its invariant (sorted, distinct, at most `K`): a decoded
    /// sample that does not is corrupt.
    pub fn is_valid(&self) -> bool {
        self.records.len() <= K && self.records.windows(2).all(|w| w[0] < w[1])
    }
}

impl<const K: usize> From<BottomK<K>> for Vec<Sampled> {
    fn from(sample: BottomK<K>) -> Self {
        sample.records
    }
}

/// Decoding checks what a sample promises: at most `K` records, sorted, distinct, each
/// cut and hashed as [`Sampled::new`] does.
impl<const K: usize> TryFrom<Vec<Sampled>> for BottomK<K> {
    type Error = String;

    fn try_from(records: Vec<Sampled>) -> Result<Self, String> {
        if let Some(r) = records
            .iter()
            .find(|r| Sampled::new(r.raw.as_bytes(), &r.message) != **r)
        {
            return Err(format!(
                "sampled record with hash {} is not as cut and hashed",
                r.hash
            ));
        }
        let sample = BottomK { records };
        if !sample.is_valid() {
            return Err(format!(
                "{} sampled records, unsorted or repeated (at most {K})",
                sample.records.len()
            ));
        }
        Ok(sample)
    }
}

impl<const K: usize> Mergeable for BottomK<K> {
    fn merge(&mut self, other: &Self) {
        let (a, b) = (&self.records, &other.records);
        let mut out = Vec::with_capacity(K.min(a.len() + b.len()));
        let (mut i, mut j) = (0, 0);
        while out.len() < K && (i < a.len() || j < b.len()) {
            let next = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    i += 1;
                    j += 1;
                    x
                }
                (Some(x), Some(y)) if x < y => {
                    i += 1;
                    x
                }
                (_, Some(y)) => {
                    j += 1;
                    y
                }
                (Some(x), None) => {
                    i += 1;
                    x
                }
                (None, None) => break,
            };
            out.push(next.clone());
        }
        self.records = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(records: &[(String, String)]) -> BottomK<3> {
        let mut s = BottomK::default();
        for (raw, message) in records {
            s.add(Sampled::new(raw.as_bytes(), message));
        }
        s
    }

    #[test]
    fn records_are_cut_on_a_character_boundary_and_repeats_count_once() {
        let long = "é".repeat(400); // 800 bytes
        let s = Sampled::new(long.as_bytes(), &long);
        assert!(s.raw.len() <= MAX_SAMPLE_BYTES && s.raw.len() >= MAX_SAMPLE_BYTES - 1);
        assert_eq!(s.raw, s.message);
        let bad = Sampled::new(&[0xff, b'{'], "invalid utf-8");
        assert_eq!(bad.raw, "\u{fffd}{");
        let mut k = BottomK::<3>::default();
        for _ in 0..5 {
            k.add(Sampled::new(b"{}", "no id"));
        }
        assert_eq!(k.records().len(), 1);
        assert!(k.is_valid());
    }

    #[test]
    fn a_sample_keeps_the_smallest_hashes() {
        let records: Vec<Sampled> = (0..50)
            .map(|i| Sampled::new(format!("{{\"n\":{i}}}").as_bytes(), "bad"))
            .collect();
        let mut k = BottomK::<3>::default();
        records.iter().cloned().for_each(|r| k.add(r));
        let mut sorted = records.clone();
        sorted.sort();
        assert_eq!(k.records(), &sorted[..3]);
        let unsorted = BottomK::<3> {
            records: vec![sorted[1].clone(), sorted[0].clone()],
        };
        assert!(!unsorted.is_valid());
        // Decoding refuses what no sample can hold.
        let encoded = postcard::to_allocvec(&unsorted.records).unwrap();
        assert!(postcard::from_bytes::<BottomK<3>>(&encoded).is_err());
        let too_many = postcard::to_allocvec(&sorted[..4].to_vec()).unwrap();
        assert!(postcard::from_bytes::<BottomK<3>>(&too_many).is_err());
        let mut forged = sorted[0].clone();
        forged.hash ^= 1;
        let forged = postcard::to_allocvec(&vec![forged]).unwrap();
        assert!(postcard::from_bytes::<BottomK<3>>(&forged).is_err());
        let fine = postcard::to_allocvec(&sorted[..3].to_vec()).unwrap();
        assert_eq!(postcard::from_bytes::<BottomK<3>>(&fine).unwrap(), k);
    }

    fn texts() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-c]{0,3}", "[xy]{0,2}"), 0..12)
    }

    proptest! {
        #[test]
        fn merges_are_a_commutative_monoid_and_equal_one_sample_of_all(
            a in texts(), b in texts(), c in texts(),
        ) {
            let (sa, sb, sc) = (sample(&a), sample(&b), sample(&c));
            let ab_c = crate::mergeable::check_laws(&sa, &sb, &sc)
                .map_err(TestCaseError::fail)?;
            let mut idempotent = sa.clone();
            idempotent.merge(&sa);
            prop_assert_eq!(&idempotent, &sa);
            // A function of the set: every record in any order, repeats included.
            let all: Vec<_> = c.iter().chain(&a).chain(&b).chain(&a).cloned().collect();
            prop_assert_eq!(&ab_c, &sample(&all));
            prop_assert!(ab_c.is_valid());
            let bytes = postcard::to_allocvec(&ab_c).unwrap();
            prop_assert_eq!(postcard::from_bytes::<BottomK<3>>(&bytes).unwrap(), ab_c);
        }
    }
}
