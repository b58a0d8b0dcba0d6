//! `lambda bench ingest` and `lambda bench query`: HTTP load generators for a running
//! `lambda serve`, to measure the collector (`POST /v1/events`) and the query API.
//!
//! Both run their own tokio runtime and a `reqwest` client with a fixed number of
//! connections, and compute quantiles from the sorted latencies of every request (no
//! histogram approximation). They only generate load and count answers: what the server
//! does with the events or how it answers a query is the serving crate's business.
//!
//! The open-loop query mode schedules request `i` at `start + i / rate` from a dedicated
//! thread and measures its latency from that scheduled time, so a slow answer that delays
//! the following requests shows up in their latency instead of silently lowering the rate
//! (coordinated omission); the service time (from the moment the request is sent) is
//! reported beside it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use shared_logic::generate::{Generator, GeneratorConfig};

/// How long event times of `lambda bench ingest` reach back from now.
const INGEST_SPAN_MS: i64 = 10 * 60_000;

#[derive(Args)]
pub struct IngestArgs {
    /// Base URL of the serving layer.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Events to post in total.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per request (NDJSON lines).
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seed of the event generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of generated events that fail validation (dead-lettered, counted as rejected).
    #[arg(long, default_value_t = 0.0)]
    invalid: f64,
    /// Bearer token of `POST /v1/events`.
    #[arg(long, hide_env_values = true)]
    token: Option<String>,
    /// Timeout of one request.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

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
}

/// Latencies of successful requests and a count of failures by cause.
#[derive(Default)]
struct Tally {
    /// From the scheduled time (open loop) or the send (otherwise).
    latency: Vec<Duration>,
    /// From the send.
    service: Vec<Duration>,
    /// `HTTP 503`, `transport: …`, … → count.
    errors: BTreeMap<String, u64>,
    response_bytes: u64,
    accepted: u64,
    rejected: u64,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.latency.extend(other.latency);
        self.service.extend(other.service);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.response_bytes += other.response_bytes;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }

    fn fail(&mut self, cause: String) {
        *self.errors.entry(cause).or_default() += 1;
    }

    fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Nearest-rank quantile of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// `p50 … p90 … p99 … max …` of a set of latencies.
fn summary_ms(latencies: &mut [Duration], quantiles: &[(&str, f64)]) -> String {
    latencies.sort_unstable();
    quantiles
        .iter()
        .map(|(name, q)| format!("{name} {:.2}", quantile_ms(latencies, *q)))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn runtime(connections: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(connections.clamp(1, cores))
        .enable_all()
        .build()
        .context("load generator runtime")
}

fn client(connections: usize, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections)
        .timeout(timeout)
        .build()
        .context("HTTP client")
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
}

fn base_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--url `{url}` is not an http(s) URL");
    }
    Ok(base.to_string())
}

/// `lambda bench ingest`: posts generated events as NDJSON over concurrent connections.
pub fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.batch == 0 || args.connections == 0 {
        bail!("--events, --batch and --connections must be positive");
    }
    let url = format!("{}/v1/events", base_url(&args.url)?);
    // Event times spread over the last minutes, so the collector's future-skew rule accepts
    // every event however long the run takes.
    let now = chrono::Utc::now().timestamp_millis();
    let cfg = GeneratorConfig {
        seed: args.seed,
        start_ms: now - INGEST_SPAN_MS,
        events_per_second: (args.events as f64 * 1000.0 / INGEST_SPAN_MS as f64).max(1.0),
        invalid_fraction: args.invalid,
        ..GeneratorConfig::default()
    };
    cfg.check().map_err(anyhow::Error::msg)?;
    let prepared = Instant::now();
    let mut generator = Generator::new(cfg);
    let mut bodies = Vec::new();
    let mut bytes = 0usize;
    let mut left = args.events;
    while left > 0 {
        let n = left.min(args.batch as u64);
        let mut body = Vec::with_capacity(n as usize * 260);
        for _ in 0..n {
            body.extend_from_slice(&generator.next_record().json);
            body.push(b'\n');
        }
        bytes += body.len();
        bodies.push((n, body));
        left -= n;
    }
    let requests = bodies.len();
    eprintln!(
        "prepared {} events in {requests} requests ({:.1} MB of NDJSON) in {:.2} s",
        args.events,
        bytes as f64 / 1e6,
        prepared.elapsed().as_secs_f64()
    );

    let client = client(args.connections, Duration::from_secs(args.timeout_secs))?;
    let queue = Arc::new(Mutex::new(bodies.into_iter()));
    let token = args.token.filter(|t| !t.is_empty());
    // One event per connection first (not counted): connections open and the server's
    // producer fetches the topic's metadata before the clock starts.
    let mut warm_generator = Generator::new(GeneratorConfig {
        seed: args.seed.wrapping_add(1 << 32),
        start_ms: now - INGEST_SPAN_MS,
        ..GeneratorConfig::default()
    });
    let warm_bodies: Vec<Vec<u8>> = (0..args.connections)
        .map(|_| warm_generator.next_record().json)
        .collect();
    let (mut tally, secs) = runtime(args.connections)?.block_on(async move {
        let warm = warm_bodies.into_iter().map(|body| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let mut tally = Tally::default();
                post_events(&client, &url, token.as_deref(), 1, body, &mut tally).await;
                tally
            }
        });
        for warmed in join_spawned(warm).await {
            if warmed.failed() > 0 {
                bail!("warm-up request to {url} failed: {}", warmed.errors_text());
            }
        }
        let started = Instant::now();
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                let (client, url, queue, token) =
                    (client.clone(), url.clone(), queue.clone(), token.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    loop {
                        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                        let Some((n, body)) = next else { break };
                        post_events(&client, &url, token.as_deref(), n, body, &mut tally).await;
                    }
                    tally
                })
            })
            .collect();
        let mut all = Tally::default();
        for worker in workers {
            all.absorb(worker.await.context("ingest worker")?);
        }
        anyhow::Ok((all, started.elapsed().as_secs_f64()))
    })?;
    let lat = summary_ms(
        &mut tally.latency,
        &[("p50", 0.5), ("p99", 0.99), ("max", 1.0)],
    );
    println!(
        "ingest: {} events in {requests} requests of {} over {} connections: accepted {}, rejected {} in {secs:.2} s = {:.0} events/s accepted; request latency ms {lat}; failed requests {} ({})",
        args.events,
        args.batch,
        args.connections,
        tally.accepted,
        tally.rejected,
        tally.accepted as f64 / secs.max(1e-9),
        tally.failed(),
        tally.errors_text()
    );
    if tally.failed() > 0 {
        bail!("{} of {requests} requests failed", tally.failed());
    }
    Ok(())
}

async fn post_events(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    events: u64,
    body: Vec<u8>,
    tally: &mut Tally,
) {
    let sent = Instant::now();
    let request = with_token(client.post(url), token)
        .header("content-type", "application/x-ndjson")
        .body(body);
    let outcome = async {
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let elapsed = sent.elapsed();
    match outcome {
        Ok((status, body)) if status.is_success() => {
            tally.latency.push(elapsed);
            let report: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let count = |k: &str| report.get(k).and_then(|v| v.as_u64());
            match (count("accepted"), count("rejected")) {
                (Some(a), Some(r)) if a + r == events => {
                    tally.accepted += a;
                    tally.rejected += r;
                }
                (Some(a), Some(r)) => {
                    tally.accepted += a;
                    tally.rejected += r;
                    tally.fail(format!("answer counts {} of {events} events", a + r));
                }
                _ => tally.fail("answer without accepted/rejected".into()),
            }
        }
        Ok((status, _)) => tally.fail(format!("HTTP {}", status.as_u16())),
        Err(e) => tally.fail(transport_error(&e)),
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    };
    format!("transport {kind}")
}

/// Replaces `{now}` and `{now±<n><unit>}` (units s, m, h, d) with RFC 3339 times, `now`
/// rounded up to the whole minute so that the current minute is part of a range ending there.
fn substitute_times(path: &str, now_ms: i64) -> anyhow::Result<String> {
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
                _ => bail!(
                    "placeholder `{{now{spec}}}` is not `{{now}}`, `{{now-60m}}` or `{{now+5m}}`"
                ),
            };
            let (digits, unit) = amount.split_at(amount.len().saturating_sub(1));
            let unit_ms = match unit {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => bail!("placeholder `{{now{spec}}}` needs a unit s, m, h or d"),
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
pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    if args.connections == 0 || !(args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--connections and --seconds must be positive");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a number of requests per second, or 0 for closed loop");
    }
    let path = substitute_times(&args.path, chrono::Utc::now().timestamp_millis())?;
    let url = format!("{}{path}", base_url(&args.url)?);
    let client = client(args.connections, Duration::from_secs(args.timeout_secs))?;
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
                bail!(
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
        bail!("{} requests failed", tally.failed());
    }
    Ok(())
}

/// Runs every future on the runtime and awaits them all, in order.
async fn join_spawned<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

/// One GET, its body read to the end; latency measured from `origin`.
async fn get_once(
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

fn open_loop(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    args: &QueryArgs,
) -> anyhow::Result<(Tally, f64, u64)> {
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
        anyhow::Ok((all, start.elapsed().as_secs_f64()))
    })?;
    scheduler
        .join()
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    Ok((tally, secs, total))
}

fn closed_loop(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    args: &QueryArgs,
) -> anyhow::Result<(Tally, f64)> {
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
        anyhow::Ok((all, started.elapsed().as_secs_f64()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_minute_aligned_times() {
        // 2026-11-28T10:00:30.5Z: now rounds up to 10:01.
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:30.5Z")
            .unwrap()
            .timestamp_millis();
        let got = substitute_times("/m?from={now-60m}&to={now}&x={now+1h}", now).unwrap();
        assert_eq!(
            got,
            "/m?from=2026-11-28T09:01:00Z&to=2026-11-28T10:01:00Z&x=2026-11-28T11:01:00Z"
        );
        assert_eq!(substitute_times("/plain", now).unwrap(), "/plain");
        assert!(substitute_times("/m?from={now-60}", now).is_err());
        assert!(substitute_times("/m?from={now-60m", now).is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&v, 0.5), 50.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&v, 1.0), 100.0);
        assert_eq!(quantile_ms(&v[..1], 0.99), 1.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
