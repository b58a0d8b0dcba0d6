//! The broker stops for a while and starts again while `lambda serve` (the collector),
//! `lambda speed` and `lambda lake` run and a client posts batches of events: during the
//! outage the collector answers 503 `kafka_unavailable` and the client retries the same
//! batch until it is accepted; afterwards every accepted event is in the topic, in the lake
//! and in the real-time views exactly once (retried batches count once: both layers
//! deduplicate by event id), and the speed layer and the lake writer resumed by themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::Lake;
use lambda_tests::faults::{
    assert_lake_holds_topic_exactly_once, assert_same, batch_aggregates, direct, spawn_logging,
    speed_aggregates, speed_applied, speed_status, terminate, wait_every,
};
use lambda_tests::http::{free_addr, get, request};
use lambda_tests::lake_files::positions;
use lambda_tests::topic::{read_all, topic_events};
use lambda_tests::{wait_for, Broker};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Event, Origin, Validator};

const TOPIC: &str = "outage-events";
const BATCH: usize = 150;

/// What the client saw.
#[derive(Debug, Default)]
struct ClientReport {
    /// Bodies answered 200, in order.
    accepted: Vec<Vec<u8>>,
    /// Events the collector said it accepted (the sum of `accepted` in 200 answers).
    accepted_events: u64,
    /// 503 `kafka_unavailable` answers (each followed by a retry of the same batch).
    unavailable: u64,
    /// The longest time a 503 took to come.
    slowest_503: Duration,
    /// Accepted batches sent once more (as after a lost answer).
    resent: u64,
    /// Anything else: other statuses or codes, no answer.
    unexpected: Vec<String>,
}

/// A client posting NDJSON batches of generated events (event times from `start_ms` on)
/// in a loop, retrying a batch until it is accepted.
struct Client {
    stop: Arc<AtomicBool>,
    accepted_batches: Arc<AtomicU64>,
    unavailable: Arc<AtomicU64>,
    thread: JoinHandle<ClientReport>,
}

impl Client {
    fn start(addr: String, start_ms: i64) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted_batches = Arc::new(AtomicU64::new(0));
        let unavailable = Arc::new(AtomicU64::new(0));
        let (flag, done, refused) = (stop.clone(), accepted_batches.clone(), unavailable.clone());
        let thread = std::thread::spawn(move || {
            let mut generator = Generator::new(GeneratorConfig {
                seed: 77,
                start_ms,
                events_per_second: 10.0,
                users: 5_000,
                out_of_order_fraction: 0.05,
                out_of_order_ms: 4_000,
                duplicate_fraction: 0.02,
                invalid_fraction: 0.01,
                ..GeneratorConfig::default()
            });
            let mut report = ClientReport::default();
            let mut resend = None;
            while !flag.load(Ordering::Relaxed) {
                // Every tenth accepted batch is sent once more, as a client does whose 200
                // answer was lost: its events reach the topic twice.
                let body = resend.take().unwrap_or_else(|| {
                    let mut body = Vec::new();
                    for _ in 0..BATCH {
                        body.extend_from_slice(&generator.next_record().json);
                        body.push(b'\n');
                    }
                    body
                });
                // The same batch until it is accepted.
                loop {
                    let sent = std::time::Instant::now();
                    let answer = request(
                        &addr,
                        "POST",
                        "/v1/events",
                        &[("Content-Type", "application/x-ndjson")],
                        &body,
                    );
                    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
                    match answer {
                        Some((200, b)) => {
                            let n = json(&b).and_then(|v| v["accepted"].as_u64());
                            report.accepted_events += n.unwrap_or(0);
                            if report.accepted.len() % 10 == 9
                                && report.accepted.last() != Some(&body)
                            {
                                resend = Some(body.clone());
                                report.resent += 1;
                            }
                            report.accepted.push(body);
                            done.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Some((503, b))
                            if json(&b).is_some_and(|v| v["code"] == "kafka_unavailable") =>
                        {
                            report.unavailable += 1;
                            report.slowest_503 = report.slowest_503.max(sent.elapsed());
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Some((status, b)) => report
                            .unexpected
                            .push(format!("{status}: {}", String::from_utf8_lossy(&b))),
                        None => report.unexpected.push("no answer".into()),
                    }
                    if report.unexpected.len() > 20 {
                        return report;
                    }
                    // A client's back-off before it retries (not a synchronisation).
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            report
        });
        Client {
            stop,
            accepted_batches,
            unavailable,
            thread,
        }
    }

    fn batches(&self) -> u64 {
        self.accepted_batches.load(Ordering::Relaxed)
    }

    fn finish(self) -> ClientReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

/// The valid events of the accepted bodies, as the collector validated them.
fn accepted_events(bodies: &[Vec<u8>]) -> Vec<Event> {
    let v = Validator::default();
    let now = chrono::Utc::now().timestamp_millis();
    let mut line = 0;
    let mut out = Vec::new();
    for body in bodies {
        for l in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            line += 1;
            if let Ok(e) = v.validate(l, Origin::import_line(line), now) {
                out.push(e);
            }
        }
    }
    out
}

#[test]
fn a_broker_outage_loses_no_accepted_event_and_the_consumers_resume() {
    // The outage needs a broker this test can stop: always the local one.
    let mut broker = Broker::start_local();
    let brokers = broker.brokers().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (lake, views, checkpoints) = (
        dir.path().join("lake"),
        dir.path().join("views"),
        dir.path().join("checkpoints"),
    );
    let (api, speed_addr) = (free_addr(), free_addr());
    let speed_url = format!("http://{speed_addr}");

    // The collector runs with enable.idempotence=false: with the local broker (tansu
    // 0.6.0, sqlite storage), an idempotent producer whose records time out during the
    // outage bumps its epoch (KIP-360), and tansu's `idempotent_message_check` then panics
    // ("more or less than one row", tansu-storage-0.6.0/src/lite.rs:503) because it has no
    // producer row for the new epoch: its storage task dies and the broker answers every
    // request with an error from then on. A broker bug, not the collector's; without
    // idempotence, librdkafka's retries may duplicate records, which the layers deduplicate
    // by event id like the client's retried batches (this test checks exactly that).
    let mut serve = spawn_logging(
        &[
            "serve",
            "--listen",
            &api,
            "--views",
            views.to_str().unwrap(),
            "--speed-url",
            &speed_url,
            "--topic",
            TOPIC,
            "--partitions",
            "3",
            "--dead-letter-topic",
            "outage-dead-letter",
            "--delivery-timeout-ms",
            "2000",
            "--kafka-option",
            "enable.idempotence=false",
            "--brokers",
            &brokers,
        ],
        "off",
    );
    wait_for("the collector to listen", Duration::from_secs(60), || {
        get(&api, "/healthz").is_some_and(|(s, _)| s == 200)
    });
    // No member of a group is killed here: the consumers keep librdkafka's default session
    // timeout (45 s), longer than the outage, so they keep their partitions through it.
    let speed_args = vec![
        "speed",
        "--topic",
        TOPIC,
        "--group",
        "outage-speed",
        "--listen",
        &speed_addr,
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--checkpoint-interval-secs",
        "1.5",
        "--dead-letter-topic",
        "outage-speed-dlq",
        "--late-topic",
        "outage-late",
        "--brokers",
        &brokers,
    ];
    let mut speed = spawn_logging(&speed_args, "off");
    let lake_args = vec![
        "lake",
        "--lake",
        lake.to_str().unwrap(),
        "--topic",
        TOPIC,
        "--group",
        "outage-lake",
        "--roll-mib",
        "1",
        "--roll-secs",
        "0.5",
        "--brokers",
        &brokers,
    ];
    let mut writer = spawn_logging(&lake_args, "off");

    // Events of the last hour, posted in event-time order (out of order only within the
    // speed layer's out-of-orderness, so nothing is late).
    let now = chrono::Utc::now().timestamp_millis();
    let client = Client::start(api.clone(), now - 50 * 60_000);
    wait_for(
        "the collector to accept batches",
        Duration::from_secs(60),
        || client.batches() >= 20,
    );
    wait_for(
        "the speed layer to consume",
        Duration::from_secs(60),
        || speed_applied(&speed_addr) > 0,
    );

    // The outage: the broker is killed and comes back on the same port and storage after
    // 15 s; the client keeps posting meanwhile. (15 s, not less: with --delivery-timeout-ms
    // 2000 the collector's 503 comes only after 7–10 s, because librdkafka notices expired
    // messages when its broker thread wakes from the reconnect back-off, up to
    // reconnect.backoff.max.ms = 10 s; see the report. A shorter outage can end before
    // any 503 is answered.)
    broker.restart_after(Duration::from_secs(15));
    let after_restart = client.batches();
    if client.unavailable.load(Ordering::Relaxed) == 0 {
        let report = client.finish();
        panic!(
            "the collector answered 503 kafka_unavailable during the outage: {} batches \
             accepted, other answers {:?}",
            report.accepted.len(),
            report.unexpected
        );
    }
    wait_for(
        "the collector to accept batches again",
        Duration::from_secs(60),
        || client.batches() >= after_restart + 20,
    );
    let report = client.finish();
    assert!(
        report.unexpected.is_empty(),
        "only 200 and 503 kafka_unavailable: {:?}",
        report.unexpected
    );

    // Every accepted event is in the topic; retried batches may have landed twice.
    let stored = read_all(&broker.client_config(), TOPIC);
    let records: u64 = stored.values().map(|v| v.len() as u64).sum();
    let in_topic = topic_events(&stored);
    let accepted = accepted_events(&report.accepted);
    assert_eq!(accepted.len() as u64, report.accepted_events);
    let ids = |events: &[Event]| -> std::collections::BTreeSet<(String, HourKey)> {
        events
            .iter()
            .map(|e| (e.event_id().0.clone(), HourKey::of(e.event_time())))
            .collect()
    };
    assert!(report.resent >= 3, "batches were resent: {}", report.resent);
    assert!(
        in_topic.len() >= accepted.len(),
        "every accepted delivery is in the topic, resent ones twice: {} in the topic, {} accepted",
        in_topic.len(),
        accepted.len()
    );
    assert!(
        ids(&in_topic) == ids(&accepted),
        "the topic holds exactly the accepted events (by id): {} in the topic, {} accepted",
        ids(&in_topic).len(),
        ids(&accepted).len()
    );
    let expected = direct(accepted);

    // The speed layer and the lake writer resumed by themselves and caught up.
    wait_for(
        "the speed layer to apply every record",
        Duration::from_secs(90),
        || speed_applied(&speed_addr) >= records,
    );
    wait_every(
        "every record in the lake exactly once",
        Duration::from_millis(300),
        Duration::from_secs(90),
        || positions(&lake).len() as u64 >= records,
    );
    assert_eq!(
        speed.0.try_wait().unwrap(),
        None,
        "the speed layer kept running"
    );
    assert_eq!(
        writer.0.try_wait().unwrap(),
        None,
        "the lake writer kept running"
    );
    assert_eq!(
        serve.0.try_wait().unwrap(),
        None,
        "the collector kept running"
    );

    assert_same(
        &speed_aggregates(&speed_addr),
        &expected,
        "real-time views after the outage",
    );
    let status = speed_status(&speed_addr).unwrap();
    let counters = &status["progress"]["counters"];
    assert_eq!(counters["records"], records, "{counters}");
    assert_eq!(counters["late_dropped"], 0, "{counters}");

    assert_lake_holds_topic_exactly_once(&lake, &stored);
    // The lake's content, computed by the batch job, equals the direct computation too.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lake_store = Lake::open(lake.to_str().unwrap(), false).unwrap();
    let views_store = Lake::open(views.to_str().unwrap(), true).unwrap();
    let hour = now.div_euclid(HOUR_MS);
    runtime
        .block_on(job::run(
            &lake_store,
            &views_store,
            &HourSelection::Range {
                from: HourKey(hour - 2),
                to: HourKey(hour + 1),
            },
            &BatchOptions::default(),
        ))
        .expect("batch run over the lake");
    let (_, batch_views) = runtime.block_on(batch_aggregates(&views_store));
    assert_same(
        &batch_views,
        &expected,
        "the lake's content after the outage",
    );

    eprintln!(
        "{} batches accepted ({} events, {} batches resent), {} answers 503 \
         kafka_unavailable (slowest after {:.1} s); {records} records in the topic, {} of \
         them from requests answered 503",
        report.accepted.len(),
        report.accepted_events,
        report.resent,
        report.unavailable,
        report.slowest_503.as_secs_f64(),
        records - report.accepted_events
    );
    for (name, child) in [
        ("speed layer", &mut speed),
        ("lake writer", &mut writer),
        ("collector", &mut serve),
    ] {
        assert!(
            terminate(child, Duration::from_secs(30)).success(),
            "the {name} stops cleanly"
        );
    }
}
