//! Sample dead letters: a few rejected records of each producer, hour and reason, kept so
//! that a quality report can show what was wrong with them next to their count.
//!
//! A sample is filed under the hour of its Kafka record time, as the `quality` metric's
//! rejects are. Each (hour, producer, reason) keeps the [`SAMPLES_PER_REASON`] records
//! first in (partition, offset) order, so samples merge (partitions, instances) into the
//! same set whatever the order, and a record's bytes and message are cut to
//! [`SAMPLE_BYTES`] so that one record costs a bounded amount of memory.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::mergeable::Mergeable;
use crate::validate::DeadLetter;
use crate::window::HOUR_MS;

/// Records kept per hour, producer and reason.
pub const SAMPLES_PER_REASON: usize = 3;

/// Longest record text and message kept, in bytes (cut on a character boundary).
pub const SAMPLE_BYTES: usize = 1024;

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeadLetterSample {
    pub partition: i32,
    pub offset: i64,
    /// Start of the record-time hour, epoch ms.
    pub hour_ms: i64,
    pub producer: String,
    /// The reason code.
    pub reason: String,
    pub message: String,
    /// The Kafka record timestamp, epoch ms.
    pub record_ms: i64,
    /// The record's bytes as text (invalid UTF-8 replaced), cut to [`SAMPLE_BYTES`].
    pub record: String,
    /// The record's length in bytes (more than `record` holds when it was cut).
    pub record_bytes: usize,
}

impl DeadLetterSample {
    /// The sample of a dead letter; none for a record without a record time (it has no
    /// hour).
    pub fn of(dead: &DeadLetter) -> Option<DeadLetterSample> {
        let record_ms = dead.record_ms?;
        let raw = &dead.raw[..dead.raw.len().min(SAMPLE_BYTES)];
        Some(DeadLetterSample {
            partition: dead.origin.partition,
            offset: dead.origin.offset,
            hour_ms: record_ms.div_euclid(HOUR_MS) * HOUR_MS,
            producer: dead.source.clone(),
            reason: dead.reason.code().to_string(),
            message: cut(&dead.message),
            record_ms,
            record: String::from_utf8_lossy(raw).into_owned(),
            record_bytes: dead.raw.len(),
        })
    }
}

/// `text` cut to at most [`SAMPLE_BYTES`] bytes on a character boundary.
fn cut(text: &str) -> String {
    text[..text.floor_char_boundary(SAMPLE_BYTES)].to_string()
}

/// Samples per (record-time hour, producer, reason).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterSamples {
    kept: BTreeMap<(i64, String, String), BTreeSet<DeadLetterSample>>,
}

impl DeadLetterSamples {
    /// Offers a sample: kept when among the first of its hour, producer and reason.
    pub fn offer(&mut self, sample: DeadLetterSample) {
        let key = (
            sample.hour_ms,
            sample.producer.clone(),
            sample.reason.clone(),
        );
        let kept = self.kept.entry(key).or_default();
        if kept.len() < SAMPLES_PER_REASON || kept.last().is_some_and(|last| sample < *last) {
            kept.insert(sample);
            while kept.len() > SAMPLES_PER_REASON {
                kept.pop_last();
            }
        }
    }

    /// Keeps the hours (start, epoch ms) `keep` accepts.
    pub fn retain_hours(&mut self, mut keep: impl FnMut(i64) -> bool) {
        self.kept.retain(|(hour, _, _), _| keep(*hour));
    }

    /// The samples of the hours starting in `[from_ms, to_ms)`, by hour, producer, reason
    /// and position.
    pub fn within(&self, from_ms: i64, to_ms: i64) -> Vec<DeadLetterSample> {
        self.kept
            .iter()
            .filter(|((hour, _, _), _)| (from_ms..to_ms).contains(hour))
            .flat_map(|(_, samples)| samples.iter().cloned())
            .collect()
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.kept.values().map(BTreeSet::len).sum()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

impl Mergeable for DeadLetterSamples {
    fn merge(&mut self, other: &Self) {
        for samples in other.kept.values() {
            for s in samples {
                self.offer(s.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::mergeable::check_laws;
    use crate::validate::Reason;
    use proptest::prelude::*;

    fn dead(partition: i32, offset: i64, reason: Reason, record_ms: Option<i64>) -> DeadLetter {
        DeadLetter {
            raw: b"{\"event_id\":1}".to_vec(),
            reason,
            message: "event_id must be a string".into(),
            origin: Origin { partition, offset },
            source: "web".into(),
            record_ms,
        }
    }

    fn samples() -> impl Strategy<Value = DeadLetterSamples> {
        proptest::collection::vec((0i32..2, 0i64..8, any::<bool>(), 0i64..2), 0..12).prop_map(
            |offers| {
                let mut s = DeadLetterSamples::default();
                for (p, o, which, hour) in offers {
                    let reason = if which {
                        Reason::MalformedJson
                    } else {
                        Reason::MissingField
                    };
                    s.offer(
                        DeadLetterSample::of(&dead(p, o, reason, Some(hour * HOUR_MS))).unwrap(),
                    );
                }
                s
            },
        )
    }

    proptest! {
        #[test]
        fn samples_are_a_commutative_monoid(a in samples(), b in samples(), c in samples()) {
            check_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn the_first_records_of_each_reason_are_kept_and_cut() {
        let mut s = DeadLetterSamples::default();
        for offset in (0..10).rev() {
            s.offer(
                DeadLetterSample::of(&dead(0, offset, Reason::MalformedJson, Some(5))).unwrap(),
            );
        }
        s.offer(DeadLetterSample::of(&dead(1, 0, Reason::MissingField, Some(5))).unwrap());
        assert!(DeadLetterSample::of(&dead(1, 1, Reason::MissingField, None)).is_none());
        let kept = s.within(0, HOUR_MS);
        let offsets: Vec<(String, i64)> =
            kept.iter().map(|k| (k.reason.clone(), k.offset)).collect();
        assert_eq!(
            offsets,
            [
                ("malformed_json".to_string(), 0),
                ("malformed_json".to_string(), 1),
                ("malformed_json".to_string(), 2),
                ("missing_field".to_string(), 0)
            ]
        );
        assert_eq!(s.len(), 4);
        assert!(s.within(HOUR_MS, 2 * HOUR_MS).is_empty());

        let mut big = dead(0, 0, Reason::MalformedJson, Some(5));
        big.raw = "é".repeat(SAMPLE_BYTES).into_bytes();
        big.message = "ü".repeat(SAMPLE_BYTES);
        let sample = DeadLetterSample::of(&big).unwrap();
        assert_eq!(sample.record_bytes, 2 * SAMPLE_BYTES);
        assert!(sample.record.len() <= SAMPLE_BYTES + 3);
        assert!(sample.message.len() <= SAMPLE_BYTES);
        s.retain_hours(|h| h > 0);
        assert!(s.is_empty());
    }
}
