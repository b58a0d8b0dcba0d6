//! Kafka plumbing shared by every layer: client settings and topics ([`client`]), which
//! properties each kind of client takes ([`client_role`]), the event
//! producer ([`producer`]), the consumer loops' backoff and rebalance tracking
//! ([`consume`]), the bound on how long a group may leave a partition unread
//! ([`group_watchdog`]) and the group member that keeps it ([`group_member`]), reading a topic to its end ([`drain`]), the clock records are
//! judged by ([`record_time`]), the local development broker ([`local_broker`]) and its
//! store ([`tansu_store`]).

pub mod client;
pub mod client_role;
pub mod consume;
pub mod drain;
pub mod group_member;
pub mod group_watchdog;
pub mod local_broker;
pub mod producer;
pub mod record_meta;
pub mod record_time;
pub mod tansu_store;

pub use client::{end_offsets, ensure_topics, partitions_of, KafkaSettings};
pub use client_role::ClientRole;
pub use consume::{ConsumeBackoff, RebalanceTracker};
pub use group_member::{GroupMember, MemberConsumer};
pub use group_watchdog::{GroupWatchdog, TopicPartition};
pub use producer::{DeliveryReport, EventProducer, PRODUCER_DEFAULTS};
pub use record_meta::source_header;
pub use record_time::{record_time, validation_clock};
