//! Which librdkafka properties belong to which kind of client.
//!
//! `--kafka-option` takes any librdkafka property and every client of a process gets the
//! same list; librdkafka warns (`CONFWARN`) at every start when a producer is given a
//! consumer property (`session.timeout.ms`) or a consumer a producer one (`acks`). Each
//! client keeps only the properties of its own kind: the lists below are librdkafka's own
//! (`CONFIGURATION.md` of librdkafka 2.12, column `C/P`); a property in neither list
//! (`*`: TLS, SASL, timeouts, `client.id`, anything unknown) goes to every client, so
//! librdkafka still refuses a misspelt one with its reason.

/// The kind of a librdkafka client handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRole {
    /// A producer (the collector, dead-letter and late producers).
    Producer,
    /// A consumer (speed layer, lake writer, topic readers).
    Consumer,
    /// An admin client (topic creation and configuration); librdkafka runs it on a producer
    /// handle, so it takes a producer's properties.
    Admin,
}

/// librdkafka properties that only consumers take (`C`).
const CONSUMER_ONLY: &[&str] = &[
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "check.crcs",
    "consume.callback.max.messages",
    "consume_cb",
    "coordinator.query.interval.ms",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "offset_commit_cb",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "rebalance_cb",
    "session.timeout.ms",
];

/// librdkafka properties that only producers take (`P`).
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "dr_cb",
    "dr_msg_cb",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "msg_order_cmp",
    "partitioner",
    "partitioner_cb",
    "produce.offset.report",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queuing.strategy",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

impl ClientRole {
    /// Whether a client of this kind takes librdkafka property `key`.
    pub fn takes(self, key: &str) -> bool {
        match self {
            ClientRole::Consumer => !PRODUCER_ONLY.contains(&key),
            ClientRole::Producer | ClientRole::Admin => !CONSUMER_ONLY.contains(&key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_own_and_the_common_properties() {
        assert!(!ClientRole::Producer.takes("session.timeout.ms"));
        assert!(!ClientRole::Admin.takes("group.id"));
        assert!(ClientRole::Consumer.takes("session.timeout.ms"));
        assert!(!ClientRole::Consumer.takes("linger.ms"));
        assert!(ClientRole::Producer.takes("linger.ms"));
        for role in [
            ClientRole::Producer,
            ClientRole::Consumer,
            ClientRole::Admin,
        ] {
            assert!(role.takes("security.protocol"));
            assert!(role.takes("sasl.password"));
            assert!(
                role.takes("no.such.property"),
                "unknown ones reach librdkafka"
            );
        }
    }

    #[test]
    fn no_property_is_in_both_lists() {
        for key in CONSUMER_ONLY {
            assert!(!PRODUCER_ONLY.contains(key), "{key}");
        }
    }
}
