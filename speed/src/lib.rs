//! Speed layer: turns the live Kafka stream into real-time views.
//!
//! - [`partition`]: one partition's state and the per-record rule (validation, dedup,
//!   watermark, late policy), deterministic so that checkpoint + replay is exactly-once;
//! - [`id_set`]: the compact table of dedup ids (128-bit hashes) per event-time hour;
//!   `quality_notes`: the duplicates and rejects a partition notes for the `quality` metric;
//! - [`views`]: the in-process handle on every held partition's state;
//! - [`replay`]: raw records applied without Kafka (benchmarks fed from a file, tests);
//! - [`consumer`]: the Kafka consumer (micro-batches, dead letters, late side output,
//!   checkpoints, eviction by the batch boundary), run as [`options`] say;
//! - [`co_partition`]: several topics read as one (one per event type): the checks that
//!   keep partition `p` of every topic in one state;
//! - [`eviction`]: how much of what the batch layer covers is kept;
//! - [`change_log`]: the notes of what changed since the last checkpoint;
//! - [`checkpoint`]: state and offsets together: a whole state and the deltas after it
//!   ([`changes`]), named by one manifest per partition written last;
//! - [`http`]: the endpoint a separate serving process merges views from;
//! - [`latency`]: the produce-to-visible latency histogram;
//!
//! Kafka clients, the lake and the views contract are `lambda_io`'s; this crate never
//! depends on the batch layer.
//!
//! The metric math is `shared-logic`'s fold and merge; nothing here restates a metric.

pub mod cdc_consumer;
pub mod change_log;
pub mod changes;
pub mod checkpoint;
pub mod co_partition;
pub mod consumer;
pub mod error;
pub mod eviction;
pub mod http;
pub mod id_set;
pub mod latency;
pub mod options;
pub mod orders;
pub mod partition;
mod quality_notes;
pub mod replay;
pub mod rollups;
pub mod views;

pub use error::SpeedError;
