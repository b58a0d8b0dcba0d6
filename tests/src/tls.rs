//! A local broker reached only through TLS, for the Kafka security tests: a CA and a
//! server certificate made by the `openssl` CLI, `tansu` listening in plaintext on one
//! loopback port and advertising another, and `stunnel` (Debian's stunnel4) accepting TLS
//! on the advertised port and forwarding to tansu. Every client therefore talks TLS: the
//! bootstrap connection and every connection to the advertised broker.
//!
//! Always a local broker, whatever `KAFKA_BROKERS` says. A missing `openssl` or `stunnel`
//! fails the test with what to install: the test is never skipped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lambda_io::kafka::local_broker::tansu_binary;
use lambda_io::kafka::KafkaSettings;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use crate::ChildGuard;

/// A SCRAM user the broker requires (`tansu broker --authentication`).
#[derive(Debug, Clone, Copy)]
pub struct ScramUser<'a> {
    pub name: &'a str,
    pub password: &'a str,
    /// `scram256` or `scram512` (`tansu user create --mechanism`).
    pub mechanism: &'a str,
}

/// tansu behind stunnel; both stop when this drops.
pub struct TlsBroker {
    tls_port: u16,
    ca: PathBuf,
    // Field order is drop order: the terminator first, then the broker, then its files.
    _stunnel: ChildGuard,
    tansu: ChildGuard,
    _dir: tempfile::TempDir,
}

impl TlsBroker {
    /// A broker that any client trusting the generated CA may use.
    pub fn start() -> TlsBroker {
        TlsBroker::start_with(None)
    }

    /// A broker that also requires SASL authentication, knowing `user` (SCRAM).
    pub fn start_with_scram_user(user: ScramUser<'_>) -> TlsBroker {
        TlsBroker::start_with(Some(user))
    }

    fn start_with(user: Option<ScramUser<'_>>) -> TlsBroker {
        let dir = tempfile::tempdir().expect("a temporary directory for the broker");
        let (plain_port, tls_port) = (free_port(), free_port());
        let certs = Certificates::generate(dir.path());
        let mut broker = TlsBroker {
            tls_port,
            ca: certs.ca.clone(),
            _stunnel: spawn_stunnel(dir.path(), &certs, tls_port, plain_port),
            tansu: spawn_tansu(dir.path(), plain_port, tls_port, false),
            _dir: dir,
        };
        broker.wait_until_ready(&broker.ssl_options(), Duration::from_secs(30));
        let Some(user) = user else {
            return broker;
        };
        // The user is stored through the plain port while no authentication is required
        // (tansu's admin client talks to the URL it is given); the broker then restarts on
        // the same storage and requires it.
        create_user(broker._dir.path(), plain_port, user);
        let _ = broker.tansu.0.kill();
        let _ = broker.tansu.0.wait();
        broker.tansu = spawn_tansu(broker._dir.path(), plain_port, tls_port, true);
        let mut options = broker.ssl_options();
        options[0] = "security.protocol=SASL_SSL".into();
        options.extend(scram_options(user));
        broker.wait_until_ready(&options, Duration::from_secs(30));
        broker
    }

    /// Bootstrap servers: the TLS port (the one the broker advertises).
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// The CA certificate (PEM) that signed the broker's certificate.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// `--kafka-option` values of a client that trusts the generated CA.
    pub fn ssl_options(&self) -> Vec<String> {
        vec![
            "security.protocol=SSL".into(),
            format!("ssl.ca.location={}", self.ca.display()),
        ]
    }

    /// Client settings for this broker with `options`.
    pub fn settings(&self, options: &[String]) -> KafkaSettings {
        KafkaSettings::new(self.brokers())
            .with_options(options)
            .expect("well-formed options")
    }

    /// The errors librdkafka reports while a client with `options` asks for the cluster's
    /// metadata for `timeout`; `Ok` when the metadata came.
    pub fn metadata_errors(
        &self,
        options: &[String],
        timeout: Duration,
    ) -> Result<(), Vec<String>> {
        metadata(&self.settings(options), timeout)
    }

    fn wait_until_ready(&self, options: &[String], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.metadata_errors(options, Duration::from_secs(5)) {
                Ok(()) => return,
                Err(errors) if Instant::now() >= deadline => panic!(
                    "the broker behind TLS ({}) did not answer within {timeout:?}: {errors:?}; \
                     logs in {}",
                    self.brokers(),
                    self._dir.path().display()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// `--kafka-option` values of SASL SCRAM as `user` (the protocol is set separately).
pub fn scram_options(user: ScramUser<'_>) -> Vec<String> {
    let mechanism = match user.mechanism {
        "scram256" => "SCRAM-SHA-256",
        "scram512" => "SCRAM-SHA-512",
        other => panic!("unknown SCRAM mechanism {other}"),
    };
    vec![
        format!("sasl.mechanisms={mechanism}"),
        format!("sasl.username={}", user.name),
        format!("sasl.password={}", user.password),
    ]
}

/// Records the errors and warnings librdkafka reports (connection, TLS handshake,
/// authentication).
#[derive(Default)]
pub struct ErrorLog(Mutex<Vec<String>>);

impl ErrorLog {
    /// The errors so far, as `error: reason`.
    pub fn errors(&self) -> Vec<String> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl ErrorLog {
    fn push(&self, entry: String) {
        if let Ok(mut errors) = self.0.lock() {
            errors.push(entry);
        }
    }
}

impl ClientContext for ErrorLog {
    // A failed TLS handshake or SASL exchange is logged as a warning or error.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.push(format!("{fac}: {message}"));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for ErrorLog {}

/// A metadata request with `settings`: `Ok`, or the errors librdkafka reported (and the
/// request's own error last).
pub fn metadata(settings: &KafkaSettings, timeout: Duration) -> Result<(), Vec<String>> {
    let consumer: BaseConsumer<ErrorLog> = settings
        .client_config(lambda_io::kafka::ClientRole::Consumer, &[])
        .set_log_level(RDKafkaLogLevel::Warning)
        .create_with_context(ErrorLog::default())
        .map_err(|e| vec![format!("client not created: {e}")])?;
    match consumer.fetch_metadata(None, timeout) {
        Ok(md) if !md.brokers().is_empty() => Ok(()),
        Ok(_) => Err(vec!["metadata without brokers".into()]),
        Err(e) => {
            // The client's logs and error events are served by polling it.
            for _ in 0..10 {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            let mut errors = consumer.context().errors();
            errors.push(format!("metadata: {e}"));
            Err(errors)
        }
    }
}

/// The files of a test CA and a server certificate it signed (for `localhost` and
/// 127.0.0.1), made by the `openssl` CLI.
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificates {
    /// Makes them in `dir`.
    pub fn generate(dir: &Path) -> Certificates {
        let path = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=lambda test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            path("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the certificate extensions");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        Certificates {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): install Debian's openssl package (CI installs it: .ci/run)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn_stunnel(dir: &Path, certs: &Certificates, tls_port: u16, plain_port: u16) -> ChildGuard {
    let config = dir.join("stunnel.conf");
    std::fs::write(
        &config,
        format!(
            "foreground = yes\npid =\noutput = {log}\n[kafka]\naccept = 127.0.0.1:{tls_port}\n\
             connect = 127.0.0.1:{plain_port}\ncert = {cert}\nkey = {key}\n",
            log = dir.join("stunnel.log").display(),
            cert = certs.cert.display(),
            key = certs.key.display(),
        ),
    )
    .expect("write the stunnel configuration");
    let child = Command::new("stunnel")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `stunnel` ({e}): the Kafka TLS tests need it; install Debian's \
                 stunnel4 (`apt-get install stunnel4`; CI installs it: .ci/run)"
            )
        });
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!(
                "stunnel exited ({status}): {}",
                std::fs::read_to_string(dir.join("stunnel.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "stunnel did not listen on {tls_port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}

/// tansu on the plain port, advertising the TLS port (and requiring SASL when `auth`).
fn spawn_tansu(dir: &Path, plain_port: u16, tls_port: u16, auth: bool) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .expect("the broker's log file");
    let log_err = log.try_clone().expect("the broker's log file");
    let mut command = Command::new(tansu_binary());
    command
        .current_dir(dir)
        .arg("broker")
        .args(["--listener-url", &format!("tcp://127.0.0.1:{plain_port}")])
        .args([
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{tls_port}"),
        ])
        .args(["--storage-engine", "sqlite://tansu.db"]);
    if auth {
        command.arg("--authentication");
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); install it with `scripts/broker.sh install`",
                tansu_binary().display()
            )
        });
    ChildGuard(child)
}

fn create_user(dir: &Path, plain_port: u16, user: ScramUser<'_>) {
    let out = Command::new(tansu_binary())
        .current_dir(dir)
        .args([
            "user",
            "create",
            "--broker",
            &format!("tcp://127.0.0.1:{plain_port}"),
        ])
        .args(["--mechanism", user.mechanism, user.name, user.password])
        .output()
        .expect("tansu user create runs");
    assert!(
        out.status.success(),
        "tansu user create {}: {}",
        user.name,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
