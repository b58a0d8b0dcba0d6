//! The speed layer's membership of its consumer group: the member (a consumer subscribed
//! to the topic), and the watchdog's way out of a group the broker leaves stuck
//! (`lambda_io::kafka::group_watchdog`): look at the group's progress every few seconds,
//! and leave and join again as a new member when a partition stalls.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_io::kafka::group_watchdog::group_progress;
use lambda_io::kafka::{GroupWatchdog, KafkaSettings, RebalanceTracker};
use lambda_io::IoError;
use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::error::SpeedError;

/// How often the member looks at the group's progress.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// One member of the speed layer's consumer group.
pub struct GroupMember {
    consumer: Arc<StreamConsumer<RebalanceTracker>>,
    kafka: KafkaSettings,
    group_id: String,
    topic: String,
    watchdog: GroupWatchdog,
    last_watch: Instant,
}

impl GroupMember {
    /// Joins `group_id` on `topic`.
    pub fn join(kafka: &KafkaSettings, group_id: &str, topic: &str) -> Result<Self, SpeedError> {
        let member = GroupMember {
            consumer: Arc::new(new_consumer(kafka, group_id)?),
            kafka: kafka.clone(),
            group_id: group_id.to_string(),
            topic: topic.to_string(),
            watchdog: GroupWatchdog::for_session_timeout(kafka.session_timeout()),
            last_watch: Instant::now(),
        };
        member.subscribe()?;
        Ok(member)
    }

    /// The consumer.
    pub fn consumer(&self) -> &Arc<StreamConsumer<RebalanceTracker>> {
        &self.consumer
    }

    fn subscribe(&self) -> Result<(), SpeedError> {
        self.consumer
            .subscribe(&[&self.topic])
            .map_err(IoError::kafka(&self.kafka.brokers, "subscribe"))?;
        Ok(())
    }

    /// Whether the group has left a partition this member does not hold (`held`) unread
    /// for longer than the watchdog's bound; looks at most every few seconds.
    pub async fn stalled(&mut self, held: &BTreeSet<i32>) -> bool {
        if self.last_watch.elapsed() < WATCH_EVERY {
            return false;
        }
        self.last_watch = Instant::now();
        let consumer = self.consumer.clone();
        let (topic, brokers) = (self.topic.clone(), self.kafka.brokers.clone());
        let progress = tokio::task::spawn_blocking(move || {
            group_progress(&*consumer, &topic, &brokers, Duration::from_secs(5))
        })
        .await;
        let progress = match progress {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "group progress unknown; the watchdog waits");
                return false;
            }
            Err(_) => return false,
        };
        let stalled = self.watchdog.observe(Instant::now(), held, &progress);
        if stalled.is_empty() {
            return false;
        }
        tracing::warn!(
            partitions = ?stalled,
            held = ?held,
            bound_s = self.watchdog.stall().as_secs(),
            "the group has left partitions unread past the bound; leaving it and joining again"
        );
        true
    }

    /// Leaves the group: the member is closed (LeaveGroup: the broker drops it at once) and
    /// a new, unsubscribed one takes its place. The caller drops what it held.
    pub async fn leave(&mut self) -> Result<(), SpeedError> {
        let fresh = Arc::new(new_consumer(&self.kafka, &self.group_id)?);
        let old = std::mem::replace(&mut self.consumer, fresh);
        // Closing may block for a while.
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        Ok(())
    }

    /// Joins again after one session timeout, so that members the broker still counts but
    /// that are gone have expired. True when `shutdown` came first (not joined).
    pub async fn rejoin(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<bool, SpeedError> {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(true),
            _ = tokio::time::sleep(self.kafka.session_timeout()) => {}
        }
        self.subscribe()?;
        self.watchdog.reset();
        Ok(false)
    }
}

/// A consumer in `group_id`, not yet subscribed.
fn new_consumer(
    kafka: &KafkaSettings,
    group_id: &str,
) -> Result<StreamConsumer<RebalanceTracker>, SpeedError> {
    Ok(kafka
        .client_config(&[
            ("group.id", group_id),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "20"),
            // Notice a topic created after the subscription within seconds.
            ("topic.metadata.refresh.interval.ms", "5000"),
            ("queued.min.messages", "200000"),
            // Per-partition lag for the serving layer's metrics.
            ("statistics.interval.ms", "5000"),
        ])
        .create_with_context(RebalanceTracker::default())
        .map_err(IoError::kafka(&kafka.brokers, "create consumer"))?)
}
