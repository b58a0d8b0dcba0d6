//! The demo's Kafka: the local broker started as a child process (stopped with the demo),
//! or a cluster given by `--brokers`; waited for, with the demo's topics created. On the
//! local broker the event topics carry a retention (`--broker-retention-hours`), so that
//! its store stops growing (docs/broker.md, "Retention").

use std::path::Path;
use std::time::Duration;

use lambda_io::kafka::client::{ensure_topics_configured, topic_config};
use lambda_io::kafka::KafkaSettings;
use shared_logic::topics;

use crate::error::{Context, ToolsError};

/// Kills the local broker when the demo ends.
pub(super) struct BrokerProcess(std::process::Child);

/// The local broker of a demo that ended, kept running until the process has closed every
/// Kafka client (see [`stop_local_broker`]).
static PARKED: std::sync::Mutex<Option<BrokerProcess>> = std::sync::Mutex::new(None);

/// Keeps `process` running until [`stop_local_broker`]: clients that end with the runtime
/// (a blocking group probe still in flight) close against a live broker, not one that is
/// gone (librdkafka's `AllBrokersDown` errors on the way out).
pub(super) fn park(process: Option<BrokerProcess>) {
    if let Ok(mut parked) = PARKED.lock() {
        *parked = process;
    }
}

/// Stops the local broker of a demo that ended; call it once the async runtime is shut
/// down. Nothing to do when the demo used `--brokers` or never started one.
pub fn stop_local_broker() {
    let process = PARKED.lock().ok().and_then(|mut p| p.take());
    drop(process);
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo's event topics and their partitions. The change streams (`cdc`) are created by
/// their source and keep their whole history: their consumers read them from the start.
const EVENT_TOPICS: [(&str, i32); 3] = [
    (topics::EVENTS, 4),
    (topics::DEAD_LETTER, 1),
    (topics::LATE, 1),
];

/// The cluster's settings, and the local broker when the demo started one. `retention`
/// applies to the event topics the demo creates on its local broker (`None`: kept for
/// good); a cluster given by `--brokers` keeps its own defaults.
pub(super) async fn start(
    brokers: Option<&str>,
    port: u16,
    options: &[String],
    data: &Path,
    retention: Option<Duration>,
) -> Result<(KafkaSettings, Option<BrokerProcess>), ToolsError> {
    let (brokers, process) = match brokers {
        Some(b) => (b.to_string(), None),
        None => {
            let addr = format!("127.0.0.1:{port}");
            std::net::TcpListener::bind(&addr).with_context(|| {
                format!("port {port} is taken (a broker already running? pass --brokers {addr} to use it, or --broker-port)")
            })?;
            let child = lambda_io::kafka::local_broker::spawn(&data.join("broker"), port)?;
            println!(
                "started the local broker (tansu, sqlite storage in {}) on {addr}",
                data.join("broker").display()
            );
            (addr, Some(BrokerProcess(child)))
        }
    };
    {
        let brokers = brokers.clone();
        let store = process.as_ref().map(|_| data.join("broker"));
        tokio::task::spawn_blocking(move || {
            lambda_io::kafka::local_broker::wait_ready(&brokers, Duration::from_secs(60))?;
            match store {
                Some(dir) => lambda_io::kafka::local_broker::prepare_store(&dir),
                None => Ok(()),
            }
        })
        .await
        .context("broker readiness task")??;
    }
    let kafka = KafkaSettings::new(&brokers).with_options(options)?;
    let retention_ms = retention
        .filter(|_| process.is_some())
        .map(|r| r.as_millis().to_string());
    let config: Vec<(&str, &str)> = match &retention_ms {
        Some(ms) => vec![("cleanup.policy", "delete"), ("retention.ms", ms.as_str())],
        None => Vec::new(),
    };
    ensure_topics_configured(&kafka, &EVENT_TOPICS, &config, Duration::from_secs(30)).await?;
    if let Some(ms) = &retention_ms {
        warn_on_other_retention(&kafka, ms, data).await;
    }
    Ok((kafka, process))
}

/// Says so when a topic of an existing store keeps another retention than the one asked
/// for (a store made by an older demo, or with another `--broker-retention-hours`): the
/// local broker applies a topic's configuration from its creation, and cannot alter it.
async fn warn_on_other_retention(kafka: &KafkaSettings, wanted_ms: &str, data: &Path) {
    for (topic, _) in EVENT_TOPICS {
        let kept = match topic_config(kafka, topic, Duration::from_secs(10)).await {
            Ok(config) => config.get("retention.ms").cloned(),
            Err(e) => {
                tracing::warn!(topic, error = %e, "cannot read the topic's retention");
                continue;
            }
        };
        if kept.as_deref() != Some(wanted_ms) {
            println!(
                "note: topic `{topic}` in {} keeps {} (it was created before); start with an empty --data-dir for the retention asked for",
                data.join("broker").display(),
                match kept {
                    Some(ms) => format!("a retention of {ms} ms"),
                    None => "every record for good".to_string(),
                }
            );
        }
    }
}
