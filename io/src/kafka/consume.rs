//! What every consumer loop shares: the wait after a consume error ([`ConsumeBackoff`]) and
//! the record of partitions a rebalance took away, with the client's lag
//! ([`RebalanceTracker`], which can also start every assigned partition at its beginning).
//! Used by the lake writer, the speed layer and its change-stream consumer.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

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
/// With `statistics.interval.ms` set, it also keeps the client's per-partition lag and
/// the ends of the partitions it fetches.
#[derive(Default)]
pub struct RebalanceTracker {
    revoked: Mutex<Vec<(String, i32)>>,
    lag: Mutex<std::collections::BTreeMap<i32, i64>>,
    ends: Mutex<std::collections::BTreeMap<(String, i32), i64>>,
    from_beginning: bool,
}

impl RebalanceTracker {
    /// A tracker whose consumer reads every partition it is assigned from the partition's
    /// start, whatever offset the group committed.
    pub fn reading_from_beginning() -> Self {
        RebalanceTracker {
            from_beginning: true,
            ..RebalanceTracker::default()
        }
    }

    /// (topic, partition) revoked since the last call.
    pub fn take_revoked(&self) -> Vec<(String, i32)> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Partition → records behind the end (summed over the topics), from the client's
    /// latest statistics (only partitions whose lag the client knows).
    pub fn lag(&self) -> std::collections::BTreeMap<i32, i64> {
        self.lag.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// (topic, partition) → the partition's end (high watermark) as the client last
    /// fetched it, from its latest statistics (only partitions whose end it knows).
    pub fn ends(&self) -> std::collections::BTreeMap<(String, i32), i64> {
        self.ends.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl ClientContext for RebalanceTracker {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut lag = std::collections::BTreeMap::new();
        let mut ends = std::collections::BTreeMap::new();
        for (topic, t) in &statistics.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                if p.consumer_lag >= 0 {
                    *lag.entry(p.partition).or_insert(0) += p.consumer_lag;
                }
                if p.hi_offset >= 0 {
                    ends.insert((topic.clone(), p.partition), p.hi_offset);
                }
            }
        }
        if let Ok(mut l) = self.lag.lock() {
            *l = lag;
        }
        if let Ok(mut e) = self.ends.lock() {
            *e = ends;
        }
    }
}

impl ConsumerContext for RebalanceTracker {
    /// librdkafka's rebalance with the safe API, and, for a tracker
    /// [reading from the beginning](RebalanceTracker::reading_from_beginning), every
    /// assigned partition's start offset set to its beginning before it is assigned.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign && self.from_beginning {
            if let Err(e) = tpl.set_all_offsets(Offset::Beginning) {
                tracing::warn!(error = %e, "cannot start the assigned partitions at their beginning");
            }
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => Rebalance::Error(rdkafka::error::KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let done = match (assign, cooperative) {
            (true, true) => consumer.incremental_assign(tpl),
            (true, false) => consumer.assign(tpl),
            (false, true) => consumer.incremental_unassign(tpl),
            (false, false) => consumer.unassign(),
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, assign, "the rebalance's (un)assignment failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            if let Ok(mut revoked) = self.revoked.lock() {
                revoked.extend(
                    list.elements()
                        .iter()
                        .map(|e| (e.topic().to_string(), e.partition())),
                );
            }
        }
    }
}
