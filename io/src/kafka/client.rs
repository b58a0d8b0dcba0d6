//! Kafka client settings (brokers and pass-through options), the partitions of a topic,
//! topic creation and a topic's configuration.
//!
//! Client settings from `--kafka-option key=value` pass through to librdkafka unchanged
//! (SASL, TLS, timeouts). librdkafka is built with OpenSSL (`security.protocol=SSL` and
//! `SASL_SSL`; SASL mechanisms PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER), not with
//! cyrus-sasl (no GSSAPI): the tests below fail if a build loses one of them.

use std::time::Duration;

use std::collections::BTreeMap;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::IoError;
pub use crate::kafka::client_role::ClientRole;

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
    pub fn with_options(mut self, options: &[String]) -> Result<Self, IoError> {
        for o in options {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| IoError::BadOption(o.clone()))?;
            if k.trim().is_empty() {
                return Err(IoError::BadOption(o.clone()));
            }
            self.options
                .push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(self)
    }

    /// The user's value of librdkafka property `key`, if given (the last one wins).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// How long the group waits for a silent member: `session.timeout.ms` as given, else
    /// librdkafka's default (45 s).
    pub fn session_timeout(&self) -> Duration {
        session_timeout(self.option("session.timeout.ms"))
    }

    /// A configuration for a client of kind `role`: the brokers, the given defaults, then
    /// the user's options that this kind of client takes (a consumer's `session.timeout.ms`
    /// is not given to producers, so librdkafka has nothing to warn about).
    pub fn client_config(&self, role: ClientRole, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            cfg.set(*k, *v);
        }
        for (k, v) in self.options.iter().filter(|(k, _)| role.takes(k)) {
            cfg.set(k, v);
        }
        cfg
    }

    /// Maps a Kafka error of operation `what` against these brokers.
    pub(crate) fn error(&self, what: impl Into<String>) -> impl FnOnce(KafkaError) -> IoError + '_ {
        let what = what.into();
        move |source| IoError::Kafka {
            brokers: self.brokers.clone(),
            what,
            source: Box::new(source),
        }
    }
}

/// How long the group waits for a silent member: `session.timeout.ms` as given, else
/// librdkafka's default (45 s).
pub fn session_timeout(given_ms: Option<&str>) -> Duration {
    given_ms
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(45))
}

/// The partitions of `topic` (from the cluster's metadata); [`IoError::NoSuchTopic`]
/// when it does not exist.
pub fn partitions_of<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
    brokers: &str,
    timeout: Duration,
) -> Result<Vec<i32>, IoError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|source| IoError::Kafka {
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
        return Err(IoError::NoSuchTopic {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
        });
    }
    Ok(partitions)
}

/// Partition → high watermark (the next offset to be written) of every partition of
/// `topic`. Blocking: call it where a thread may block (`spawn_blocking`).
pub fn end_offsets(
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<std::collections::BTreeMap<i32, i64>, IoError> {
    let brokers = settings.brokers.as_str();
    let err = |what: &str| {
        let what = format!("{what} of `{topic}`");
        move |source: rdkafka::error::KafkaError| IoError::Kafka {
            brokers: brokers.to_string(),
            what,
            source: Box::new(source),
        }
    };
    let consumer: rdkafka::consumer::BaseConsumer = settings
        .client_config(ClientRole::Consumer, &[("group.id", "lambda-end-offsets")])
        .create()
        .map_err(err("create a consumer to read the end offsets"))?;
    let mut ends = std::collections::BTreeMap::new();
    for p in partitions_of(&consumer, topic, brokers, timeout)? {
        let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(&consumer, topic, p, timeout)
            .map_err(err("fetch the watermarks"))?;
        ends.insert(p, high);
    }
    Ok(ends)
}

/// Topic → number of partitions, for those of `topics` that exist (from the cluster's
/// metadata).
pub async fn partition_counts(
    settings: &KafkaSettings,
    topics: &[String],
    timeout: Duration,
) -> Result<std::collections::BTreeMap<String, usize>, IoError> {
    let brokers = settings.brokers.clone();
    let consumer: rdkafka::consumer::BaseConsumer = settings
        .client_config(ClientRole::Consumer, &[("group.id", "lambda-metadata")])
        .create()
        .map_err(|source| IoError::Kafka {
            brokers: brokers.clone(),
            what: "create a consumer to read the topics' metadata".into(),
            source: Box::new(source),
        })?;
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut counts = std::collections::BTreeMap::new();
        for topic in topics {
            match partitions_of(&consumer, &topic, &brokers, timeout) {
                Ok(partitions) => {
                    counts.insert(topic, partitions.len());
                }
                Err(IoError::NoSuchTopic { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(counts)
    })
    .await
    .unwrap_or_else(|e| {
        // Only a runtime shutting down cancels it: nothing was learnt.
        tracing::warn!(error = %e, "reading the topics' metadata did not finish");
        Ok(std::collections::BTreeMap::new())
    })
}

/// Creates the topics that do not exist yet (existing ones are left as they are).
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[(&str, i32)],
    timeout: Duration,
) -> Result<(), IoError> {
    ensure_topics_configured(settings, topics, &[], timeout).await
}

/// [`ensure_topics`] with topic configuration (`retention.ms`, `cleanup.policy`, ...) for
/// the topics it creates; an existing topic keeps its own.
pub async fn ensure_topics_configured(
    settings: &KafkaSettings,
    topics: &[(&str, i32)],
    config: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), IoError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config(ClientRole::Admin, &[])
        .create()
        .map_err(settings.error("create admin client"))?;
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    // One request per topic: some Kafka-API brokers (tansu 0.6) create only the first
    // topic of a multi-topic request.
    let mut results = Vec::new();
    for (name, parts) in topics {
        let new = config.iter().fold(
            NewTopic::new(name, *parts, TopicReplication::Fixed(1)),
            |t, (k, v)| t.set(k, v),
        );
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
                return Err(IoError::CreateTopic {
                    brokers: settings.brokers.clone(),
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The configuration the cluster reports for `topic` (name to value; entries without a
/// value left out).
pub async fn topic_config(
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, String>, IoError> {
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config(ClientRole::Admin, &[])
        .create()
        .map_err(settings.error("create admin client"))?;
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(settings.error(format!("describe the configuration of `{topic}`")))?;
    let mut config = BTreeMap::new();
    for result in results {
        let resource = result.map_err(|code| {
            settings.error(format!("describe the configuration of `{topic}`"))(KafkaError::AdminOp(
                code,
            ))
        })?;
        for entry in resource.entries {
            if let Some(value) = entry.value {
                config.insert(entry.name, value);
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_timeout_is_the_given_one_or_librdkafkas_default() {
        assert_eq!(session_timeout(Some("6000")), Duration::from_secs(6));
        assert_eq!(session_timeout(Some(" 6000 ")), Duration::from_secs(6));
        assert_eq!(session_timeout(None), Duration::from_secs(45));
        assert_eq!(session_timeout(Some("soon")), Duration::from_secs(45));
    }

    #[test]
    fn options_parse_and_override_defaults() {
        let s = KafkaSettings::new("b:9092")
            .with_options(&["acks=1".into(), " security.protocol = SSL ".into()])
            .unwrap();
        let cfg = s.client_config(ClientRole::Producer, &[("acks", "all")]);
        assert_eq!(cfg.get("acks"), Some("1"));
        assert_eq!(cfg.get("security.protocol"), Some("SSL"));
        assert_eq!(cfg.get("bootstrap.servers"), Some("b:9092"));
    }

    /// The librdkafka log lines a client wrote while it was created.
    #[derive(Default)]
    struct LogLines(std::sync::Mutex<Vec<String>>);

    impl rdkafka::ClientContext for LogLines {
        fn log(&self, _level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
            self.0.lock().unwrap().push(format!("{fac} {message}"));
        }
    }

    impl rdkafka::producer::ProducerContext for LogLines {
        type DeliveryOpaque = ();
        fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
    }

    impl rdkafka::consumer::ConsumerContext for LogLines {}

    fn confwarns(config: &ClientConfig, producer: bool) -> Vec<String> {
        let mut config = config.clone();
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        let lines = if producer {
            let p: rdkafka::producer::BaseProducer<LogLines> =
                config.create_with_context(LogLines::default()).unwrap();
            // The log lines wait on the client's queue until a poll serves them.
            p.poll(Duration::from_millis(300));
            let lines =
                std::mem::take(&mut *rdkafka::producer::Producer::context(&p).0.lock().unwrap());
            lines
        } else {
            let c: rdkafka::consumer::BaseConsumer<LogLines> =
                config.create_with_context(LogLines::default()).unwrap();
            let _ = c.poll(Duration::from_millis(300));
            let lines =
                std::mem::take(&mut *rdkafka::consumer::Consumer::context(&c).0.lock().unwrap());
            lines
        };
        lines
            .into_iter()
            .filter(|l| l.contains("CONFWARN"))
            .collect()
    }

    #[test]
    fn librdkafka_has_no_property_of_another_kind_to_warn_about() {
        let s = KafkaSettings::new("127.0.0.1:9")
            .with_options(&[
                "session.timeout.ms=6000".into(),
                "heartbeat.interval.ms=500".into(),
                "linger.ms=7".into(),
                "client.id=mine".into(),
            ])
            .unwrap();
        // The whole list given to a producer is what librdkafka warns about.
        let mut all = ClientConfig::new();
        all.set("bootstrap.servers", "127.0.0.1:9");
        for (k, v) in &s.options {
            all.set(k, v);
        }
        assert!(
            !confwarns(&all, true).is_empty(),
            "librdkafka warns about a consumer property given to a producer"
        );
        let producer = s.client_config(ClientRole::Producer, &[]);
        assert_eq!(confwarns(&producer, true), Vec::<String>::new());
        assert_eq!(producer.get("linger.ms"), Some("7"));
        assert_eq!(producer.get("client.id"), Some("mine"));
        let consumer = s.client_config(ClientRole::Consumer, &[("group.id", "g")]);
        assert_eq!(confwarns(&consumer, false), Vec::<String>::new());
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("linger.ms"), None);
    }

    /// Settings for a cluster that is never contacted: creating a client does not connect.
    fn secured(options: &[&str]) -> KafkaSettings {
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        KafkaSettings::new("127.0.0.1:9")
            .with_options(&options)
            .unwrap()
    }

    /// Creates the event producer and a group consumer with `settings`, as every layer does.
    fn create_producer_and_consumer(settings: &KafkaSettings) -> Result<(), IoError> {
        crate::kafka::EventProducer::new(settings, "events")?;
        let _consumer: rdkafka::consumer::BaseConsumer = settings
            .client_config(
                ClientRole::Consumer,
                &[("group.id", "g"), ("enable.auto.commit", "false")],
            )
            .create()
            .map_err(settings.error("create consumer"))?;
        Ok(())
    }

    #[test]
    fn ssl_clients_are_created() {
        let settings = secured(&["security.protocol=SSL"]);
        if let Err(e) = create_producer_and_consumer(&settings) {
            panic!("security.protocol=SSL: {e}");
        }
    }

    #[test]
    fn sasl_ssl_clients_are_created_with_scram_and_plain() {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
            let settings = secured(&[
                "security.protocol=SASL_SSL",
                &format!("sasl.mechanisms={mechanism}"),
                "sasl.username=lambda",
                "sasl.password=secret",
            ]);
            if let Err(e) = create_producer_and_consumer(&settings) {
                panic!("security.protocol=SASL_SSL, sasl.mechanisms={mechanism}: {e}");
            }
        }
    }

    #[test]
    fn librdkafka_is_built_with_tls_and_sasl_scram_plain_oauthbearer() {
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .unwrap();
        let features: Vec<&str> = features.split(',').collect();
        for wanted in ["ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer"] {
            assert!(features.contains(&wanted), "{wanted} not in {features:?}");
        }
    }

    #[test]
    fn gssapi_is_refused_with_a_reason_when_the_client_is_created() {
        // Kerberos needs cyrus-sasl, which the build leaves out (docs/configuration.md).
        let settings = secured(&["security.protocol=SASL_SSL", "sasl.mechanisms=GSSAPI"]);
        let err = create_producer_and_consumer(&settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GSSAPI"), "{err}");
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
