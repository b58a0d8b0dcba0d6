//! Serving layer: everything that faces clients.
//!
//! - [`api`]: the axum routes (query API, collector, dashboard, health, metrics, OpenAPI);
//!   [`state`]: what handlers share; [`auth`]: bearer tokens per group of routes;
//! - [`query`]: parameters checked into a query; [`answer`]: a query answered and shaped
//!   ([`answer_json`]: its rows written as JSON);
//!   [`merge`]: the per-hour merge of batch and real-time views; [`sliding`]: sliding
//!   windows assembled from the merged panes; [`batch_views`] and
//!   [`speed_views`]: reading each layer (the views contract is `lambda_io`'s);
//! - [`collector`]: `POST /v1/events` into Kafka, [`rate_limit`]: its limit per client;
//!   [`lineage`]: where a number comes from; [`quality`]: the data-quality report;
//! - [`telemetry`]: Prometheus metrics ([`quality_metrics`]: the data-quality gauges); [`openapi`]; [`dashboard`]: the embedded page.
//!
//! This crate never computes a metric from raw events: metric math is `shared-logic`'s,
//! and the views it merges are the ones `batch` publishes and `speed` serves, read through
//! `lambda_io` (this crate depends on neither layer).

pub mod answer;
pub mod answer_cache;
pub mod answer_json;
pub mod api;
pub mod auth;
pub mod batch_views;
pub mod collector;
pub mod dashboard;
pub mod error;
pub mod lineage;
pub mod merge;
pub mod openapi;
pub mod quality;
pub mod quality_metrics;
pub mod query;
pub mod rate_limit;
pub mod sliding;
pub mod speed_fetch;
pub mod speed_rows;
pub mod speed_views;
pub mod speed_window_cache;
pub mod state;
pub mod telemetry;
pub mod verify;

pub use api::router;
pub use error::ServingError;
pub use state::{ApiOptions, AppState};
