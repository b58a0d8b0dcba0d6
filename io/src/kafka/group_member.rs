//! One member of a consumer group, with the group watchdog's way out of a group the broker
//! leaves stuck ([`crate::kafka::group_watchdog`]): in the background, every few seconds,
//! it reads the group's committed offsets and the partitions' ends; the consumer loop asks
//! [`GroupMember::stalled`] (which never waits on the broker) and, when a partition it does
//! not hold has stalled, leaves and joins again as a new member. Used by the speed layer,
//! the lake writer and the speed layer's change-stream consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};

use crate::error::IoError;
use crate::kafka::client::session_timeout;
use crate::kafka::consume::RebalanceTracker;
use crate::kafka::group_watchdog::{
    group_progress, GroupWatchdog, PartitionProgress, TopicPartition,
};

/// How often the member looks at the group's progress.
const WATCH_EVERY: Duration = Duration::from_secs(5);
/// How long one look may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The consumer of a [`GroupMember`].
pub type MemberConsumer = StreamConsumer<RebalanceTracker>;

type Probe = tokio::task::JoinHandle<Result<BTreeMap<TopicPartition, PartitionProgress>, IoError>>;

/// One member of a consumer group subscribed to one or more topics.
pub struct GroupMember {
    consumer: Arc<MemberConsumer>,
    config: ClientConfig,
    topics: Vec<String>,
    brokers: String,
    session: Duration,
    from_beginning: bool,
    watchdog: GroupWatchdog,
    probe: Option<Probe>,
    last_probe: Instant,
}

impl GroupMember {
    /// Joins the group of `config` (`group.id`, with the consumer's other properties) on
    /// `topics`. The group commits its position at least every `commit_every` while it reads
    /// (the watchdog waits that long on top of the broker's own recovery).
    pub fn join(
        config: ClientConfig,
        topics: &[String],
        commit_every: Duration,
    ) -> Result<Self, IoError> {
        GroupMember::start(config, topics, commit_every, false)
    }

    /// [`GroupMember::join`] for a consumer that reads every partition it is assigned from
    /// the partition's start, whatever the group committed (its commits only tell the
    /// watchdog how far it got).
    pub fn join_from_beginning(
        config: ClientConfig,
        topics: &[String],
        commit_every: Duration,
    ) -> Result<Self, IoError> {
        GroupMember::start(config, topics, commit_every, true)
    }

    fn start(
        config: ClientConfig,
        topics: &[String],
        commit_every: Duration,
        from_beginning: bool,
    ) -> Result<Self, IoError> {
        let brokers = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_string();
        let session = session_timeout(config.get("session.timeout.ms"));
        let member = GroupMember {
            consumer: Arc::new(new_consumer(&config, &brokers, from_beginning)?),
            config,
            topics: topics.to_vec(),
            brokers,
            session,
            from_beginning,
            watchdog: GroupWatchdog::for_group(session, commit_every),
            probe: None,
            last_probe: Instant::now(),
        };
        member.subscribe()?;
        Ok(member)
    }

    /// The consumer.
    pub fn consumer(&self) -> &Arc<MemberConsumer> {
        &self.consumer
    }

    /// The topics it is subscribed to.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The partitions the consumer is assigned now.
    pub fn assigned(&self) -> Result<BTreeSet<TopicPartition>, IoError> {
        let list = self
            .consumer
            .assignment()
            .map_err(kafka_error(&self.brokers, "read the assignment"))?;
        Ok(list
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect())
    }

    fn subscribe(&self) -> Result<(), IoError> {
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topics)
            .map_err(kafka_error(&self.brokers, "subscribe"))
    }

    /// Whether the group has left a partition this member does not hold (`held`) unread
    /// for longer than the watchdog's bound. Never waits on the broker: the group's
    /// progress is read by a background task started at most every few seconds, and this
    /// looks at its latest answer.
    pub async fn stalled(&mut self, held: &BTreeSet<TopicPartition>) -> bool {
        let progress = match self.probe.take() {
            Some(probe) if probe.is_finished() => match probe.await {
                Ok(Ok(progress)) => progress,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "group progress unknown; the watchdog waits");
                    return false;
                }
                Err(_) => return false,
            },
            Some(probe) => {
                self.probe = Some(probe);
                return false;
            }
            None => {
                if self.last_probe.elapsed() >= WATCH_EVERY {
                    self.last_probe = Instant::now();
                    let consumer = self.consumer.clone();
                    let (topics, brokers) = (self.topics.clone(), self.brokers.clone());
                    self.probe = Some(tokio::task::spawn_blocking(move || {
                        group_progress(&*consumer, &topics, &brokers, PROBE_TIMEOUT)
                    }));
                }
                return false;
            }
        };
        let stalled = self.watchdog.observe(Instant::now(), held, &progress);
        if stalled.is_empty() {
            return false;
        }
        tracing::warn!(
            topics = ?self.topics,
            group = self.config.get("group.id").unwrap_or_default(),
            partitions = ?stalled,
            held = ?held,
            bound_s = self.watchdog.stall().as_secs(),
            "the group has left partitions unread past the bound; leaving it and joining again"
        );
        true
    }

    /// Leaves the group: the member is closed (LeaveGroup: the broker drops it at once) and
    /// a new, unsubscribed one takes its place. The caller drops what it held.
    pub async fn leave(&mut self) -> Result<(), IoError> {
        let fresh = Arc::new(new_consumer(
            &self.config,
            &self.brokers,
            self.from_beginning,
        )?);
        let old = std::mem::replace(&mut self.consumer, fresh);
        // A look in flight is about the old member; closing may block for a while.
        self.probe = None;
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        Ok(())
    }

    /// Joins again after one session timeout, so that members the broker still counts but
    /// that are gone have expired. True when `shutdown` came first (not joined).
    pub async fn rejoin<F: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut F>,
    ) -> Result<bool, IoError> {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(true),
            _ = tokio::time::sleep(self.session) => {}
        }
        self.subscribe()?;
        self.watchdog.reset();
        self.last_probe = Instant::now();
        Ok(false)
    }
}

fn new_consumer(
    config: &ClientConfig,
    brokers: &str,
    from_beginning: bool,
) -> Result<MemberConsumer, IoError> {
    let context = if from_beginning {
        RebalanceTracker::reading_from_beginning()
    } else {
        RebalanceTracker::default()
    };
    config
        .create_with_context(context)
        .map_err(kafka_error(brokers, "create consumer"))
}

fn kafka_error(brokers: &str, what: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> IoError {
    let (brokers, what) = (brokers.to_string(), what.to_string());
    move |source| IoError::Kafka {
        brokers,
        what,
        source: Box::new(source),
    }
}
