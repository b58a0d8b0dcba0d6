//! Serving layer: everything that faces clients.
//!
//! The query API over batch and real-time views, the collector endpoint and the dashboard
//! come with the serving issue. This crate never computes a metric from raw events: metric
//! math is `shared-logic`'s, and the views it merges come from `batch` and `speed`.

pub mod error;
pub mod merge;

pub use error::ServingError;
