//! Starting, waiting for and stopping a local `tansu` broker for tests.

use std::net::TcpListener;
use std::process::Child;
use std::time::Duration;

use rdkafka::ClientConfig;

/// A Kafka-API broker for one test: either `KAFKA_BROKERS` or a local tansu process.
pub struct Broker {
    brokers: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

fn spawn_tansu(dir: &std::path::Path, port: u16) -> Child {
    lambda_io::kafka::local_broker::spawn(dir, port)
        .unwrap_or_else(|e| panic!("{e}; or set KAFKA_BROKERS"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Broker {
    /// The cluster named by `KAFKA_BROKERS`, or a fresh local broker with sqlite storage.
    ///
    /// Panics (failing the test) when the broker cannot be started: a test that needs
    /// Kafka is never skipped.
    pub fn start() -> Broker {
        if let Ok(brokers) = std::env::var("KAFKA_BROKERS") {
            let broker = Broker {
                brokers,
                child: None,
                _dir: None,
            };
            broker.wait_until_ready(Duration::from_secs(30));
            return broker;
        }
        Broker::start_local()
    }

    /// A fresh local broker with sqlite storage, whatever `KAFKA_BROKERS` says: for fault
    /// tests that stop and restart the broker (a real cluster is not restarted by tests), so
    /// that they run, and can fail, in every environment.
    pub fn start_local() -> Broker {
        let dir = tempfile::tempdir().expect("a temporary directory for the broker");
        let port = free_port();
        let child = spawn_tansu(dir.path(), port);
        let broker = Broker {
            brokers: format!("127.0.0.1:{port}"),
            child: Some(child),
            _dir: Some(dir),
        };
        broker.wait_until_ready(Duration::from_secs(30));
        broker.prepare_store();
        broker
    }

    /// Stops the local broker (SIGKILL) and starts it again on the same port and storage,
    /// after `down` — an outage for fault tests. Not available with `KAFKA_BROKERS`.
    pub fn restart_after(&mut self, down: Duration) {
        let (Some(child), Some(dir)) = (&mut self.child, &self._dir) else {
            panic!("restart needs the local broker (KAFKA_BROKERS is set)");
        };
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(down);
        let port: u16 = self
            .brokers
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        self.child = Some(spawn_tansu(dir.path(), port));
        self.wait_until_ready(Duration::from_secs(30));
        self.prepare_store();
    }

    /// The local broker's store directory (`tansu.db`, `tansu.log`); `None` with
    /// `KAFKA_BROKERS`.
    pub fn store_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    /// Creates the indexes tansu's fresh store lacks, as `lambda demo` and
    /// `scripts/broker.sh` do once the broker answers.
    fn prepare_store(&self) {
        if let Some(dir) = &self._dir {
            lambda_io::kafka::local_broker::prepare_store(dir.path())
                .unwrap_or_else(|e| panic!("broker {}: {e}", self.brokers));
        }
    }

    /// Bootstrap servers to hand to clients.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A client configuration for this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        cfg
    }

    fn wait_until_ready(&self, timeout: Duration) {
        lambda_io::kafka::local_broker::wait_ready(&self.brokers, timeout)
            .unwrap_or_else(|e| panic!("broker {}: {e}", self.brokers));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed when the guard drops, so that a failing test leaves no process
/// behind (nor a pipe held open).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lambda` flags that make a killed consumer leave its group within seconds (the default
/// session timeout is 45 s), for tests that kill or stop group members.
pub const FAST_GROUP_FAILOVER: [&str; 4] = [
    "--kafka-option",
    "session.timeout.ms=6000",
    "--kafka-option",
    "heartbeat.interval.ms=500",
];
