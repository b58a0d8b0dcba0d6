//! The live dashboard in a real browser: the serving layer runs in-process over a lake
//! whose previous hour the batch job has published and speed views holding the last 90
//! minutes; headless Chromium (Debian's, driven by playwright-core:
//! `tests/browser/dashboard.mjs`) loads the page and checks that every bar, tile and table
//! row shows the number the API serves and that the batch/real-time boundary is marked.
//! The screenshot is kept as a test artefact (`LAMBDA_ARTIFACTS_DIR`, default
//! `/var/tmp/lambda-artifacts`). Needs `scripts/browser-deps.sh` (CI runs it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::Lake;
use serving::batch_views::BatchViews;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::generate_producers::{Fault, FaultKind, Producers};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{MetricContext, Validator};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_served_numbers() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.mjs");
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/node_modules");
    assert!(
        modules.join("playwright-core").exists()
            && std::path::Path::new(
                &std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
            )
            .exists(),
        "the browser test needs Chromium and playwright-core: run scripts/browser-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let minute = now.div_euclid(60_000) * 60_000;
    // Two producers: the quality panel has a row for each.
    let generator = Generator::new(GeneratorConfig {
        seed: 5,
        start_ms: minute - 90 * 60_000,
        events_per_second: 4.0,
        ..GeneratorConfig::default()
    });
    let producers = vec![("web".to_string(), 3.0), ("ios".to_string(), 1.0)];
    // A fifth of `ios`'s records invalid in the last 20 minutes: dead letters to click to.
    let invalid = Fault {
        producer: "ios".into(),
        from_ms: minute - 20 * 60_000,
        to_ms: minute,
        kind: FaultKind::Invalid(0.2),
    };
    let produced: Vec<_> = Producers::new(generator, producers, vec![invalid], 5)
        .unwrap()
        .take(4 * 88 * 60)
        .collect();
    let lines: Vec<Vec<u8>> = produced.iter().map(|r| r.record.json.clone()).collect();

    // The lake and the batch views of the previous complete hour.
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap(), true).unwrap();
    let views = Lake::open(dir.path().join("views").to_str().unwrap(), true).unwrap();
    lambda_tests::data::import_lines(&lake, &lines, "dashboard", 10_000, now).await;
    let previous_hour = HourKey(now.div_euclid(HOUR_MS) - 1);
    job::run(
        &lake,
        &views,
        &HourSelection::One(previous_hour),
        &BatchOptions::default(),
    )
    .await
    .unwrap();

    // Speed views over the same stream.
    let realtime = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(3_600),
    );
    speed::consumer::apply_records(
        &realtime,
        &Validator::default(),
        lines.iter().enumerate().map(|(i, l)| {
            (
                (i % 3) as i32,
                (i / 3) as i64,
                produced[i].at_ms,
                l.as_slice(),
            )
        }),
    );
    // Change streams of the same 88 minutes: the sales table's `daily_sales`.
    let changes =
        shared_logic::generate_cdc::CdcGenerator::new(shared_logic::generate_cdc::CdcConfig {
            seed: 5,
            start_ms: minute - 90 * 60_000,
            orders_per_second: 0.5,
            users: 400,
            ..Default::default()
        })
        .take_while(|r| r.ts_ms < minute - 2 * 60_000);
    let ctx = MetricContext::default();
    realtime.update_orders(|o| {
        for (offset, r) in changes.enumerate() {
            let change = shared_logic::cdc::Change::parse(r.table, &r.json)
                .unwrap()
                .unwrap();
            match r.table {
                shared_logic::cdc::CdcTable::Products => o.apply_product(&change, &ctx),
                shared_logic::cdc::CdcTable::Users => o.apply_user(&change, &ctx),
                shared_logic::cdc::CdcTable::Orders => {
                    o.apply_order(0, offset as i64, change, &ctx)
                }
            };
        }
    });
    let state = Arc::new(AppState {
        batch: BatchViews::new(views, 16),
        speed: SpeedViews::in_process(realtime).into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions::default(),
    });
    state.batch.refresh().await.unwrap();
    let addr = lambda_tests::serving::start(state).await;

    let artifacts = PathBuf::from(
        std::env::var("LAMBDA_ARTIFACTS_DIR")
            .unwrap_or_else(|_| "/var/tmp/lambda-artifacts".into()),
    );
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let end = shared_logic::instant::format_instant(minute + 60_000);
    // 75 minutes: the batch boundary (the start of the current hour) is always strictly
    // inside the range (with 60, at minute 59 it would fall on the range's start).
    let url = format!("http://{addr}/?minutes=75&end={end}&refresh=2");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg("--url")
        .arg(&url)
        .arg("--screenshot")
        .arg(&screenshot)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), output)
        .await
        .expect("the browser test finished in time")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dashboard check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("summary line is JSON ({e}): {stdout}"));
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(
        summary["boundary"], true,
        "the boundary is marked: {summary}"
    );
    assert!(
        summary["bars"].as_u64().unwrap_or(0) >= 50,
        "a bar per minute: {summary}"
    );
    assert!(
        summary["sales"].as_u64().unwrap_or(0) >= 10,
        "the sales table shows the served daily_sales rows: {summary}"
    );
    assert_eq!(
        summary["producers"],
        serde_json::json!(["ios", "web"]),
        "the quality panel has a row per producer: {summary}"
    );
    assert!(
        summary["quality_cells"].as_u64().unwrap_or(0) >= 4,
        "the quality panel judges both producers' hours: {summary}"
    );
    assert!(
        summary["dead_letters_shown"].as_u64().unwrap_or(0) >= 1,
        "a quality cell clicks through to its sample dead letters: {summary}"
    );
    assert!(screenshot.exists());
    eprintln!("dashboard screenshot: {}", screenshot.display());
}
