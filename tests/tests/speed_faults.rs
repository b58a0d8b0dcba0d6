//! The speed layer under faults, as a user runs it (`lambda speed` processes against the
//! real broker): after a kill -9 and a restart its views equal those of a run without the
//! crash; when a second instance joins the group and the first leaves, the views stay
//! correct.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use lambda_io::grouped_rows;
use lambda_tests::broker::FAST_GROUP_FAILOVER;
use lambda_tests::http::{free_addr, get};
use lambda_tests::lake_files::views_from_parquet;
use lambda_tests::topic::{produce, read_all};
use lambda_tests::{wait_for, Broker, ChildGuard};
use shared_logic::generate::{Generator, GeneratorConfig, Record};
use shared_logic::metric::Metric;
use shared_logic::metrics::{Funnel, PageViews, Quality, Revenue, Sessions};
use shared_logic::{Aggregates, Grouping, MetricContext, Validator};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;

fn records(seed: u64, n: usize) -> Vec<Record> {
    let cfg = GeneratorConfig {
        seed,
        events_per_second: 50.0,
        duplicate_fraction: 0.03,
        out_of_order_fraction: 0.05,
        late_fraction: 0.01,
        invalid_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    Generator::new(cfg).take(n).collect()
}

fn start_speed(
    broker: &Broker,
    topic: &str,
    group: &str,
    checkpoints: &std::path::Path,
    addr: &str,
) -> ChildGuard {
    ChildGuard(
        Command::new(lambda_tests::bin::lambda_bin())
            .args([
                "speed", "--topic", topic, "--group", group, "--listen", addr,
            ])
            .args([
                "--checkpoints",
                checkpoints.to_str().unwrap(),
                "--brokers",
                broker.brokers(),
            ])
            .args([
                "--checkpoint-interval-secs",
                "1.5",
                "--batch-max-records",
                "700",
            ])
            .args([
                "--dead-letter-topic",
                &format!("{topic}-dlq"),
                "--late-topic",
                &format!("{topic}-late"),
            ])
            .args(FAST_GROUP_FAILOVER)
            .env("LAMBDA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("lambda speed starts"),
    )
}

fn status(addr: &str) -> Option<serde_json::Value> {
    let (code, body) = get(addr, "/v1/speed/status")?;
    (code == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

/// Records the instance at `addr` has applied (its offsets summed).
fn applied(addr: &str) -> u64 {
    status(addr)
        .and_then(|s| {
            s["progress"]["offsets"]
                .as_object()
                .map(|o| o.values().filter_map(|v| v.as_u64()).sum())
        })
        .unwrap_or(0)
}

fn fetch<M: Metric>(addr: &str) -> shared_logic::MetricViews<M> {
    let (code, body) =
        get(addr, &format!("/v1/speed/views/{}", M::NAME)).expect("views endpoint answers");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    views_from_parquet::<M>(body)
}

/// The instance's rows of `M` grouped by the first dimension, without sketches, as a reader
/// asks for them (`group_by=`): asked twice, so the second answer comes from the kept rows.
fn fetch_grouped<M: Metric>(addr: &str) -> Vec<(i64, String, Vec<shared_logic::metric::Value>)> {
    let grouping = Grouping {
        group_by: vec![0],
        filters: Vec::new(),
        sketches: false,
    };
    let query: Vec<String> = grouped_rows::request_params::<M>(&grouping)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let path = format!("/v1/speed/views/{}?{}", M::NAME, query.join("&"));
    let mut answers = Vec::new();
    for _ in 0..2 {
        let (code, body) = get(addr, &path).expect("views endpoint answers");
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        let mut rows = Vec::new();
        grouped_rows::decode::<M>(body.into(), &grouping, "test", |w, dims, s| {
            rows.push((w.0, dims.join(","), M::values(&s)))
        })
        .expect("an Arrow stream of grouped rows");
        assert!(
            rows.is_sorted_by(|a, b| (a.0, &a.1) <= (b.0, &b.1)),
            "rows in order of window, then values"
        );
        answers.push(rows);
    }
    assert_eq!(answers[0], answers[1], "kept rows answer as grouped ones");
    answers.pop().unwrap()
}

/// The grouped rows of `expected`, as [`fetch_grouped`] asks for them.
fn grouped<M: Metric>(
    views: &shared_logic::MetricViews<M>,
) -> Vec<(i64, String, Vec<shared_logic::metric::Value>)> {
    let grouping = Grouping {
        group_by: vec![0],
        filters: Vec::new(),
        sketches: false,
    };
    let mut out = shared_logic::MetricViews::<M>::default();
    for (k, s) in views.iter() {
        grouping.group_into(&mut out, k, s);
    }
    let mut rows: Vec<_> = out
        .iter()
        .map(|(k, s)| {
            (
                k.window.0,
                k.dims().collect::<Vec<_>>().join(","),
                M::values(s),
            )
        })
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows
}

fn assert_views(addr: &str, expected: &Aggregates) {
    assert_eq!(
        fetch_grouped::<PageViews>(addr),
        grouped(&expected.page_views),
        "page_views grouped by url differ from the crash-free run"
    );
    assert_eq!(
        fetch_grouped::<Revenue>(addr),
        grouped(&expected.revenue),
        "revenue grouped by category differs from the crash-free run"
    );
    for bad in [
        "group_by=nope",
        "group_by=url&filter=country",
        "group_by=url&sketches=maybe",
        "group_by=url&since=1-2",
        "group_by=url&since=x&known_from=0&known_to=1",
        "group_by=url&since=1-2&known_from=0&known_to=soon",
    ] {
        let (code, body) = get(addr, &format!("/v1/speed/views/page_views?{bad}")).unwrap();
        assert_eq!(code, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    assert!(
        fetch::<PageViews>(addr) == expected.page_views,
        "page_views differ from the crash-free run"
    );
    assert!(
        fetch::<Funnel>(addr) == expected.funnel,
        "funnel differs from the crash-free run"
    );
    assert!(
        fetch::<Revenue>(addr) == expected.revenue,
        "revenue differs from the crash-free run"
    );
    assert!(
        fetch::<Sessions>(addr) == expected.sessions,
        "sessions differ from the crash-free run"
    );
}

/// The views of a run without faults: every record applied once, per partition in order.
fn crash_free(broker: &Broker, topic: &str) -> (Aggregates, u64) {
    let stored = read_all(&broker.client_config(), topic);
    let views = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    );
    let all = stored
        .values()
        .flatten()
        .map(|r| (r.partition, r.offset, r.timestamp_ms, r.payload.as_slice()));
    let n = speed::consumer::apply_records(&views, &Validator::default(), all);
    (views.snapshot(i64::MIN, i64::MAX).aggregates, n)
}

fn terminate(child: &mut ChildGuard) {
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");
}

#[test]
fn views_after_kill_9_and_restart_equal_a_run_without_the_crash() {
    let broker = Broker::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let topic = "speed-crash";
    let data = records(31, 24_000);
    runtime.block_on(produce(broker.brokers(), topic, 3, &data[..12_000]));
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();

    let mut first = start_speed(&broker, topic, "crash", dir.path(), &addr);
    wait_for("the first half applied", Duration::from_secs(60), || {
        applied(&addr) >= 12_000
    });
    // More records, then SIGKILL as soon as they are applied: progress since the last
    // checkpoint is lost and must be replayed.
    runtime.block_on(produce(broker.brokers(), topic, 3, &data[12_000..18_000]));
    wait_for("the second part applied", Duration::from_secs(60), || {
        applied(&addr) >= 18_000
    });
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    runtime.block_on(produce(broker.brokers(), topic, 3, &data[18_000..]));
    let mut second = start_speed(&broker, topic, "crash", dir.path(), &addr);
    wait_for(
        "every record applied after the restart",
        Duration::from_secs(60),
        || applied(&addr) >= 24_000,
    );
    let (expected, n) = crash_free(&broker, topic);
    assert_eq!(n, 24_000);
    assert_views(&addr, &expected);
    let counters = &status(&addr).unwrap()["progress"]["counters"];
    assert_eq!(
        counters["records"], 24_000,
        "each record applied exactly once: {counters}"
    );
    terminate(&mut second);
}

#[test]
fn views_stay_correct_when_an_instance_joins_and_one_leaves() {
    let broker = Broker::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let topic = "speed-rebalance";
    let data = records(32, 20_000);
    runtime.block_on(produce(broker.brokers(), topic, 4, &data[..10_000]));
    let dir = tempfile::tempdir().unwrap();
    let (addr_a, addr_b) = (free_addr(), free_addr());

    let mut a = start_speed(&broker, topic, "rebalance", dir.path(), &addr_a);
    wait_for(
        "instance A applied the first half",
        Duration::from_secs(60),
        || applied(&addr_a) >= 10_000,
    );
    let mut b = start_speed(&broker, topic, "rebalance", dir.path(), &addr_b);
    // The group rebalances: B takes some partitions (restored from A's checkpoints).
    wait_for("B owns partitions", Duration::from_secs(60), || {
        status(&addr_b).is_some_and(|s| {
            s["progress"]["offsets"]
                .as_object()
                .is_some_and(|o| !o.is_empty())
        })
    });
    runtime.block_on(produce(broker.brokers(), topic, 4, &data[10_000..]));
    // Together they hold every partition, each exactly once, up to the end.
    wait_for(
        "A and B together applied everything",
        Duration::from_secs(90),
        || {
            let (Some(sa), Some(sb)) = (status(&addr_a), status(&addr_b)) else {
                return false;
            };
            let mut offsets: BTreeMap<String, u64> = BTreeMap::new();
            for s in [&sa, &sb] {
                for (p, o) in s["progress"]["offsets"].as_object().unwrap() {
                    if offsets.insert(p.clone(), o.as_u64().unwrap()).is_some() {
                        return false; // both claim a partition: not settled yet
                    }
                }
            }
            offsets.len() == 4 && offsets.values().sum::<u64>() >= 20_000
        },
    );
    let (expected, _) = crash_free(&broker, topic);
    let mut merged = Aggregates::default();
    for addr in [&addr_a, &addr_b] {
        merged.page_views.merge_owned(fetch::<PageViews>(addr));
        merged.funnel.merge_owned(fetch::<Funnel>(addr));
        merged.revenue.merge_owned(fetch::<Revenue>(addr));
        merged.sessions.merge_owned(fetch::<Sessions>(addr));
        merged.quality.merge_owned(fetch::<Quality>(addr));
    }
    assert!(
        merged == expected,
        "A's and B's views merged equal the single-instance views"
    );

    // A leaves: B takes over every partition from A's checkpoints.
    terminate(&mut a);
    wait_for(
        "B owns every partition to the end",
        Duration::from_secs(90),
        || {
            status(&addr_b).is_some_and(|s| {
                let o = s["progress"]["offsets"].as_object().unwrap();
                o.len() == 4 && o.values().filter_map(|v| v.as_u64()).sum::<u64>() >= 20_000
            })
        },
    );
    assert_views(&addr_b, &expected);
    terminate(&mut b);
}

#[test]
fn the_speed_layer_rides_out_a_broker_outage_and_loses_nothing() {
    // The outage needs a broker this test can stop: always the local one.
    let mut broker = Broker::start_local();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let topic = "speed-outage";
    let data = records(33, 10_000);
    runtime.block_on(produce(broker.brokers(), topic, 2, &data[..5_000]));
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut speed = start_speed(&broker, topic, "outage", dir.path(), &addr);
    wait_for("the first half applied", Duration::from_secs(60), || {
        applied(&addr) >= 5_000
    });

    // The broker dies for 3 s; the speed layer keeps serving and retries.
    broker.restart_after(Duration::from_secs(3));
    assert_eq!(
        applied(&addr),
        5_000,
        "views stay readable during and after the outage"
    );
    runtime.block_on(produce(broker.brokers(), topic, 2, &data[5_000..]));
    wait_for(
        "everything applied after the outage",
        Duration::from_secs(90),
        || applied(&addr) >= 10_000,
    );
    let (expected, _) = crash_free(&broker, topic);
    assert_views(&addr, &expected);
    assert_eq!(speed.0.try_wait().unwrap(), None, "no crash");
    terminate(&mut speed);
}
