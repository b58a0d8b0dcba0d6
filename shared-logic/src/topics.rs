//! Default names of the Kafka topics the layers share, so that producers and consumers
//! agree without configuration.

/// Validated and not-yet-validated events, as JSON, keyed by `user_id`.
pub const EVENTS: &str = "events";
/// Rejected records: the raw bytes, with the reason code in the `reason` header.
pub const DEAD_LETTER: &str = "events-dead-letter";
/// Events the speed layer received after their window closed (side-output policy).
pub const LATE: &str = "events-late";
/// Environment variable naming a real Kafka cluster (`host:port,host:port`).
pub const BROKERS_ENV: &str = "KAFKA_BROKERS";
/// Brokers used when nothing else is configured: the local broker the scripts start.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
