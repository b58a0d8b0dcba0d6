//! `lambda views`: the batch views' Delta tables: `history` (versions of a metric's table,
//! for time travel), `vacuum` (files no retained version needs) and `migrate` (views
//! published before the Delta tables, converted in place).

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::batch_cmd::locations;

#[derive(Args)]
pub struct ViewsArgs {
    #[command(subcommand)]
    command: ViewsCommand,
}

/// Where the views are.
#[derive(Args)]
struct Location {
    /// The lake: a path, file:// or s3://bucket/prefix URL.
    #[arg(long, default_value = "./data/lake")]
    lake: String,
    /// The views location [default: <lake>/views].
    #[arg(long)]
    views: Option<String>,
}

#[derive(Subcommand)]
enum ViewsCommand {
    /// The versions of a metric's views table, newest first (as_of_version in the API).
    History {
        #[command(flatten)]
        at: Location,
        /// The metric.
        #[arg(long)]
        metric: String,
        /// How many versions.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Delete view files that no version committed in the last N hours needs (replaced
    /// hours, views of an older logic) and files no run published. Time travel reaches
    /// back N hours afterwards.
    Vacuum {
        #[command(flatten)]
        at: Location,
        /// Keep what the versions of the last N hours need.
        #[arg(long, default_value_t = 168)]
        retain_hours: u32,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Convert views published before the Delta tables (`_current.json`) in place.
    Migrate {
        #[command(flatten)]
        at: Location,
    },
}

pub async fn run(args: ViewsArgs) -> anyhow::Result<()> {
    match args.command {
        ViewsCommand::History { at, metric, limit } => {
            let (_, views) = locations(&at.lake, at.views.as_deref(), false)?;
            if !shared_logic::registry::NAMES.contains(&metric.as_str()) {
                anyhow::bail!(
                    "unknown metric `{metric}`; known: {}",
                    shared_logic::registry::NAMES.join(", ")
                );
            }
            let versions = batch::views_admin::history(&views, &metric, limit).await?;
            if versions.is_empty() {
                println!("{metric}: no views published under {}", views.display());
            }
            for v in versions {
                println!(
                    "{:>6}  {}  {:<8}  {}",
                    v.version,
                    v.time.as_deref().unwrap_or("-"),
                    v.operation,
                    v.run_id.as_deref().unwrap_or("")
                );
            }
        }
        ViewsCommand::Vacuum {
            at,
            retain_hours,
            dry_run,
        } => {
            let (_, views) = locations(&at.lake, at.views.as_deref(), false)?;
            let retain = chrono::Duration::hours(i64::from(retain_hours));
            let deleted = batch::views_admin::vacuum(&views, retain, dry_run)
                .await
                .context("views vacuum failed")?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            for (metric, files) in &deleted {
                println!("{metric}: {verb} {} file(s)", files.len());
            }
        }
        ViewsCommand::Migrate { at } => {
            let (_, views) = locations(&at.lake, at.views.as_deref(), false)?;
            let done = batch::views_admin::migrate(&views)
                .await
                .context("views migration failed")?;
            if done.already {
                println!("views under {}: nothing to migrate", views.display());
            } else {
                println!(
                    "views under {}: {} hour(s), {} view file(s) now in Delta tables",
                    views.display(),
                    done.hours,
                    done.files
                );
            }
        }
    }
    Ok(())
}
