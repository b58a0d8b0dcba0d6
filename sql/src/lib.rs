//! The SQL endpoint of the serving layer: every metric's merged views (batch where the
//! coverage map says so, speed elsewhere: the REST API's answer) as read-only tables over
//! the PostgreSQL wire protocol, for psql, Grafana and BI tools.
//!
//! - [`tables`]: one DataFusion table per metric and window size, reading the one merge
//!   of the serving layer with the time range, projection and filters pushed down;
//! - [`columns`]: a table's columns and their SQL types, and merged rows into Arrow;
//! - [`pushdown`]: what of a query's filters the merge can answer;
//! - [`udaf`]: `approx_distinct_merge(sketch)`, distinct counts over regrouped rows;
//! - [`catalog`]: the session context (tables, `pg_catalog`, `information_schema`);
//! - [`startup`], [`guard`], [`limits`], [`sqlstate`], [`server`]: the wire endpoint:
//!   authentication, read-only statements, timeouts and row caps, error codes, sockets.

pub mod catalog;
pub mod columns;
pub mod error;
pub mod guard;
pub mod info_schema;
pub mod limits;
pub mod pushdown;
pub mod server;
pub mod sqlstate;
pub mod startup;
pub mod tables;
pub mod text_answers;
pub mod text_rows;
pub mod udaf;

pub use error::SqlError;
pub use server::{SqlEndpoint, SqlOptions};
