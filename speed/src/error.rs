//! Errors of the speed layer.

/// What failed in the speed layer, with the input that made it fail.
#[derive(Debug, thiserror::Error)]
pub enum SpeedError {
    /// A Kafka client could not be created or an operation failed.
    #[error("kafka ({brokers}): {what}: {source}")]
    Kafka {
        brokers: String,
        what: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The topic does not exist on the cluster.
    #[error("kafka ({brokers}): topic `{topic}` does not exist")]
    NoSuchTopic { brokers: String, topic: String },
    /// Records were not acknowledged by the broker.
    #[error("kafka ({brokers}): {failed} record(s) not acknowledged by the broker (first error: {first_error})")]
    Undelivered {
        brokers: String,
        failed: u64,
        first_error: String,
    },
    /// The broker refused to create a topic.
    #[error("kafka ({brokers}): cannot create topic `{topic}`: {reason}")]
    CreateTopic {
        brokers: String,
        topic: String,
        reason: String,
    },
    /// The local development broker could not be started.
    #[error("local broker ({dir}): {reason}")]
    LocalBroker { dir: String, reason: String },
    /// A `key=value` client option was malformed.
    #[error("kafka option `{0}` is not of the form key=value")]
    BadOption(String),
    /// A checkpoint could not be written or restored.
    #[error("checkpoint of partition {partition}: {reason}")]
    Checkpoint { partition: i32, reason: String },
    /// Reading did not reach the end of the topic in time.
    #[error("kafka ({brokers}): read {read} of {expected} records of `{topic}` before the {timeout_s} s timeout")]
    Timeout {
        brokers: String,
        topic: String,
        read: u64,
        expected: u64,
        timeout_s: u64,
    },
}
