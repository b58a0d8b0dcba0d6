//! `lambda lake`: the lake writer (Kafka -> lake), `lambda lake import` (NDJSON backfill),
//! and the lake tables' upkeep: `optimize` (compaction of settled hours), `vacuum` (files
//! no retained version needs) and `migrate` (a lake of the layout before the Delta tables).

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use batch::import::{import_ndjson, source_name, ImportOptions};
use batch::lake_writer::{LakeWriter, WriterOptions};
use clap::{Args, Subcommand};
use shared_logic::{topics, Validator};

use crate::batch_cmd::locations;
use crate::KafkaArgs;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LakeArgs {
    #[command(subcommand)]
    command: Option<LakeCommand>,
    #[command(flatten)]
    run: RunArgs,
}

/// Flags of the lake writer (`lambda lake` without a subcommand).
#[derive(Args)]
struct RunArgs {
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    #[command(flatten)]
    topics: crate::topic_args::EventTopicArgs,
    /// Consumer group; instances in one group split the partitions [default: lambda-lake;
    /// with --cdc, lambda-lake-cdc-<table>].
    #[arg(long)]
    group: Option<String>,
    /// The topic is the Debezium change stream of this table: records are checked as
    /// change events and written as raw change files under cdc/<table>/ (rejects to the
    /// dead-letter files with the CDC reason code).
    #[arg(long, value_enum)]
    cdc: Option<crate::CdcTableArg>,
    /// Roll a partition's file at this many MiB of buffered records ...
    #[arg(long, default_value_t = 64)]
    roll_mib: usize,
    /// ... or when its oldest buffered record is this many seconds old.
    #[arg(long, default_value_t = 60.0)]
    roll_secs: f64,
    /// Largest accepted clock skew into the future, in seconds.
    #[arg(long, default_value_t = 300)]
    max_future_skew_secs: i64,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Load NDJSON events (a file, or `-` for stdin) into the lake, with validation and dead letters.
    Import(ImportArgs),
    /// Compact the small flush files of every settled hour of the lake's tables (safe while
    /// the writer runs).
    Optimize(OptimizeArgs),
    /// Delete files of the lake's tables that no version of the last N hours needs
    /// (replaced by optimize) and files no commit added (flushes that died before their
    /// commit) once older than N hours.
    Vacuum(VacuumArgs),
    /// Convert a lake written before the Delta tables (hive-layout Parquet and `_writer/`
    /// intents) into the Delta tables, in place. Run it with the lake writers stopped.
    Migrate(MigrateArgs),
}

#[derive(Args)]
struct OptimizeArgs {
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// An hour is compacted once its end is this many seconds past (late events settled).
    #[arg(long, default_value_t = 3600)]
    settle_secs: i64,
    /// Largest compacted file, in MiB.
    #[arg(long, default_value_t = 128)]
    target_mb: u64,
}

#[derive(Args)]
struct VacuumArgs {
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// Keep what the versions of the last N hours need (at least 1: a running writer's
    /// files are uncommitted for the length of a flush).
    #[arg(long, default_value_t = 168)]
    retain_hours: u32,
    /// Only list what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct MigrateArgs {
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// The events lake writer's consumer group, whose positions the tables record (the CDC
    /// writers' are their default groups, lambda-lake-cdc-<table>).
    #[arg(long, default_value = "lambda-lake")]
    group: String,
    /// The batch views to convert as well (`_current.json` of an earlier version)
    /// [default: <lake>/views].
    #[arg(long)]
    views: Option<String>,
}

#[derive(Args)]
struct ImportArgs {
    /// NDJSON file, or `-` for stdin.
    input: String,
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// Lines per written flush (one file per hour per flush).
    #[arg(long, default_value_t = 1_000_000)]
    chunk_lines: usize,
    /// Largest accepted clock skew into the future, in seconds.
    #[arg(long, default_value_t = 300)]
    max_future_skew_secs: i64,
}

pub async fn run(args: LakeArgs) -> anyhow::Result<()> {
    match args.command {
        Some(LakeCommand::Import(a)) => import(a).await,
        Some(LakeCommand::Optimize(a)) => optimize(a).await,
        Some(LakeCommand::Vacuum(a)) => vacuum(a).await,
        Some(LakeCommand::Migrate(a)) => migrate(a).await,
        None => write(args.run).await,
    }
}

async fn write(args: RunArgs) -> anyhow::Result<()> {
    if args.roll_mib == 0 || !(args.roll_secs > 0.0 && args.roll_secs.is_finite()) {
        anyhow::bail!("--roll-mib and --roll-secs must be positive");
    }
    let (lake, _) = locations(&args.lake, None, true)?;
    let cdc = args.cdc.map(crate::CdcTableArg::table);
    let (default_topic, default_group) = match cdc {
        None => (topics::EVENTS.to_string(), "lambda-lake".to_string()),
        Some(t) => (
            t.default_topic().to_string(),
            format!("lambda-lake-cdc-{}", t.name()),
        ),
    };
    if cdc.is_some() && (args.topics.topic_per_event_type || args.topics.topics.len() > 1) {
        anyhow::bail!("--cdc reads one change topic: --topic once, without --topic-per-event-type");
    }
    let opts = WriterOptions {
        topics: args.topics.resolve(&default_topic)?,
        group_id: args.group.unwrap_or(default_group),
        cdc,
        roll_bytes: args.roll_mib << 20,
        roll_age: Duration::from_secs_f64(args.roll_secs),
        validator: Validator {
            max_future_skew_ms: args.max_future_skew_secs * 1000,
            ..Validator::default()
        },
    };
    let config = args
        .kafka
        .settings()?
        .client_config(lambda_io::kafka::ClientRole::Consumer, &[]);
    tracing::info!(lake = %lake.display(), topics = ?opts.topics, group = %opts.group_id, "lake writer starts");
    let writer = LakeWriter::new(lake, &config, opts)?;
    let stats = writer.run(lambda_tools::signal::shutdown_signal()).await?;
    println!(
        "lake writer stopped: {} records, {} events, {} changes, {} dead letters, {} flushes",
        stats.records, stats.events, stats.changes, stats.dead_letters, stats.flushes
    );
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    if args.chunk_lines == 0 {
        anyhow::bail!("--chunk-lines must be positive");
    }
    let (lake, _) = locations(&args.lake, None, true)?;
    let reader: Box<dyn BufRead + Send> = if args.input == "-" {
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let validator = Validator {
        max_future_skew_ms: args.max_future_skew_secs * 1000,
        ..Validator::default()
    };
    let opts = ImportOptions {
        source: source_name(&args.input),
        chunk_lines: args.chunk_lines,
        validator,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let started = std::time::Instant::now();
    let report = import_ndjson(&lake, reader, &args.input, opts).await?;
    println!(
        "imported {} lines into {} in {:.2} s: {} events, {} dead letters, {} files, {} bytes",
        report.lines,
        lake.display(),
        started.elapsed().as_secs_f64(),
        report.events,
        report.dead_letters,
        report.files,
        report.bytes
    );
    if report.already_imported > 0 {
        println!(
            "{} lines were in the lake already (an earlier import of {}): skipped",
            report.already_imported, args.input
        );
    }
    Ok(())
}

async fn optimize(args: OptimizeArgs) -> anyhow::Result<()> {
    if args.target_mb == 0 || args.settle_secs < 0 {
        anyhow::bail!("--target-mb must be positive and --settle-secs not negative");
    }
    let lake = lambda_io::Lake::open(&args.lake, false)?;
    let opts = batch::optimize::OptimizeOptions {
        settle_ms: args.settle_secs * 1000,
        target_bytes: args.target_mb << 20,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let started = std::time::Instant::now();
    for t in batch::optimize::optimize(&lake, &opts).await? {
        println!(
            "{}: {} hours compacted, {} files into {}, {} rows{}",
            t.table,
            t.hours,
            t.files_removed,
            t.files_added,
            t.rows,
            if t.conflicts > 0 {
                format!(
                    ", {} hours left for the next run (concurrent commits)",
                    t.conflicts
                )
            } else {
                String::new()
            }
        );
    }
    println!(
        "optimized {} in {:.2} s",
        lake.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn vacuum(args: VacuumArgs) -> anyhow::Result<()> {
    if args.retain_hours < 1 {
        anyhow::bail!(
            "--retain-hours must be at least 1: a running lake writer's files are not committed yet while it flushes, and vacuum would delete them"
        );
    }
    let lake = lambda_io::Lake::open(&args.lake, false)?;
    let retain = chrono::Duration::hours(i64::from(args.retain_hours));
    for (table, files) in batch::optimize::vacuum(&lake, retain, args.dry_run).await? {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        println!("{table}: {verb} {} files", files.len());
        for f in files.iter().filter(|_| args.dry_run) {
            println!("  {f}");
        }
    }
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let (lake, views) = locations(&args.lake, args.views.as_deref(), false)?;
    let report = batch::migrate::migrate(&lake, &args.group).await?;
    let views_done = batch::views_admin::migrate(&views).await?;
    if !views_done.already {
        println!(
            "views under {}: {} hour(s), {} view file(s) now in Delta tables",
            views.display(),
            views_done.hours,
            views_done.files
        );
    }
    if report.nothing_done() {
        println!(
            "{}: nothing to migrate (already Delta tables, or no data)",
            lake.display()
        );
        return Ok(());
    }
    for t in &report.tables {
        if t.already_delta {
            println!("{}: already a Delta table, left as it is", t.table);
            continue;
        }
        println!(
            "{}: {} files ({} rows) committed, {} moved into hour 00, {} transactions",
            t.table,
            t.files,
            t.rows,
            t.moved,
            t.transactions.len()
        );
        for (url, why) in &t.skipped {
            println!("  left out {url}: {why}");
        }
    }
    println!("{} intent files removed", report.intents_removed);
    if let Some(r) = &report.repartition {
        println!(
            "events: repartitioned by event type: {} files ({} rows) rewritten into {} files{}",
            r.files_in,
            r.rows,
            r.files_out,
            match r.conflicts {
                0 => String::new(),
                n => format!(", {n} commits planned again after concurrent appends"),
            }
        );
    }
    Ok(())
}
