//! The one definition of what the platform computes.
//!
//! Both the batch layer and the speed layer call this crate for everything that decides a
//! number: parsing and validation of events, normalisation, money conversion, window
//! assignment, the dedup rule, and the metric definitions with their mergeable states. The
//! layers differ only in how they read data and parallelise; they never restate a metric.
//!
//! This crate does no I/O: no Kafka, no files, no HTTP. It takes bytes and values and
//! returns values, so every rule can be tested in isolation and both layers stay identical.

pub mod arrival;
pub mod bottom_k;
pub mod catalogue;
pub mod cdc;
pub mod cube;
pub mod dead_letter_sample;
pub mod dedup;
pub mod durations;
pub mod error;
pub mod event;
pub mod generate;
pub mod generate_cdc;
pub mod generate_producers;
pub mod group_key;
mod group_table;
pub mod grouping;
pub mod hll;
pub mod instant;
pub mod mergeable;
pub mod metric;
pub mod metric_views;
pub mod metrics;
pub mod money;
pub mod orders;
pub mod quality;
pub mod quality_report;
pub mod quality_rules;
pub mod quantile;
pub mod registry;
pub mod schema;
pub mod sessions;
pub mod sliding;
pub mod source;
pub mod topics;
pub mod validate;
pub mod views;
pub mod window;

pub use error::LogicError;
pub use event::{Device, Event, EventId, EventRef, EventTime, EventType, Origin, RecordMeta};
pub use group_key::GroupKey;
pub use grouping::Grouping;
pub use mergeable::{Mergeable, Signed};
pub use metric::{Metric, MetricContext};
pub use metric_views::MetricViews;
pub use metrics::{Funnel, Orders, PageViews, Revenue, Sessions};
pub use money::{Currency, Minor, Rates};
pub use registry::{Aggregates, MetricId, MetricVisitor, Registered};
pub use validate::{DeadLetter, Reason, Validator};
pub use window::{WindowSpec, WindowStart};

/// Version of the metric logic. Views computed under different versions are never merged;
/// bump it whenever a change to this crate changes any number a metric produces.
pub const LOGIC_VERSION: &str = "4";
