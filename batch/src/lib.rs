//! Batch layer: the master dataset and the exact views computed from it.
//!
//! The lake itself (an `object_store` location and its layout), the published manifest's
//! format and Parquet encoding are `lambda_io`'s, shared with the other layers.
//!
//! - [`lake_tables`] ([`lake_schemas`]: their files' schemas): the lake's Delta tables (events, dead letters, each CDC table's
//!   changes); [`writer`]: a flush's records encoded as their Parquet files (zstd);
//!   [`flush_commit`]: a flush committed exactly once (Delta application transactions).
//! - [`lake_writer`]: Kafka -> lake, exactly once across crashes and rebalances.
//! - [`import`]: NDJSON backfill into the lake, with the same validation and dead letters.
//! - [`optimize`]: compaction of settled hours and vacuum of the lake's tables;
//!   [`migrate`]: a lake of the hive layout before the Delta tables turned into them.
//! - [`job`]: the batch job: which hours a run computes, each computed and published in
//!   turn ([`options`]: how a run is configured); [`hour`]: one hour —
//!   [`scan`] (DataFusion over the hour's files), [`dedup`] (pass one: winning origins of
//!   repeated ids), [`fold`] (pass two: the shared metrics), [`rejects`] (the hour's
//!   dead letters in the metrics that count rejects), [`view_files`] (the views written as
//!   Parquet, and read back).
//! - [`publish`]: publication of a run's hours, one commit per metric table (no lock);
//!   [`views_admin`]: the views tables' history, vacuum and the migration of older views.
//! - [`sessions`]: an hour's sessions, read with the neighbouring hours a session can span.
//! - [`cdc_files`]: raw change files (Debezium records of the `orders` and `products`
//!   topics); [`orders`]: the `orders` views replayed from them.
//!
//! This crate knows nothing of HTTP, and never restates a metric: folding is
//! `shared-logic`'s.

pub mod cdc_files;
pub mod dedup;
pub mod error;
pub mod flush_commit;
pub mod fold;
pub mod hour;
pub mod import;
pub mod job;
pub mod lake_schemas;
pub mod lake_tables;
pub mod lake_writer;
pub mod migrate;
pub mod optimize;
pub mod options;
pub mod orders;
pub mod publish;
pub mod rejects;
pub mod repartition;
pub mod scan;
pub mod sessions;
pub mod view_files;
pub mod views_admin;
pub mod writer;

pub use error::BatchError;
