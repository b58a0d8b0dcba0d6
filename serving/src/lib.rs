//! Serving layer: everything that faces clients.
//!
//! At this stage it owns the Kafka side of ingestion: topic administration and the event
//! producer (idempotent, `acks=all`, keyed by `user_id`) that the generator and the
//! collector write through. The query API, the merge of batch and real-time views and the
//! dashboard come with the serving issue. This crate never computes a metric from raw
//! events: metric math is `shared-logic`'s.

pub mod error;
pub mod kafka;

pub use error::ServingError;
