//! The change-stream consumer of `lambda speed --cdc`: keeps the instance's `orders` and
//! `daily_sales` views ([`crate::orders::OrderStreams`], inside [`RealtimeViews`]).
//!
//! - The dimension topics (products, users) are read whole by every instance: all
//!   partitions assigned from the beginning, outside any consumer group, by one consumer.
//! - The orders topic is read in the consumer group `<group>-orders`, so instances split
//!   its partitions. A partition assigned to an instance is read from its beginning (the
//!   topic's retention), whatever the group committed, so its state is rebuilt exactly
//!   whichever instance held it before; a revoked partition's state is dropped. The group
//!   commits its positions every few seconds only so that the group watchdog
//!   ([`GroupMember`]) sees it progress: a partition left unread past the bound makes the
//!   instance leave the group, drop its orders state and join again.
//!
//! Records [`Change::parse`] rejects, and dimension updates of unknown keys, go to the
//! dead-letter topic with the `reason` header (the CDC reason code) and their source
//! position. Tombstones carry nothing and are skipped.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lambda_io::kafka::{ClientRole, EventProducer, KafkaSettings};
use lambda_io::kafka::{ConsumeBackoff, GroupMember};
use lambda_io::IoError;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use shared_logic::cdc::{CdcRejection, CdcTable, Change};

use crate::error::SpeedError;
use crate::orders::ChangeOutcome;
use crate::views::RealtimeViews;

/// Topics and group of the change-stream consumer.
#[derive(Debug, Clone)]
pub struct CdcOptions {
    pub orders_topic: String,
    pub products_topic: String,
    pub users_topic: String,
    /// The speed layer's group; orders are consumed in `<group>-orders`.
    pub group_id: String,
    pub dead_letter_topic: String,
    /// The batch layer's views: at start, order changes behind the `orders` boundary
    /// (minus `retain_covered`) are not held, so a replay of the topic's retention holds
    /// only what the speed layer answers. Later the events consumer evicts as it goes.
    pub batch_views: Option<lambda_io::Lake>,
    pub retain_covered: Duration,
}

/// How often the orders group commits its positions (for the watchdog only).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The running change-stream consumer.
pub struct CdcConsumer {
    /// Reads the products and users topics whole.
    dimensions: StreamConsumer,
    orders: GroupMember,
    dead_letters: EventProducer,
    views: RealtimeViews,
    opts: CdcOptions,
    brokers: String,
}

impl CdcConsumer {
    /// Assigns every partition of the products and users topics and joins the orders
    /// group. The orders and products topics must exist; the users topic is created (one
    /// partition) when it does not, so a deployment without it keeps running (every
    /// buyer's country and age group `unknown`) until its connector starts.
    pub async fn new(
        views: RealtimeViews,
        kafka: &KafkaSettings,
        opts: CdcOptions,
    ) -> Result<Self, SpeedError> {
        let brokers = kafka.brokers.clone();
        if let Some(views_lake) = &opts.batch_views {
            match lambda_io::manifest::Published::load(views_lake).await {
                Ok(published) => {
                    let keep = crate::consumer::keep_ms(&views, opts.retain_covered);
                    if let Some(t) = crate::consumer::eviction_horizon(&published, keep, |m| {
                        shared_logic::MetricId::is_built_from(
                            m,
                            shared_logic::metric::BuiltFrom::OrderChanges,
                        )
                    }) {
                        views.update_orders(|o| o.evict_before(t));
                        tracing::info!(
                            horizon_ms = t,
                            "order changes before the horizon are not held"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the batch manifest; every order change is held until the first eviction")
                }
            }
        }
        lambda_io::kafka::ensure_topics(
            kafka,
            &[(&opts.dead_letter_topic, 1), (&opts.users_topic, 1)],
            Duration::from_secs(30),
        )
        .await?;
        let common = [
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", "20"),
            ("topic.metadata.refresh.interval.ms", "5000"),
        ];
        let dimensions_group = format!("{}-products", opts.group_id);
        let dimensions: StreamConsumer = kafka
            .client_config(
                ClientRole::Consumer,
                &[
                    common.as_slice(),
                    &[("group.id", dimensions_group.as_str())],
                ]
                .concat(),
            )
            .create()
            .map_err(IoError::kafka(&brokers, "create the dimensions consumer"))?;
        let mut assignment = TopicPartitionList::new();
        let mut partitions = 0;
        for topic in [&opts.products_topic, &opts.users_topic] {
            for p in lambda_io::kafka::partitions_of(
                &dimensions,
                topic,
                &brokers,
                Duration::from_secs(30),
            )? {
                assignment
                    .add_partition_offset(topic, p, Offset::Beginning)
                    .map_err(IoError::kafka(&brokers, "assign the dimension topics"))?;
                partitions += 1;
            }
        }
        dimensions
            .assign(&assignment)
            .map_err(IoError::kafka(&brokers, "assign the dimension topics"))?;
        let orders_group = format!("{}-orders", opts.group_id);
        let orders = GroupMember::join_from_beginning(
            kafka.client_config(
                ClientRole::Consumer,
                &[common.as_slice(), &[("group.id", orders_group.as_str())]].concat(),
            ),
            std::slice::from_ref(&opts.orders_topic),
            PROGRESS_EVERY,
        )?;
        tracing::info!(products = %opts.products_topic, users = %opts.users_topic, partitions, orders = %opts.orders_topic, group = %orders_group, "change streams consumer started");
        Ok(CdcConsumer {
            dimensions,
            orders,
            dead_letters: EventProducer::new(kafka, &opts.dead_letter_topic)?,
            views,
            opts,
            brokers,
        })
    }

    /// Consumes the three topics until `shutdown` resolves.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), SpeedError> {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut backoff = ConsumeBackoff::default();
        let mut last_progress = Instant::now();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    self.drop_revoked();
                    self.dead_letters.flush(Duration::from_secs(30))?;
                    if last_progress.elapsed() >= PROGRESS_EVERY {
                        last_progress = Instant::now();
                        self.commit_progress();
                    }
                    if self.stuck_group_left(&mut shutdown).await? {
                        break;
                    }
                }
                m = self.dimensions.recv() => match m {
                    Ok(m) => {
                        backoff.reset();
                        self.dimension_record(&m)?;
                    }
                    Err(e) => backoff.wait(&self.brokers, &e).await,
                },
                m = self.orders.consumer().recv() => match m {
                    Ok(m) => {
                        backoff.reset();
                        self.drop_revoked();
                        self.order_record(&m)?;
                    }
                    Err(e) => backoff.wait(&self.brokers, &e).await,
                },
            }
        }
        self.dead_letters.flush(Duration::from_secs(30))?;
        tracing::info!(counters = ?self.views.order_counters(), "change streams consumer stopped");
        Ok(())
    }

    /// Commits the orders consumer's positions (without waiting): they tell the group
    /// watchdog how far the group got; reading always starts at a partition's beginning.
    fn commit_progress(&self) {
        if let Err(e) = self
            .orders
            .consumer()
            .commit_consumer_state(CommitMode::Async)
        {
            // Nothing read yet, or a rebalance in progress: the next tick tries again.
            tracing::debug!(error = %e, "orders positions not committed");
        }
    }

    /// When the orders group has left a partition unread past the watchdog's bound: leaves
    /// the group, drops the orders state this instance held and joins again. True when
    /// `shutdown` came while it waited to join.
    async fn stuck_group_left<F: std::future::Future<Output = ()>>(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut F>,
    ) -> Result<bool, SpeedError> {
        let Ok(held) = self.orders.assigned() else {
            return Ok(false);
        };
        if !self.orders.stalled(&held).await {
            return Ok(false);
        }
        self.orders.leave().await?;
        self.revoke(&held.iter().map(|(_, p)| *p).collect());
        Ok(self.orders.rejoin(shutdown).await?)
    }

    /// Drops the state of orders partitions this instance no longer holds.
    fn drop_revoked(&self) {
        let revoked: BTreeSet<i32> = self
            .orders
            .consumer()
            .context()
            .take_revoked()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        self.revoke(&revoked);
    }

    fn revoke(&self, revoked: &BTreeSet<i32>) {
        if revoked.is_empty() {
            return;
        }
        self.views.update_orders(|o| {
            for p in revoked {
                o.revoke(*p);
            }
        });
        tracing::info!(
            ?revoked,
            "orders partitions revoked: their state goes, the new owner rebuilds it"
        );
    }

    /// A record of the products or the users topic.
    fn dimension_record(&self, m: &BorrowedMessage<'_>) -> Result<(), SpeedError> {
        let (table, topic) = if m.topic() == self.opts.users_topic {
            (CdcTable::Users, &self.opts.users_topic)
        } else {
            (CdcTable::Products, &self.opts.products_topic)
        };
        let change = match Change::parse_at(table, m.payload().unwrap_or_default(), record_clock(m))
        {
            Ok(Some(change)) => change,
            Ok(None) => return Ok(()),
            Err(rejection) => {
                self.views.update_orders(|o| o.counters.rejected += 1);
                return self.dead_letter(m, topic, &rejection);
            }
        };
        let ctx = &self.views.ctx;
        let outcome = self.views.update_orders(|o| match table {
            CdcTable::Users => o.apply_user(&change, ctx),
            _ => o.apply_product(&change, ctx),
        });
        match outcome {
            ChangeOutcome::Rejected(rejection) => self.dead_letter(m, topic, &rejection),
            _ => Ok(()),
        }
    }

    fn order_record(&self, m: &BorrowedMessage<'_>) -> Result<(), SpeedError> {
        let change = match Change::parse_at(
            CdcTable::Orders,
            m.payload().unwrap_or_default(),
            record_clock(m),
        ) {
            Ok(Some(change)) => change,
            Ok(None) => return Ok(()),
            Err(rejection) => {
                self.views.update_orders(|o| o.counters.rejected += 1);
                return self.dead_letter(m, &self.opts.orders_topic, &rejection);
            }
        };
        let ctx = &self.views.ctx;
        let (p, o) = (m.partition(), m.offset());
        if let ChangeOutcome::Rejected(rejection) = self
            .views
            .update_orders(|s| s.apply_order(p, o, change, ctx))
        {
            return self.dead_letter(m, &self.opts.orders_topic, &rejection);
        }
        Ok(())
    }

    fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        topic: &str,
        rejection: &CdcRejection,
    ) -> Result<(), SpeedError> {
        let (p, o) = (m.partition().to_string(), m.offset().to_string());
        tracing::debug!(topic, partition = %p, offset = %o, reason = rejection.reason.code(), "change record dead-lettered");
        self.dead_letters.send_with_headers(
            m.key().unwrap_or_default(),
            m.payload().unwrap_or_default(),
            &[
                ("reason", rejection.reason.code()),
                ("message", &rejection.message),
                ("source_topic", topic),
                ("source_partition", &p),
                ("source_offset", &o),
            ],
        )?;
        Ok(())
    }
}

/// The clock a change record is checked against: its Kafka timestamp, as the lake writer
/// checks it ([`Change::parse_at`]), so both layers reject the same records.
fn record_clock(m: &BorrowedMessage<'_>) -> i64 {
    lambda_io::kafka::validation_clock(lambda_io::kafka::record_time(m.timestamp()))
}
