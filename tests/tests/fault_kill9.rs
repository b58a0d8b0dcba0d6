//! kill -9 of every layer, as a user runs them (`lambda speed`, `lambda lake`,
//! `lambda batch` processes against the real broker), at seeded random points, then a
//! restart: the final real-time views and the final batch views equal the direct
//! computation over the topic (shared-logic's dedup and fold, i.e. a run without faults),
//! every Kafka position is in the lake exactly once, and no serving-side reader ever sees
//! a half-published batch view while the batch job is killed mid-run.
//!
//! `tests/lake_writer_crash.rs` kills the lake writer alone and `tests/speed_faults.rs`
//! the speed layer alone; here all three die, repeatedly, during one run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use batch::job::{self, HourSelection};
use lambda_io::kafka::{ensure_topics, KafkaSettings};
use lambda_io::Lake;
use lambda_tests::broker::FAST_GROUP_FAILOVER;
use lambda_tests::faults::{
    assert_lake_holds_topic_exactly_once, assert_same, assert_same_with_quality, batch_aggregates,
    direct, direct_from_topic, hour_floor, kill_9, lambda, rfc3339, spawn, speed_aggregates,
    speed_applied, speed_status, terminate, wait_every, wait_exit, within_hours, ManifestReader,
    Rng,
};
use lambda_tests::http::free_addr;
use lambda_tests::lake_files::positions;
use lambda_tests::topic::read_all;
use lambda_tests::{wait_for, Broker, ChildGuard};
use shared_logic::window::{HourKey, HOUR_MS};

const TOPIC: &str = "kill9-events";
const PARTITIONS: i32 = 3;
/// Records the generator produces (paced over about 30 s).
const RECORDS: u64 = 36_000;
const SEED: u64 = 0x6b69_6c6c_2d39;

fn start_speed(brokers: &str, checkpoints: &Path, addr: &str) -> ChildGuard {
    let mut args = vec![
        "speed",
        "--topic",
        TOPIC,
        "--group",
        "kill9-speed",
        "--listen",
        addr,
        "--checkpoints",
        checkpoints.to_str().unwrap(),
        "--brokers",
        brokers,
        "--checkpoint-interval-secs",
        "1.5",
        "--batch-max-records",
        "700",
        "--dead-letter-topic",
        "kill9-dlq",
        "--late-topic",
        "kill9-late",
    ];
    args.extend(FAST_GROUP_FAILOVER);
    spawn(&args)
}

/// Whether the speed instance at `addr` answers and holds every partition: the group has
/// settled with it alone (while a killed member still counts, a rebalance is to come).
fn speed_holds_every_partition(addr: &str) -> bool {
    speed_status(addr).is_some_and(|s| {
        s["progress"]["offsets"]
            .as_object()
            .is_some_and(|o| o.len() == PARTITIONS as usize)
    })
}

fn start_lake(brokers: &str, lake: &Path) -> ChildGuard {
    let mut args = vec![
        "lake",
        "--lake",
        lake.to_str().unwrap(),
        "--topic",
        TOPIC,
        "--group",
        "kill9-lake",
        "--roll-mib",
        "1",
        "--roll-secs",
        "0.4",
        "--brokers",
        brokers,
    ];
    args.extend(FAST_GROUP_FAILOVER);
    spawn(&args)
}

/// Records the lake holds, from the names of its tables' committed files alone
/// (`…-p<partition>-<first>-<last>[-<suffix>].parquet`): per partition the highest last
/// offset + 1, summed. Cheap enough to poll.
fn lake_progress(lake: &Path) -> u64 {
    let mut next: std::collections::BTreeMap<i32, u64> = Default::default();
    for table in ["events", "dead-letter"] {
        for file in lambda_tests::lake_files::table_files(&lake.join(table)) {
            let parsed = file
                .file_name()
                .and_then(|s| s.to_str())
                .and_then(lambda_io::lake_names::parse_flush_file_name);
            if let Some((_, p, _, last)) = parsed {
                let e = next.entry(p).or_default();
                *e = (*e).max(last as u64 + 1);
            }
        }
    }
    next.values().sum()
}

/// How the batch job fared under the killer.
#[derive(Debug, Default)]
struct BatchTally {
    killed: u32,
    succeeded: u32,
    /// Successful runs that computed and published at least one hour.
    published: u32,
    /// Runs that failed on their own (exit code and stderr).
    failed: Vec<String>,
}

/// Runs `lambda batch --dirty` over and over, killing each run at a seeded random point
/// (from right after its start to past its usual end), until stopped.
struct BatchKiller {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<BatchTally>,
}

fn batch_command(lake: &Path) -> std::process::Command {
    let mut cmd = lambda();
    cmd.args(["batch", "--lake", lake.to_str().unwrap()])
        .args(["--dirty", "--settle-secs", "0"])
        .args(["--threads", "1"]);
    cmd
}

impl BatchKiller {
    fn start(lake: PathBuf, seed: u64) -> BatchKiller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut tally = BatchTally::default();
            while !flag.load(Ordering::Relaxed) {
                let mut child = ChildGuard(
                    batch_command(&lake)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("lambda batch starts"),
                );
                // Every other run (at random) is killed 5–250 ms after its start, which
                // lands anywhere from its listing of the lake to its last publication (a run
                // with nothing left to do may finish first: how many are killed varies with
                // the machine's speed).
                let kill_after = match rng.range(0, 2) {
                    0 => Duration::from_millis(rng.range(5, 250)),
                    _ => Duration::from_secs(60),
                };
                match wait_exit(&mut child, kill_after) {
                    None => {
                        kill_9(&mut child);
                        tally.killed += 1;
                    }
                    Some(status) => {
                        let mut err = String::new();
                        if let Some(mut e) = child.0.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut e, &mut err);
                        }
                        let mut out = String::new();
                        if let Some(mut o) = child.0.stdout.take() {
                            let _ = std::io::Read::read_to_string(&mut o, &mut out);
                        }
                        match status.code() {
                            Some(0) => {
                                tally.succeeded += 1;
                                if !out.contains(" 0 hour(s) computed") {
                                    tally.published += 1;
                                }
                            }
                            code => tally.failed.push(format!("exit {code:?}: {err}")),
                        }
                    }
                }
                // The next run starts after a random pause (part of the schedule, not a wait).
                std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
            }
            tally
        });
        BatchKiller { stop, thread }
    }

    fn finish(self) -> BatchTally {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("batch killer thread")
    }
}

/// A kill of the speed layer or the lake writer: once it has applied/written `at` records,
/// or (`at == 0`) early in the restarted process's life: `early_ms / 10` after it holds a
/// partition again (the speed instance: while it restores and applies its first records;
/// the lake writer: after its first flush).
#[derive(Debug, Clone, Copy)]
struct Kill {
    speed: bool,
    at: u64,
    early_ms: u64,
}

fn schedule(rng: &mut Rng) -> Vec<Kill> {
    let mut kills = Vec::new();
    for speed in [true, false] {
        // Three kills mid-stream at random depths, one while the restarted process starts.
        let mut depths: Vec<u64> = (0..3)
            .map(|i| {
                let band = RECORDS * 8 / 10 / 3;
                RECORDS / 10 + i * band + rng.range(0, band)
            })
            .collect();
        depths.sort_unstable();
        for at in depths {
            kills.push(Kill {
                speed,
                at,
                early_ms: 0,
            });
        }
        let early = Kill {
            speed,
            at: 0,
            early_ms: rng.range(300, 2_500),
        };
        let i = rng.range(1, kills.len() as u64) as usize;
        kills.insert(i, early);
    }
    // Interleave the two layers' kills by depth (an early kill follows its predecessor).
    let mut ordered = Vec::new();
    let (mut s, mut l): (Vec<Kill>, Vec<Kill>) = kills.into_iter().partition(|k| k.speed);
    s.reverse();
    l.reverse();
    while !s.is_empty() || !l.is_empty() {
        let depth = |v: &Vec<Kill>| v.last().map(|k| k.at);
        let take_speed = match (depth(&s), depth(&l)) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            _ => false,
        };
        ordered.push(if take_speed { s.pop() } else { l.pop() }.unwrap());
    }
    ordered
}

/// The two tests kill and restart processes on a 2-core machine: one at a time, so that
/// neither's timeouts measure the other's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

// In the default run again since issue 23: on the local broker (tansu 0.6) a consumer group
// could stay blocked for good after a member was killed at an unlucky moment of a rebalance
// (on 2026-12-01 this test failed 5 of 5 runs, then 2 of 4 after the early-kill change below,
// always with a restarted member whose JoinGroup never returned). Every group member now has
// a watchdog (`lambda_io::kafka::GroupMember`) that leaves and rejoins when a partition it does
// not hold stalls; with the fast-failover sessions of 6 s its bound is about 35 s, inside the
// 90 s waits below. On 2026-12-02 it passed 5 of 5 runs (75–96 s each).
#[test]
fn kill_9_of_speed_lake_and_batch_during_one_run_loses_and_double_counts_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let broker = Broker::start();
    let brokers = broker.brokers().to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(ensure_topics(
            &KafkaSettings::new(&brokers),
            &[(TOPIC, PARTITIONS)],
            Duration::from_secs(30),
        ))
        .expect("topic created");
    let dir = tempfile::tempdir().unwrap();
    let (lake, checkpoints) = (dir.path().join("lake"), dir.path().join("checkpoints"));
    let views = lake.join("views");
    std::fs::create_dir_all(&views).unwrap();
    let speed_addr = free_addr();
    let mut rng = Rng::new(SEED);

    // Event times in the past: three hours before the current one, 2 h of events at 5/s,
    // 5 % out of order within the speed layer's out-of-orderness (so nothing is late and
    // the speed views must equal the direct computation exactly), duplicates, invalid.
    let start = hour_floor(chrono::Utc::now().timestamp_millis()) - 3 * HOUR_MS + 7 * 60_000;
    let count = RECORDS.to_string();
    let start_text = rfc3339(start);
    let seed = (SEED % 1000).to_string();
    let mut generator = spawn(&[
        "generate",
        "--kafka",
        "--topic",
        TOPIC,
        "--partitions",
        "3",
        "--brokers",
        &brokers,
        "--seed",
        &seed,
        "--start",
        &start_text,
        "--event-rate",
        "5",
        "--rate",
        "1200",
        "--count",
        &count,
        "--out-of-order",
        "0.05",
        "--out-of-order-ms",
        "4000",
        "--duplicates",
        "0.03",
        "--invalid",
        "0.02",
    ]);

    let mut speed = start_speed(&brokers, &checkpoints, &speed_addr);
    let mut writer = start_lake(&brokers, &lake);
    let reader = ManifestReader::start(&views);
    let killer = BatchKiller::start(lake.clone(), rng.next_u64());

    let kills = schedule(&mut rng);
    let mut done = Vec::new();
    let mut lake_at_restart = 0;
    for kill in &kills {
        let name = if kill.speed { "speed" } else { "lake writer" };
        if kill.at == 0 && kill.speed {
            // The restarted process is killed while it restores: once the group has settled
            // with it (it holds every partition), within a quarter second. Not while it joins
            // the group (nor just before a rebalance that would make it rejoin): a
            // member killed with its JoinGroup pending holds every later join on the local
            // broker (tansu 0.6 expires it by no timeout; seen on 2026-12-01 with both the
            // code before and after the architecture change), which tests the broker, not
            // the speed layer.
            wait_every(
                "the restarted speed instance to hold every partition",
                Duration::from_millis(5),
                Duration::from_secs(90),
                || speed_holds_every_partition(&speed_addr),
            );
            std::thread::sleep(Duration::from_millis(kill.early_ms / 10));
        } else if kill.at == 0 {
            // The same for the lake writer: once it has flushed again.
            wait_every(
                "the restarted lake writer to flush",
                Duration::from_millis(5),
                Duration::from_secs(90),
                || lake_progress(&lake) > lake_at_restart,
            );
            std::thread::sleep(Duration::from_millis(kill.early_ms / 10));
        } else {
            let progress = || {
                if kill.speed {
                    speed_applied(&speed_addr)
                } else {
                    lake_progress(&lake)
                }
            };
            wait_every(
                &format!("the {name} to reach {} records", kill.at),
                Duration::from_millis(20),
                Duration::from_secs(90),
                || progress() >= kill.at,
            );
        }
        let child = if kill.speed { &mut speed } else { &mut writer };
        assert_eq!(
            child.0.try_wait().unwrap(),
            None,
            "the {name} died by itself"
        );
        kill_9(child);
        lake_at_restart = lake_progress(&lake);
        *child = if kill.speed {
            start_speed(&brokers, &checkpoints, &speed_addr)
        } else {
            start_lake(&brokers, &lake)
        };
        done.push(format!("{name}@{}", kill.at));
    }
    let generated = wait_exit(&mut generator, Duration::from_secs(90)).expect("generator ends");
    assert!(generated.success(), "lambda generate: {generated}");

    // After the faults both consumers catch up by themselves.
    wait_for(
        "the speed layer to apply every record",
        Duration::from_secs(120),
        || speed_applied(&speed_addr) >= RECORDS,
    );
    wait_every(
        "every record in the lake exactly once",
        Duration::from_millis(300),
        Duration::from_secs(120),
        || {
            if lake_progress(&lake) < RECORDS {
                return false;
            }
            let mut p = positions(&lake);
            let total = p.len();
            p.sort_unstable();
            p.dedup();
            total as u64 == RECORDS && p.len() as u64 == RECORDS
        },
    );
    let tally = killer.finish();
    // The restart of the batch job: a last run completes at once (runs take no lock, so
    // nothing a killed run left behind stands in its way).
    let out = batch_command(&lake)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("lambda batch runs");
    let final_run = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the batch job after the kills: {}: {final_run}",
        out.status
    );
    let reader = reader.finish();

    // Nothing is dirty any more: every hour's view was computed from the lake's final files.
    let (lake_store, views_store) = (
        Lake::open(lake.to_str().unwrap(), false).unwrap(),
        Lake::open(views.to_str().unwrap(), false).unwrap(),
    );
    let dirty = runtime
        .block_on(job::select_hours(
            &lake_store,
            &views_store,
            &HourSelection::Dirty { before: None },
        ))
        .unwrap();
    assert!(
        dirty.is_empty(),
        "hours left dirty: {dirty:?} ({final_run})"
    );

    // The run without faults: every record of the topic, deduplicated and folded.
    let stored = read_all(&broker.client_config(), TOPIC);
    let records: u64 = stored.values().map(|v| v.len() as u64).sum();
    assert_eq!(
        records, RECORDS,
        "the generator's records are all in the topic"
    );
    let expected = direct_from_topic(&stored);

    assert_same_with_quality(
        &speed_aggregates(&speed_addr),
        &expected,
        "real-time views after the kills",
    );
    let status = speed_status(&speed_addr).unwrap();
    assert_eq!(
        status["progress"]["counters"]["records"], RECORDS,
        "the speed layer applied each record exactly once: {}",
        status["progress"]["counters"]
    );
    assert_eq!(
        status["progress"]["counters"]["late_dropped"], 0,
        "nothing was late (the comparison with the direct computation is exact)"
    );

    let (published, batch_views) = runtime.block_on(batch_aggregates(&views_store));
    assert_eq!(published.hours.len(), 3, "{:?}", published.hours.keys());
    // The rejects are noted at their record times (now): outside the published hours.
    let hours: Vec<HourKey> = published
        .hours
        .keys()
        .map(|h| HourKey::parse(h).unwrap())
        .collect();
    assert_same_with_quality(
        &batch_views,
        &within_hours(&expected, &hours),
        "batch views after the kills",
    );

    assert_lake_holds_topic_exactly_once(&lake, &stored);

    assert!(
        reader.errors.is_empty(),
        "a serving reader saw a half-published view: {:?}",
        &reader.errors[..reader.errors.len().min(5)]
    );
    assert!(
        reader.versions.len() >= 3 && reader.hours_read > 0,
        "the reader followed the publications: {reader:?}"
    );
    assert!(
        tally.killed >= 1,
        "the batch job was killed mid-run: {tally:?}"
    );
    eprintln!(
        "kills: {} ; batch runs {tally:?}; reader: {} rounds, {} versions, {} hour views read",
        done.join(", "),
        reader.rounds,
        reader.versions.len(),
        reader.hours_read
    );
    assert!(
        terminate(&mut speed, Duration::from_secs(30)).success(),
        "the speed layer stops cleanly"
    );
    assert!(
        terminate(&mut writer, Duration::from_secs(30)).success(),
        "the lake writer stops cleanly"
    );
}

/// Where in a batch run a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// A random time after the start (scan, fold, encode, write or publish).
    Time(u64),
    /// Right after the run's `n`-th view file appeared, before (or while) the commit that
    /// adds it is made, plus a few milliseconds.
    AfterViewFile(usize, u64),
    /// Between two of the run's commits: right after its first commit to a views table,
    /// while the other metrics of the hour are still to be committed.
    WhilePublishing,
}

/// Commits made to the views' tables so far (every `_delta_log/<version>.json`).
fn view_commits(views: &Path) -> usize {
    std::fs::read_dir(views)
        .into_iter()
        .flatten()
        .flatten()
        .map(|table| {
            std::fs::read_dir(table.path().join("_delta_log"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .sum()
}

fn view_files(views: &Path) -> usize {
    lambda_tests::lake_files::parquet_files(views).len()
}

#[test]
fn a_serving_reader_never_sees_a_half_published_view_while_batch_runs_are_killed() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (lake, ndjson) = (dir.path().join("lake"), dir.path().join("events.ndjson"));
    let views = lake.join("views");
    std::fs::create_dir_all(&views).unwrap();
    let h0 = hour_floor(chrono::Utc::now().timestamp_millis()) - 6 * HOUR_MS;
    let start = rfc3339(h0 + 5 * 60_000);
    // Four and a half hours of events (2 per second of event time), imported in chunks so
    // that every hour has several input files.
    let out = lambda()
        .args(["generate", "--seed", "61", "--start", &start])
        .args(["--event-rate", "2", "--count", "33000"])
        .args([
            "--out-of-order",
            "0.05",
            "--duplicates",
            "0.03",
            "--invalid",
            "0.02",
        ])
        .args(["--output", ndjson.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = lambda()
        .args(["lake", "import", ndjson.to_str().unwrap()])
        .args(["--lake", lake.to_str().unwrap(), "--chunk-lines", "5000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let (from, to) = (
        shared_logic::window::HourKey(h0 / HOUR_MS).to_string(),
        shared_logic::window::HourKey(h0 / HOUR_MS + 6).to_string(),
    );
    let run = || {
        let mut cmd = lambda();
        cmd.args(["batch", "--lake", lake.to_str().unwrap()])
            .args(["--from", &from, "--to", &to])
            .args(["--threads", "1"]);
        cmd
    };
    let reader = ManifestReader::start(&views);
    let mut rng = Rng::new(SEED ^ 0xba7c);
    let mut points = Vec::new();
    for i in 0..12u64 {
        points.push(match i % 3 {
            0 => KillPoint::Time(rng.range(20, 500)),
            1 => KillPoint::AfterViewFile(rng.range(1, 15) as usize, rng.range(0, 20)),
            _ => KillPoint::WhilePublishing,
        });
    }
    rng.shuffle(&mut points);
    let (mut killed, mut killed_publishing, mut finished) = (0, 0, 0);
    let mut points = points.into_iter();
    let mut attempts = 0;
    while let Some(point) = points.next() {
        attempts += 1;
        assert!(attempts < 40, "the kill points were not reached");
        let before = view_files(&views);
        let commits_before = view_commits(&views);
        let mut child = ChildGuard(run().spawn().expect("lambda batch starts"));
        let hit = match point {
            KillPoint::Time(ms) => wait_exit(&mut child, Duration::from_millis(ms)).is_none(),
            KillPoint::AfterViewFile(n, ms) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if child.0.try_wait().unwrap().is_some() {
                        break false;
                    }
                    if view_files(&views) >= before + n {
                        std::thread::sleep(Duration::from_millis(ms)); // the kill point
                        break true;
                    }
                    assert!(Instant::now() < deadline, "the batch run makes no progress");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            KillPoint::WhilePublishing => {
                // Poll without pausing: an hour's commits follow each other within
                // milliseconds.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if view_commits(&views) > commits_before {
                        break true;
                    }
                    if child.0.try_wait().unwrap().is_some() {
                        break false;
                    }
                    assert!(Instant::now() < deadline, "the batch run makes no progress");
                }
            }
        };
        if hit {
            kill_9(&mut child);
            killed += 1;
            if point == KillPoint::WhilePublishing {
                killed_publishing += 1;
            }
        } else {
            let status = wait_exit(&mut child, Duration::from_secs(60)).expect("run ends");
            assert!(status.success(), "a batch run failed: {status}");
            finished += 1;
            if point == KillPoint::WhilePublishing && killed_publishing == 0 {
                // Missed the window between commits: try that point again.
                let rest: Vec<KillPoint> = std::iter::once(point).chain(points).collect();
                points = rest.into_iter();
            }
        }
    }
    assert!(
        killed_publishing >= 1,
        "a run was killed between its commits"
    );

    // The restart: a run that completes at once (no lock to wait for).
    let out = run().stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "the batch job after {killed} kills ({killed_publishing} while publishing): {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report = reader.finish();
    assert!(
        report.errors.is_empty(),
        "a serving reader saw a half-published view: {:?}",
        &report.errors[..report.errors.len().min(5)]
    );
    assert!(
        killed >= 8 && report.versions.len() >= 10,
        "runs were killed mid-run ({killed} killed, {finished} finished) while the reader \
         followed the publications ({} versions)",
        report.versions.len()
    );

    // The final views equal the direct computation over the imported lines.
    let now = chrono::Utc::now().timestamp_millis();
    let v = shared_logic::Validator::default();
    let text = std::fs::read(&ndjson).unwrap();
    let events: Vec<shared_logic::Event> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .filter_map(|(i, l)| {
            v.validate(l, shared_logic::Origin::import_line(i as i64), now)
                .ok()
        })
        .collect();
    let views_store = Lake::open(views.to_str().unwrap(), false).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (published, batch_views) = runtime.block_on(batch_aggregates(&views_store));
    assert_eq!(published.hours.len(), 5, "{:?}", published.hours.keys());
    assert_same(&batch_views, &direct(events), "batch views after the kills");
    eprintln!(
        "{killed} runs killed ({killed_publishing} between commits), {finished} finished; \
         reader: {} rounds, {} versions, {} hour views read",
        report.rounds,
        report.versions.len(),
        report.hours_read
    );
}
