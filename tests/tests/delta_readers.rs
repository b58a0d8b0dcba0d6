//! Clients we did not write read the lake's and the views' Delta tables (issue 18):
//! `tests/delta/check_tables.py` reads every table of a lake built the real way (generated
//! events and change streams through the local broker and the lake writer, dead letters
//! among them, then `lambda batch` twice) three ways: the Python `deltalake` package, its
//! own replay of `_delta_log` (JSON actions, checkpoints honoured) with pyarrow, and
//! DuckDB's `read_parquet` over exactly the files the snapshot names. Then:
//! - all three agree on every table (version, files, rows, rows per partition, application
//!   transactions), and no Parquet file lies outside a table;
//! - the lake holds every produced record once (events per hour as produced, every dead
//!   letter), and each source partition's transaction version is its last offset;
//! - each view's per-minute sums of its additive values equal what `lambda serve` answers
//!   for every hour the table covers, exactly;
//! - time travel: `DeltaTable(path, version=N)` of `page_views` equals the API's
//!   `as_of_version=N` answer (an hour recomputed since, so the versions differ);
//! - a checkpoint written by `deltalake` on a copy of `events` replays to the same snapshot.
//!
//! The Python tools come from `scripts/python-tools.sh` (the venv in `LAMBDA_VENV`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use batch::lake_writer::{WriterOptions, WriterStats};
use lambda_io::Lake;
use lambda_tests::pipeline::spawn_lake_writer;
use lambda_tests::serving::served_rows;
use lambda_tests::Broker;
use serde_json::Value;
use shared_logic::cdc::CdcTable;
use shared_logic::generate::{Generator, GeneratorConfig, Record};
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
use shared_logic::window::HOUR_MS;
use shared_logic::{Origin, Validator};
use tokio::sync::watch;

/// 2026-01-01T00:00:00Z.
const H0: i64 = 1_767_225_600_000;
const HOURS: i64 = 3;
const TOPIC: &str = "delta-readers";
const GROUP: &str = "delta-readers-lake";

/// Per metric, the values that add up across keys (distinct counts do not).
const ADDITIVE: &[(&str, &[&str])] = &[
    ("page_views", &["views"]),
    ("funnel", &["views", "carts", "purchases"]),
    ("revenue", &["orders", "items", "revenue_minor"]),
    (
        "sessions",
        &["sessions", "total_duration_ms", "page_views", "bounces"],
    ),
    (
        "orders",
        &[
            "orders",
            "gross_revenue_minor",
            "cancellations",
            "reversed_revenue_minor",
            "net_revenue_minor",
        ],
    ),
    ("daily_sales", &["orders", "revenue_minor"]),
    (
        "quality",
        &["events", "duplicates", "timed", "ahead", "rejected"],
    ),
];

/// The generated records of the events topic, in two deliveries: the first lacks every
/// tenth record of the first two hours and the whole third hour, which the second brings
/// (so the first hour is recomputed by the second batch run).
struct Events {
    first: Vec<Record>,
    second: Vec<Record>,
    /// Valid events per partition (`date/hour`).
    per_hour: BTreeMap<String, u64>,
    invalid: u64,
}

fn events() -> Events {
    let now = chrono::Utc::now().timestamp_millis();
    let validator = Validator::default();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let (mut per_hour, mut invalid) = (BTreeMap::new(), 0);
    let mut third_hour = false;
    let cfg = GeneratorConfig {
        seed: 18,
        start_ms: H0,
        events_per_second: 1.0,
        users: 2_000,
        concurrent_sessions: 200,
        invalid_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    for (i, r) in Generator::new(cfg).enumerate() {
        match validator.validate(&r.json, Origin::import_line(0), now) {
            Ok(e) => {
                let t = e.event_time().0;
                if t >= H0 + HOURS * HOUR_MS {
                    break;
                }
                third_hour = t >= H0 + 2 * HOUR_MS;
                let at = chrono::DateTime::from_timestamp_millis(t).unwrap();
                *per_hour
                    .entry(at.format("%Y-%m-%d/%-H").to_string())
                    .or_default() += 1;
            }
            Err(_) => invalid += 1,
        }
        if third_hour || i % 10 == 0 {
            second.push(r);
        } else {
            first.push(r);
        }
    }
    Events {
        first,
        second,
        per_hour,
        invalid,
    }
}

/// The change streams of the three hours: (table, key, JSON).
fn changes() -> Vec<(CdcTable, String, Vec<u8>)> {
    CdcGenerator::new(CdcConfig {
        seed: 18,
        start_ms: H0,
        orders_per_second: 0.05,
        products: 40,
        ..CdcConfig::default()
    })
    .take_while(|r| r.ts_ms < H0 + HOURS * HOUR_MS)
    .map(|r| (r.table, r.key, r.json))
    .collect()
}

fn writer(
    brokers: &str,
    lake: &Lake,
    topic: &str,
    group: &str,
    cdc: Option<CdcTable>,
    mut stop: watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<WriterStats, batch::BatchError>> {
    let opts = WriterOptions {
        topics: vec![topic.into()],
        group_id: group.into(),
        roll_age: Duration::from_secs(1),
        cdc,
        ..WriterOptions::default()
    };
    spawn_lake_writer(brokers, lake, opts, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
}

/// `lambda <args>`, which must exit 0.
fn lambda(args: &[&str]) {
    let out = Command::new(lambda_tests::bin::lambda_bin())
        .args(args)
        .env("LAMBDA_LOG", "warn")
        .output()
        .expect("lambda runs");
    assert!(
        out.status.success(),
        "lambda {}: exit {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The latest version of the table at `dir`.
async fn version_of(dir: &std::path::Path) -> u64 {
    let location = Lake::open(dir.to_str().unwrap(), false).unwrap();
    lambda_io::delta::Table::open(&location)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no table at {}", dir.display()))
        .version()
}

/// Runs the checker over the lake at `root`; its JSON.
fn check_tables(root: &std::path::Path, extra: &[String]) -> Value {
    let venv = std::env::var("LAMBDA_VENV").unwrap_or_else(|_| "/var/tmp/lambda-venv".into());
    let python = format!("{venv}/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/delta/check_tables.py");
    let out = Command::new(&python)
        .arg(script)
        .arg(root)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{python} does not run ({e}): run scripts/python-tools.sh"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "{stderr}: run scripts/python-tools.sh first"
    );
    assert!(out.status.success(), "check_tables.py failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).expect("check_tables.py prints JSON")
}

/// The three readings of one table agree; the `deltalake` reading.
fn readers_agree<'a>(name: &str, table: &'a Value) -> &'a Value {
    let (delta, log, duck) = (&table["deltalake"], &table["log"], &table["duckdb"]);
    for key in [
        "version",
        "files",
        "rows",
        "partitions",
        "types",
        "txns",
        "offsets",
        "windows",
    ] {
        assert_eq!(
            delta[key], log[key],
            "{name}: `{key}` read by deltalake vs the log replay"
        );
    }
    assert_eq!(log["rows_in_stats"], log["rows"], "{name}: numRecords");
    // The events table has an event-type level below its hours; every file holds only its
    // partition's type, and DuckDB (types from the hive paths) counts the same per type.
    let partitioning = match name {
        "events" => serde_json::json!(["date", "hour", "event_type"]),
        _ => serde_json::json!(["date", "hour"]),
    };
    assert_eq!(delta["partition_columns"], partitioning, "{name}");
    assert_eq!(log["type_mismatches"], serde_json::json!([]), "{name}");
    assert_eq!(
        duck["types"], delta["types"],
        "{name}: rows per type, DuckDB"
    );
    if name == "events" {
        let types = delta["types"].as_object().expect("rows per type");
        assert_eq!(types.len(), 3, "{name}: {types:?}");
        let sum: u64 = types.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(Some(sum), delta["rows"].as_u64(), "{name}");
    }
    assert_eq!(
        log["partition_columns"], delta["partition_columns"],
        "{name}"
    );
    assert_eq!(duck["rows"], delta["rows"], "{name}: rows read by DuckDB");
    assert_eq!(duck["partitions"], delta["partitions"], "{name}: DuckDB");
    assert!(delta["rows"].as_u64().unwrap() > 0, "{name} holds rows");
    delta
}

/// Per Kafka partition, the last offset of `topic`.
fn last_offsets(broker: &Broker, topic: &str) -> BTreeMap<i32, i64> {
    lambda_tests::topic::read_all(&broker.client_config(), topic)
        .into_iter()
        .map(|(p, records)| (p, records.last().expect("a record").offset))
        .collect()
}

/// Each partition's last offset is the newest transaction version of `group` over
/// `tables`, and no table holds a record past its own version.
fn transactions_are_last_offsets(
    tables: &[&Value],
    topic: &str,
    group: &str,
    last: &BTreeMap<i32, i64>,
) {
    for (p, offset) in last {
        let app = format!("{topic}/{p}/{group}");
        let mut newest = None;
        for t in tables {
            let Some(v) = t["txns"][&app].as_i64() else {
                continue;
            };
            let held = t["offsets"][p.to_string()].as_i64().unwrap_or(-1);
            assert!(held <= v, "{app}: a row at offset {held} past version {v}");
            newest = newest.max(Some(v));
        }
        assert_eq!(newest, Some(*offset), "{app}: transaction version");
    }
}

/// Per partition (`date=…/hour=…`, and `…/event_type=…` below it in the events table) of an
/// hour that ended before `at`: the files a reading of a table names there.
fn files_per_settled_hour(
    table: &Value,
    at: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for file in table["files"].as_array().expect("files") {
        let path = file.as_str().expect("a path");
        let dir = &path[..path.rfind('/').expect("a partition directory")];
        let hour_dir = dir.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
        let hour = chrono::NaiveDateTime::parse_from_str(
            &format!("{hour_dir}:00"),
            "date=%Y-%m-%d/hour=%H:%M",
        )
        .unwrap_or_else(|e| panic!("{path}: not in an hour partition ({e})"));
        if hour.and_utc() + chrono::Duration::hours(1) <= at {
            *out.entry(dir.to_string()).or_default() += 1;
        }
    }
    out
}

/// The views of each hour `table` covers equal what the API serves at minute granularity
/// (as of `as_of`, a query suffix), additive values exactly.
async fn served_equals_table(addr: &str, metric: &str, table: &Value, as_of: &str) {
    let additive = ADDITIVE.iter().find(|(m, _)| *m == metric).unwrap().1;
    let windows = table["windows"].as_object().expect("views have windows");
    let hours: BTreeSet<i64> = windows
        .keys()
        .map(|w| w.parse::<i64>().unwrap().div_euclid(HOUR_MS) * HOUR_MS)
        .collect();
    assert!(!hours.is_empty(), "{metric}: no window");
    for hour in hours {
        let path = format!(
            "/v1/metrics/{metric}?from={hour}&to={}&granularity=minute&limit=100000{as_of}",
            hour + HOUR_MS
        );
        let served: BTreeMap<String, Value> = served_rows(addr, &path)
            .await
            .into_iter()
            .map(|(start, row)| (start.to_string(), row))
            .collect();
        let expected: BTreeSet<&String> = windows
            .keys()
            .filter(|w| (hour..hour + HOUR_MS).contains(&w.parse::<i64>().unwrap()))
            .collect();
        assert_eq!(
            served.keys().collect::<BTreeSet<_>>(),
            expected,
            "{path}: the windows served vs the table's"
        );
        for (w, row) in &served {
            assert_eq!(row["source"], "batch", "{path}: {row}");
            for value in additive {
                assert_eq!(
                    row["values"][value], windows[w][value],
                    "{path}: `{value}` of window {w}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_we_did_not_write_see_the_lake_and_views_the_api_serves() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let lake_arg = lake_dir.to_str().unwrap().to_string();
    let lake = Lake::open(&lake_arg, true).unwrap();
    let events = events();
    let changes = changes();
    let settings = lambda_io::kafka::KafkaSettings::new(broker.brokers());
    lambda_io::kafka::ensure_topics(
        &settings,
        &[
            (TOPIC, 3),
            (CdcTable::Orders.default_topic(), 3),
            (CdcTable::Products.default_topic(), 2),
            (CdcTable::Users.default_topic(), 2),
        ],
        Duration::from_secs(30),
    )
    .await
    .expect("topics");

    let (stop, stopped) = watch::channel(false);
    let mut writers = vec![writer(
        broker.brokers(),
        &lake,
        TOPIC,
        GROUP,
        None,
        stopped.clone(),
    )];
    for table in CdcTable::ALL {
        writers.push(writer(
            broker.brokers(),
            &lake,
            table.default_topic(),
            &format!("delta-readers-{}", table.name()),
            Some(table),
            stopped.clone(),
        ));
    }
    for table in CdcTable::ALL {
        let producer =
            lambda_io::kafka::EventProducer::new(&settings, table.default_topic()).unwrap();
        for (_, key, json) in changes.iter().filter(|c| c.0 == table) {
            producer.send(key.as_bytes(), json).expect("queued");
        }
        producer
            .flush(Duration::from_secs(60))
            .expect("acknowledged");
    }
    let in_lake = |records: usize| {
        let (lake_dir, changes) = (lake_dir.clone(), changes.len() as u64);
        move || {
            lambda_tests::lake_files::positions(&lake_dir).len() >= records
                && lambda_tests::lake_files::rows(&lake_dir.join("cdc")) >= changes
        }
    };
    let long = Duration::from_secs(180);

    // First delivery, and a batch run of the first hour.
    lambda_tests::topic::produce(broker.brokers(), TOPIC, 3, &events.first).await;
    lambda_tests::wait_until(
        "the first delivery in the lake",
        long,
        in_lake(events.first.len()),
    )
    .await;
    lambda(&["batch", "--lake", &lake_arg, "--hour", "2026-01-01T00"]);
    let page_views = lake_dir.join("views/page_views");
    let first_version = version_of(&page_views).await;

    // The rest (the first hour changes), and a run of every hour left to compute.
    lambda_tests::topic::produce(broker.brokers(), TOPIC, 3, &events.second).await;
    let all = events.first.len() + events.second.len();
    lambda_tests::wait_until("every record in the lake", long, in_lake(all)).await;
    let _ = stop.send(true);
    for w in writers {
        tokio::task::spawn_blocking(move || w.join())
            .await
            .unwrap()
            .expect("writer thread")
            .expect("the lake writer stops cleanly");
    }
    lambda(&["batch", "--lake", &lake_arg, "--dirty"]);
    assert!(version_of(&page_views).await > first_version);

    let as_of = format!("views/page_views={first_version}");
    let report = tokio::task::spawn_blocking({
        let lake_dir = lake_dir.clone();
        move || {
            check_tables(
                &lake_dir,
                &[
                    "--as-of".into(),
                    as_of,
                    "--checkpoint-copy".into(),
                    "events".into(),
                ],
            )
        }
    })
    .await
    .unwrap();

    // Every table, read alike by the three readers; nothing outside a table.
    let tables = report["tables"].as_object().unwrap();
    let mut names: Vec<&str> = tables.keys().map(String::as_str).collect();
    names.sort();
    let mut expected = vec![
        "cdc/orders",
        "cdc/products",
        "cdc/users",
        "dead-letter",
        "events",
    ];
    let metrics: Vec<String> = shared_logic::registry::NAMES
        .iter()
        .map(|m| format!("views/{m}"))
        .collect();
    expected.extend(metrics.iter().map(String::as_str));
    expected.sort();
    // The orders pass's products and users dimensions are one plain Parquet file per run,
    // by design.
    let loose: Vec<&Value> = report["loose_parquet_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d.as_str().unwrap().starts_with("views/dimensions/"))
        .collect();
    assert!(
        loose.is_empty(),
        "Parquet files outside every table (written, never committed): {loose:?}"
    );
    assert_eq!(names, expected, "the lake's and the views' tables");
    let read: BTreeMap<&str, &Value> = tables
        .iter()
        .map(|(name, t)| (name.as_str(), readers_agree(name, t)))
        .collect();

    // The lake: every record once, transactions at the last offsets.
    let per_hour: BTreeMap<String, u64> =
        serde_json::from_value(read["events"]["partitions"].clone()).unwrap();
    assert_eq!(per_hour, events.per_hour, "events per hour partition");
    assert_eq!(read["dead-letter"]["rows"], events.invalid, "dead letters");
    for table in CdcTable::ALL {
        let name = format!("cdc/{}", table.name());
        let produced = changes.iter().filter(|c| c.0 == table).count();
        assert_eq!(read[name.as_str()]["rows"], produced as u64, "{name}");
        let group = format!("delta-readers-{}", table.name());
        let last = last_offsets(&broker, table.default_topic());
        transactions_are_last_offsets(&[read[name.as_str()]], table.default_topic(), &group, &last);
    }
    let last = last_offsets(&broker, TOPIC);
    transactions_are_last_offsets(&[read["events"], read["dead-letter"]], TOPIC, GROUP, &last);
    let copy = &report["checkpoint_copy"]["events"];
    assert!(
        copy["checkpoint"].as_u64().is_some(),
        "the copy has a checkpoint: {copy}"
    );
    for key in ["version", "files", "rows", "partitions", "txns", "offsets"] {
        assert_eq!(
            copy[key], read["events"][key],
            "`{key}` replayed through a checkpoint"
        );
    }

    // The views: what the API serves, now and as of the first run's version.
    let listen = lambda_tests::http::free_addr();
    let views = lake_dir.join("views").display().to_string();
    let speed = format!("http://{}", lambda_tests::http::free_addr());
    // Quiet: until the views are loaded, the polls below ask for the absent speed layer.
    let mut serve = lambda_tests::faults::spawn_logging(
        &[
            "serve",
            "--no-collector",
            "--listen",
            &listen,
            "--views",
            &views,
            "--speed-url",
            &speed,
        ],
        "error",
    );
    lambda_tests::wait_for(
        "lambda serve to load the views",
        Duration::from_secs(60),
        || {
            if let Ok(Some(status)) = serve.0.try_wait() {
                panic!("lambda serve exited: {status}");
            }
            // Batch-covered hours answer once the views are loaded (no speed layer runs).
            let first_hour = format!(
                "/v1/metrics/page_views?from={H0}&to={}&granularity=hour",
                H0 + HOUR_MS
            );
            lambda_tests::http::get(&listen, &first_hour).is_some_and(|(s, _)| s == 200)
        },
    );
    for metric in shared_logic::registry::NAMES {
        served_equals_table(
            &listen,
            metric,
            read[format!("views/{metric}").as_str()],
            "",
        )
        .await;
    }
    let then = &report["as_of"][format!("views/page_views={first_version}")];
    assert_eq!(then["deltalake"]["version"], first_version);
    for key in ["files", "rows", "partitions", "windows"] {
        assert_eq!(
            then["deltalake"][key], then["log"][key],
            "as of {first_version}: `{key}`"
        );
    }
    let first_hour = |windows: &Value| -> BTreeMap<String, Value> {
        windows
            .as_object()
            .unwrap()
            .iter()
            .filter(|(w, _)| w.parse::<i64>().unwrap() < H0 + HOUR_MS)
            .map(|(w, v)| (w.clone(), v.clone()))
            .collect()
    };
    assert_ne!(
        first_hour(&then["deltalake"]["windows"]),
        first_hour(&read["views/page_views"]["windows"]),
        "the first hour was recomputed since version {first_version}"
    );
    let as_of = format!("&as_of_version={first_version}");
    served_equals_table(&listen, "page_views", &then["deltalake"], &as_of).await;

    // Compacted by `lambda lake optimize`, the lake's tables read the same, and each hour
    // ended before it ran holds at most 2 files.
    let optimized_at = chrono::Utc::now();
    lambda(&[
        "lake",
        "optimize",
        "--lake",
        &lake_arg,
        "--settle-secs",
        "0",
    ]);
    let compacted = tokio::task::spawn_blocking(move || check_tables(&lake_dir, &[]))
        .await
        .unwrap();
    for name in [
        "events",
        "dead-letter",
        "cdc/orders",
        "cdc/products",
        "cdc/users",
    ] {
        let after = readers_agree(name, &compacted["tables"][name]);
        let before = read[name];
        for key in ["rows", "partitions", "txns", "offsets"] {
            assert_eq!(after[key], before[key], "{name}: `{key}` after optimize");
        }
        let (was, now) = (
            files_per_settled_hour(before, optimized_at),
            files_per_settled_hour(after, optimized_at),
        );
        assert!(
            now.values().all(|n| *n <= 2),
            "{name}: files per settled partition after optimize: {now:?}"
        );
        if was.values().any(|n| *n > 2) {
            assert!(
                after["version"].as_u64() > before["version"].as_u64(),
                "{name}: optimize committed ({was:?} files per settled partition before)"
            );
        }
    }
}
