//! Serving layer: everything that faces clients.
//!
//! - [`api`]: the axum routes (query API, collector, dashboard, health, metrics, OpenAPI);
//! - [`query`]: parameters checked into a query; [`merge`]: the per-hour merge of batch
//!   and real-time views; [`batch_views`] and [`speed_views`]: reading each layer;
//! - [`collector`]: `POST /v1/events` into Kafka; [`lineage`]: where a number comes from;
//! - [`telemetry`]: Prometheus metrics; [`openapi`]; [`dashboard`]: the embedded page.
//!
//! This crate never computes a metric from raw events: metric math is `shared-logic`'s,
//! and the views it merges come from `batch` and `speed`.

pub mod answer_cache;
pub mod api;
pub mod batch_views;
pub mod collector;
pub mod dashboard;
pub mod error;
pub mod lineage;
pub mod merge;
pub mod openapi;
pub mod query;
pub mod speed_views;
pub mod telemetry;
pub mod verify;

pub use api::{router, ApiOptions, AppState};
pub use error::ServingError;
