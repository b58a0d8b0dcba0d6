//! Cross-layer test support: the real Kafka-API broker on loopback, started per test run.
//!
//! Tests that need Kafka call [`Broker::start`]. With `KAFKA_BROKERS` set, they use that
//! cluster; otherwise they start `tansu` (installed by `scripts/broker.sh install`) on a
//! free loopback port with durable sqlite storage in a temporary directory, wait until it
//! answers a metadata request, and stop it when the handle drops. Never a fake.

pub mod broker;
pub mod http;
pub mod lake_files;
pub mod topic;

pub use broker::{Broker, ChildGuard};
