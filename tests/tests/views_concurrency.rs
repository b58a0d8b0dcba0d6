//! Concurrent batch runs publish safely into the views' Delta tables, with no lock:
//! - four `lambda batch --hour` processes on four different hours, started at once, all
//!   succeed and all four hours are published, with the views a direct computation gives;
//! - two processes on the same hour, started at once (several rounds), both succeed; no
//!   version of any metric's table ever holds two files of the hour (a reader never sees a
//!   mixed state), and every metric ends with the hour of one and the same run.

use std::process::{Command, Output};

use lambda_io::delta::Table;
use lambda_io::manifest::Published;
use lambda_io::view_tables::RUN_TAG;
use lambda_io::Lake;
use lambda_tests::bin::lambda_bin;
use lambda_tests::published::published_views;
use shared_logic::dedup::first_wins;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::metrics::{Funnel, PageViews, Revenue};
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext, Origin, Validator};

const NOW: i64 = 4_000_000_000_000;
const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00Z
const HOURS: [&str; 4] = [
    "2026-01-01T00",
    "2026-01-01T01",
    "2026-01-01T02",
    "2026-01-01T03",
];

fn lines() -> Vec<Vec<u8>> {
    let cfg = GeneratorConfig {
        seed: 18,
        start_ms: START,
        events_per_second: 2.0,
        duplicate_fraction: 0.03,
        out_of_order_fraction: 0.03,
        ..GeneratorConfig::default()
    };
    // Four hours at two events a second.
    Generator::new(cfg)
        .take(4 * 3600 * 2)
        .map(|r| r.json)
        .collect()
}

fn direct(lines: &[Vec<u8>]) -> Aggregates {
    let v = Validator::default();
    let events = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), NOW).ok());
    Aggregates::fold(&first_wins(events), &MetricContext::default())
}

fn batch_hour(lake: &std::path::Path, hour: &str) -> std::process::Child {
    Command::new(lambda_bin())
        .args(["batch", "--lake", lake.to_str().unwrap(), "--hour", hour])
        .env("LAMBDA_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lambda batch")
}

fn succeeded(out: Output) {
    assert!(
        out.status.success(),
        "lambda batch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn assert_views_equal_direct(views: &Lake, expected: &Aggregates) {
    let pv = published_views::<PageViews>(views).await;
    assert_eq!(
        lambda_tests::data::keys_differing(&pv, &expected.page_views),
        0
    );
    let funnel = published_views::<Funnel>(views).await;
    assert_eq!(
        lambda_tests::data::keys_differing(&funnel, &expected.funnel),
        0
    );
    let revenue = published_views::<Revenue>(views).await;
    assert_eq!(
        lambda_tests::data::keys_differing(&revenue, &expected.revenue),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_different_hours_all_publish_and_of_one_hour_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::open(root.to_str().unwrap(), true).unwrap();
    let views = lake.child("views");
    let data = lines();
    lambda_tests::data::import_lines(&lake, &data, "gen", 5_000, NOW).await;
    let expected = direct(&data);

    // Four hours at once.
    let runs: Vec<_> = HOURS.iter().map(|h| batch_hour(&root, h)).collect();
    for run in runs {
        succeeded(run.wait_with_output().unwrap());
    }
    let published = Published::load(&views).await.unwrap();
    for metric in ["page_views", "funnel", "revenue", "sessions"] {
        let covered: Vec<&String> = published.coverage[metric].keys().collect();
        assert_eq!(covered, HOURS.to_vec(), "{metric}: every hour published");
    }
    assert_views_equal_direct(&views, &expected).await;

    // The same hour twice at once, three rounds.
    let hour = HourKey::parse(HOURS[1]).unwrap();
    for _round in 0..3 {
        let (a, b) = (batch_hour(&root, HOURS[1]), batch_hour(&root, HOURS[1]));
        succeeded(a.wait_with_output().unwrap());
        succeeded(b.wait_with_output().unwrap());
    }
    let mut runs_of_hour = std::collections::BTreeSet::new();
    for metric in ["page_views", "funnel", "revenue", "sessions"] {
        let mut table = Table::open(&views.child(metric)).await.unwrap().unwrap();
        let latest = table.version();
        let at_hour = |t: &Table| -> Vec<String> {
            t.files()
                .unwrap()
                .into_iter()
                .filter(|f| f.hour == Some(hour))
                .map(|f| f.tags[RUN_TAG].clone())
                .collect()
        };
        runs_of_hour.extend(at_hour(&table));
        // Create, four hours, then per round one or two commits (a run that finds a later
        // run's hour published commits nothing).
        assert!(
            (4 + 3..=4 + 6).contains(&latest),
            "{metric}: one commit per published run and hour, v{latest}"
        );
        for version in 0..=latest {
            table.load_version(version).await.unwrap();
            let files = at_hour(&table);
            assert!(
                files.len() <= 1,
                "{metric} v{version} holds {} files of {hour}: {files:?}",
                files.len()
            );
        }
    }
    assert_eq!(
        runs_of_hour.len(),
        1,
        "every metric's {hour} comes from one run: {runs_of_hour:?}"
    );
    assert_views_equal_direct(&views, &expected).await;
}
