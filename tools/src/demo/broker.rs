//! The demo's Kafka: the local broker started as a child process (stopped with the demo),
//! or a cluster given by `--brokers`; waited for, with the demo's topics created.

use std::path::Path;
use std::time::Duration;

use lambda_io::kafka::{ensure_topics, KafkaSettings};
use shared_logic::topics;

use crate::error::{Context, ToolsError};

/// Kills the local broker when the demo ends.
pub(super) struct BrokerProcess(std::process::Child);

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The cluster's settings, and the local broker when the demo started one.
pub(super) async fn start(
    brokers: Option<&str>,
    port: u16,
    options: &[String],
    data: &Path,
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
    ensure_topics(
        &kafka,
        &[
            (topics::EVENTS, 4),
            (topics::DEAD_LETTER, 1),
            (topics::LATE, 1),
        ],
        Duration::from_secs(30),
    )
    .await?;
    Ok((kafka, process))
}
