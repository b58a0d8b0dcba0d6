//! Kafka plumbing for ingestion: client configuration, topic creation and the event
//! producer.
//!
//! The producer is idempotent with `acks=all`, so a retry inside librdkafka never writes a
//! record twice, and a record counts as delivered only once every in-sync replica has it.
//! Client settings from `--kafka-option key=value` pass through to librdkafka unchanged
//! (SASL, TLS, timeouts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::error::SpeedError;

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Extra librdkafka properties, applied last (they override the defaults).
    pub options: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings for `brokers` with no extra options.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            options: Vec::new(),
        }
    }

    /// Parses `key=value` options (as given to `--kafka-option`).
    pub fn with_options(mut self, options: &[String]) -> Result<Self, SpeedError> {
        for o in options {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| SpeedError::BadOption(o.clone()))?;
            if k.trim().is_empty() {
                return Err(SpeedError::BadOption(o.clone()));
            }
            self.options
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(self)
    }

    /// A client configuration: the brokers, the given defaults, then the user's options.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            cfg.set(*k, *v);
        }
        for (k, v) in &self.options {
            cfg.set(k, v);
        }
        cfg
    }

    fn error(&self, what: impl Into<String>) -> impl FnOnce(KafkaError) -> SpeedError + '_ {
        let what = what.into();
        move |source| SpeedError::Kafka {
            brokers: self.brokers.clone(),
            what,
            source: Box::new(source),
        }
    }
}

/// The partitions of `topic` (from the cluster's metadata); [`SpeedError::NoSuchTopic`]
/// when it does not exist.
pub fn partitions_of<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
    brokers: &str,
    timeout: Duration,
) -> Result<Vec<i32>, SpeedError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| SpeedError::Kafka {
            brokers: brokers.to_string(),
            what: format!("read the metadata of `{topic}`"),
            source: Box::new(source),
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(SpeedError::NoSuchTopic {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
        });
    }
    Ok(partitions)
}

/// Creates the topics that do not exist yet (existing ones are left as they are).
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[(&str, i32)],
    timeout: Duration,
) -> Result<(), SpeedError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config(&[])
        .create()
        .map_err(settings.error("create admin client"))?;
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    // One request per topic: some Kafka-API brokers (tansu 0.6) create only the first
    // topic of a multi-topic request.
    let mut results = Vec::new();
    for (name, parts) in topics {
        let new = NewTopic::new(name, *parts, TopicReplication::Fixed(1));
        results.extend(
            admin
                .create_topics([&new], &options)
                .await
                .map_err(settings.error("create topics"))?,
        );
    }
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(SpeedError::CreateTopic {
                    brokers: settings.brokers.clone(),
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Counts acknowledgements as librdkafka reports them.
#[derive(Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| err.to_string());
                }
            }
        }
    }
}

/// Acknowledged and failed records so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
}

/// Producer settings of every producer of records: idempotent with `acks=all` (no
/// duplicates from retries, nothing lost on a leader change), batched with a small linger,
/// and a deep queue.
pub const PRODUCER_DEFAULTS: [(&str, &str); 6] = [
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
];

/// A high-throughput producer of raw event records to one topic, keyed by user.
pub struct EventProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    settings: KafkaSettings,
}

impl EventProducer {
    /// Connects a producer (idempotent, `acks=all`, small linger for batching).
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, SpeedError> {
        let producer = settings
            .client_config(
                &[
                    PRODUCER_DEFAULTS.as_slice(),
                    &[("message.timeout.ms", "120000")],
                ]
                .concat(),
            )
            .create_with_context(DeliveryCounter::default())
            .map_err(settings.error("create producer"))?;
        Ok(EventProducer {
            producer,
            topic: topic.to_string(),
            settings: settings.clone(),
        })
    }

    /// Queues one record; waits while librdkafka's queue is full. Delivery is asynchronous:
    /// call [`EventProducer::flush`] to wait for acknowledgements.
    pub fn send(&self, key: &[u8], payload: &[u8]) -> Result<(), SpeedError> {
        self.send_with_headers(key, payload, &[])
    }

    /// [`EventProducer::send`] with headers (`name`, `value`), e.g. a dead letter's reason.
    pub fn send_with_headers(
        &self,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), SpeedError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (name, value) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(*value),
                });
            }
            record = record.headers(owned);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => {
                    return Err(self.settings.error(format!("produce to `{}`", self.topic))(
                        e,
                    ))
                }
            }
        }
    }

    /// Waits until every queued record is acknowledged or failed; errors if any failed.
    pub fn flush(&self, timeout: Duration) -> Result<DeliveryReport, SpeedError> {
        self.producer
            .flush(timeout)
            .map_err(self.settings.error("flush producer"))?;
        let report = self.report();
        if report.failed > 0 {
            let first_error = self
                .producer
                .context()
                .first_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_default();
            return Err(SpeedError::Undelivered {
                brokers: self.settings.brokers.clone(),
                failed: report.failed,
                first_error,
            });
        }
        Ok(report)
    }

    /// Acknowledged and failed records so far.
    pub fn report(&self) -> DeliveryReport {
        let ctx = self.producer.context();
        DeliveryReport {
            delivered: ctx.delivered.load(Ordering::Relaxed),
            failed: ctx.failed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_override_defaults() {
        let s = KafkaSettings::new("b:9092")
            .with_options(&["acks=1".into(), " security.protocol = SSL ".into()])
            .unwrap();
        let cfg = s.client_config(&[("acks", "all")]);
        assert_eq!(cfg.get("acks"), Some("1"));
        assert_eq!(cfg.get("security.protocol"), Some("SSL"));
        assert_eq!(cfg.get("bootstrap.servers"), Some("b:9092"));
    }

    #[test]
    fn malformed_options_are_refused() {
        assert!(KafkaSettings::new("b")
            .with_options(&["novalue".into()])
            .is_err());
        assert!(KafkaSettings::new("b")
            .with_options(&["=x".into()])
            .is_err());
    }
}
