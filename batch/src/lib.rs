//! Batch layer: the master dataset and the exact views computed from it.
//!
//! - [`lake`]: where things live in an `object_store` (local path, `file://`, `s3://`): the
//!   hive layout of events, dead letters, views, manifests and locks.
//! - [`writer`]: validated events and dead letters to Parquet (zstd), one file per source
//!   partition and offset range, so a retry rewrites the same file instead of adding a copy.
//! - [`lake_writer`]: Kafka -> lake, exactly once across crashes (intent, write, commit).
//! - [`import`]: NDJSON backfill into the lake, with the same validation and dead letters.
//! - [`job`]: the hourly batch job: DataFusion scans an hour's files, the shared dedup rule
//!   and the shared metrics fold them, views are staged and published with a manifest.
//! - [`manifest`]: the published state: per-metric coverage map and time boundary.
//! - [`sessions`]: an hour's sessions, read with the neighbouring hours a session can span.
//! - [`cdc_files`]: raw change files (Debezium records of the `orders` and `products`
//!   topics); [`orders`]: the `orders` views replayed from them.
//!
//! This crate knows nothing of HTTP, and never restates a metric: folding is
//! `shared-logic`'s.

pub mod cdc_files;
pub mod error;
pub mod import;
pub mod job;
pub mod lake;
pub mod lake_writer;
pub mod lock;
pub mod manifest;
pub mod orders;
pub mod sessions;
pub mod writer;

pub use error::BatchError;
pub use lake::Lake;
