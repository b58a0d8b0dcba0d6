//! Helpers shared by the fault tests (`tests/tests/fault_*.rs`): running `lambda` subcommands as
//! processes, killing them, a seeded random source for kill points, the speed layer's
//! status and views over HTTP, the direct computation the final views are compared with,
//! and a serving-side reader that checks every batch publication while faults happen.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_io::manifest::Published;
use lambda_io::Lake;
use serving::batch_views::BatchViews;
use shared_logic::metric::Metric;
use shared_logic::metrics::{Funnel, PageViews, Revenue};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{
    Aggregates, Event, MetricContext, MetricId, MetricViews, MetricVisitor, Registered,
};

use crate::lake_files::views_from_parquet;
use crate::topic::Stored;
use crate::ChildGuard;

/// The speed token every `lambda` process of these tests runs with (`LAMBDA_SPEED_TOKEN`:
/// `lambda speed` requires it, `lambda serve` and `lambda verify` send it).
pub const SPEED_TOKEN: &str = "test-speed-7f3c1a9e5b2d8064";

/// `GET` on a speed instance with [`SPEED_TOKEN`].
pub fn speed_get(addr: &str, path: &str) -> Option<(u16, Vec<u8>)> {
    let authorization = format!("Bearer {SPEED_TOKEN}");
    crate::http::request(addr, "GET", path, &[("Authorization", &authorization)], &[])
}

/// `lambda` with quiet logs (warnings and errors still reach the test's stderr;
/// `FAULT_TEST_LOG=info` shows more when a run needs a closer look).
pub fn lambda() -> Command {
    lambda_logging("warn")
}

/// `lambda` logging at `level` (unless `FAULT_TEST_LOG` says otherwise): `off` for
/// processes that are expected to log connection errors all through a broker outage.
pub fn lambda_logging(level: &str) -> Command {
    let mut cmd = Command::new(crate::bin::lambda_bin());
    let level = std::env::var("FAULT_TEST_LOG").unwrap_or_else(|_| level.into());
    cmd.env("LAMBDA_LOG", level)
        .env("LAMBDA_SPEED_TOKEN", SPEED_TOKEN)
        .env_remove("LAMBDA_KAFKA_OPTION")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// Starts `lambda <args>`; the process is killed when the guard drops.
pub fn spawn(args: &[&str]) -> ChildGuard {
    spawn_logging(args, "warn")
}

/// [`spawn`] with the log level of [`lambda_logging`].
pub fn spawn_logging(args: &[&str], level: &str) -> ChildGuard {
    ChildGuard(
        lambda_logging(level)
            .args(args)
            .spawn()
            .unwrap_or_else(|e| panic!("lambda {args:?} starts: {e}")),
    )
}

/// SIGKILL, and reap the process.
pub fn kill_9(child: &mut ChildGuard) {
    let _ = child.0.kill();
    child.0.wait().expect("reap the killed process");
}

/// SIGTERM (a graceful stop) and the exit status, within `timeout`.
pub fn terminate(child: &mut ChildGuard, timeout: Duration) -> ExitStatus {
    let pid = child.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    wait_exit(child, timeout).unwrap_or_else(|| panic!("process {pid} did not stop on SIGTERM"))
}

/// Waits up to `timeout` for the process to exit; its status, or `None` if it still runs.
pub fn wait_exit(child: &mut ChildGuard, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `done` holds, polling every `every`; fails the test after `timeout`. For
/// conditions that are expensive to check (reading the lake back).
pub fn wait_every(what: &str, every: Duration, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// A seeded random source (SplitMix64): the same seed gives the same kill points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo < hi);
        lo + self.next_u64() % (hi - lo)
    }

    /// Shuffles `items` (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.range(0, i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The start of the hour holding `ms`.
pub fn hour_floor(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// RFC 3339 text of epoch milliseconds (for `--start`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The speed instance's `/v1/speed/status` (offsets and counters under `progress`), when
/// it answers.
pub fn speed_status(addr: &str) -> Option<serde_json::Value> {
    let (code, body) = speed_get(addr, "/v1/speed/status")?;
    (code == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

/// Records the speed instance at `addr` has applied: its next offsets summed (0 when it
/// does not answer).
pub fn speed_applied(addr: &str) -> u64 {
    speed_status(addr)
        .and_then(|s| {
            s["progress"]["offsets"]
                .as_object()
                .map(|o| o.values().filter_map(|v| v.as_u64()).sum())
        })
        .unwrap_or(0)
}

/// Metric `M`'s real-time views from the speed instance at `addr` (every window).
pub fn speed_views<M: Metric>(addr: &str) -> MetricViews<M> {
    let (code, body) =
        speed_get(addr, &format!("/v1/speed/views/{}", M::NAME)).expect("views endpoint answers");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    views_from_parquet::<M>(body)
}

/// Every metric's real-time views from the speed instance at `addr`.
pub fn speed_aggregates(addr: &str) -> Aggregates {
    struct Fetch<'a> {
        addr: &'a str,
        aggregates: &'a mut Aggregates,
    }
    impl MetricVisitor for Fetch<'_> {
        type Output = ();
        fn visit<M: Registered>(self) {
            *M::views_in_mut(self.aggregates) = speed_views::<M>(self.addr);
        }
    }
    let mut aggregates = Aggregates::default();
    for id in MetricId::ALL {
        id.visit(Fetch {
            addr,
            aggregates: &mut aggregates,
        });
    }
    aggregates
}

/// The direct computation: shared-logic's dedup (first delivery wins), fold, and the
/// duplicates noted.
pub fn direct(events: Vec<Event>) -> Aggregates {
    Aggregates::fold_deliveries(events, &MetricContext::default())
}

/// Equal views, with a short report (the views are too large to print).
pub fn assert_same(actual: &Aggregates, expected: &Aggregates, what: &str) {
    let report = [
        (
            "page_views",
            crate::data::keys_differing(&actual.page_views, &expected.page_views),
            actual.page_views.len(),
            expected.page_views.len(),
        ),
        (
            "funnel",
            crate::data::keys_differing(&actual.funnel, &expected.funnel),
            actual.funnel.len(),
            expected.funnel.len(),
        ),
        (
            "revenue",
            crate::data::keys_differing(&actual.revenue, &expected.revenue),
            actual.revenue.len(),
            expected.revenue.len(),
        ),
        (
            "sessions",
            crate::data::keys_differing(&actual.sessions, &expected.sessions),
            actual.sessions.len(),
            expected.sessions.len(),
        ),
    ];
    let bad: Vec<String> = report
        .iter()
        .filter(|(_, d, _, _)| *d > 0)
        .map(|(m, d, a, e)| format!("{m}: {d} keys differ ({a} actual, {e} expected)"))
        .collect();
    assert!(bad.is_empty(), "{what}: {}", bad.join("; "));
    assert!(
        !expected.page_views.is_empty(),
        "{what}: the comparison is not vacuous"
    );
}

/// The direct computation over a topic's stored records ([`crate::topic::topic_validated`]):
/// the valid deliveries deduplicated and folded, the duplicates and the rejects noted.
pub fn direct_from_topic(stored: &BTreeMap<i32, Vec<crate::topic::Stored>>) -> Aggregates {
    let (events, rejects) = crate::topic::topic_validated(stored);
    let ctx = MetricContext::default();
    let mut agg = Aggregates::fold_deliveries(events, &ctx);
    for d in rejects {
        if let Some(record_ms) = d.record_ms {
            agg.note_reject(&d.source, d.reason, record_ms, &ctx);
        }
    }
    agg
}

/// `agg` with only the windows of `hours` (what a batch publication of them holds).
pub fn within_hours(agg: &Aggregates, hours: &[HourKey]) -> Aggregates {
    let mut within = agg.clone();
    within.retain_windows(|w| hours.contains(&HourKey::of_window(w)));
    within
}

/// [`assert_same`], and the `quality` figures too: for expected views computed from the
/// topic's records with their record times and sources ([`direct_from_topic`]).
pub fn assert_same_with_quality(actual: &Aggregates, expected: &Aggregates, what: &str) {
    assert_same(actual, expected, what);
    let differing = crate::data::keys_differing(&actual.quality, &expected.quality);
    assert_eq!(
        differing,
        0,
        "{what}: quality: {differing} keys differ ({} actual, {} expected)",
        actual.quality.len(),
        expected.quality.len()
    );
}

/// Every published hour's batch views, read back from the view files the manifest names.
pub async fn batch_aggregates(views: &Lake) -> (Published, Aggregates) {
    let published = Published::load(views).await.expect("manifest readable");
    let hours: Vec<HourKey> = published
        .hours
        .keys()
        .map(|h| HourKey::parse(h).expect("hour key"))
        .collect();
    let agg = batch::view_files::read_all_views(views, &published, &hours)
        .await
        .expect("published views readable");
    (published, agg)
}

/// What a [`ManifestReader`] saw.
#[derive(Debug, Default)]
pub struct ReaderReport {
    /// Distinct manifest versions observed.
    pub versions: BTreeSet<u64>,
    /// Rounds (refresh + read of every metric) done.
    pub rounds: u64,
    /// Hour views read successfully (summed over rounds and metrics).
    pub hours_read: u64,
    /// What went wrong: a manifest naming an unreadable or missing view, or an unreadable
    /// manifest.
    pub errors: Vec<String>,
}

/// A serving-side reader polling the batch manifest as `lambda serve` does
/// ([`BatchViews::refresh`]), and reading, under each snapshot, every covered hour of
/// every metric: a half-published view (a manifest naming a view file that is missing or
/// partial) would show as an error.
pub struct ManifestReader {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<ReaderReport>,
}

async fn read_metric<M: Metric>(
    views: &BatchViews,
    published: &Published,
    report: &mut ReaderReport,
) {
    let covered = BatchViews::covered::<M>(published, i64::MIN / 4, i64::MAX / 4);
    let listed: BTreeSet<HourKey> = published
        .hours
        .iter()
        .filter(|(_, v)| v.views.contains_key(M::NAME))
        .map(|(h, _)| HourKey::parse(h).expect("hour key"))
        .collect();
    // Each metric's table is published on its own (one commit per metric and hour): a
    // snapshot is consistent within a metric, which is what one query reads.
    if covered != listed {
        report.errors.push(format!(
            "manifest v{}: {} covers {covered:?} but lists views for {listed:?} of {} hours",
            published.version,
            M::NAME,
            published.hours.len()
        ));
        return;
    }
    match views.read::<M>(published, i64::MIN / 4, i64::MAX / 4).await {
        Ok(read) if read.views.len() == covered.len() => {
            report.hours_read += read.views.len() as u64;
        }
        Ok(read) => report.errors.push(format!(
            "manifest v{}: {} views read for {} covered hours of {}",
            published.version,
            read.views.len(),
            covered.len(),
            M::NAME
        )),
        Err(e) => report
            .errors
            .push(format!("manifest v{}: {e}", published.version)),
    }
}

impl ManifestReader {
    /// Starts polling the views location `views` on a thread of its own.
    pub fn start(views: &std::path::Path) -> ManifestReader {
        let stop = Arc::new(AtomicBool::new(false));
        let location = views.to_str().expect("UTF-8 path").to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("reader runtime");
            runtime.block_on(async move {
                let lake = Lake::open(&location, true).expect("views location");
                let views = BatchViews::new(lake, 4096);
                let mut report = ReaderReport::default();
                while !flag.load(Ordering::Relaxed) {
                    if let Err(e) = views.refresh().await {
                        report.errors.push(format!("manifest refresh: {e}"));
                    } else if let Some(published) = views.published() {
                        report.versions.insert(published.version);
                        read_metric::<PageViews>(&views, &published, &mut report).await;
                        read_metric::<Funnel>(&views, &published, &mut report).await;
                        read_metric::<Revenue>(&views, &published, &mut report).await;
                    }
                    report.rounds += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                report
            })
        });
        ManifestReader { stop, thread }
    }

    /// Stops the reader; what it saw.
    pub fn finish(self) -> ReaderReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("reader thread")
    }
}

/// Asserts that the lake at `lake` holds every record of the topic exactly once (by Kafka
/// position).
pub fn assert_lake_holds_topic_exactly_once(
    lake: &std::path::Path,
    stored: &BTreeMap<i32, Vec<Stored>>,
) {
    let mut lake_positions = crate::lake_files::positions(lake);
    lake_positions.sort_unstable();
    let mut topic_positions: Vec<(i32, i64)> = stored
        .values()
        .flatten()
        .map(|r| (r.partition, r.offset))
        .collect();
    topic_positions.sort_unstable();
    assert!(
        lake_positions == topic_positions,
        "every Kafka position in the lake exactly once ({} rows for {} records)",
        lake_positions.len(),
        topic_positions.len()
    );
}
