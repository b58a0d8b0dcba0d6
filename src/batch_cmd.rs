//! `lambda batch`: flags for the hourly batch job, and exit codes that suit cron and a
//! Kubernetes CronJob.

use batch::job::{self, BatchOptions, HourSelection};
use batch::BatchError;
use clap::Args;
use lambda_io::Lake;
use shared_logic::window::HourKey;

/// Exit code when a requested hour has no data in the lake.
pub const EXIT_NO_DATA: u8 = 4;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("hours").required(true).args(["hour", "from", "dirty"])))]
pub struct BatchArgs {
    #[command(flatten)]
    logic: crate::LogicArgs,
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// Where views and manifests go (default: <lake>/views).
    #[arg(long)]
    views: Option<String>,
    /// Compute one hour, e.g. 2026-11-24T10.
    #[arg(long, value_parser = parse_hour)]
    hour: Option<HourKey>,
    /// Compute every hour with data from this hour (inclusive) ...
    #[arg(long, value_parser = parse_hour, requires = "to")]
    from: Option<HourKey>,
    /// ... to this hour (exclusive).
    #[arg(long, value_parser = parse_hour, requires = "from")]
    to: Option<HourKey>,
    /// Compute every settled hour whose input changed since its last run, or that was never
    /// computed.
    #[arg(long)]
    dirty: bool,
    /// With --dirty: an hour is settled (selected) once its end is this many seconds in
    /// the past, so that open hours stay with the speed layer. Sessions that may still
    /// continue past that point stay with the speed layer too (unpublished, hour dirty).
    #[arg(long, default_value_t = 300)]
    settle_secs: i64,
    /// Skip unreadable Parquet files (recorded in the manifest) instead of failing.
    #[arg(long)]
    skip_corrupt: bool,
    /// Scan partitions (default: number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Distinct event ids held in memory at once; larger hours are processed in buckets.
    #[arg(long, default_value_t = 30_000_000)]
    max_ids_in_memory: u64,
    /// Ignored: runs no longer lock (accepted so that older cron lines keep working).
    #[arg(long, hide = true)]
    lock_ttl_secs: Option<u64>,
}

fn parse_hour(text: &str) -> Result<HourKey, String> {
    HourKey::parse(text).ok_or_else(|| format!("`{text}` is not an hour like 2026-11-24T10"))
}

/// Opens the lake and the views location from flags.
pub fn locations(lake: &str, views: Option<&str>, create: bool) -> anyhow::Result<(Lake, Lake)> {
    let lake = Lake::open(lake, create)?;
    let views = match views {
        Some(v) => Lake::open(v, true)?,
        None => lake.child("views"),
    };
    Ok((lake, views))
}

/// Runs the job; the error's exit code distinguishes "no data".
pub async fn run(args: BatchArgs) -> Result<(), (anyhow::Error, u8)> {
    let settled = chrono::Utc::now().timestamp_millis() - args.settle_secs.max(0) * 1000;
    let selection = match (args.hour, args.from, args.to, args.dirty) {
        (Some(h), _, _, _) => HourSelection::One(h),
        (_, Some(from), Some(to), _) => HourSelection::Range { from, to },
        _ => {
            // Hours that ended at or before `settled`: those before the hour holding it.
            HourSelection::Dirty {
                before: Some(HourKey(settled.div_euclid(shared_logic::window::HOUR_MS))),
            }
        }
    };
    if args.lock_ttl_secs.is_some() {
        tracing::warn!("--lock-ttl-secs is ignored: batch runs no longer take locks");
    }
    let (lake, views) = locations(&args.lake, args.views.as_deref(), false).map_err(|e| (e, 1))?;
    let mut opts = BatchOptions {
        skip_corrupt: args.skip_corrupt,
        max_ids_in_memory: args.max_ids_in_memory,
        complete_before_ms: Some(settled),
        ctx: args.logic.ctx().map_err(|e| (e, 2))?,
        ..BatchOptions::default()
    };
    if let Some(t) = args.threads {
        opts.threads = t;
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        opts.progress = Some(std::sync::Arc::new(|done, total, hour, rows| {
            let width = 30;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} hours, last {hour} ({rows} rows)",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }));
    }
    match job::run(&lake, &views, &selection, &opts).await {
        Ok(report) => {
            let rows = report.rows_read();
            let secs = report.elapsed.as_secs_f64();
            let boundary = report
                .published
                .as_ref()
                .and_then(|p| {
                    p.time_boundary
                        .get(shared_logic::registry::NAMES[0])
                        .cloned()
                        .flatten()
                })
                .unwrap_or_else(|| "none".into());
            println!(
                "run {}: {} hour(s) computed, {} without data; {rows} rows in {secs:.2} s ({:.0} rows/s); time boundary {boundary}",
                report.run_id,
                report.hours.len(),
                report.empty_hours.len(),
                rows as f64 / secs.max(1e-9),
            );
            if !report.superseded.is_empty() {
                println!(
                    "{} hour(s) had been published by a later run meanwhile (its views stand): {}",
                    report.superseded.len(),
                    report.superseded.join(", ")
                );
            }
            let o = &report.orders;
            if o.replayed {
                println!(
                    "orders: change log replayed ({} order changes, {} product changes, {} re-deliveries dropped, {} not applied, {} corrupt files skipped); {} hour(s) published",
                    o.order_changes,
                    o.product_changes,
                    o.duplicates,
                    o.rejected.len(),
                    o.skipped_files.len(),
                    o.published_hours.len()
                );
            }
            Ok(())
        }
        Err(e) => {
            let code = match e {
                BatchError::NoData { .. } => EXIT_NO_DATA,
                _ => 1,
            };
            Err((anyhow::Error::new(e).context("batch run failed"), code))
        }
    }
}
