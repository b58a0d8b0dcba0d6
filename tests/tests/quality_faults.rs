//! Injected faults are detected (issue 20): ten hours of two producers, `web` and `app`,
//! produced to the real broker with the record times a producer in step with the clock
//! stamps, with four faults:
//!
//! | hour | producer | fault | the rule that fails |
//! |---|---|---|---|
//! | 2 | app | silent from :20 to :40 | `freshness` |
//! | 4 | app | 30 % of its records invalid | `validity` |
//! | 6 | app | clock 10 minutes behind from :10 on | `delay_p99` |
//! | 8 | web | twice the records | `volume` |
//!
//! `GET /v1/quality` fails exactly those rules in exactly those hours, and nothing else,
//! from the speed layer alone and again once the batch layer covers every hour; the batch
//! and speed views of the `quality` metric agree exactly for every hour.

use std::collections::BTreeSet;

use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_tests::pipeline::Pipeline;
use lambda_tests::serving::get_json;
use lambda_tests::Broker;
use serving::verify;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::generate_producers::{Fault, FaultKind, ProducedRecord, Producers};
use shared_logic::metrics::Quality;
use shared_logic::window::HOUR_MS;
use speed::partition::{LatePolicy, TimeSettings};

const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z
const HOURS: i64 = 10;
const MIN: i64 = 60_000;

fn at(hour: i64, minute: i64) -> i64 {
    START + hour * HOUR_MS + minute * MIN
}

fn fault(producer: &str, from: i64, to: i64, kind: FaultKind) -> Fault {
    Fault {
        producer: producer.into(),
        from_ms: from,
        to_ms: to,
        kind,
    }
}

/// The stream: one event a second of event time, users split between the two producers.
fn records() -> Vec<ProducedRecord> {
    let generator = Generator::new(GeneratorConfig {
        seed: 20,
        start_ms: START,
        events_per_second: 1.0,
        users: 4_000,
        concurrent_sessions: 300,
        ..GeneratorConfig::default()
    });
    let faults = vec![
        fault("app", at(2, 20), at(2, 40), FaultKind::Silent),
        fault("app", at(4, 0), at(5, 0), FaultKind::Invalid(0.3)),
        fault("app", at(6, 10), at(7, 0), FaultKind::ClockLag(10 * MIN)),
        fault("web", at(8, 0), at(9, 0), FaultKind::Volume(2)),
    ];
    let producers = vec![("web".to_string(), 1.0), ("app".to_string(), 1.0)];
    Producers::new(generator, producers, faults, 20)
        .expect("a valid plan")
        .take_while(|r| r.at_ms < at(HOURS, 0))
        .collect()
}

/// Produces each record with its send time as the Kafka record time.
async fn produce(brokers: &str, topic: &str, records: &[ProducedRecord]) {
    let settings = KafkaSettings::new(brokers);
    ensure_topics(&settings, &[(topic, 3)], std::time::Duration::from_secs(30))
        .await
        .expect("topic created");
    let producer = EventProducer::new(&settings, topic).expect("producer");
    for r in records {
        producer
            .send_at(r.record.key.as_bytes(), &r.record.json, &[], Some(r.at_ms))
            .expect("queued");
    }
    producer
        .flush(std::time::Duration::from_secs(60))
        .expect("acknowledged");
}

/// `(producer, hour index, check)` of every failing rule in the report of the ten hours.
async fn failures(addr: &str) -> BTreeSet<(String, i64, String)> {
    let path = format!("/v1/quality?from={}&to={}", at(0, 0), at(HOURS, 0));
    let (status, report) = get_json(addr, &path, &[]).await;
    assert_eq!(status, 200, "{report}");
    let hours = report["hours"].as_array().expect("hours");
    assert_eq!(
        hours.len() as i64,
        2 * HOURS,
        "every producer's hour: {report}"
    );
    let mut failed = BTreeSet::new();
    for h in hours {
        let start = chrono::DateTime::parse_from_rfc3339(h["hour"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        for o in h["outcomes"].as_array().unwrap() {
            if o["verdict"] == "fail" {
                failed.insert((
                    h["producer"].as_str().unwrap().to_string(),
                    (start - START) / HOUR_MS,
                    o["check"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_injected_fault_fails_its_rule_in_its_hour_and_nothing_else() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let topic = "quality-faults";
    // Under `update`, the lagging producer's events (ten minutes behind the others in the
    // same partitions) are counted by the speed layer too.
    let time = TimeSettings {
        out_of_orderness_ms: 5_000,
        allowed_lateness_ms: 60_000,
        late_policy: LatePolicy::Update,
    };
    let pipeline = Pipeline::start(broker.brokers(), topic, time, dir.path()).await;
    let records = records();
    produce(broker.brokers(), topic, &records).await;
    pipeline.wait_for_records(records.len() as u64).await;
    let addr = lambda_tests::serving::start(pipeline.state.clone()).await;

    let expected: BTreeSet<(String, i64, String)> = [
        ("app", 2, "freshness"),
        ("app", 4, "validity"),
        ("app", 6, "delay_p99"),
        ("web", 8, "volume"),
    ]
    .into_iter()
    .map(|(p, h, c)| (p.to_string(), h, c.to_string()))
    .collect();
    assert_eq!(failures(&addr).await, expected, "from the speed layer");
    let path = format!("/v1/quality?from={}&to={}", at(0, 0), at(HOURS, 0));
    let (_, report) = get_json(&addr, &path, &[]).await;
    check_speed_notes(&report);
    check_minutes(&addr).await;

    pipeline.batch_dirty_hours().await;
    let published = pipeline.state.batch.published().expect("published");
    assert_eq!(
        published.hours.len() as i64,
        HOURS,
        "{:?}",
        published.hours.keys()
    );
    let c = verify::verify::<Quality>(
        &pipeline.state.batch,
        &pipeline.state.speed.current(),
        at(0, 0),
        at(HOURS, 0),
    )
    .await
    .unwrap();
    assert_eq!(c.hours_compared.len() as i64, HOURS, "{c:?}");
    assert!(
        c.differences.is_empty(),
        "batch and speed quality differ:\n{}",
        verify::table(&c.differences, 10)
    );
    assert_eq!(failures(&addr).await, expected, "from the batch layer");

    // `lambda quality` says the same and exits 1 (a pipeline gate), reading the views as
    // `lambda verify` does: the batch views and the speed instance over HTTP.
    let speed = serve_speed(pipeline.realtime.clone()).await;
    let views = dir.path().join("lake/views");
    let report = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(lambda_tests::bin::lambda_bin());
        cmd.arg("quality")
            .args(["--views", views.to_str().unwrap()])
            .args(["--speed-url", &format!("http://{speed}")])
            .args(["--from", &at(0, 0).to_string()])
            .args(["--to", &at(HOURS, 0).to_string()])
            .args(extra);
        tokio::task::block_in_place(|| cmd.output().expect("lambda quality runs"))
    };
    let text = report(&[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&text.stderr)
    );
    for (producer, hour, check) in &expected {
        let hour = shared_logic::instant::format_instant(at(*hour, 0));
        assert!(
            stdout.lines().any(|l| l.starts_with(&hour)
                && l.contains(producer.as_str())
                && l.contains(&format!("{check} FAIL"))),
            "{hour} {producer} {check} in:\n{stdout}"
        );
    }
    let json = report(&["--json"]);
    assert_eq!(json.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(body["verdict"], "fail");
    check_speed_notes(&body);
    let minutes = report(&["--by-minute"]);
    let text = String::from_utf8_lossy(&minutes.stdout);
    assert_eq!(minutes.status.code(), Some(1), "{text}");
    let app_04 = shared_logic::instant::format_instant(at(4, 30));
    assert!(
        text.lines()
            .any(|l| l.starts_with(&app_04) && l.contains("app") && l.contains("validity FAIL")),
        "{app_04} app validity in:\n{text}"
    );
    assert!(text.contains("1200 producer windows:"), "{text}");
    let rules = report(&["--quality-rule", "none"]);
    assert_eq!(rules.status.code(), Some(0), "no rule, nothing fails");
    pipeline.stop().await;
}

/// The report by minute: app's invalid hour fails `validity` in each of its 60 windows and
/// nowhere else; its 20-minute silence fails `freshness` from the window that ends more
/// than 15 minutes after its last event before it, through the window it ends in (the
/// windows hold event times, a second before the record times the fault cuts at), and
/// nothing else fails `freshness`.
async fn check_minutes(addr: &str) {
    let path = format!(
        "/v1/quality?from={}&to={}&granularity=minute",
        at(0, 0),
        at(HOURS, 0)
    );
    let (status, report) = get_json(addr, &path, &[]).await;
    assert_eq!(status, 200, "{report}");
    let windows = report["windows"].as_array().expect("windows");
    assert_eq!(
        windows.len() as i64,
        2 * HOURS * 60,
        "every producer's minute"
    );
    let failing = |producer: &str, check: &str| -> Vec<i64> {
        windows
            .iter()
            .filter(|w| w["producer"] == producer)
            .filter(|w| {
                w["outcomes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|o| o["check"] == check && o["verdict"] == "fail")
            })
            .map(|w| {
                let t = chrono::DateTime::parse_from_rfc3339(w["window"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
                (t - START) / MIN
            })
            .collect()
    };
    assert_eq!(
        failing("app", "validity"),
        (4 * 60..5 * 60).collect::<Vec<_>>()
    );
    assert!(failing("web", "validity").is_empty());
    assert!(failing("web", "freshness").is_empty());
    let silent = failing("app", "freshness");
    let (first, last) = (silent[0], silent[silent.len() - 1]);
    assert!(
        [2 * 60 + 34, 2 * 60 + 35].contains(&first)
            && [2 * 60 + 39, 2 * 60 + 40].contains(&last)
            && silent == (first..=last).collect::<Vec<_>>(),
        "{silent:?}"
    );
}

/// What only the speed layer saw, in a report of the ten hours it still holds: every
/// producer hour's arrivals, marked as the speed layer's, count each of its events once
/// (under `update` the late ones are counted too, so as many as the `quality` figure);
/// late events are the lagging producer's in hour 6 and nowhere else, and most of its
/// events there, all out of order; the dead-letter samples are the invalid records of
/// `app` in hour 4, at most three per reason, one reason each of those rejected.
fn check_speed_notes(report: &serde_json::Value) {
    assert_eq!(
        report["speed_notes_missing"],
        serde_json::Value::Null,
        "{report}"
    );
    for h in report["hours"].as_array().expect("hours") {
        let producer = h["producer"].as_str().unwrap();
        let start = chrono::DateTime::parse_from_rfc3339(h["hour"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let hour = (start - START) / HOUR_MS;
        let arrival = &h["arrival"];
        let tag = format!("{producer} hour {hour}: {h}");
        assert_eq!(arrival["layer"], "speed", "{tag}");
        assert_eq!(arrival["events"], h["figures"]["events"], "{tag}");
        let late_share = arrival["late_share"].as_f64().unwrap();
        let out_of_order_share = arrival["out_of_order_share"].as_f64().unwrap();
        if (producer, hour) == ("app", 6) {
            assert!(late_share > 0.5, "{tag}");
            assert!(out_of_order_share >= late_share, "{tag}");
        } else {
            assert!(late_share < 0.01, "{tag}");
        }
        let samples = h["dead_letter_samples"].as_array().unwrap();
        if (producer, hour) == ("app", 4) {
            let reasons: BTreeSet<&str> = samples
                .iter()
                .map(|s| s["reason"].as_str().unwrap())
                .collect();
            let rejected: BTreeSet<&str> = h["rejected_by_reason"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(reasons, rejected, "{tag}");
            for reason in reasons {
                let n = samples.iter().filter(|s| s["reason"] == reason).count();
                assert!((1..=3).contains(&n), "{tag}");
            }
            assert!(samples
                .iter()
                .all(|s| !s["record"].as_str().unwrap().is_empty()));
        } else {
            assert!(samples.is_empty(), "{tag}");
        }
    }
}

/// The speed layer's views endpoint (what `lambda speed` serves) on a free loopback port.
async fn serve_speed(views: speed::views::RealtimeViews) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        axum::serve(listener, speed::http::router(views, None))
            .await
            .expect("speed endpoint runs");
    });
    addr
}
