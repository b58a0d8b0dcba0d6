//! The `lambda` binary as a user runs it: reproducible generation, clear errors for bad
//! flags, and the generate -> Kafka -> inspect path against the real broker.

use std::process::{Command, Output};

use lambda_tests::{Broker, ChildGuard};

fn lambda(args: &[&str]) -> Output {
    Command::new(lambda_tests::bin::lambda_bin())
        .args(args)
        .env_remove("KAFKA_BROKERS")
        .output()
        .expect("lambda runs")
}

/// Starts `lambda <args> --brokers <brokers>` in the background (killed when dropped).
fn spawn_with_broker(brokers: &str, args: &[&str]) -> ChildGuard {
    ChildGuard(
        Command::new(lambda_tests::bin::lambda_bin())
            .args(args)
            .args(["--brokers", brokers])
            .env_remove("KAFKA_BROKERS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("lambda starts"),
    )
}

/// The page views `lambda serve` at `addr` serves over its default range at `granularity`
/// (`hour`: the last hour or two; `day`: today); `None` until it answers.
fn served_page_views(addr: &str, granularity: &str) -> Option<u64> {
    let path = format!("/v1/metrics/page_views?granularity={granularity}");
    lambda_tests::http::get(addr, &path)
        .filter(|(s, _)| *s == 200)
        .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| {
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["values"]["views"].as_u64().unwrap())
                .sum::<u64>()
        })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn generate_with_the_same_seed_writes_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    for (path, seed) in paths.iter().zip(["1", "1", "2"]) {
        let out = lambda(&[
            "generate",
            "--count",
            "100000",
            "--seed",
            seed,
            "--invalid",
            "0.01",
            "--duplicates",
            "0.01",
            "--output",
            path,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("generated 100000 records"),
            "{}",
            stderr(&out)
        );
    }
    let [a, b, c] = [&paths[0], &paths[1], &paths[2]].map(|p| std::fs::read(p).unwrap());
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 100_000);
    assert!(a == b, "same seed, same bytes");
    assert!(a != c, "another seed, another stream");
}

#[test]
fn a_config_file_variables_and_flags_configure_a_run_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lambda.toml");
    std::fs::write(
        &config,
        "[common]\nseed = 7\n[generate]\ncount = 500\nusers = 40\n\
         [serve]\nquery-token = \"topsecret\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let run = |vars: &[(&str, &str)], args: &[&str]| -> Output {
        let mut cmd = Command::new(lambda_tests::bin::lambda_bin());
        cmd.env_remove("KAFKA_BROKERS")
            .env("LAMBDA_CONFIG", &config);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("lambda runs")
    };
    let generated = |vars: &[(&str, &str)], extra: &[&str], name: &str| -> String {
        let path = dir.path().join(name).display().to_string();
        let mut args = vec!["generate", "--output", &path];
        args.extend_from_slice(extra);
        let out = run(vars, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(&path).unwrap()
    };
    // The file alone gives the same bytes as the same values as flags.
    let from_file = generated(&[], &[], "file");
    let out = lambda(&[
        "generate", "--seed", "7", "--count", "500", "--users", "40", "--output", "-",
    ]);
    assert_eq!(from_file, String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_file.lines().count(), 500);
    // A variable beats the file, a flag beats the variable.
    let vars = [("LAMBDA_GENERATE_COUNT", "300")];
    assert_eq!(generated(&vars, &[], "env").lines().count(), 300);
    assert_eq!(
        generated(&vars, &["--count", "200"], "flag")
            .lines()
            .count(),
        200
    );

    // `config show` names each value's source and masks secrets.
    let out = run(
        &[("LAMBDA_SERVE_LISTEN", "0.0.0.0:8081")],
        &["config", "show", "--json", "serve", "--max-rows", "10"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("topsecret"), "{text}");
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    let option = |name: &str| {
        shown["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(option("listen")["value"][0], "0.0.0.0:8081");
    assert_eq!(option("listen")["source"], "env LAMBDA_SERVE_LISTEN");
    assert_eq!(option("max-rows")["source"], "flag");
    assert_eq!(option("query-token")["value"][0], "****");
    assert!(option("query-token")["source"]
        .as_str()
        .unwrap()
        .ends_with("[serve]"));

    // A mistake in the file stops every subcommand before it starts, with the place.
    std::fs::write(&config, "[serve]\nlisen = \"0.0.0.0:80\"\n").unwrap();
    let out = run(&[], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key `lisen` in [serve]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn generate_sends_from_producers_with_their_faults() {
    // One event a second from 2026-01-01T00:00Z; `app` silent from minute 10 to 20.
    let out = lambda(&[
        "generate",
        "--count",
        "3600",
        "--event-rate",
        "1",
        "--users",
        "500",
        "--source",
        "web=3",
        "--source",
        "app",
        "--fault",
        "app:silent:2026-01-01T00:10:00Z/2026-01-01T00:20:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = shared_logic::Validator::default();
    let (mut by_source, mut app_in_gap) = (std::collections::BTreeMap::new(), 0);
    for (i, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
        let origin = shared_logic::Origin::import_line(i as i64);
        let e = v
            .validate(line.as_bytes(), origin, i64::MAX / 2)
            .expect("valid");
        *by_source.entry(e.source().to_string()).or_insert(0) += 1;
        let minute = (e.event_time().0 - 1_767_225_600_000) / 60_000;
        app_in_gap += (e.source() == "app" && (10..20).contains(&minute)) as u32;
    }
    assert_eq!(by_source.keys().collect::<Vec<_>>(), ["app", "web"]);
    assert!(by_source["web"] > 2 * by_source["app"], "{by_source:?}");
    assert_eq!(app_in_gap, 0, "app is silent from minute 10 to 20");
}

#[test]
fn bad_flags_fail_with_a_reason_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&["generate"], "give --count or --duration-secs"),
        (
            &["generate", "--count", "5", "--late", "2"],
            "late fraction must be between 0 and 1",
        ),
        (
            &["generate", "--count", "5", "--start", "yesterday"],
            "--start `yesterday` is not RFC 3339",
        ),
        (
            &["generate", "--count", "5", "--rate=-3"],
            "--rate must be a positive number",
        ),
        (
            &[
                "generate",
                "--count",
                "5",
                "--output",
                "/nonexistent-dir/x.ndjson",
            ],
            "cannot create output file",
        ),
        (&["generate", "--count", "x"], "invalid value 'x'"),
        (
            &[
                "generate",
                "--count",
                "5",
                "--source",
                "web",
                "--fault",
                "app:silent:0/1",
            ],
            "a fault names `app`, not a producer",
        ),
        (
            &[
                "generate",
                "--count",
                "5",
                "--source",
                "web",
                "--fault",
                "web:loud:0/1",
            ],
            "the kind is silent, invalid=<share>",
        ),
        (
            &["generate", "--count", "5", "--source", "Web Site"],
            "is not a source name",
        ),
        (
            &[
                "generate",
                "--count",
                "5",
                "--kafka",
                "--kafka-option",
                "novalue",
            ],
            "not of the form key=value",
        ),
    ];
    for (args, expected) in cases {
        let out = lambda(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_lake_tables_are_imported_compacted_vacuumed_and_migrated_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let input = dir.path().join("day.ndjson");
    // 600 events of 2026-01-01T10, imported in 6 flushes of 100 lines: 6 files of the hour.
    let start_ms = 1_767_261_600_000i64;
    let lines: String = (0..600)
        .map(|i| {
            format!(
                "{{\"event_id\":\"e{i}\",\"event_type\":\"page_view\",\"event_time\":{},\"user_id\":\"u{}\",\"url\":\"/\"}}\n",
                start_ms + i * 1000,
                i % 7
            )
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    let (lake_arg, input_arg) = (lake.to_str().unwrap(), input.to_str().unwrap());
    let import = || {
        lambda(&[
            "lake",
            "import",
            input_arg,
            "--lake",
            lake_arg,
            "--chunk-lines",
            "100",
        ])
    };
    let out = import();
    assert!(out.status.success(), "{}", stderr(&out));
    // Importing it again adds nothing, and says so.
    let again = import();
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(
        said.contains("600 lines were in the lake already"),
        "{said}"
    );
    assert_eq!(
        lambda_tests::lake_files::table_files(&lake.join("events")).len(),
        6
    );

    let out = lambda(&["lake", "optimize", "--lake", lake_arg, "--settle-secs", "0"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        said.contains("events: 1 hours compacted, 6 files into 1, 600 rows"),
        "{said}"
    );
    assert_eq!(
        lambda_tests::lake_files::table_files(&lake.join("events")).len(),
        1
    );
    assert_eq!(lambda_tests::lake_files::rows(&lake.join("events")), 600);

    // Vacuum keeps at least an hour: a running writer's files are not committed yet.
    let out = lambda(&["lake", "vacuum", "--lake", lake_arg, "--retain-hours", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--retain-hours must be at least 1"),
        "{}",
        stderr(&out)
    );
    let out = lambda(&[
        "lake",
        "vacuum",
        "--lake",
        lake_arg,
        "--retain-hours",
        "1",
        "--dry-run",
    ]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("events: would delete 0 files"), "{said}");

    let out = lambda(&["lake", "migrate", "--lake", lake_arg]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("nothing to migrate"), "{said}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "generate", "inspect", "lake", "batch", "speed", "serve", "bench",
    ] {
        let out = lambda(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: lambda"),
            "{sub}"
        );
    }
}

#[test]
fn generated_events_arrive_in_kafka_and_inspect_counts_them() {
    let broker = Broker::start();
    let out = Command::new(lambda_tests::bin::lambda_bin())
        .args([
            "generate",
            "--count",
            "3000",
            "--seed",
            "3",
            "--invalid",
            "0.05",
            "--kafka",
            "--topic",
            "cli-events",
        ])
        .args(["--brokers", broker.brokers()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3000 acknowledged by the broker"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(lambda_tests::bin::lambda_bin())
        .args([
            "inspect",
            "--topic",
            "cli-events",
            "--brokers",
            broker.brokers(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(summary["records"], 3000);
    let valid: u64 = summary["valid_by_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let rejected: u64 = summary["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(valid + rejected, 3000);
    assert!(
        (100..200).contains(&rejected),
        "about 5 % invalid: {rejected}"
    );
}

#[test]
fn change_streams_are_debezium_events_to_ndjson_or_to_their_kafka_topics() {
    use shared_logic::cdc::{CdcTable, Change, Op, ProductTable, UserTable};

    // NDJSON, one table each: every line is a Debezium change event of that table.
    let mut ops = std::collections::HashMap::new();
    for (table, name) in [
        (CdcTable::Products, "products"),
        (CdcTable::Orders, "orders"),
        (CdcTable::Users, "users"),
    ] {
        let out = lambda(&[
            "generate",
            "--cdc",
            name,
            "--count",
            "400",
            "--seed",
            "5",
            "--category-change-secs",
            "30",
            "--debezium-schema",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 400);
        for line in text.lines() {
            let change = Change::parse(table, line.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e:?}"))
                .expect("not a tombstone");
            *ops.entry((table, change.op)).or_insert(0) += 1;
        }
    }
    assert_eq!(ops[&(CdcTable::Products, Op::Read)], 200, "{ops:?}");
    assert!(ops[&(CdcTable::Products, Op::Update)] > 100, "{ops:?}");
    assert!(ops[&(CdcTable::Orders, Op::Create)] > 200, "{ops:?}");
    assert!(ops[&(CdcTable::Users, Op::Create)] > 200, "{ops:?}");
    let out = lambda(&["generate", "--cdc", "all", "--count", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs --kafka"), "{}", stderr(&out));

    // Kafka: each table to its topic, keyed by primary key, every record acknowledged.
    let broker = Broker::start();
    let out = Command::new(lambda_tests::bin::lambda_bin())
        .args(["generate", "--cdc", "all", "--count", "1000", "--kafka"])
        .args(["--brokers", broker.brokers()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1000 acknowledged"),
        "{}",
        stderr(&out)
    );
    let mut products = ProductTable::default();
    let mut users = UserTable::default();
    let mut total = 0;
    for table in [CdcTable::Products, CdcTable::Users, CdcTable::Orders] {
        let stored = lambda_tests::topic::read_all(&broker.client_config(), table.default_topic());
        for record in stored.values().flatten() {
            let change = Change::parse(table, &record.payload).unwrap().unwrap();
            assert_eq!(record.key.as_deref(), Some(change.key.as_bytes()));
            match table {
                CdcTable::Products => products.apply(&change).expect("known products"),
                CdcTable::Users => users.apply(&change).expect("known users"),
                CdcTable::Orders => {}
            }
            total += 1;
        }
    }
    assert_eq!(total, 1000);
    assert!(products.versions().len() >= 200);
    assert!(users.len() >= 200, "every buyer signed up: {}", users.len());

    // `lambda inspect --cdc` checks a change topic as the layers would, rejects included.
    let broken = [
        (&b"{not json"[..], "o-x"),
        (
            br#"{"op":"u","source":{"ts_ms":1,"lsn":9},"before":null,"after":null}"#,
            "o-y",
        ),
    ];
    let records: Vec<shared_logic::generate::Record> = broken
        .iter()
        .map(|(json, key)| shared_logic::generate::Record {
            json: json.to_vec(),
            key: key.to_string(),
            kind: shared_logic::generate::RecordKind::Invalid,
        })
        .collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(lambda_tests::topic::produce(
            broker.brokers(),
            "cdc.orders",
            4,
            &records,
        ));
    let inspect = |table: &str| -> serde_json::Value {
        let out = Command::new(lambda_tests::bin::lambda_bin())
            .args(["inspect", "--cdc", table, "--brokers", broker.brokers()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let orders = inspect("orders");
    assert_eq!(
        orders["rejected_by_reason"]["malformed_json"], 1,
        "{orders}"
    );
    assert_eq!(orders["rejected_by_reason"]["missing_field"], 1, "{orders}");
    let products_summary = inspect("products");
    assert_eq!(
        products_summary["changes_by_op"]["r"], 200,
        "{products_summary}"
    );
    assert_eq!(products_summary["products"], 200, "{products_summary}");
    let users_summary = inspect("users");
    assert_eq!(
        users_summary["users"].as_u64(),
        Some(users.len() as u64),
        "{users_summary}"
    );
    let records = |s: &serde_json::Value| s["records"].as_u64().unwrap();
    assert_eq!(
        records(&orders) + records(&products_summary) + records(&users_summary),
        1002
    );

    // The binaries: `lake --cdc` per table, `speed --cdc`, `batch`, then `verify` finds the
    // layers' `orders` and `daily_sales` views equal.
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (lake_arg, speed_addr) = (lake.display().to_string(), lambda_tests::http::free_addr());
    let spawn = |args: &[&str]| spawn_with_broker(broker.brokers(), args);
    let _writers = ["orders", "products", "users"]
        .map(|t| spawn(&["lake", "--cdc", t, "--lake", &lake_arg, "--roll-secs", "1"]));
    let checkpoints = dir.path().join("checkpoints").display().to_string();
    let _speed = spawn(&[
        "speed",
        "--cdc",
        "--topic",
        "cli-cdc-events",
        "--checkpoints",
        &checkpoints,
        "--listen",
        &speed_addr,
    ]);
    lambda_tests::wait_for(
        "the speed layer to apply every change",
        std::time::Duration::from_secs(90),
        || {
            let Some((200, body)) = lambda_tests::http::get(&speed_addr, "/v1/speed/status") else {
                return false;
            };
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let c = &status["changes"];
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            n("order_changes")
                + n("product_changes")
                + n("user_changes")
                + n("duplicates")
                + n("rejected")
                + n("late")
                == 1002
        },
    );
    lambda_tests::wait_for(
        "the lake writers to write every change",
        std::time::Duration::from_secs(90),
        || {
            lambda_tests::lake_files::rows(&lake.join("cdc"))
                + lambda_tests::lake_files::rows(&lake.join("dead-letter"))
                == 1002
        },
    );
    let out = lambda(&["batch", "--lake", &lake_arg, "--dirty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for metric in ["orders", "daily_sales"] {
        let out = lambda(&[
            "verify",
            "--metric",
            metric,
            "--views",
            &lake.join("views").display().to_string(),
            "--speed-url",
            &format!("http://{speed_addr}"),
            "--from",
            "2025-12-31T00:00:00Z",
            "--to",
            "2026-01-03T00:00:00Z",
        ]);
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{report}{}", stderr(&out));
        assert!(
            report.contains(&format!("{metric}:")) && report.contains(" 0 differences"),
            "{report}"
        );
        assert!(
            !report.contains(&format!("{metric}: 0 hours compared")),
            "{report}"
        );
    }
}

#[test]
fn kafka_errors_are_reported_not_hung() {
    // Nothing listens on port 1: the producer must give up with an error, in bounded time.
    let out = lambda(&[
        "generate",
        "--count",
        "1",
        "--kafka",
        "--brokers",
        "127.0.0.1:1",
        "--kafka-option",
        "socket.timeout.ms=2000",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn serve_collects_events_and_answers_them_from_a_speed_instance() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (serve_addr, speed_addr) = (
        lambda_tests::http::free_addr(),
        lambda_tests::http::free_addr(),
    );
    let spawn = |args: &[&str]| spawn_with_broker(broker.brokers(), args);
    let views = dir.path().join("views").display().to_string();
    let _serve = spawn(&[
        "serve",
        "--listen",
        &serve_addr,
        "--views",
        &views,
        "--speed-url",
        &format!("http://{speed_addr}"),
        "--topic",
        "cli-serve",
        "--partitions",
        "2",
        "--ingest-token",
        "cli-ingest-4b7e2d9a1c6f",
    ]);
    lambda_tests::wait_for(
        "serve to listen",
        std::time::Duration::from_secs(60),
        || lambda_tests::http::get(&serve_addr, "/healthz").is_some_and(|(s, _)| s == 200),
    );
    // Events of the last ten minutes, as a client sends them.
    let now = chrono::Utc::now().timestamp_millis();
    let mut body = Vec::new();
    let cfg = shared_logic::generate::GeneratorConfig {
        start_ms: now - 600_000,
        events_per_second: 3.0,
        invalid_fraction: 0.0,
        duplicate_fraction: 0.0,
        ..Default::default()
    };
    for r in shared_logic::generate::Generator::new(cfg).take(1_500) {
        body.extend_from_slice(&r.json);
        body.push(b'\n');
    }
    let auth = [("Authorization", "Bearer cli-ingest-4b7e2d9a1c6f")];
    let (status, answer) =
        lambda_tests::http::request(&serve_addr, "POST", "/v1/events", &auth, &body).unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1_500, "{answer}");
    let (status, _) =
        lambda_tests::http::request(&serve_addr, "POST", "/v1/events", &[], &body).unwrap();
    assert_eq!(status, 401, "the ingest token is required");

    let checkpoints = dir.path().join("checkpoints").display().to_string();
    let _speed = spawn(&[
        "speed",
        "--topic",
        "cli-serve",
        "--group",
        "cli-serve-speed",
        "--checkpoints",
        &checkpoints,
        "--listen",
        &speed_addr,
    ]);
    let views_seen = || served_page_views(&serve_addr, "hour");
    let expected = {
        let v = shared_logic::Validator::default();
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                v.validate(l, shared_logic::Origin::import_line(0), now)
                    .ok()
            })
            .filter(|e| e.event_type() == shared_logic::EventType::PageView)
            .count() as u64
    };
    lambda_tests::wait_for(
        "the served page views to count every page view sent",
        std::time::Duration::from_secs(90),
        || views_seen() == Some(expected),
    );
    let (status, ready) = lambda_tests::http::get(&serve_addr, "/readyz").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&ready));
}

/// The demo log's lines a layers' disagreement is diagnosed from: the batch's change-log
/// replays (how many order, product and user changes the lake held), the change streams
/// consumer and the consumer groups' rebalances; the last 30.
fn demo_log_excerpt(data: &str) -> String {
    let log = std::fs::read_to_string(format!("{data}/demo.log")).unwrap_or_default();
    let wanted = [
        "replayed from the change log",
        "change streams",
        "rebalance",
        "revoked",
        "assigned",
        "not applied",
    ];
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    format!(
        "demo log ({} matching lines, the last {}):\n{}",
        lines.len(),
        tail.len(),
        tail.join("\n")
    )
}

#[test]
fn demo_runs_everything_verify_finds_the_layers_equal_and_a_restart_reuses_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let broker_port = port(&lambda_tests::http::free_addr());
    let (api, speed, sql) = (
        lambda_tests::http::free_addr(),
        lambda_tests::http::free_addr(),
        lambda_tests::http::free_addr(),
    );
    let demo_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "demo",
            "--data-dir",
            &data,
            "--broker-port",
            &broker_port,
            "--listen",
            &api,
            "--views-listen",
            &speed,
            "--pg-listen",
            &sql,
            "--rate",
            "20",
            "--history-hours",
            "2",
            "--batch-period-secs",
            "3",
            "--batch-hours-per-run",
            "3",
            "--settle-secs",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out_path = dir.path().join("demo.out");
    let err_path = dir.path().join("demo.err");
    let mut demo = ChildGuard(
        Command::new(lambda_tests::bin::lambda_bin())
            .args(demo_args(&[]))
            .env_remove("KAFKA_BROKERS")
            .env_remove("LAMBDA_LOG")
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    let hour = shared_logic::window::HOUR_MS;
    let h0 = (now.div_euclid(hour) - 2) * hour;
    let boundary_now = || {
        lambda_tests::http::get(&api, "/v1/metrics/page_views?granularity=hour")
            .filter(|(s, _)| *s == 200)
            .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v["freshness_ms"].as_i64().is_some_and(|f| f < 10_000))
            .and_then(|v| v["time_boundary"].as_str().map(str::to_string))
    };
    let settled = [h0 + 2 * hour, h0 + 3 * hour].map(shared_logic::instant::format_instant);
    lambda_tests::wait_for(
        "the demo's batch to cover the history and the speed layer to be live",
        std::time::Duration::from_secs(180),
        || boundary_now().is_some_and(|b| settled.contains(&b)),
    );
    // Both layers saw the last covered hour completely: verify finds them equal. The change
    // streams land in the lake on their own schedule (the history all at once): a batch
    // tick after the last change file replays them, so `orders` agrees within seconds.
    // The demo's views endpoint takes the token it generated into the data directory.
    let speed_token = std::fs::read_to_string(format!("{data}/speed-token"))
        .expect("the demo keeps its speed token in the data directory");
    let verify = || {
        Command::new(lambda_tests::bin::lambda_bin())
            .args(["verify", "--views", &format!("{data}/lake/views")])
            .args(["--speed-url", &format!("http://{speed}")])
            .args(["--speed-token", speed_token.trim()])
            .args(["--from", &h0.to_string()])
            .output()
            .unwrap()
    };
    // Each metric's batch hours are published by the run's own passes (the change-log pass
    // after the events' hours): until the last of them, a metric may have no covered hour
    // the speed layer still holds. Verify again until every metric compared one.
    let compared = |text: &str| {
        ["page_views", "funnel", "revenue", "orders", "daily_sales"]
            .iter()
            .all(|metric| {
                text.lines().any(|l| {
                    l.starts_with(&format!("{metric}:"))
                        && !l.contains(": 0 hours compared")
                        && l.contains(" 0 differences")
                })
            })
    };
    // The change streams' speed views follow the dimension topics within seconds; a
    // loaded machine may need longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let out = loop {
        let out = verify();
        let done = out.status.success() && compared(&String::from_utf8_lossy(&out.stdout));
        if done || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // What the speed layer had read, for a failure's diagnosis.
    let auth = format!("Bearer {}", speed_token.trim());
    let status = lambda_tests::http::request(
        &speed,
        "GET",
        "/v1/speed/status",
        &[("authorization", auth.as_str())],
        &[],
    )
    .map(|(_, body)| String::from_utf8_lossy(&body).into_owned())
    .unwrap_or_default()
        + "\n"
        + &demo_log_excerpt(&data);
    assert!(
        out.status.success(),
        "{text}\n{}\nspeed status: {status}",
        stderr(&out)
    );
    assert!(
        compared(&text),
        "every metric compares an hour with no difference:\n{text}\nspeed status: {status}"
    );
    // The dashboard's quality panel reads `GET /v1/quality`: each of the demo's producers
    // has its hours judged there.
    let (code, body) = lambda_tests::http::get(&api, "/v1/quality").expect("the API answers");
    let report: serde_json::Value = serde_json::from_slice(&body).expect("a JSON report");
    assert_eq!(code, 200, "{report}");
    let producers: std::collections::BTreeSet<&str> = report["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .filter_map(|h| h["producer"].as_str())
        .collect();
    assert_eq!(
        producers,
        ["android", "ios", "web"].into_iter().collect(),
        "{report}"
    );
    // The local broker keeps the event topics for the retention asked for (6 hours by
    // default), so that its store stops growing; the change streams keep their history.
    let broker = lambda_io::kafka::KafkaSettings::new(format!("127.0.0.1:{broker_port}"));
    let config_of = |topic: &str| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(lambda_io::kafka::client::topic_config(
                &broker,
                topic,
                std::time::Duration::from_secs(10),
            ))
            .unwrap_or_else(|e| panic!("{topic}: {e}"))
    };
    for topic in ["events", "events-dead-letter", "events-late"] {
        let config = config_of(topic);
        assert_eq!(
            (
                config.get("cleanup.policy").map(String::as_str),
                config.get("retention.ms").map(String::as_str)
            ),
            (Some("delete"), Some("21600000")),
            "{topic}: {config:?}"
        );
    }
    for topic in ["cdc.orders", "cdc.products", "cdc.users"] {
        let config = config_of(topic);
        assert_ne!(
            config.get("cleanup.policy").map(String::as_str),
            Some("delete"),
            "{topic}: {config:?}"
        );
    }
    // A user points psql at the demo and queries every metric: hours of history in each.
    let (sql_host, sql_port) = sql.rsplit_once(':').unwrap();
    let psql = |query: &str| {
        let out = Command::new("psql")
            .arg(format!(
                "host={sql_host} port={sql_port} user=lambda dbname=lambda"
            ))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query])
            .output()
            .expect("psql (Debian's postgresql-client)");
        assert!(out.status.success(), "{query}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // The history goes at the live rate and the live stream starts where it ends: every
    // minute from the start of the history to a minute ago holds about as many page views
    // as the others (no cliff, no hole between the two).
    let minute = 60_000;
    let last = (chrono::Utc::now().timestamp_millis() - minute).div_euclid(minute) * minute;
    let per_minute: Vec<u64> = psql(&format!(
        "SELECT sum(views) FROM page_views WHERE window_start >= '{}' AND window_start < '{}' GROUP BY window_start ORDER BY window_start",
        shared_logic::instant::format_instant(h0 + minute),
        shared_logic::instant::format_instant(last)
    ))
    .lines()
    .map(|l| l.trim().parse().unwrap())
    .collect();
    assert_eq!(
        per_minute.len() as i64,
        (last - h0) / minute - 1,
        "every minute since the start of the history has page views"
    );
    let mut sorted = per_minute.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let collector_log = || {
        let log = std::fs::read_to_string(format!("{data}/demo.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("collector")).collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    assert!(
        per_minute
            .iter()
            .all(|&n| n * 4 >= median * 3 && n * 4 <= median * 5),
        "every minute holds about the median's {median} page views: {per_minute:?}\nthe demo log's last lines about the collector:\n{}",
        collector_log()
    );
    for metric in shared_logic::registry::NAMES {
        let query = format!(
            "SELECT count(*) FROM {metric}_hourly WHERE window_start >= '{}' AND window_start < now()",
            shared_logic::instant::format_instant(h0)
        );
        let out = Command::new("psql")
            .arg(format!(
                "host={sql_host} port={sql_port} user=lambda dbname=lambda"
            ))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", &query])
            .output()
            .expect("psql (Debian's postgresql-client)");
        let hours: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(
            out.status.success() && hours >= 2,
            "{query}: {hours} rows; {}",
            stderr(&out)
        );
    }
    // Ctrl-C (SIGTERM here) stops everything cleanly.
    let pid = demo.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(s) = demo.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let printed = std::fs::read_to_string(&out_path).unwrap();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("dashboard http://"), "{printed}");
    assert!(
        printed.contains(&format!("SQL: psql \"host={sql_host} port={sql_port}")),
        "{printed}"
    );
    assert!(printed.contains("stopped; data kept"), "{printed}");
    // The terminal shows the demo's own lines; the log lines went to the data directory.
    let errors = std::fs::read_to_string(&err_path).unwrap();
    for line in printed.lines().chain(errors.lines()) {
        assert!(
            !line.contains(" INFO ") && !line.contains(" WARN "),
            "a log line on the terminal: {line}"
        );
    }
    let log = std::fs::read_to_string(format!("{data}/demo.log")).expect("the demo's log file");
    assert!(
        log.contains(" INFO ") && log.contains("batch::lake_writer"),
        "{log}"
    );
    assert!(
        printed.contains(&format!("log in {data}/demo.log")),
        "{printed}"
    );
    // A second start reuses the data: no new history, the same broker storage, whose
    // topics keep the retention they were created with (the demo says so when another is
    // asked for).
    let out = lambda(
        &demo_args(&["--duration-secs", "5", "--broker-retention-hours", "12"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("no history (data from an earlier start)"),
        "{text}"
    );
    assert!(
        text.contains("note: topic `events` in ")
            && text.contains("keeps a retention of 21600000 ms"),
        "{text}"
    );
}

#[test]
fn a_replayed_views_version_serves_only_after_the_switch() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let start =
        shared_logic::instant::format_instant(chrono::Utc::now().timestamp_millis() - 40 * 60_000);
    // 5 % of the events are 90–180 s late: beyond version 1's 60 s allowed lateness.
    let out = lambda(&[
        "generate",
        "--kafka",
        "--brokers",
        broker.brokers(),
        "--topic",
        "cli-replay",
        "--partitions",
        "2",
        "--count",
        "3000",
        "--event-rate",
        "1.5",
        "--start",
        &start,
        "--late",
        "0.05",
        "--lateness-ms",
        "90000",
        "--seed",
        "11",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checkpoints = dir.path().join("checkpoints").display().to_string();
    let (v1, v2, api) = (
        lambda_tests::http::free_addr(),
        lambda_tests::http::free_addr(),
        lambda_tests::http::free_addr(),
    );
    let spawn = |args: &[&str]| {
        ChildGuard(
            Command::new(lambda_tests::bin::lambda_bin())
                .args(args)
                .env_remove("KAFKA_BROKERS")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("lambda starts"),
        )
    };
    let speed = |listen: &str, extra: &[&str]| {
        let mut args = vec![
            "speed",
            "--brokers",
            broker.brokers(),
            "--topic",
            "cli-replay",
            "--group",
            "cli-replay",
            "--checkpoints",
            &checkpoints,
            "--listen",
            listen,
            "--checkpoint-interval-secs",
            "1",
        ];
        args.extend_from_slice(extra);
        spawn(&args)
    };
    let consumed = |addr: &str| {
        lambda_tests::http::get(addr, "/v1/speed/status")
            .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|s| {
                (
                    s["views_version"].as_u64().unwrap_or(0),
                    s["progress"]["counters"]["records"].as_u64().unwrap_or(0),
                )
            })
    };
    let _v1 = speed(&v1, &[]);
    let views = dir.path().join("views").display().to_string();
    let _serve = spawn(&[
        "serve",
        "--no-collector",
        "--listen",
        &api,
        "--views",
        &views,
        "--speed-url",
        &format!("http://{v1}"),
        "--admin-token",
        "cli-admin-8e3f1a6c2d5b",
    ]);
    let wait = std::time::Duration::from_secs(90);
    lambda_tests::wait_for("version 1 to consume the topic", wait, || {
        consumed(&v1) == Some((1, 3000))
    });
    let total_views = || served_page_views(&api, "day");
    lambda_tests::wait_for("serve to answer", wait, || total_views().is_some());
    let first = total_views().unwrap();

    // Replay into version 2 with a longer allowed lateness: it counts the late events.
    let _v2 = speed(
        &v2,
        &[
            "--views-version",
            "2",
            "--from-beginning",
            "--allowed-lateness-ms",
            "600000",
        ],
    );
    lambda_tests::wait_for("version 2 to replay the topic", wait, || {
        consumed(&v2) == Some((2, 3000))
    });
    assert_eq!(
        total_views(),
        Some(first),
        "version 1 serves until the switch"
    );
    let body = format!(r#"{{"speed_urls": ["http://{v2}"]}}"#);
    let (status, _) =
        lambda_tests::http::request(&api, "PUT", "/v1/admin/speed", &[], body.as_bytes()).unwrap();
    assert_eq!(status, 401, "the admin token is required");
    let (status, answer) = lambda_tests::http::request(
        &api,
        "PUT",
        "/v1/admin/speed",
        &[
            ("Authorization", "Bearer cli-admin-8e3f1a6c2d5b"),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let second = total_views().unwrap();
    assert!(
        second > first,
        "version 2 counts the late page views: {second} vs {first}"
    );

    // The same version cannot be replayed over its own checkpoints.
    lambda_tests::wait_for("version 2 to checkpoint", wait, || {
        lambda_tests::http::get(&v2, "/v1/speed/status")
            .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|s| s["progress"]["last_checkpoint_ms"].is_i64())
    });
    let out = lambda(&[
        "speed",
        "--brokers",
        broker.brokers(),
        "--topic",
        "cli-replay",
        "--group",
        "cli-replay",
        "--checkpoints",
        &checkpoints,
        "--views-version",
        "2",
        "--from-beginning",
        "--listen",
        "127.0.0.1:0",
        "--stop-after-records",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already has checkpoints"),
        "{}",
        stderr(&out)
    );
}
