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
