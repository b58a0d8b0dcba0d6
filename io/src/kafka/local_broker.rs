//! The local Kafka-API broker (`tansu`, installed by `scripts/broker.sh install`) as a
//! child process, for `lambda demo` and the tests: where its binary is, how it is started
//! (durable sqlite storage in a directory of its own, logs beside it), and waiting until it
//! answers, with its store made right ([`prepare_store`]). Production uses a real Kafka
//! cluster (`--brokers` / `KAFKA_BROKERS`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::error::IoError;
use crate::kafka::tansu_store::{self, Prepared};

/// `TANSU_BIN`, else `$CARGO_HOME/bin/tansu` (or `~/.cargo/bin/tansu`), else `tansu` on
/// the `PATH`.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin").join("tansu"));
    match in_cargo_home {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("tansu"),
    }
}

/// Starts tansu on `127.0.0.1:port` with sqlite storage (`tansu.db`) and its log
/// (`tansu.log`) in `dir`, which keeps topics, messages and committed offsets across
/// restarts. An existing store gets its missing indexes first; a fresh one gets them from
/// [`prepare_store`] once the broker answers (it creates its schema before it listens).
pub fn spawn(dir: &Path, port: u16) -> Result<Child, IoError> {
    let url = format!("tcp://127.0.0.1:{port}");
    let failed = |reason: String| IoError::LocalBroker {
        dir: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    prepare_store(dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .map_err(|e| failed(format!("log file: {e}")))?;
    let log_err = log
        .try_clone()
        .map_err(|e| failed(format!("log file: {e}")))?;
    let mut command = Command::new(tansu_binary());
    // A process group of its own: Ctrl-C in a terminal signals the whole foreground group,
    // and the broker must outlive the layers that flush and commit to it on their way out;
    // its owner stops it last.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .current_dir(dir)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args([
            "--storage-engine",
            &format!("sqlite://{}", tansu_store::DATABASE_FILE),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .map_err(|e| {
            failed(format!(
                "cannot start {} ({e}); install it with `scripts/broker.sh install` or give --brokers",
                tansu_binary().display()
            ))
        })
}

/// Creates the indexes tansu's store lacks ([`tansu_store`]) in the store in `dir`, when it
/// has one with the broker's schema; says what it created in the log.
pub fn prepare_store(dir: &Path) -> Result<(), IoError> {
    if let Prepared::Ready { created } =
        tansu_store::prepare(&dir.join(tansu_store::DATABASE_FILE))?
    {
        if !created.is_empty() {
            tracing::info!(store = %dir.display(), indexes = ?created, "indexed the local broker's store");
        }
    }
    Ok(())
}

/// Waits until the cluster at `brokers` answers a metadata request.
pub fn wait_ready(brokers: &str, timeout: Duration) -> Result<(), IoError> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| IoError::Kafka {
            brokers: brokers.to_string(),
            what: "metadata client".into(),
            source: Box::new(e),
        })?;
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(md) if !md.brokers().is_empty() => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Ok(_) => {
                return Err(IoError::LocalBroker {
                    dir: brokers.to_string(),
                    reason: format!("no broker answered within {timeout:?}"),
                })
            }
            Err(e) => {
                return Err(IoError::Kafka {
                    brokers: brokers.to_string(),
                    what: format!("no answer within {timeout:?}"),
                    source: Box::new(e),
                })
            }
        }
    }
}
