//! The demo's clickstream: generated events posted to the collector (the history first,
//! then live events paced by event time), counted, and a status line now and then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serving::AppState;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::generate_producers::Producers;
use shared_logic::window::HOUR_MS;
use speed::views::RealtimeViews;

/// Counts of what the demo's generator sent.
#[derive(Default)]
pub(super) struct Sent {
    pub(super) accepted: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) failed_requests: AtomicU64,
}

/// One status line: what the collector took, the speed layer counted and the batch layer
/// published.
pub(super) fn print_status(sent: &Sent, realtime: &RealtimeViews, state: &AppState) {
    let progress = realtime.progress();
    let now = chrono::Utc::now().timestamp_millis();
    let published = state.batch.published();
    let boundary = published
        .as_ref()
        .and_then(|p| p.time_boundary.get("page_views").cloned().flatten())
        .unwrap_or_else(|| "none yet".into());
    println!(
        "[demo] collector accepted {} rejected {} | speed: {} events, {} order changes, freshness {} | batch: {} hours, boundary {} (manifest v{})",
        sent.accepted.load(Ordering::Relaxed),
        sent.rejected.load(Ordering::Relaxed),
        progress.counters.events,
        realtime.order_counters().order_changes,
        progress
            .newest_event_ms
            .map_or("-".into(), |t| format!("{:.1} s", (now - t) as f64 / 1000.0)),
        published.as_ref().map_or(0, |p| p.hours.len()),
        boundary,
        published.as_ref().map_or(0, |p| p.version),
    );
}

/// What the demo's generator sends, and where.
pub(super) struct Traffic {
    /// The collector's `POST /v1/events` URL.
    pub(super) url: String,
    pub(super) seed: u64,
    /// Live events per second.
    pub(super) rate: f64,
    pub(super) history_hours: u32,
    /// Events per second of event time in the history.
    pub(super) history_rate: f64,
}

/// Posts the history (if any: `history_hours` whole hours before now, at `history_rate`
/// events per second of event time) as fast as the collector takes it, then live events
/// paced at `rate`, until stopped. The live stream starts where the history ends, and what
/// happened while the history was being sent goes first, so no minute is left empty.
/// `history_sent` fires once the history is posted (at once without history).
pub(super) async fn generate(
    traffic: Traffic,
    history_sent: tokio::sync::oneshot::Sender<()>,
    sent: Arc<Sent>,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let Traffic {
        url,
        seed,
        rate,
        history_hours,
        history_rate,
    } = traffic;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| post_batch(client.clone(), url.clone(), body, sent.clone());
    let live_start = chrono::Utc::now().timestamp_millis();
    if history_hours > 0 {
        let mut history = producers(
            Generator::new(stream_config(
                seed ^ 0x5eed,
                (live_start.div_euclid(HOUR_MS) - history_hours as i64) * HOUR_MS,
                history_rate,
            )),
            seed,
        );
        tokio::select! {
            _ = &mut stopped => return,
            _ = send_until(&mut history, live_start, &post) => {}
        }
    }
    let _ = history_sent.send(());
    let mut live = producers(Generator::new(stream_config(seed, live_start, rate)), seed);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        // Paced by event time, so events are sent when they happen (duplicates and
        // invalid records do not move the generator's clock).
        let now = chrono::Utc::now().timestamp_millis();
        tokio::select! {
            _ = &mut stopped => return,
            _ = send_until(&mut live, now + 1, &post) => {}
        }
    }
}

/// Posts every event of `generator` before `until_ms` (event time), at most [`BATCH`]
/// records a request, each request answered before the next.
async fn send_until<F, Fut>(generator: &mut Producers, until_ms: i64, post: &F)
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut body = Vec::new();
    let mut records = 0;
    while generator.nominal_time_ms() < until_ms {
        let Some(r) = generator.next() else { break };
        body.extend_from_slice(&r.record.json);
        body.push(b'\n');
        records += 1;
        if records == BATCH {
            post(std::mem::take(&mut body)).await;
            records = 0;
        }
    }
    if !body.is_empty() {
        post(body).await;
    }
}

/// Attempts at one batch between two warnings that the collector does not take it.
const ATTEMPTS_PER_WARNING: u32 = 8;

/// Whether a batch answered `status` is worth sending again: the collector was busy or
/// briefly unable to produce (429, 5xx), not refusing the records themselves.
fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Posts one batch to the collector, again after a pause (doubling from 200 ms to 5 s) while
/// it is unreachable or busy: a batch dropped on the first refusal is a hole of minutes in
/// the demo's history (a collector's answer of 503 under load). Records the collector took
/// twice (an attempt that reached Kafka but not its answer) are duplicates by id, which both
/// layers drop. A batch is never given up while the collector may still take it (a producer
/// that gives up loses events): it goes again until taken or the demo stops. Counts what
/// the collector accepted and rejected, or the request it refused (logged with its answer).
async fn post_batch(client: reqwest::Client, url: String, body: Vec<u8>, sent: Arc<Sent>) {
    let mut pause = Duration::from_millis(200);
    for attempt in 1u32.. {
        let answer = client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        let why = match answer {
            Ok(r) if r.status().is_success() => {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    sent.accepted
                        .fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    sent.rejected
                        .fetch_add(v["rejected"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
                return;
            }
            Ok(r) if !retryable(r.status()) => {
                let status = r.status();
                let answer: String = r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect();
                sent.failed_requests.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%status, %answer, "collector refused a batch: its events are not sent");
                return;
            }
            Ok(r) => format!("status {}", r.status()),
            Err(e) => format!("unreachable: {e}"),
        };
        if attempt % ATTEMPTS_PER_WARNING == 0 {
            tracing::warn!(attempt, reason = %why, "collector does not take a batch; sending it again");
        } else {
            tracing::info!(attempt, reason = %why, "collector did not take a batch; sending it again");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// The demo's producing services (each user's records come from one, by weight): the data
/// quality panel has a row for each.
const PRODUCERS: [(&str, f64); 3] = [("web", 6.0), ("ios", 3.0), ("android", 1.0)];

/// `generator`'s records from the demo's producers.
fn producers(generator: Generator, seed: u64) -> Producers {
    let names = PRODUCERS.iter().map(|(n, w)| (n.to_string(), *w)).collect();
    Producers::new(generator, names, Vec::new(), seed).expect("the demo's producers are valid")
}

/// Records per request to the collector.
const BATCH: usize = 2_000;

/// The generator of the demo's events from `start_ms` at `rate` events per second of event
/// time, with the noise of a real stream (1 % duplicates, 2 % out of order by up to 3 s,
/// 0.5 % invalid).
fn stream_config(seed: u64, start_ms: i64, rate: f64) -> GeneratorConfig {
    GeneratorConfig {
        seed,
        start_ms,
        events_per_second: rate,
        duplicate_fraction: 0.01,
        out_of_order_fraction: 0.02,
        out_of_order_ms: 3_000,
        invalid_fraction: 0.005,
        ..GeneratorConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_sends_from_each_of_its_producers() {
        let mut stream = producers(Generator::new(stream_config(1, 0, 10.0)), 1);
        let seen: std::collections::BTreeSet<String> = (0..2_000)
            .filter_map(|_| stream.next())
            .map(|r| r.producer)
            .collect();
        let names: std::collections::BTreeSet<String> =
            PRODUCERS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(seen, names);
    }

    #[test]
    fn only_a_busy_or_failing_collector_gets_a_batch_again() {
        use reqwest::StatusCode;
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::GATEWAY_TIMEOUT,
        ] {
            assert!(retryable(status), "{status}");
        }
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::PAYLOAD_TOO_LARGE,
        ] {
            assert!(!retryable(status), "{status}");
        }
    }
}
