//! The plumbing below the layers: how `batch`, `speed` and `serving` reach the outside
//! world, and the contracts they read each other through. It holds no metric logic (that
//! is `shared-logic`'s) and knows nothing of HTTP routes or DataFusion plans (the layers').
//!
//! - the lake: [`lake`] (an object-store location and its hive layout), [`lake_names`]
//!   (how flushed files are named), [`parquet_file`] (how every layer writes Parquet);
//! - the views contract: [`manifest`] (the published batch state: coverage map and time
//!   boundary), [`views_file`] (a metric's views as a Parquet file), [`speed_api`] (what a
//!   speed instance answers, and the in-process handle on its views);
//! - tokens: [`bearer`] (which tokens a process accepts, how a request's token is read and
//!   compared);
//! - Kafka: [`kafka`] (client settings, topics, the producer, consumer-loop helpers, reading
//!   a topic to its end, the local development broker).

pub mod bearer;
pub mod delta;
pub mod error;
pub mod grouped_rows;
pub mod kafka;
pub mod lake;
pub mod lake_names;
pub mod lake_snapshot;
pub mod manifest;
pub mod parquet_file;
pub mod parquet_footer;
pub mod speed_api;
pub mod view_tables;
pub mod views_file;

pub use error::IoError;
pub use lake::Lake;
