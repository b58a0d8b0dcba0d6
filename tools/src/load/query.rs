//! `lambda bench query`: one query path (with `{now-60m}`-style placeholders) requested
//! in an open loop at a fixed rate (latency counted from each request's scheduled time) or
//! in a closed loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::stats::{
    base_url, client, join_spawned, runtime, summary_ms, transport_error, with_token, Tally,
};
use crate::error::{Context, ToolsError};

#[derive(Args)]
pub struct QueryArgs {
    /// Base URL of the serving layer.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Path and query string; `{now}` and `{now-60m}` (units s, m, h, d; `+` too) become
    /// RFC 3339 times at start, `now` rounded up to the minute.
    #[arg(
        long,
        default_value = "/v1/metrics/page_views?from={now-60m}&to={now}&granularity=minute&group_by=country"
    )]
    path: String,
    /// Requests per second, scheduled open loop; 0 runs closed loop as fast as possible.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Length of the measurement.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent connections (workers), each with one request in flight.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Bearer token of the query routes.
    #[arg(long, hide_env_values = true)]
    token: Option<String>,
    /// Timeout of one request.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// Sends `Cache-Control: no-cache`: the server computes every answer anew instead of
    /// serving it from its answer cache (the path of a client whose every query differs,
    /// such as a dashboard whose time range moves).
    #[arg(long)]
    no_cache: bool,
}

/// Replaces `{now}` and `{now±<n><unit>}` (units s, m, h, d) with RFC 3339 times, `now`
/// rounded up to the whole minute so that the current minute is part of a range ending there.
pub(super) fn substitute_times(path: &str, now_ms: i64) -> Result<String, ToolsError> {
    let now = (now_ms + 59_999).div_euclid(60_000) * 60_000;
    let mut out = String::with_capacity(path.len() + 32);
    let mut rest = path;
    while let Some(open) = rest.find("{now") {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .with_context(|| format!("unclosed placeholder in --path `{path}`"))?;
        let spec = &rest[open + 4..open + close];
        let offset = if spec.is_empty() {
            0
        } else {
            let (sign, amount) = match spec.split_at(1) {
                ("-", a) => (-1, a),
                ("+", a) => (1, a),
                _ => crate::invalid!(
                    "placeholder `{{now{spec}}}` is not `{{now}}`, `{{now-60m}}` or `{{now+5m}}`"
                ),
            };
            let (digits, unit) = amount.split_at(amount.len().saturating_sub(1));
            let unit_ms = match unit {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => crate::invalid!("placeholder `{{now{spec}}}` needs a unit s, m, h or d"),
            };
            let n: i64 = digits
                .parse()
                .with_context(|| format!("placeholder `{{now{spec}}}` has no number"))?;
            sign * n * unit_ms
        };
        let t = chrono::DateTime::from_timestamp_millis(now + offset)
            .context("placeholder time out of range")?;
        out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `lambda bench query`: one GET at a fixed open-loop rate, or closed loop with `--rate 0`.
pub fn query(args: QueryArgs) -> Result<(), ToolsError> {
    if args.connections == 0 || !(args.seconds > 0.0 && args.seconds.is_finite()) {
        crate::invalid!("--connections and --seconds must be positive");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        crate::invalid!("--rate must be a number of requests per second, or 0 for closed loop");
    }
    let path = substitute_times(&args.path, chrono::Utc::now().timestamp_millis())?;
    let url = format!("{}{path}", base_url(&args.url)?);
    let client = client(
        args.connections,
        Duration::from_secs(args.timeout_secs),
        args.no_cache,
    )?;
    let token = args.token.clone().filter(|t| !t.is_empty());
    let rt = runtime(args.connections)?;

    // Open every connection and check the answer before measuring.
    rt.block_on(async {
        let warm = (0..args.connections).map(|_| {
            let request = with_token(client.get(&url), token.as_deref());
            async move {
                let response = request.send().await?;
                let status = response.status();
                let body = response.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            }
        });
        for outcome in join_spawned(warm).await {
            let (status, body) = outcome.with_context(|| format!("GET {url}"))?;
            if !status.is_success() {
                crate::invalid!(
                    "GET {url} answered {status}: {}",
                    body.chars().take(300).collect::<String>()
                );
            }
        }
        Ok(())
    })?;

    let (mut tally, secs, scheduled) = if args.rate > 0.0 {
        let (tally, secs, n) = open_loop(&rt, &client, &url, token.as_deref(), &args)?;
        (tally, secs, Some(n))
    } else {
        let (tally, secs) = closed_loop(&rt, &client, &url, token.as_deref(), &args)?;
        (tally, secs, None)
    };
    let done = tally.latency.len() as u64;
    let quantiles = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)];
    let mean_bytes = tally.response_bytes / done.max(1);
    let rate = done as f64 / secs.max(1e-9);
    match scheduled {
        Some(n) => {
            let latency = summary_ms(&mut tally.latency, &quantiles);
            let service = summary_ms(&mut tally.service, &quantiles);
            println!(
                "query open loop at {} req/s for {:.0} s over {} connections: {n} scheduled, {done} ok, {} failed ({}), achieved {rate:.1} req/s; latency from schedule ms {latency}; service time ms {service}; {mean_bytes} bytes per answer; GET {path}",
                args.rate,
                args.seconds,
                args.connections,
                tally.failed(),
                tally.errors_text(),
            );
        }
        None => {
            let latency = summary_ms(&mut tally.latency, &quantiles);
            println!(
                "query closed loop over {} connections for {secs:.1} s: {done} ok, {} failed ({}), {rate:.1} req/s; latency ms {latency}; {mean_bytes} bytes per answer; GET {path}",
                args.connections,
                tally.failed(),
                tally.errors_text(),
            );
        }
    }
    if tally.failed() > 0 {
        crate::invalid!("{} requests failed", tally.failed());
    }
    Ok(())
}

/// One GET, its body read to the end; latency measured from `origin`.
pub(super) async fn get_once(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    origin: Instant,
    tally: &mut Tally,
) {
    let sent = Instant::now();
    let outcome = async {
        let response = with_token(client.get(url), token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body.len()))
    }
    .await;
    let end = Instant::now();
    match outcome {
        Ok((status, len)) if status.is_success() => {
            tally.latency.push(end - origin);
            tally.service.push(end - sent);
            tally.response_bytes += len as u64;
        }
        Ok((status, _)) => tally.fail(format!("HTTP {}", status.as_u16())),
        Err(e) => tally.fail(transport_error(&e)),
    }
}

pub(super) fn open_loop(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    args: &QueryArgs,
) -> Result<(Tally, f64, u64), ToolsError> {
    let total = (args.rate * args.seconds).round().max(1.0) as u64;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let start = Instant::now() + Duration::from_millis(20);
    let rate = args.rate;
    // A plain thread keeps the schedule: its sleeps are precise to tens of microseconds,
    // where the runtime's timer rounds to whole milliseconds.
    let scheduler = std::thread::spawn(move || {
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.send(due).is_err() {
                break;
            }
        }
    });
    // Requests still waiting for a connection this long after the schedule's end are not
    // sent: they count as failed ("behind schedule"), so a server far slower than the rate
    // ends the run instead of draining a backlog for hours.
    let give_up =
        start + Duration::from_secs_f64(args.seconds) + Duration::from_secs(args.timeout_secs);
    let (tally, secs) = rt.block_on(async {
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                let (client, url, rx) = (client.clone(), url.to_string(), rx.clone());
                let token = token.map(str::to_string);
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    loop {
                        let due = rx.lock().await.recv().await;
                        let Some(due) = due else { break };
                        if Instant::now() > give_up {
                            tally.fail("not sent, behind schedule".into());
                            continue;
                        }
                        get_once(&client, &url, token.as_deref(), due, &mut tally).await;
                    }
                    tally
                })
            })
            .collect();
        let mut all = Tally::default();
        for worker in workers {
            all.absorb(worker.await.context("query worker")?);
        }
        Ok::<_, ToolsError>((all, start.elapsed().as_secs_f64()))
    })?;
    scheduler
        .join()
        .map_err(|_| ToolsError::Invalid("the scheduler thread panicked".into()))?;
    Ok((tally, secs, total))
}

pub(super) fn closed_loop(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    args: &QueryArgs,
) -> Result<(Tally, f64), ToolsError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    rt.block_on(async {
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_string());
                let token = token.map(str::to_string);
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while Instant::now() < deadline {
                        let now = Instant::now();
                        get_once(&client, &url, token.as_deref(), now, &mut tally).await;
                    }
                    tally
                })
            })
            .collect();
        let mut all = Tally::default();
        for worker in workers {
            all.absorb(worker.await.context("query worker")?);
        }
        Ok::<_, ToolsError>((all, started.elapsed().as_secs_f64()))
    })
}
