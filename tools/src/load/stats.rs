//! What both load generators share: the tally of answers, exact quantiles from sorted
//! latencies, the runtime and HTTP client, and URL helpers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Context, ToolsError};

/// Latencies of successful requests and a count of failures by cause.
#[derive(Default)]
pub(super) struct Tally {
    /// From the scheduled time (open loop) or the send (otherwise).
    pub(super) latency: Vec<Duration>,
    /// From the send.
    pub(super) service: Vec<Duration>,
    /// `HTTP 503`, `transport: …`, … → count.
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) response_bytes: u64,
    pub(super) accepted: u64,
    pub(super) rejected: u64,
}

impl Tally {
    pub(super) fn absorb(&mut self, other: Tally) {
        self.latency.extend(other.latency);
        self.service.extend(other.service);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.response_bytes += other.response_bytes;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }

    pub(super) fn fail(&mut self, cause: String) {
        *self.errors.entry(cause).or_default() += 1;
    }

    pub(super) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    pub(super) fn errors_text(&self) -> String {
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
pub(super) fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// `p50 … p90 … p99 … max …` of a set of latencies.
pub(super) fn summary_ms(latencies: &mut [Duration], quantiles: &[(&str, f64)]) -> String {
    latencies.sort_unstable();
    quantiles
        .iter()
        .map(|(name, q)| format!("{name} {:.2}", quantile_ms(latencies, *q)))
        .collect::<Vec<_>>()
        .join(" / ")
}

pub(super) fn runtime(connections: usize) -> Result<tokio::runtime::Runtime, ToolsError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(connections.clamp(1, cores))
        .enable_all()
        .build()
        .context("load generator runtime")
}

/// An HTTP client for `connections` concurrent requests; `fresh` asks every answer to be
/// computed anew (`Cache-Control: no-cache`) instead of served from the server's cache.
pub(super) fn client(
    connections: usize,
    timeout: Duration,
    fresh: bool,
) -> Result<reqwest::Client, ToolsError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if fresh {
        headers.insert(
            reqwest::header::CACHE_CONTROL,
            reqwest::header::HeaderValue::from_static("no-cache"),
        );
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections)
        .timeout(timeout)
        .build()
        .context("HTTP client")
}

pub(super) fn with_token(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
}

pub(super) fn base_url(url: &str) -> Result<String, ToolsError> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        crate::invalid!("--url `{url}` is not an http(s) URL");
    }
    Ok(base.to_string())
}

pub(super) fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    };
    format!("transport {kind}")
}

/// Runs every future on the runtime and awaits them all, in order.
pub(super) async fn join_spawned<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
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
