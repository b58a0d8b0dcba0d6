//! `lambda quality`: the data-quality report of a range of hours on the command line (the
//! report of `GET /v1/quality`, computed here from both layers' views as `lambda verify`
//! reads them), a table or JSON; exit 1 when a rule fails, so a pipeline can gate on it.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serving::state::{ApiOptions, AppState};
use shared_logic::quality_report::{ProducerHour, ProducerWindow};
use shared_logic::quality_rules::{rules, RuleSet, Verdict};

#[derive(Args)]
pub struct QualityArgs {
    #[command(flatten)]
    layers: crate::LayerArgs,
    #[command(flatten)]
    logic: crate::LogicArgs,
    /// First hour (RFC 3339 or epoch ms, floored to the hour); default: 24 hours before --to.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (rounded up to the hour); default: the end of the current hour.
    #[arg(long)]
    to: Option<String>,
    /// A rule replacing its check's default (as `lambda serve --quality-rule`); repeatable.
    #[arg(long, value_name = "RULE")]
    quality_rule: Vec<String>,
    /// Print the report as JSON (the body of `GET /v1/quality`) instead of a table.
    #[arg(long)]
    json: bool,
    /// Print every producer's hour, not only those with a warning or a failure.
    #[arg(long)]
    all: bool,
    /// Judge each window (a minute by default) too: the table lists the windows that warn
    /// or fail, `--json` adds them as `windows`, and a failing window fails the run. At
    /// most 48 hours.
    #[arg(long)]
    by_minute: bool,
    /// Timeout of one request to a speed instance.
    #[arg(long, default_value_t = 30_000)]
    speed_timeout_ms: u64,
}

/// The report's verdict: whether a rule failed (exit 1).
pub async fn run(args: QualityArgs) -> anyhow::Result<Verdict> {
    let now = chrono::Utc::now().timestamp_millis();
    let bound = |name: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| serving::query::parse_time(name, t))
            .transpose()
    };
    let (from, to) =
        serving::quality::hour_range(bound("--from", &args.from)?, bound("--to", &args.to)?, now)?;
    if args.by_minute && to.0 - from.0 > serving::quality::MAX_WINDOW_REPORT_HOURS {
        anyhow::bail!(
            "--by-minute covers at most {} hours",
            serving::quality::MAX_WINDOW_REPORT_HOURS
        );
    }
    let rule_set = RuleSet(rules(&args.quality_rule).map_err(anyhow::Error::msg)?);
    let batch = args.layers.batch_views(64).await?;
    let speed = args
        .layers
        .speed_views(Duration::from_millis(args.speed_timeout_ms))?;
    let ctx = args.logic.ctx()?;
    let state = Arc::new(AppState {
        batch: batch.with_windows(ctx.windows),
        speed: speed.into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions {
            ctx,
            quality_rules: rule_set.clone(),
            ..ApiOptions::default()
        },
    });
    let (mut hours, windows) = serving::quality::quality_report_by_window(
        &state,
        (from, to),
        &rule_set.0,
        now,
        args.by_minute,
    )
    .await?;
    let missing = serving::quality::add_speed_notes(&state, from, to, &mut hours).await;
    if args.json {
        let boundary = serving::quality::batch_boundary(&state, now);
        let report = serving::quality::report_json(
            from,
            to,
            &rule_set.0,
            &hours,
            boundary,
            missing.as_deref(),
            args.by_minute.then_some(windows.as_slice()),
        );
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&hours, args.all));
        if args.by_minute {
            print!("{}", window_table(&windows));
        }
        if let Some(why) = &missing {
            eprintln!("no arrival figures or dead-letter samples from the speed layer: {why}");
        }
    }
    Ok(hours
        .iter()
        .map(|h| h.verdict)
        .chain(windows.iter().map(|w| w.verdict))
        .max()
        .unwrap_or(Verdict::Pass))
}

/// One line per producer's window that warns or fails, then a summary.
fn window_table(windows: &[ProducerWindow]) -> String {
    let mut out = String::new();
    for w in windows.iter().filter(|w| w.verdict != Verdict::Pass) {
        let rules = outcomes_text(&w.outcomes, false);
        out.push_str(&line(w.window, &w.producer, w.received, w.verdict, &rules));
    }
    let verdicts: Vec<Verdict> = windows.iter().map(|w| w.verdict).collect();
    out.push_str(&summary("producer windows", &verdicts));
    out
}

/// One line per producer's hour (only those not passing, unless `all`), then a summary.
fn table(hours: &[ProducerHour], all: bool) -> String {
    let mut out = String::new();
    let shown: Vec<&ProducerHour> = hours
        .iter()
        .filter(|h| all || h.verdict != Verdict::Pass)
        .collect();
    if !shown.is_empty() {
        out.push_str(&format!(
            "{:<20} {:<16} {:>9} {:<7} {}\n",
            "hour", "producer", "received", "verdict", "rules (measured / threshold)"
        ));
    }
    for h in &shown {
        let mut rules = outcomes_text(&h.outcomes, all);
        if let Some(a) = &h.arrival {
            let pct =
                |share: Option<f64>| share.map_or("n/a".into(), |s| format!("{:.1}%", s * 100.0));
            rules.push(format!(
                "arrival (speed layer) {} out of order, {} late",
                pct(a.out_of_order_share()),
                pct(a.late_share())
            ));
        }
        let start = h.hour.start_ms();
        out.push_str(&line(start, &h.producer, h.received, h.verdict, &rules));
    }
    let verdicts: Vec<Verdict> = hours.iter().map(|h| h.verdict).collect();
    out.push_str(&summary("producer hours", &verdicts));
    out
}

/// A row of the table: when, who, records received, verdict, the rules' texts.
fn line(at_ms: i64, producer: &str, received: u64, v: Verdict, rules: &[String]) -> String {
    format!(
        "{:<20} {:<16} {:>9} {:<7} {}\n",
        shared_logic::instant::format_instant(at_ms),
        producer,
        received,
        verdict(v),
        rules.join("; ")
    )
}

/// `<n> <what>: <pass> pass, <warn> warn, <fail> fail`.
fn summary(what: &str, verdicts: &[Verdict]) -> String {
    let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
    format!(
        "{} {what}: {} pass, {} warn, {} fail\n",
        verdicts.len(),
        count(Verdict::Pass),
        count(Verdict::Warn),
        count(Verdict::Fail)
    )
}

/// Each outcome (only those not passing, unless `all`) as `check verdict measured / threshold`.
fn outcomes_text(outcomes: &[shared_logic::quality_rules::Outcome], all: bool) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| all || o.verdict != Verdict::Pass)
        .map(|o| {
            format!(
                "{} {} {} / {}",
                o.check.name(),
                verdict(o.verdict),
                figure(o.check, o.measured),
                figure(o.check, o.threshold)
            )
        })
        .collect()
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "FAIL",
    }
}

/// A measured value or threshold as people read it: a duration, or a share in percent.
fn figure(check: shared_logic::quality_rules::Check, value: f64) -> String {
    use shared_logic::quality_rules::Check;
    match check {
        Check::DelayP99 | Check::Freshness if value.is_finite() => {
            shared_logic::durations::duration_text(value as i64)
        }
        _ if value.is_finite() => format!("{:.1}%", value * 100.0),
        _ => "n/a".to_string(),
    }
}
