//! The lake's and the views' tables, in the Delta Lake format (delta-rs): every table the
//! platform writes is a directory of Parquet files plus a `_delta_log` of atomic, conditional
//! commits, readable by every engine that reads Delta (Spark, Trino, DuckDB, Polars,
//! delta-rs, the Python `deltalake` package).
//!
//! - [`table`]: one table: open or create, the files of a snapshot, time travel, commits
//!   with conflict detection and retry, application transaction versions (the mechanism of
//!   idempotent, exactly-once writes), vacuum;
//! - `files`: a file of a snapshot, a file a commit adds;
//! - `operation`: what a commit of each kind records besides its files (the operation, and
//!   the new metadata of a repartition or of added columns);
//! - [`partition`]: the hour partitioning every table shares (`date=YYYY-MM-DD/hour=HH`),
//!   and the events table's `event_type` level below it;
//! - [`schema`]: Arrow schemas as Delta schemas, and which columns a newer writer may add.
//!
//! Everything Delta-specific stays behind this module, so another table format (Apache
//! Iceberg, once its Rust crates build against this workspace's Arrow) can follow.

mod files;
mod log_store;
mod operation;
pub mod partition;
pub mod schema;
pub mod table;

pub use deltalake::kernel::StructField;
pub use partition::{HourPartition, DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN};
pub use table::{AddFile, CommitKind, Table, TableFile};

#[cfg(test)]
mod tests;
