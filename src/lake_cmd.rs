//! `lambda lake`: the lake writer (Kafka -> lake) and `lambda lake import` (NDJSON backfill).

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use batch::import::{import_ndjson, source_name, ImportOptions};
use batch::lake_writer::{LakeWriter, WriterOptions};
use clap::{Args, Subcommand};
use shared_logic::cdc::CdcTable;
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
    /// Topic to consume [default: events; with --cdc, the table's change topic].
    #[arg(long)]
    topic: Option<String>,
    /// Consumer group; instances in one group split the partitions [default: lambda-lake;
    /// with --cdc, lambda-lake-cdc-<table>].
    #[arg(long)]
    group: Option<String>,
    /// The topic is the Debezium change stream of this table: records are checked as
    /// change events and written as raw change files under cdc/<table>/ (rejects to the
    /// dead-letter files with the CDC reason code).
    #[arg(long, value_enum)]
    cdc: Option<CdcArg>,
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

/// A table whose change stream the lake keeps.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CdcArg {
    Orders,
    Products,
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Load NDJSON events (a file, or `-` for stdin) into the lake, with validation and dead letters.
    Import(ImportArgs),
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
        None => write(args.run).await,
    }
}

async fn write(args: RunArgs) -> anyhow::Result<()> {
    if args.roll_mib == 0 || !(args.roll_secs > 0.0 && args.roll_secs.is_finite()) {
        anyhow::bail!("--roll-mib and --roll-secs must be positive");
    }
    let (lake, _) = locations(&args.lake, None, true)?;
    let cdc = args.cdc.map(|t| match t {
        CdcArg::Orders => CdcTable::Orders,
        CdcArg::Products => CdcTable::Products,
    });
    let (default_topic, default_group) = match cdc {
        None => (topics::EVENTS.to_string(), "lambda-lake".to_string()),
        Some(t) => (
            t.default_topic().to_string(),
            format!("lambda-lake-cdc-{}", t.name()),
        ),
    };
    let opts = WriterOptions {
        topic: args.topic.unwrap_or(default_topic),
        group_id: args.group.unwrap_or(default_group),
        cdc,
        roll_bytes: args.roll_mib << 20,
        roll_age: Duration::from_secs_f64(args.roll_secs),
        validator: Validator {
            max_future_skew_ms: args.max_future_skew_secs * 1000,
            ..Validator::default()
        },
    };
    let config = args.kafka.settings()?.client_config(&[]);
    tracing::info!(lake = %lake.display(), topic = %opts.topic, group = %opts.group_id, "lake writer starts");
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
    Ok(())
}
