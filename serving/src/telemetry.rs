//! Request metrics of the serving layer and their Prometheus text exposition.
//!
//! Counters and latency histograms per route and status are kept here, in atomics behind
//! one small mutex-guarded map; the gauges about the other layers (consumer lag, events,
//! checkpoint age, batch boundary age) are read from them when `/metrics` is scraped.
//! Names follow `lambda_<layer>_<what>_<unit>`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use lambda_io::manifest::Published;
use lambda_io::speed_api::Status;

use crate::error::ServingError;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    ingested: BTreeMap<&'static str, u64>,
}

/// The serving layer's own metrics.
#[derive(Default)]
pub struct Telemetry {
    inner: Mutex<Inner>,
}

/// One sample of a gauge or counter owned elsewhere, rendered at scrape time.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Telemetry {
    /// Counts a finished request of `route` (the route template, never the raw path).
    pub fn record_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.requests.entry((route, status)).or_default() += 1;
        let h = inner.latency.entry(route).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts collector outcomes (`accepted`, `rejected`).
    pub fn record_ingest(&self, accepted: usize, rejected: usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.ingested.entry("accepted").or_default() += accepted as u64;
        *inner.ingested.entry("rejected").or_default() += rejected as u64;
    }

    /// The exposition: this layer's metrics, then `extra`.
    pub fn render(&self, extra: &[Sample]) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP lambda_serving_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE lambda_serving_requests_total counter\n");
        for ((route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "lambda_serving_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP lambda_serving_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE lambda_serving_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "lambda_serving_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "lambda_serving_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "lambda_serving_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "lambda_serving_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP lambda_collector_events_total Events received by the collector, by outcome.\n",
        );
        out.push_str("# TYPE lambda_collector_events_total counter\n");
        for outcome in ["accepted", "rejected"] {
            let n = inner.ingested.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "lambda_collector_events_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        let mut described = std::collections::BTreeSet::new();
        for s in extra {
            if described.insert(s.name) {
                let _ = writeln!(out, "# HELP {} {}", s.name, s.help);
                let _ = writeln!(out, "# TYPE {} {}", s.name, s.kind);
            }
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", s.name, s.value);
            } else {
                let _ = writeln!(out, "{}{{{}}} {}", s.name, labels.join(","), s.value);
            }
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn sample(
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    labels: Vec<(&'static str, String)>,
    value: f64,
) -> Sample {
    Sample {
        name,
        help,
        kind,
        labels,
        value,
    }
}

/// The gauges and counters about the other layers, read when `/metrics` is scraped: the
/// batch manifest served, each metric's boundary age, and each speed instance's counters,
/// lag, checkpoint age, freshness and watermark lag (`now` in epoch ms).
pub fn layer_samples(
    published: Option<&Published>,
    speed: Result<BTreeMap<String, Status>, ServingError>,
    now: i64,
) -> Vec<Sample> {
    let mut extra = Vec::new();
    extra.push(sample(
        "lambda_serving_batch_manifest_version",
        "Version of the batch manifest served (0: none loaded).",
        "gauge",
        vec![],
        published.map_or(0.0, |p| p.version as f64),
    ));
    if let Some(p) = published {
        for (metric, boundary) in &p.time_boundary {
            let ms = boundary
                .as_deref()
                .and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok())
                .map(|t| t.timestamp_millis());
            if let Some(ms) = ms {
                extra.push(sample(
                    "lambda_batch_boundary_age_seconds",
                    "Now minus the batch time boundary, per metric.",
                    "gauge",
                    vec![("metric", metric.clone())],
                    (now - ms) as f64 / 1000.0,
                ));
            }
        }
    }
    match speed {
        Ok(statuses) => {
            for (instance, s) in statuses {
                let inst = || ("instance", instance.clone());
                let c = s.progress.counters;
                for (name, help, value) in [
                    ("lambda_speed_records_total", "Records consumed.", c.records),
                    (
                        "lambda_speed_events_total",
                        "Valid events counted.",
                        c.events,
                    ),
                    (
                        "lambda_speed_rejected_total",
                        "Records rejected to the dead-letter topic.",
                        c.rejected,
                    ),
                    (
                        "lambda_speed_duplicates_total",
                        "Duplicate deliveries dropped.",
                        c.duplicates,
                    ),
                ] {
                    extra.push(sample(name, help, "counter", vec![inst()], value as f64));
                }
                for (policy, value) in [
                    ("dropped", c.late_dropped),
                    ("side_output", c.late_side_output),
                    ("updated", c.late_updated),
                ] {
                    extra.push(sample(
                        "lambda_speed_late_events_total",
                        "Events behind the closed windows, by what happened to them.",
                        "counter",
                        vec![inst(), ("policy", policy.into())],
                        value as f64,
                    ));
                }
                for (partition, lag) in &s.progress.lag {
                    extra.push(sample(
                        "lambda_speed_consumer_lag_records",
                        "Records between the consumer's position and the partition's end.",
                        "gauge",
                        vec![inst(), ("partition", partition.to_string())],
                        *lag as f64,
                    ));
                }
                if let Some(at) = s.progress.last_checkpoint_ms {
                    extra.push(sample(
                        "lambda_speed_checkpoint_age_seconds",
                        "Seconds since the last checkpoint.",
                        "gauge",
                        vec![inst()],
                        (now - at) as f64 / 1000.0,
                    ));
                }
                if let Some(newest) = s.progress.newest_event_ms {
                    extra.push(sample(
                        "lambda_speed_freshness_seconds",
                        "Age of the newest visible event.",
                        "gauge",
                        vec![inst()],
                        (now - newest) as f64 / 1000.0,
                    ));
                }
                if let Some(wm) = s.progress.watermark {
                    extra.push(sample(
                        "lambda_speed_watermark_lag_seconds",
                        "Now minus the watermark.",
                        "gauge",
                        vec![inst()],
                        (now - wm) as f64 / 1000.0,
                    ));
                }
                extra.push(sample(
                    "lambda_speed_up",
                    "Whether the speed instance answered.",
                    "gauge",
                    vec![inst()],
                    1.0,
                ));
            }
        }
        Err(e) => {
            extra.push(sample(
                "lambda_speed_up",
                "Whether the speed instance answered.",
                "gauge",
                vec![("instance", "any".into())],
                0.0,
            ));
            tracing::warn!(error = %e, "speed status unavailable for /metrics");
        }
    }
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_requests_and_buckets_latency() {
        let t = Telemetry::default();
        t.record_request("/v1/metrics/{metric}", 200, Duration::from_micros(700));
        t.record_request("/v1/metrics/{metric}", 200, Duration::from_millis(30));
        t.record_request("/v1/metrics/{metric}", 400, Duration::from_micros(100));
        let text = t.render(&[Sample {
            name: "lambda_speed_consumer_lag_records",
            help: "Records behind.",
            kind: "gauge",
            labels: vec![("partition", "0".into())],
            value: 12.0,
        }]);
        assert!(text.contains(
            "lambda_serving_requests_total{route=\"/v1/metrics/{metric}\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "lambda_serving_request_duration_seconds_bucket{route=\"/v1/metrics/{metric}\",le=\"0.001\"} 2"
        ));
        assert!(text.contains(
            "lambda_serving_request_duration_seconds_bucket{route=\"/v1/metrics/{metric}\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("lambda_speed_consumer_lag_records{partition=\"0\"} 12"));
        assert!(text.contains("# TYPE lambda_speed_consumer_lag_records gauge"));
    }
}
