//! `lambda bench speed-file`: the speed layer's processing path (validation, dedup,
//! watermarks, late policy, fold into the per-partition states, in micro-batches) fed from
//! an NDJSON file instead of Kafka, to separate the pipeline's own speed from the broker's.
//! `lambda bench ingest` and `lambda bench query` load a running `lambda serve` over HTTP
//! ([`bench_http`]).

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use shared_logic::{MetricContext, Validator};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;

use crate::bench_http;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Feed the speed layer's per-record path from an NDJSON file; print records/s.
    SpeedFile(SpeedFileArgs),
    /// Post generated events to a running `lambda serve` collector (`POST /v1/events`) as
    /// NDJSON batches over concurrent connections; print events/s accepted and latency.
    Ingest(bench_http::IngestArgs),
    /// Load a query route of a running `lambda serve` at a fixed open-loop rate (or closed
    /// loop with `--rate 0`); print latency quantiles and requests/s.
    Query(bench_http::QueryArgs),
}

#[derive(Args)]
struct SpeedFileArgs {
    /// NDJSON input (e.g. from `lambda generate`).
    input: String,
    /// Records per micro-batch.
    #[arg(long, default_value_t = 20_000)]
    batch: usize,
    /// Spread records over this many partitions (round robin), as a topic would.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::SpeedFile(args) => speed_file(args),
        BenchCommand::Ingest(args) => bench_http::ingest(args),
        BenchCommand::Query(args) => bench_http::query(args),
    }
}

fn speed_file(args: SpeedFileArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.partitions <= 0 {
        anyhow::bail!("--batch and --partitions must be positive");
    }
    let file =
        std::fs::File::open(&args.input).with_context(|| format!("cannot open {}", args.input))?;
    let lines: Vec<Vec<u8>> = std::io::BufReader::with_capacity(1 << 20, file)
        .split(b'\n')
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", args.input))?;
    let views = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    );
    let validator = Validator {
        max_future_skew_ms: i64::MAX / 4,
        ..Validator::default()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let mut applied = 0;
    // A record's partition is a hash of its bytes: a repeated delivery lands where the
    // first did, as keyed records do in Kafka.
    let mut next_offset = vec![0i64; args.partitions as usize];
    let positions: Vec<(i32, i64)> = lines
        .iter()
        .map(|line| {
            let p = (xxhash_rust::xxh3::xxh3_64(line) % args.partitions as u64) as usize;
            next_offset[p] += 1;
            (p as i32, next_offset[p] - 1)
        })
        .collect();
    let started = Instant::now();
    for (lines, positions) in lines.chunks(args.batch).zip(positions.chunks(args.batch)) {
        let records = lines
            .iter()
            .zip(positions)
            .map(|(line, (p, o))| (*p, *o, now, line.as_slice()));
        applied += speed::consumer::apply_records(&views, &validator, records);
    }
    let secs = started.elapsed().as_secs_f64();
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
    Ok(())
}
