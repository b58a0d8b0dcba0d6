//! What every consumer loop shares: the wait after a consume error ([`ConsumeBackoff`]) and
//! the record of partitions a rebalance took away, with the client's lag
//! ([`RebalanceTracker`]). Used by the lake writer, the speed layer and its change-stream
//! consumer.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

/// The wait after a Kafka consume error: 100 ms, doubling up to 10 s; a received message
/// resets it. Shared by every consumer loop (lake writer, speed layer, change streams).
pub struct ConsumeBackoff {
    next: Duration,
}

impl Default for ConsumeBackoff {
    fn default() -> Self {
        ConsumeBackoff {
            next: Duration::from_millis(100),
        }
    }
}

impl ConsumeBackoff {
    /// A message arrived: the next error waits the shortest time again.
    pub fn reset(&mut self) {
        *self = ConsumeBackoff::default();
    }

    /// Logs the error and waits, longer each time.
    pub async fn wait(&mut self, brokers: &str, error: &rdkafka::error::KafkaError) {
        tracing::warn!(brokers = %brokers, error = %error, backoff_ms = self.next.as_millis() as u64, "kafka consume error; retrying");
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(10));
    }
}

/// Records partitions revoked by a rebalance, so that a consumer drops what it holds for
/// them (the new owner re-reads them from the committed offset). Used by the lake writer
/// and the speed layer.
/// With `statistics.interval.ms` set, it also keeps the client's per-partition lag.
#[derive(Default)]
pub struct RebalanceTracker {
    revoked: Mutex<Vec<i32>>,
    lag: Mutex<std::collections::BTreeMap<i32, i64>>,
}

impl RebalanceTracker {
    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Partition → records behind the end, from the client's latest statistics (only
    /// partitions whose lag the client knows).
    pub fn lag(&self) -> std::collections::BTreeMap<i32, i64> {
        self.lag.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl ClientContext for RebalanceTracker {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| (p.partition, p.consumer_lag))
            .collect();
        if let Ok(mut l) = self.lag.lock() {
            *l = lag;
        }
    }
}

impl ConsumerContext for RebalanceTracker {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if let Ok(mut revoked) = self.revoked.lock() {
                revoked.extend(list.elements().iter().map(|e| e.partition()));
            }
        }
    }
}
