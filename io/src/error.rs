//! Errors of the plumbing: the object store, Parquet files, the published manifest and the
//! Kafka clients, each naming the location, file or cluster it concerns.

/// What failed while talking to the lake or to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The lake (or views) location could not be understood.
    #[error("lake location `{url}`: {reason}")]
    Location { url: String, reason: String },
    /// An object store operation failed.
    #[error("object store: {what} `{path}`: {source}")]
    Store {
        what: &'static str,
        path: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// A Parquet file could not be written or read.
    #[error("parquet file `{path}`: {source}")]
    Parquet {
        path: String,
        #[source]
        source: Box<parquet::errors::ParquetError>,
    },
    /// A views file does not hold the views schema of its metric.
    #[error("views file `{path}`: {source}")]
    Views {
        path: String,
        #[source]
        source: shared_logic::LogicError,
    },
    /// A Delta table operation failed.
    #[error("table `{table}`: {what}: {source}")]
    Table {
        table: String,
        what: &'static str,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// A commit lost to a concurrent one (or the table is not what this version writes).
    #[error("table `{table}`: {reason}")]
    TableConflict { table: String, reason: String },
    /// A file's partition is not one the table has (a bug of the writer, never retried).
    #[error("table `{table}`: wrong partition: {reason}")]
    Partition { table: String, reason: String },
    /// The published manifest is unreadable.
    #[error("manifest `{path}` is unreadable: {reason}")]
    Manifest { path: String, reason: String },
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

impl IoError {
    /// Maps a Delta error of operation `what` on the table at `location`.
    pub fn table(
        location: &crate::Lake,
        what: &'static str,
    ) -> impl FnOnce(deltalake::DeltaTableError) -> IoError {
        let table = location.display();
        move |source| IoError::Table {
            table,
            what,
            source: Box::new(source),
        }
    }

    /// Maps an object store error of operation `what` on `path`.
    pub fn store(
        what: &'static str,
        path: impl ToString,
    ) -> impl FnOnce(object_store::Error) -> IoError {
        let path = path.to_string();
        move |source| IoError::Store {
            what,
            path,
            source: Box::new(source),
        }
    }

    /// Maps a Parquet error of the file `path`.
    pub fn parquet(path: impl ToString) -> impl FnOnce(parquet::errors::ParquetError) -> IoError {
        let path = path.to_string();
        move |source| IoError::Parquet {
            path,
            source: Box::new(source),
        }
    }

    /// Maps a Kafka error of operation `what` against `brokers`.
    pub fn kafka(
        brokers: impl ToString,
        what: impl ToString,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> IoError {
        let (brokers, what) = (brokers.to_string(), what.to_string());
        move |source| IoError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    }
}
