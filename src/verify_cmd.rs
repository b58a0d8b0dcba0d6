//! `lambda verify`: compares batch and speed views window by window and exits non-zero
//! when they differ (the consistency check users can run against production), or when it
//! compared nothing (exit 3, with the reason per metric).

use std::time::Duration;

use clap::Args;
use serving::query::{parse_metric, parse_time};
use serving::verify::{self, Comparison, Report};
use shared_logic::MetricId;

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    layers: crate::LayerArgs,
    /// Start of the range (RFC 3339 or epoch ms); default: 24 hours before --to.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (exclusive); default: now.
    #[arg(long)]
    to: Option<String>,
    /// Only this metric (default: every metric).
    #[arg(long)]
    metric: Option<String>,
    /// Rows of the difference table printed.
    #[arg(long, default_value_t = 50)]
    max_rows: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Fewest events the compared hours must hold for the comparison to mean something;
    /// below it `verify` warns that "equal" says little (the exit status stays 0).
    #[arg(long, default_value_t = 1_000)]
    min_events: u64,
    /// Timeout of one request to a speed instance.
    #[arg(long, default_value_t = 30_000)]
    speed_timeout_ms: u64,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Keys were compared and every one is equal (exit 0).
    Equal,
    /// Some keys differ (exit 1).
    Different,
    /// No key of any metric was compared (exit 3); the reasons, one line per metric.
    NothingCompared(String),
}

/// Compares the layers; see [`Outcome`] for the exit codes.
pub async fn run(args: VerifyArgs) -> anyhow::Result<Outcome> {
    let now = chrono::Utc::now().timestamp_millis();
    let to = match &args.to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    let from = match &args.from {
        Some(f) => parse_time("from", f)?,
        None => to - 24 * shared_logic::window::HOUR_MS,
    };
    if from >= to {
        anyhow::bail!("--from must be before --to");
    }
    let metrics = match &args.metric {
        Some(m) => vec![parse_metric(m)?],
        None => MetricId::ALL.to_vec(),
    };
    let batch = args.layers.batch_views(64).await?;
    let speed = args
        .layers
        .speed_views(Duration::from_millis(args.speed_timeout_ms))?;
    let mut report = Report::new();
    for metric in metrics {
        let comparison = verify::verify_metric(metric, &batch, &speed, from, to).await?;
        report.insert(metric.name(), comparison);
    }
    let differences: Vec<verify::Difference> = report
        .values()
        .flat_map(|c: &Comparison| c.differences.iter().cloned())
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (metric, c) in &report {
            println!("{metric}: {}", summary(c));
        }
        if !differences.is_empty() {
            print!("{}", verify::table(&differences, args.max_rows));
        }
    }
    let events = verify::events_compared(&report);
    let compared = report.values().any(|c| c.keys_compared > 0);
    if compared && events < args.min_events {
        eprintln!(
            "warning: a thin comparison: the compared hours held {events} event(s) in all, fewer than --min-events {}; equal views of so few events say little (compare again once the batch layer covers busier hours, or give a wider --from)",
            args.min_events
        );
    }
    Ok(outcome(&report, &differences, &args.layers.views))
}

/// One metric's line: the hours compared with the events each held, keys, differences,
/// what was skipped and why nothing was compared.
fn summary(c: &Comparison) -> String {
    let hours = if c.events_by_hour.is_empty() {
        String::new()
    } else {
        let each: Vec<String> = c
            .events_by_hour
            .iter()
            .map(|(hour, n)| format!("{hour}: {n} event{}", if *n == 1 { "" } else { "s" }))
            .collect();
        format!(" ({})", each.join(", "))
    };
    format!(
        "{} hours compared{hours}, {} (window, dimensions) keys, {} differences{}{}",
        c.hours_compared.len(),
        c.keys_compared,
        c.differences.len(),
        if c.hours_skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; skipped (the speed layer holds nothing of them): {}",
                c.hours_skipped.join(" ")
            )
        },
        c.not_compared
            .map_or(String::new(), |why| format!("; nothing compared: {why}"))
    )
}

/// The outcome of a report: nothing compared when no metric compared a key.
fn outcome(report: &Report, differences: &[verify::Difference], views: &str) -> Outcome {
    if !differences.is_empty() {
        return Outcome::Different;
    }
    if report.values().any(|c| c.keys_compared > 0) {
        return Outcome::Equal;
    }
    let reasons: Vec<String> = report
        .iter()
        .map(|(metric, c)| {
            let why = c
                .not_compared
                .map_or_else(|| "no key compared".to_string(), |r| r.to_string());
            format!("{metric}: {why}")
        })
        .collect();
    Outcome::NothingCompared(format!(
        "nothing was compared (views {views}):\n  {}",
        reasons.join("\n  ")
    ))
}
