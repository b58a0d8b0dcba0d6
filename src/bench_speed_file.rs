//! `lambda bench speed-file`: the speed layer's processing path (validation, dedup,
//! watermarks, late policy, fold into the per-partition states, in micro-batches) fed from
//! an NDJSON file instead of Kafka, to separate the pipeline's own speed from the broker's.
//!
//! The file is streamed one micro-batch at a time, so the process holds the state and one
//! batch, not the input. Reported: records/s of the apply path alone (reading the file is
//! not timed), the state's size (live heap bytes after the fold minus before, from the
//! counting allocator, per live key with its share of dedup ids), resident memory, and with
//! `--checkpoint-every` the cost of the checkpoints a consumer would write on the way (bytes
//! and time each, not in records/s).

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use shared_logic::{MetricContext, Validator};
use speed::checkpoint::CheckpointStore;
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;

#[derive(Args)]
pub struct SpeedFileArgs {
    /// NDJSON input (e.g. from `lambda generate`).
    input: String,
    /// Records per micro-batch.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Spread records over this many partitions (round robin), as a topic would.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Checkpoint every partition (as the consumer does: dedup expiry, then one save per
    /// partition) after every this many records; 0: never.
    #[arg(long, default_value_t = 0)]
    checkpoint_every: usize,
    /// Where the checkpoints go (a local directory or URL; default: a new directory under
    /// the system's temporary directory, removed at the end).
    #[arg(long)]
    checkpoint_dir: Option<String>,
}

/// One micro-batch read from the file: the lines' bytes and where each ends.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// Reads up to `n` lines; false at the end of the input.
    fn fill(&mut self, input: &mut impl BufRead, n: usize) -> std::io::Result<bool> {
        self.bytes.clear();
        self.ends.clear();
        while self.ends.len() < n {
            let before = self.bytes.len();
            if input.read_until(b'\n', &mut self.bytes)? == 0 {
                break;
            }
            if self.bytes.last() == Some(&b'\n') {
                self.bytes.pop();
            }
            if self.bytes.len() == before {
                continue;
            }
            self.ends.push(self.bytes.len());
        }
        Ok(!self.ends.is_empty())
    }

    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, e)| &self.bytes[s..*e])
    }
}

/// Checkpoint cost over a run.
#[derive(Default)]
struct CheckpointCost {
    count: usize,
    bytes: Vec<usize>,
    secs: Vec<f64>,
}

fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

/// Expires dedup ids and checkpoints every partition (what changed since the last
/// checkpoint, or a new base), as the consumer's checkpoint does.
fn checkpoint(
    views: &RealtimeViews,
    store: &CheckpointStore,
    cost: &mut CheckpointCost,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (time, ctx) = (views.time, &views.ctx);
    views.update(|states| {
        for state in states.values_mut() {
            state.expire_dedup(&time, ctx);
        }
    });
    let handle = tokio::runtime::Handle::current();
    let mut bytes = 0;
    for p in views.partitions() {
        let prepared = views.update(|states| states.get_mut(&p).map(|s| store.prepare(p, s)));
        if let Some(prepared) = prepared.transpose()? {
            bytes += handle.block_on(store.write(p, prepared, ctx))?;
        }
    }
    cost.count += 1;
    cost.bytes.push(bytes);
    cost.secs.push(started.elapsed().as_secs_f64());
    Ok(())
}

pub fn speed_file(args: SpeedFileArgs, live_heap: &dyn Fn() -> usize) -> anyhow::Result<()> {
    if args.batch == 0 || args.partitions <= 0 {
        anyhow::bail!("--batch and --partitions must be positive");
    }
    let file =
        std::fs::File::open(&args.input).with_context(|| format!("cannot open {}", args.input))?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let tmp = std::env::temp_dir().join(format!("lambda-bench-ckpt-{}", std::process::id()));
    let dir = match &args.checkpoint_dir {
        Some(d) => d.clone(),
        None => tmp.to_string_lossy().into_owned(),
    };
    let store = CheckpointStore::new(lambda_io::Lake::open(&dir, true)?, "bench", "events");
    let views = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    );
    let result = fold(&args, &mut input, &views, &store, live_heap);
    if args.checkpoint_dir.is_none() {
        // Only this run's own directory; a failure to remove it is not the benchmark's.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Streams the input through the apply path in micro-batches, checkpointing on the way;
/// prints the figures.
fn fold(
    args: &SpeedFileArgs,
    input: &mut impl BufRead,
    views: &RealtimeViews,
    store: &CheckpointStore,
    live_heap: &dyn Fn() -> usize,
) -> anyhow::Result<()> {
    let validator = Validator {
        max_future_skew_ms: i64::MAX / 4,
        ..Validator::default()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let mut batch = Batch::default();
    let mut positions: Vec<(i32, i64)> = Vec::new();
    // A record's partition is a hash of its bytes: a repeated delivery lands where the
    // first did, as keyed records do in Kafka.
    let mut next_offset = vec![0i64; args.partitions as usize];
    let (mut applied, mut secs, mut since_checkpoint) = (0u64, 0f64, 0usize);
    let mut cost = CheckpointCost::default();
    let heap_before = live_heap();
    let rss_before = crate::heap_count::rss_and_peak().map_or(0, |r| r.0);
    while batch
        .fill(input, args.batch)
        .with_context(|| format!("reading {}", args.input))?
    {
        positions.clear();
        positions.extend(batch.lines().map(|line| {
            let p = (xxhash_rust::xxh3::xxh3_64(line) % args.partitions as u64) as usize;
            next_offset[p] += 1;
            (p as i32, next_offset[p] - 1)
        }));
        let started = Instant::now();
        let records = batch
            .lines()
            .zip(&positions)
            .map(|(line, (p, o))| (*p, *o, now, line));
        applied += speed::consumer::apply_records(views, &validator, records);
        secs += started.elapsed().as_secs_f64();
        since_checkpoint += batch.ends.len();
        if args.checkpoint_every > 0 && since_checkpoint >= args.checkpoint_every {
            checkpoint(views, store, &mut cost)?;
            since_checkpoint = 0;
        }
    }
    drop(batch);
    let heap = live_heap().saturating_sub(heap_before);
    let (rss, peak) = crate::heap_count::rss_and_peak().unwrap_or((0, 0));
    let (keys, dedup) = views.live_keys();
    let c = views.counters();
    println!(
        "speed path from file: {applied} records in {secs:.2} s ({:.0} records/s, one core); events {}, duplicates {}, rejected {}, late dropped {}; live keys {keys}, dedup keys {dedup}",
        applied as f64 / secs.max(1e-9),
        c.events,
        c.duplicates,
        c.rejected,
        c.late_dropped
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "state: {heap} heap bytes ({:.1} MiB; {:.0} bytes per live key with its share of dedup ids, {} users' sessions); resident {:.1} MiB after (+{:.1} MiB while folding), peak {:.1} MiB",
        mib(heap as u64),
        heap as f64 / keys.max(1) as f64,
        views.session_users(),
        mib(rss),
        mib(rss.saturating_sub(rss_before)),
        mib(peak)
    );
    if cost.count > 0 {
        println!(
            "checkpoints: {} (every {} records), bytes written each: median {}, last {}; time each: median {:.1} ms, last {:.1} ms; total {:.2} s",
            cost.count,
            args.checkpoint_every,
            median(&cost.bytes).unwrap_or(0),
            cost.bytes.last().copied().unwrap_or(0),
            median(&cost.secs).unwrap_or(0.0) * 1e3,
            cost.secs.last().copied().unwrap_or(0.0) * 1e3,
            cost.secs.iter().sum::<f64>()
        );
    }
    Ok(())
}
