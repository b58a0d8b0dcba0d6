//! `lambda bench ingest`: generated events posted as NDJSON to `POST /v1/events`, one
//! request in flight per connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use shared_logic::generate::{Generator, GeneratorConfig};

use super::stats::{
    base_url, client, join_spawned, runtime, summary_ms, transport_error, with_token, Tally,
};
use crate::error::{Context, ToolsError};

/// How long event times of `lambda bench ingest` reach back from now.
pub(super) const INGEST_SPAN_MS: i64 = 10 * 60_000;

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

/// `lambda bench ingest`: posts generated events as NDJSON over concurrent connections.
pub fn ingest(args: IngestArgs) -> Result<(), ToolsError> {
    if args.events == 0 || args.batch == 0 || args.connections == 0 {
        crate::invalid!("--events, --batch and --connections must be positive");
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
    cfg.check().map_err(ToolsError::Invalid)?;
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

    let client = client(
        args.connections,
        Duration::from_secs(args.timeout_secs),
        false,
    )?;
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
                crate::invalid!("warm-up request to {url} failed: {}", warmed.errors_text());
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
        Ok::<_, ToolsError>((all, started.elapsed().as_secs_f64()))
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
        crate::invalid!("{} of {requests} requests failed", tally.failed());
    }
    Ok(())
}

pub(super) async fn post_events(
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
