//! The event collector behind `POST /v1/events`.
//!
//! A body is a JSON array of events or NDJSON (one event per line). Every event is
//! validated with `shared-logic`'s [`Validator`]; valid ones go to the events topic keyed
//! by `user_id` (so a user's events share a partition), invalid ones to the dead-letter
//! topic with their reason in headers. With [`CollectorOptions::per_event_type`] a valid
//! event goes to its type's topic instead (`events.page_view`, ...: one topic per event
//! family, as the design has it), still keyed by `user_id`; those topics are created with
//! one partition count, so partition `p` of each carries the same users. The producer is idempotent with `acks=all`, and the
//! answer waits for the broker: **accepted means acknowledged**. When any record of a
//! request is not acknowledged within the delivery timeout the answer is 503 and the
//! client retries the whole request; the records that did land are counted once because
//! both layers deduplicate by `event_id`.

use std::time::Duration;

use lambda_io::kafka::KafkaSettings;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use serde_json::value::RawValue;
use shared_logic::{Origin, RecordMeta, Validator};

use crate::error::ServingError;
use crate::rate_limit::{Client, RateLimit, RateLimiter};

/// Most records one request may carry. Each record costs a Kafka record (a dead letter
/// when invalid) and a line of the answer before the answer: a body of 100,000 tiny invalid
/// records took seconds and a flood of dead letters; past this the request is refused whole.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// How the collector runs.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    pub topic: String,
    /// Route each valid event to `<topic>.<event_type>`
    /// ([`shared_logic::topics::of_event_type`]) instead of `topic`.
    pub per_event_type: bool,
    pub dead_letter_topic: String,
    pub validator: Validator,
    /// How long a record may wait for the broker's acknowledgement.
    pub delivery_timeout: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests per client (ingest token or address) and second; see [`RateLimit`].
    pub rate_limit: RateLimit,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            topic: shared_logic::topics::EVENTS.into(),
            per_event_type: false,
            dead_letter_topic: shared_logic::topics::DEAD_LETTER.into(),
            validator: Validator::default(),
            delivery_timeout: Duration::from_secs(10),
            max_body_bytes: 5 * 1024 * 1024,
            rate_limit: RateLimit::default(),
        }
    }
}

/// One rejected event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// 1-based line of an NDJSON body, or position in a JSON array.
    pub line: usize,
    /// The stable reason code (`missing_field`, `future_event_time`, …).
    pub reason: &'static str,
    pub message: String,
}

/// The answer to an accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Valid events acknowledged by the broker.
    pub accepted: usize,
    /// Invalid events (written to the dead-letter topic).
    pub rejected: usize,
    pub errors: Vec<Rejected>,
}

/// The collector: a validator and an idempotent producer.
pub struct Collector {
    producer: FutureProducer,
    opts: CollectorOptions,
    /// The topic of each event type (in [`shared_logic::EventType::ALL`] order).
    routes: [String; 3],
    brokers: String,
    limiter: RateLimiter,
}

impl Collector {
    /// Prepares the producer (it connects lazily, so a broker that is down now is not an
    /// error here; requests answer 503 until it is back).
    pub fn new(kafka: &KafkaSettings, opts: CollectorOptions) -> Result<Self, ServingError> {
        let timeout = opts.delivery_timeout.as_millis().max(1).to_string();
        let producer: FutureProducer = kafka
            .client_config(
                lambda_io::kafka::ClientRole::Producer,
                &[
                    lambda_io::kafka::PRODUCER_DEFAULTS.as_slice(),
                    &[
                        ("message.timeout.ms", timeout.as_str()),
                        // Notice a broker that is back soon after an outage.
                        ("reconnect.backoff.max.ms", "1000"),
                    ],
                ]
                .concat(),
            )
            .create()
            .map_err(|e| {
                ServingError::Internal(format!("Kafka producer for {}: {e}", kafka.brokers))
            })?;
        let routes = shared_logic::EventType::ALL.map(|t| {
            if opts.per_event_type {
                shared_logic::topics::of_event_type(&opts.topic, t)
            } else {
                opts.topic.clone()
            }
        });
        Ok(Collector {
            producer,
            routes,
            limiter: RateLimiter::new(opts.rate_limit),
            opts,
            brokers: kafka.brokers.clone(),
        })
    }

    /// The options the collector runs with.
    pub fn options(&self) -> &CollectorOptions {
        &self.opts
    }

    /// The topics valid events go to (one, or one per event type).
    pub fn event_topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.routes.iter().map(String::as_str).collect();
        topics.dedup();
        topics
    }

    fn route(&self, event_type: shared_logic::EventType) -> &str {
        let i = shared_logic::EventType::ALL
            .iter()
            .position(|t| *t == event_type)
            .unwrap_or(0);
        &self.routes[i]
    }

    /// Counts a request of `client` against its rate: a 429 with the seconds to wait (at
    /// least 1, as `Retry-After` counts whole seconds) when it is over.
    pub fn admit(&self, client: &Client) -> Result<(), ServingError> {
        self.limiter
            .admit(client, std::time::Instant::now())
            .map_err(|wait| ServingError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
    }

    /// Validates and produces the events of one request body.
    pub async fn ingest(&self, body: &[u8]) -> Result<IngestReport, ServingError> {
        self.ingest_from(body, None).await
    }

    /// [`Collector::ingest`] of a request naming its source (the value of its
    /// `X-Lambda-Source` header): every record is produced with it as its
    /// [`shared_logic::source::SOURCE_HEADER`], which wins over a record's own `source`
    /// field. A value that is not a source name refuses the request.
    pub async fn ingest_from(
        &self,
        body: &[u8],
        source: Option<&[u8]>,
    ) -> Result<IngestReport, ServingError> {
        let source = match source.map(shared_logic::source::from_header) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(name))) => Some(name),
            Some(Err(why)) => {
                return Err(ServingError::bad(
                    "bad_source",
                    format!("the X-Lambda-Source header: {why}"),
                ))
            }
        };
        if body.len() > self.opts.max_body_bytes {
            return Err(ServingError::TooLarge {
                limit: self.opts.max_body_bytes,
            });
        }
        let records = split_records(body)?;
        if records.len() > MAX_RECORDS_PER_REQUEST {
            return Err(ServingError::bad(
                "too_many_events",
                format!(
                    "the request holds {} events, more than the limit of {MAX_RECORDS_PER_REQUEST}: split it",
                    records.len()
                ),
            ));
        }
        // One clock reading per request: validation's `now` and the CreateTime of every
        // record produced, so the consumers (which validate against the record's timestamp)
        // give the verdicts the collector gave.
        let now = chrono::Utc::now().timestamp_millis();
        let mut report = IngestReport {
            accepted: 0,
            rejected: 0,
            errors: Vec::new(),
        };
        let mut deliveries = Vec::with_capacity(records.len());
        for (line, raw) in records {
            let meta = RecordMeta {
                origin: Origin::import_line(line as i64),
                record_ms: Some(now),
                source_header: source.as_deref().map(str::as_bytes),
            };
            match self.opts.validator.validate_record(raw, meta, now) {
                Ok(event) => {
                    let mut record = FutureRecord::to(self.route(event.event_type()))
                        .key(event.user_id().as_bytes())
                        .payload(raw)
                        .timestamp(now);
                    if let Some(source) = &source {
                        record = record.headers(
                            OwnedHeaders::new_with_capacity(1)
                                .insert(header(shared_logic::source::SOURCE_HEADER, source)),
                        );
                    }
                    deliveries.push(self.enqueue(record).await?);
                    report.accepted += 1;
                }
                Err(dead) => {
                    let line_text = line.to_string();
                    let headers = OwnedHeaders::new_with_capacity(5)
                        .insert(header("reason", dead.reason.code()))
                        .insert(header("message", &dead.message))
                        .insert(header("source", "collector"))
                        .insert(header("source_line", &line_text))
                        .insert(header(shared_logic::source::SOURCE_HEADER, &dead.source));
                    let kept = dead_letter_payload(raw, self.opts.validator.max_event_bytes);
                    let record = FutureRecord::<[u8], [u8]>::to(&self.opts.dead_letter_topic)
                        .payload(kept)
                        .headers(headers)
                        .timestamp(now);
                    deliveries.push(self.enqueue(record).await?);
                    report.rejected += 1;
                    report.errors.push(Rejected {
                        line,
                        reason: dead.reason.code(),
                        message: dead.message,
                    });
                }
            }
        }
        let total = deliveries.len();
        let mut failed = 0;
        let mut first_error = None;
        // librdkafka expires queued records only when its broker thread wakes up, which can
        // be seconds after the timeout while it backs off reconnecting: the answer keeps to
        // the deadline itself.
        let deadline = self.opts.delivery_timeout + Duration::from_millis(500);
        let Ok(outcomes) =
            tokio::time::timeout(deadline, futures::future::join_all(deliveries)).await
        else {
            return Err(ServingError::unavailable(
                "kafka_unavailable",
                format!(
                    "Kafka at {} did not acknowledge the request's {total} records within {} ms; nothing of this request counts as accepted: retry it (events are deduplicated by event_id)",
                    self.brokers,
                    self.opts.delivery_timeout.as_millis()
                ),
            ));
        };
        for outcome in outcomes {
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| "the producer dropped the record".into());
                }
            }
        }
        if failed > 0 {
            return Err(ServingError::unavailable(
                "kafka_unavailable",
                format!(
                    "{failed} of {total} records were not acknowledged by Kafka at {} ({}); nothing of this request counts as accepted: retry it (events are deduplicated by event_id)",
                    self.brokers,
                    first_error.unwrap_or_default()
                ),
            ));
        }
        Ok(report)
    }

    /// Queues a record, waiting while the producer's queue is full.
    async fn enqueue<'a>(
        &self,
        mut record: FutureRecord<'a, [u8], [u8]>,
    ) -> Result<rdkafka::producer::DeliveryFuture, ServingError> {
        let deadline = tokio::time::Instant::now() + self.opts.delivery_timeout;
        loop {
            match self.producer.send_result(record) {
                Ok(future) => return Ok(future),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => {
                    return Err(ServingError::unavailable(
                        "kafka_unavailable",
                        format!("cannot queue a record for Kafka at {}: {e}", self.brokers),
                    ))
                }
            }
        }
    }
}

/// What a dead letter keeps of a rejected record: all of it up to the size an event may
/// have. A longer record (a 1 MB field) is rejected as `oversized_event`, whose message
/// says how large it was; whole, it would pass Kafka's message size and fail the request.
fn dead_letter_payload(raw: &[u8], max_event_bytes: usize) -> &[u8] {
    &raw[..raw.len().min(max_event_bytes)]
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// Splits a body into `(line, raw event)`: a JSON array's elements (line = 1-based
/// position) or NDJSON's non-blank lines (line = 1-based line number).
pub fn split_records(body: &[u8]) -> Result<Vec<(usize, &[u8])>, ServingError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ServingError::bad("empty_body", "the request has no events"));
    };
    if body[start] == b'[' {
        let elements: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
            ServingError::bad(
                "malformed_body",
                format!("the body starts like a JSON array but is not one: {e}"),
            )
        })?;
        return Ok(elements
            .into_iter()
            .enumerate()
            .map(|(i, raw)| (i + 1, raw.get().as_bytes()))
            .collect());
    }
    Ok(body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_ndjson_split_into_numbered_records() {
        let array = br#" [ {"a":1}, {"b":[2,3]} ,"x"] "#;
        let got = split_records(array).unwrap();
        assert_eq!(
            got,
            vec![
                (1, &br#"{"a":1}"#[..]),
                (2, &br#"{"b":[2,3]}"#[..]),
                (3, &br#""x""#[..])
            ]
        );
        let ndjson = b"{\"a\":1}\r\n\n  \n{\"b\":2}\nnot json";
        let got = split_records(ndjson).unwrap();
        assert_eq!(
            got,
            vec![
                (1, &b"{\"a\":1}"[..]),
                (4, &b"{\"b\":2}"[..]),
                (5, &b"not json"[..])
            ]
        );
    }

    #[test]
    fn dead_letters_keep_at_most_an_event_size() {
        let raw = vec![b'x'; 1 << 20];
        assert_eq!(dead_letter_payload(&raw, 65_536).len(), 65_536);
        assert_eq!(dead_letter_payload(b"{}", 65_536), b"{}");
    }

    #[test]
    fn empty_and_broken_bodies_are_bad_requests() {
        for body in [&b""[..], b"  \n ", b"[{\"a\":1}", b"[1,]"] {
            let err = split_records(body).unwrap_err();
            assert!(matches!(err, ServingError::BadRequest { .. }), "{err}");
        }
    }
}
