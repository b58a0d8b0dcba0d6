//! The event producer: idempotent with `acks=all`, so a retry inside librdkafka never
//! writes a record twice, and a record counts as delivered only once every in-sync replica
//! has it. Deliveries are counted as librdkafka reports them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::error::IoError;
use crate::kafka::client::{ClientRole, KafkaSettings};

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
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self, IoError> {
        let producer = settings
            .client_config(
                ClientRole::Producer,
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
    pub fn send(&self, key: &[u8], payload: &[u8]) -> Result<(), IoError> {
        self.send_with_headers(key, payload, &[])
    }

    /// [`EventProducer::send`] with headers (`name`, `value`), e.g. a dead letter's reason.
    pub fn send_with_headers(
        &self,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), IoError> {
        self.send_at(key, payload, headers, None)
    }

    /// [`EventProducer::send_with_headers`] with the record's timestamp (epoch ms; `None`:
    /// librdkafka stamps the time it is produced), as a producer whose clock says
    /// `timestamp_ms` stamps it.
    pub fn send_at(
        &self,
        key: &[u8],
        payload: &[u8],
        headers: &[(&str, &str)],
        timestamp_ms: Option<i64>,
    ) -> Result<(), IoError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        if let Some(t) = timestamp_ms {
            record = record.timestamp(t);
        }
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
    pub fn flush(&self, timeout: Duration) -> Result<DeliveryReport, IoError> {
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
            return Err(IoError::Undelivered {
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
