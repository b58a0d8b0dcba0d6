//! The serving layer under concurrent queries while the batch job publishes new manifests:
//! several clients query ranges spanning covered hours in a loop while `lambda batch`
//! computes the hours for the first time (the boundary moves from speed to batch), re-runs
//! them (identical input), and recomputes hours made dirty by late files. Every request
//! answers 200, and every answer equals the direct computation under exactly one
//! publication — the version of the metric's views table it reports (`table_version`) —
//! never a mix of two: the server takes one snapshot per query. Every batch run commits
//! once per hour to each of the queried metrics' tables, so their versions move in step.
//! Once without and once with the answer cache.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lambda_io::manifest::Published;
use lambda_io::Lake;
use lambda_tests::faults::{hour_floor, lambda};
use lambda_tests::serving::{api_rows, direct_rows, RowKey};
use serde_json::Value;
use serving::answer_cache::AnswerCache;
use serving::api::watch_manifest;
use serving::batch_views::BatchViews;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::dedup::first_wins;
use shared_logic::generate::GeneratorConfig;
use shared_logic::metrics::{Funnel, PageViews, Revenue};
use shared_logic::window::{HourKey, DAY_MS, HOUR_MS};
use shared_logic::{Event, MetricContext, Origin, Validator};
use speed::partition::{LatePolicy, TimeSettings};
use speed::views::RealtimeViews;

type Rows = BTreeMap<RowKey, Value>;

/// The generator's records up to `end_ms` (validated against the wall clock).
fn lines(seed: u64, start_ms: i64, end_ms: i64, cfg: GeneratorConfig) -> Vec<Vec<u8>> {
    let now = chrono::Utc::now().timestamp_millis();
    lambda_tests::data::records_until(seed, start_ms, end_ms, now, cfg)
}

fn valid(lines: &[Vec<u8>]) -> Vec<Event> {
    let v = Validator::default();
    let now = chrono::Utc::now().timestamp_millis();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), now).ok())
        .collect()
}

async fn import(lake: &Lake, lines: &[Vec<u8>], source: &str) {
    let now = chrono::Utc::now().timestamp_millis();
    lambda_tests::data::import_lines(lake, lines, source, 2_500, now).await;
}

/// One query the clients repeat, and its answer under each state of the data: `[0]` the
/// original events, `[1]` plus the late events of the first late hour, `[2]` plus those
/// of the second.
struct Query {
    path: String,
    expected: [Rows; 3],
}

fn query<M: shared_logic::Registered>(
    states: &[Vec<Event>; 3],
    (from, to): (i64, i64),
    (granularity, ms): (&str, i64),
    group_by: &[&str],
) -> Query {
    let mut path = format!(
        "/v1/metrics/{}?from={from}&to={to}&granularity={granularity}",
        M::NAME
    );
    if !group_by.is_empty() {
        path.push_str(&format!("&group_by={}", group_by.join(",")));
    }
    let expected = states
        .each_ref()
        .map(|events| direct_rows::<M>(events, from, to, ms, group_by, &[]));
    assert!(
        expected[0] != expected[1] && expected[1] != expected[2],
        "{path}"
    );
    Query { path, expected }
}

/// One answer as a client saw it.
struct Seen {
    query: usize,
    version: Option<u64>,
    /// Which expected state the rows equal, if any.
    state: Option<usize>,
}

/// Shared between the test and its clients.
struct Control {
    stop: AtomicBool,
    /// Answers under a manifest version of at least `watched` are counted in `reached`.
    watched: AtomicU64,
    reached: AtomicU64,
}

/// Clients querying in a loop until stopped; the answers they saw, or the first failure.
fn clients(
    addr: &str,
    queries: &Arc<Vec<Query>>,
    control: &Arc<Control>,
    n: usize,
) -> Vec<std::thread::JoinHandle<Result<Vec<Seen>, String>>> {
    (0..n)
        .map(|c| {
            let (addr, queries, control) = (addr.to_string(), queries.clone(), control.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut i = c;
                while !control.stop.load(Ordering::Relaxed) {
                    let q = &queries[i % queries.len()];
                    let (status, body) =
                        lambda_tests::http::request(&addr, "GET", &q.path, &[], &[])
                            .ok_or_else(|| format!("{}: no answer", q.path))?;
                    if status != 200 {
                        return Err(format!(
                            "{}: {status} {}",
                            q.path,
                            String::from_utf8_lossy(&body)
                        ));
                    }
                    let answer: Value = serde_json::from_slice(&body)
                        .map_err(|e| format!("{}: not JSON: {e}", q.path))?;
                    if answer["truncated"] != false {
                        return Err(format!("{}: truncated", q.path));
                    }
                    let rows = api_rows(&answer);
                    let version = answer["table_version"].as_u64();
                    if version.unwrap_or(0) >= control.watched.load(Ordering::Relaxed) {
                        control.reached.fetch_add(1, Ordering::Relaxed);
                    }
                    seen.push(Seen {
                        query: i % queries.len(),
                        version,
                        state: q.expected.iter().position(|e| *e == rows),
                    });
                    i += 1;
                }
                Ok(seen)
            })
        })
        .collect()
}

/// `lambda batch` with `args` on `lake`; fails the test unless it exits 0.
async fn batch(lake: &std::path::Path, args: &[&str]) {
    let mut cmd = lambda();
    cmd.args(["batch", "--lake", lake.to_str().unwrap()])
        .args(args)
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("lambda batch runs"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "lambda batch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The version of the `page_views` views table (the other metrics' tables move in step).
async fn version(views: &Lake) -> u64 {
    let published = Published::load(views).await.unwrap();
    let versions: BTreeSet<u64> = ["page_views", "funnel", "revenue"]
        .iter()
        .map(|m| published.versions.get(*m).copied().unwrap_or(0))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "the metrics' tables move in step: {published:?}"
    );
    versions.into_iter().next().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_during_batch_publications_never_mix_two_manifests() {
    publications_under_queries(AnswerCache::default()).await;
}

/// The same with the bounded-staleness answer cache `lambda serve` runs with (500 ms): a
/// cached answer is keyed by its manifest version, so it never stands for another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_during_batch_publications_never_mix_two_manifests() {
    publications_under_queries(AnswerCache::new(Duration::from_millis(500), 1_000)).await;
}

/// `start`, or the latest earlier hour from which `n` hours stay within one UTC day.
fn same_day_hours(start: i64, n: i64) -> i64 {
    let last = start + (n - 1) * HOUR_MS;
    let day = last.div_euclid(DAY_MS) * DAY_MS;
    if start >= day {
        start
    } else {
        day - n * HOUR_MS
    }
}

async fn publications_under_queries(answers: AnswerCache) {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap(), true).unwrap();
    let views = lake.child("views");

    // Three complete hours of one UTC day, ending well before now: sessions end at
    // midnight, so the third hour reads the second (and is made dirty by its late files)
    // only when both are on the same day.
    let h0 = same_day_hours(
        hour_floor(chrono::Utc::now().timestamp_millis()) - 5 * HOUR_MS,
        3,
    );
    let cfg = GeneratorConfig {
        events_per_second: 1.5,
        users: 3_000,
        duplicate_fraction: 0.03,
        out_of_order_fraction: 0.05,
        out_of_order_ms: 4_000,
        invalid_fraction: 0.02,
        ..GeneratorConfig::default()
    };
    let main = lines(91, h0, h0 + 3 * HOUR_MS, cfg.clone());
    import(&lake, &main, "gen").await;
    // Late events for the first two hours, imported later (the speed layer never sees them).
    let late_cfg = GeneratorConfig {
        events_per_second: 2.0,
        concurrent_sessions: 40, // short streams: sessions that reach the cart and purchase
        duplicate_fraction: 0.0,
        invalid_fraction: 0.0,
        out_of_order_fraction: 0.0,
        ..cfg
    };
    let late_a = lines(92, h0 + 600_000, h0 + 900_000, late_cfg.clone());
    let late_b = lines(
        93,
        h0 + HOUR_MS + 1_200_000,
        h0 + HOUR_MS + 1_500_000,
        late_cfg,
    );

    let events = valid(&main);
    let with_a: Vec<Event> = events.iter().cloned().chain(valid(&late_a)).collect();
    let with_b: Vec<Event> = with_a.iter().cloned().chain(valid(&late_b)).collect();
    let states = [first_wins(events), first_wins(with_a), first_wins(with_b)];

    // The speed layer (in-process, under `update` so that it equals the batch computation)
    // holds the original events.
    let ctx = MetricContext::default();
    let time = TimeSettings {
        out_of_orderness_ms: 5_000,
        allowed_lateness_ms: 60_000,
        late_policy: LatePolicy::Update,
    };
    let realtime = RealtimeViews::new(ctx, time, Duration::from_secs(30));
    let now = chrono::Utc::now().timestamp_millis();
    let applied = speed::consumer::apply_records(
        &realtime,
        &Validator::default(),
        main.iter()
            .enumerate()
            .map(|(i, l)| (0, i as i64, now, l.as_slice())),
    );
    assert_eq!(applied as usize, main.len());

    let state = Arc::new(AppState {
        batch: BatchViews::new(views.clone(), 64),
        speed: SpeedViews::in_process(realtime).into(),
        collector: None,
        telemetry: Default::default(),
        answers,
        opts: ApiOptions::default(),
    });
    state.batch.refresh().await.unwrap();
    let addr = lambda_tests::serving::start(state.clone()).await;
    // The server follows the manifest as `lambda serve` does, polling often.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watch_manifest(
        state.clone(),
        Duration::from_millis(20),
        async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    let range = (h0, h0 + 3 * HOUR_MS);
    let queries = Arc::new(vec![
        query::<PageViews>(&states, range, ("minute", 60_000), &["country"]),
        query::<Funnel>(&states, range, ("hour", HOUR_MS), &["device"]),
        query::<Revenue>(&states, range, ("hour", HOUR_MS), &["category"]),
        query::<PageViews>(&states, range, ("hour", HOUR_MS), &[]),
    ]);
    let control = Arc::new(Control {
        stop: AtomicBool::new(false),
        watched: AtomicU64::new(u64::MAX),
        reached: AtomicU64::new(0),
    });
    let threads = clients(&addr, &queries, &control, 3);

    let hour = |i: i64| HourKey(h0 / HOUR_MS + i).to_string();
    // 1. The first publication of each hour: the boundary moves hour by hour from the
    //    speed layer to the batch layer; both hold the same events.
    batch(&lake_dir, &["--from", &hour(0), "--to", &hour(3)]).await;
    // 2. Re-runs of identical input, hour by hour, three times.
    for _ in 0..3 {
        for i in 0..3 {
            batch(&lake_dir, &["--hour", &hour(i)]).await;
        }
    }
    // 3. Late files make the first two hours dirty, and the third (its sessions read the
    //    hour before it); the dirty run recomputes them, oldest first, one publication each.
    import(&lake, &late_a, "late-a").await;
    import(&lake, &late_b, "late-b").await;
    let before_dirty = version(&views).await;
    batch(&lake_dir, &["--dirty", "--settle-secs", "0"]).await;
    let after_dirty = version(&views).await;
    assert_eq!(
        after_dirty,
        before_dirty + 3,
        "one publication per dirty hour"
    );
    // The clients go on until each query has been answered under the last publication a
    // few times (the server picks it up within its 20 ms poll).
    control.watched.store(after_dirty, Ordering::Relaxed);
    lambda_tests::wait_until(
        "answers under the last manifest",
        Duration::from_secs(30),
        || control.reached.load(Ordering::Relaxed) >= 3 * queries.len() as u64,
    )
    .await;

    control.stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for t in threads {
        let answers = tokio::task::spawn_blocking(move || t.join().expect("client thread"))
            .await
            .unwrap();
        seen.push(answers.unwrap_or_else(|e| panic!("a query failed: {e}")));
    }
    let _ = stop_tx.send(true);
    watcher.await.unwrap();

    // Each answer equals the direct computation under the publication it names: the
    // original events up to the dirty run, then with the first late hour, then with both.
    let expected_state = |v: Option<u64>| match v.unwrap_or(0) {
        v if v <= before_dirty => 0,
        v if v == before_dirty + 1 => 1,
        _ => 2,
    };
    let mut versions = BTreeSet::new();
    let mut per_state = [0usize; 3];
    for (client, answers) in seen.iter().enumerate() {
        // Publications are atomic per metric (one table each): a client's answers never go
        // back in time for one metric; two metrics' tables are committed one after the
        // other, milliseconds apart.
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for (n, a) in answers.iter().enumerate() {
            let metric = queries[a.query]
                .path
                .trim_start_matches("/v1/metrics/")
                .split('?')
                .next()
                .unwrap_or_default();
            let Some(state) = a.state else {
                panic!(
                    "client {client}, answer {n} ({}) under manifest v{:?} equals neither the \
                     answer before nor after a publication: a mixed answer",
                    queries[a.query].path, a.version
                );
            };
            assert_eq!(
                state,
                expected_state(a.version),
                "client {client}, answer {n} ({}): rows of another publication than v{:?}",
                queries[a.query].path,
                a.version
            );
            let previous = last.insert(metric, state).unwrap_or(0);
            assert!(
                state >= previous,
                "client {client}: an answer of {metric} went back in time"
            );
            versions.insert(a.version);
            per_state[state] += 1;
        }
        assert!(
            last.values().all(|s| *s == 2),
            "client {client} saw the final publication of every metric: {last:?}"
        );
    }
    let total: usize = seen.iter().map(Vec::len).sum();
    eprintln!(
        "{total} answers under {} manifest versions (v{before_dirty} before the dirty run); \
         per state {per_state:?}",
        versions.len()
    );
    assert!(
        versions.len() >= 8,
        "queries ran across the publications: {versions:?}"
    );
}
