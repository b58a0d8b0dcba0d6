//! How the speed layer's consumer runs ([`SpeedOptions`]) and what a run did
//! ([`SpeedStats`]).

use std::time::Duration;

use lambda_io::Lake;
use shared_logic::{topics, Validator};

use crate::latency::Latency;

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct SpeedOptions {
    /// The topics read (at least one; several must be co-partitioned: see the module doc).
    pub topics: Vec<String>,
    pub group_id: String,
    pub dead_letter_topic: String,
    pub late_topic: String,
    /// A micro-batch closes at this many records ...
    pub batch_max_records: usize,
    /// ... or this long after its first record.
    pub batch_max_age: Duration,
    pub checkpoint_interval: Duration,
    pub validator: Validator,
    /// Stop once this many records have been applied (benchmarks).
    pub stop_after_records: Option<u64>,
    /// The batch layer's views location, whose manifest bounds the state (eviction).
    pub batch_views: Option<Lake>,
    /// How much of what the batch layer already covers is kept (before the boundary), so
    /// that `lambda verify` can compare the newest covered hours of both layers.
    pub retain_covered: Duration,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        SpeedOptions {
            topics: vec![topics::EVENTS.into()],
            group_id: "lambda-speed".into(),
            dead_letter_topic: topics::DEAD_LETTER.into(),
            late_topic: topics::LATE.into(),
            batch_max_records: 20_000,
            batch_max_age: Duration::from_millis(10),
            checkpoint_interval: Duration::from_secs(10),
            validator: Validator::default(),
            stop_after_records: None,
            batch_views: None,
            retain_covered: Duration::from_secs(3_600),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SpeedStats {
    pub records: u64,
    pub batches: u64,
    pub checkpoints: u64,
    /// Record timestamp (when produced) to applied to the views.
    pub latency: Latency,
    /// Of which record timestamp to received by the consumer: the producer's batching,
    /// the broker and the fetch.
    pub delivery: Latency,
    /// Of which received to applied: the micro-batch's wait and its processing (ours).
    pub processing: Latency,
    /// From the first record polled to the last applied.
    pub busy: Duration,
}
