//! The reporting currency is configuration (`--reporting-currency`, `--rates-file`) and part
//! of the logic fingerprint: the batch job and a speed instance both run in EUR report the
//! same revenue, equal to the direct computation in EUR; a USD batch differs from the EUR
//! speed layer and `lambda verify` says so; bad values are refused with their reason.

use std::process::{Command, Output};

use lambda_io::Lake;
use lambda_tests::{Broker, ChildGuard};
use shared_logic::metrics::Revenue;
use shared_logic::{Aggregates, Currency, MetricContext, Origin, Rates, Validator};

fn lambda(args: &[&str]) -> Output {
    Command::new(lambda_tests::bin::lambda_bin())
        .args(args)
        .env_remove("KAFKA_BROKERS")
        .env("LAMBDA_LOG", "warn")
        .output()
        .expect("lambda runs")
}

fn said(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const GENERATE: [&str; 8] = [
    "--seed",
    "23",
    "--count",
    "6000",
    "--event-rate",
    "1.5",
    "--start",
    "2026-01-01T10:00:00Z",
];

#[test]
fn both_layers_report_revenue_in_the_configured_currency_and_agree() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).display().to_string();
    let (file, lake) = (path("events.ndjson"), path("lake"));

    // The same 6,000 events (seed 23) into a file for the lake and into Kafka for speed.
    let out = lambda(&[&["generate", "--output", &file][..], &GENERATE].concat());
    assert!(out.status.success(), "{}", said(&out));
    let out = lambda(
        &[
            &["generate", "--kafka", "--brokers", broker.brokers()][..],
            &["--topic", "currency", "--partitions", "2"],
            &GENERATE,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", said(&out));
    let out = lambda(&["lake", "import", &file, "--lake", &lake]);
    assert!(out.status.success(), "{}", said(&out));

    // Batch in EUR (views under <lake>/views) and in USD (another views location).
    let (eur_views, usd_views) = (format!("{lake}/views"), path("usd-views"));
    let batch =
        |extra: &[&str]| lambda(&[&["batch", "--lake", &lake, "--dirty"][..], extra].concat());
    let out = batch(&["--reporting-currency", "eur"]);
    assert!(out.status.success(), "{}", said(&out));
    let out = batch(&["--views", &usd_views]);
    assert!(out.status.success(), "{}", said(&out));

    // The EUR views equal the direct computation in EUR, and differ from USD's.
    let lines = std::fs::read(&file).unwrap();
    let validator = Validator::default();
    let events = shared_logic::dedup::first_wins(
        lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .filter_map(|(i, l)| {
                validator
                    .validate(l, Origin::import_line(i as i64), i64::MAX / 2)
                    .ok()
            }),
    );
    let in_eur = MetricContext {
        rates: Rates::shipped(Currency::EUR),
        ..MetricContext::default()
    };
    let expected = Aggregates::fold(&events, &in_eur).revenue;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let published = |views: &str| {
        runtime.block_on(lambda_tests::published::published_views::<Revenue>(
            &Lake::open(views, false).unwrap(),
        ))
    };
    let batch_eur = published(&eur_views);
    assert!(expected.len() > 50, "{} keys", expected.len());
    assert_eq!(
        lambda_tests::data::keys_differing(&batch_eur, &expected),
        0,
        "the EUR batch is the direct computation in EUR"
    );
    let batch_usd = published(&usd_views);
    assert!(
        lambda_tests::data::keys_differing(&batch_usd, &expected) > 0,
        "USD revenue is another number"
    );
    let logic = |views: &str| {
        runtime
            .block_on(lambda_io::manifest::Published::load(
                &Lake::open(views, false).unwrap(),
            ))
            .unwrap()
            .logic
    };
    let (eur_logic, usd_logic) = (logic(&eur_views), logic(&usd_views));
    assert_ne!(
        eur_logic, usd_logic,
        "the currency is part of the logic fingerprint"
    );

    // A speed instance in EUR reads the same events: verify finds it equal to the EUR
    // batch, and different from the USD one.
    let listen = lambda_tests::http::free_addr();
    let checkpoints = path("checkpoints");
    let _speed = ChildGuard(
        Command::new(lambda_tests::bin::lambda_bin())
            .args([
                "speed",
                "--brokers",
                broker.brokers(),
                "--topic",
                "currency",
            ])
            .args(["--group", "currency", "--checkpoints", &checkpoints])
            .args(["--listen", &listen, "--reporting-currency", "EUR"])
            .env_remove("KAFKA_BROKERS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    lambda_tests::wait_for(
        "the speed instance to read the 6,000 events",
        std::time::Duration::from_secs(90),
        || {
            lambda_tests::http::get(&listen, "/v1/speed/status")
                .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|s| s["progress"]["counters"]["records"].as_u64() == Some(6000))
        },
    );
    let status: serde_json::Value = serde_json::from_slice(
        &lambda_tests::http::get(&listen, "/v1/speed/status")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(
        status["logic"].as_str(),
        Some(eur_logic.as_str()),
        "the EUR speed instance runs the EUR batch's logic: {status}"
    );
    let verify = |views: &str| {
        lambda(&[
            "verify",
            "--metric",
            "revenue",
            "--views",
            views,
            "--speed-url",
            &format!("http://{listen}"),
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-02T00:00:00Z",
        ])
    };
    let out = verify(&eur_views);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("revenue: 2 hours compared"),
        "{}",
        said(&out)
    );
    let out = verify(&usd_views);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));

    // Bad values: a reason, exit 2 for the batch's usage errors, never a panic.
    let out = batch(&["--reporting-currency", "XYZ"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("--reporting-currency `XYZ`: not one of USD, EUR, GBP, JPY, CNY"),
        "{}",
        said(&out)
    );
    let rates = path("rates.csv");
    std::fs::write(
        &rates,
        "valid_from,currency,usd_per_unit\n2026-01-01,EUR,lots\n",
    )
    .unwrap();
    let out = batch(&["--rates-file", &rates]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("--rates-file") && said(&out).contains("bad rate `lots`"),
        "{}",
        said(&out)
    );
}
