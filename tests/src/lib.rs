//! Cross-layer test support: the real Kafka-API broker on loopback, started per test run.
//!
//! Tests that need Kafka call [`Broker::start`]. With `KAFKA_BROKERS` set, they use that
//! cluster; otherwise they start `tansu` (installed by `scripts/broker.sh install`) on a
//! free loopback port with durable sqlite storage in a temporary directory, wait until it
//! answers a metadata request, and stop it when the handle drops. Never a fake.

pub mod bin;
pub mod broker;
pub mod data;
pub mod faults;
pub mod grafana;
pub mod http;
pub mod lake_files;
pub mod pipeline;
pub mod published;
pub mod serving;
pub mod speed_instance;
pub mod sql;
pub mod tls;
pub mod topic;

pub use broker::{Broker, ChildGuard};

/// Waits (polling every 50 ms) until `done` holds; fails the test after `timeout`. Tests
/// wait on conditions, never on sleeps.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// [`wait_for`] for async tests: polls `done` every 50 ms without blocking the runtime.
pub async fn wait_until(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
