//! Kafka through TLS, as every managed Kafka service requires: a local broker behind a TLS
//! terminator (stunnel) with a certificate from a CA the test generates
//! (`lambda_tests::tls`). Our producer, a consumer group (`lambda lake`, the real binary)
//! and the collector (`lambda serve`) run through it with `security.protocol=SSL` and the
//! CA; a client that does not trust the CA is refused, so TLS with certificate checks is
//! in the path. SASL_SSL is checked the same way with a SCRAM user the broker requires.
//! (SASL PLAIN is not: tansu 0.6 drops the connection at a PLAIN handshake from librdkafka,
//! "broker's supported mechanisms: (n/a)"; `lambda_io::kafka::client`'s tests check that
//! PLAIN clients are created.)

use std::time::Duration;

use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_tests::faults::spawn;
use lambda_tests::http::{free_addr, get, request};
use lambda_tests::lake_files::rows;
use lambda_tests::tls::{metadata, scram_options, ScramUser, TlsBroker};
use lambda_tests::topic::read_all;
use lambda_tests::wait_for;
use shared_logic::generate::{Generator, GeneratorConfig};

const TOPIC: &str = "tls-events";
const INGEST_TOKEN: &str = "5f0c9a7e1b2d4c6f8a0b3c5d7e9f1a2b";

/// `count` valid NDJSON events of the last ten minutes (`seed` keeps ids apart).
fn events(seed: u64, count: usize) -> Vec<shared_logic::generate::Record> {
    let cfg = GeneratorConfig {
        seed,
        start_ms: chrono::Utc::now().timestamp_millis() - 600_000,
        events_per_second: 5.0,
        invalid_fraction: 0.0,
        duplicate_fraction: 0.0,
        ..Default::default()
    };
    Generator::new(cfg).take(count).collect()
}

/// Creates the topic with `partitions`, produces `records` with our event producer and
/// waits for every acknowledgement.
fn produce(settings: &KafkaSettings, partitions: i32, records: &[shared_logic::generate::Record]) {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(ensure_topics(
            settings,
            &[(TOPIC, partitions)],
            Duration::from_secs(30),
        ))
        .expect("topic created");
    let producer = EventProducer::new(settings, TOPIC).expect("producer");
    for r in records {
        producer.send(r.key.as_bytes(), &r.json).expect("queued");
    }
    let report = producer
        .flush(Duration::from_secs(60))
        .expect("acknowledged through TLS");
    assert_eq!(report.delivered, records.len() as u64);
}

/// `lambda` arguments that reach `broker` through TLS.
fn tls_args(broker: &TlsBroker) -> Vec<String> {
    let mut args = vec!["--brokers".to_string(), broker.brokers()];
    for option in broker.ssl_options() {
        args.extend(["--kafka-option".to_string(), option]);
    }
    args
}

fn with<'a>(args: &'a [&'a str], extra: &'a [String]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect()
}

fn records_in_topic(settings: &KafkaSettings) -> u64 {
    read_all(
        &settings.client_config(lambda_io::kafka::ClientRole::Consumer, &[]),
        TOPIC,
    )
    .values()
    .map(|records| records.len() as u64)
    .sum()
}

#[test]
fn producer_consumer_group_and_collector_work_through_tls_and_an_unknown_ca_is_refused() {
    let broker = TlsBroker::start();

    // Certificate verification is on: without the CA (only the system's CAs) the TLS
    // handshake fails; plaintext to the TLS port gets no answer either.
    let untrusted = broker
        .metadata_errors(&["security.protocol=SSL".into()], Duration::from_secs(5))
        .expect_err("a client that does not trust the CA is refused");
    assert!(
        untrusted
            .iter()
            .any(|e| e.contains("certificate verify failed")),
        "{untrusted:?}"
    );
    assert!(broker.metadata_errors(&[], Duration::from_secs(3)).is_err());

    // Our producer.
    let settings = broker.settings(&broker.ssl_options());
    let produced = events(1, 300);
    produce(&settings, 2, &produced);

    // The collector produces what clients post.
    let dir = tempfile::tempdir().unwrap();
    let kafka = tls_args(&broker);
    let api = free_addr();
    let views = dir.path().join("views").display().to_string();
    let speed_url = format!("http://{}", free_addr());
    let mut serve = spawn(&with(
        &[
            "serve",
            "--listen",
            &api,
            "--views",
            &views,
            "--speed-url",
            &speed_url,
            "--topic",
            TOPIC,
            "--partitions",
            "2",
            "--ingest-token",
            INGEST_TOKEN,
        ],
        &kafka,
    ));
    wait_for("the collector to listen", Duration::from_secs(60), || {
        if let Ok(Some(status)) = serve.0.try_wait() {
            panic!("lambda serve exited: {status}");
        }
        get(&api, "/healthz").is_some_and(|(s, _)| s == 200)
    });
    let posted = events(2, 200);
    let body: Vec<u8> = posted
        .iter()
        .flat_map(|r| r.json.iter().copied().chain([b'\n']))
        .collect();
    let bearer = format!("Bearer {INGEST_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let (status, answer) = request(&api, "POST", "/v1/events", &auth, &body).expect("an answer");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 200, "{answer}");

    // A consumer group (the lake writer) reads both through TLS.
    let lake = dir.path().join("lake");
    let _writer = spawn(&with(
        &[
            "lake",
            "--lake",
            lake.to_str().unwrap(),
            "--topic",
            TOPIC,
            "--group",
            "tls-lake",
            "--roll-secs",
            "0.5",
        ],
        &kafka,
    ));
    let expected = (produced.len() + posted.len()) as u64;
    wait_for(
        "the lake writer to write every event read through TLS",
        Duration::from_secs(90),
        || rows(&lake.join("events")) >= expected,
    );
    assert_eq!(rows(&lake.join("events")), expected);
    assert_eq!(records_in_topic(&settings), expected);
}

#[test]
fn sasl_ssl_scram_authenticates_through_tls_and_a_wrong_password_is_refused() {
    let user = ScramUser {
        name: "lambda",
        password: "tls-test-password",
        mechanism: "scram256",
    };
    let broker = TlsBroker::start_with_scram_user(user);
    let sasl = |user: ScramUser<'_>| -> Vec<String> {
        let mut options = vec![
            "security.protocol=SASL_SSL".to_string(),
            format!("ssl.ca.location={}", broker.ca().display()),
        ];
        options.extend(scram_options(user));
        options
    };

    let settings = broker.settings(&sasl(user));
    let produced = events(3, 50);
    produce(&settings, 1, &produced);
    assert_eq!(records_in_topic(&settings), produced.len() as u64);

    let wrong = ScramUser {
        password: "not-the-password",
        ..user
    };
    let refused = metadata(&broker.settings(&sasl(wrong)), Duration::from_secs(5))
        .expect_err("a wrong password is refused");
    assert!(
        refused
            .iter()
            .any(|e| e.contains("SASL SCRAM authentication failed")),
        "{refused:?}"
    );
    // TLS alone is not enough: the broker requires SASL.
    assert!(broker
        .metadata_errors(&broker.ssl_options(), Duration::from_secs(5))
        .is_err());
}
