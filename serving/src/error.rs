//! Errors of the serving layer.

/// What failed in the serving layer, with the input that made it fail.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// A Kafka client could not be created or an operation failed.
    #[error("kafka ({brokers}): {what}: {source}")]
    Kafka {
        brokers: String,
        what: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
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
    /// A `key=value` client option was malformed.
    #[error("kafka option `{0}` is not of the form key=value")]
    BadOption(String),
}
