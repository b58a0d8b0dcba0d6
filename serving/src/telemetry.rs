//! What the serving layer tells about itself: the Prometheus exposition of `/metrics` and
//! the readiness of `/readyz`, and how much of it each caller sees.
//!
//! The layer's own request counters and latency histograms are `prometheus-client`
//! families. The gauges and counters about the other layers (consumer lag, events,
//! checkpoint age, batch boundary age) are read when `/metrics` is scraped
//! ([`layer_samples`]) and rendered by the same crate ([`LayerMetrics`]) grouped by family,
//! so every family is one HELP/TYPE block holding all its samples, whatever the number of
//! speed instances. Names follow `lambda_<layer>_<what>_<unit>`.
//!
//! Anonymous callers learn states, never internals: speed instances are labelled by
//! position (`speed-0`, … in the order of `--speed-url`), readiness is a bare
//! `{"ready": …}`, and errors go to the log. Callers with the query token also get the
//! instances' URLs (`lambda_speed_instance_info`) and the reasons a layer is not ready.

use std::fmt;
use std::time::Duration;

use lambda_io::manifest::Published;
use lambda_io::speed_api::Status;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{json, Value as Json};

use crate::error::ServingError;
use crate::speed_views::SpeedViews;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The serving layer's own metrics.
pub struct Telemetry {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    ingested: Family<Labels, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let ingested = Family::<Labels, Counter>::default();
        // Both outcomes exist from the start: a rate over a missing series is no rate.
        for outcome in ["accepted", "rejected"] {
            drop(ingested.get_or_create(&vec![("outcome", outcome.to_string())]));
        }
        Telemetry {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            ingested,
        }
    }
}

impl Telemetry {
    /// Counts a finished request of `route` (the route template, never the raw path).
    pub fn record_request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route", route.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts collector outcomes (`accepted`, `rejected`).
    pub fn record_ingest(&self, accepted: usize, rejected: usize) {
        for (outcome, n) in [("accepted", accepted), ("rejected", rejected)] {
            self.ingested
                .get_or_create(&vec![("outcome", outcome.to_string())])
                .inc_by(n as u64);
        }
    }

    /// The exposition (Prometheus text format 0.0.4): this layer's metrics, then `layers`.
    pub fn render(&self, layers: LayerMetrics) -> Result<String, ServingError> {
        let mut registry = Registry::default();
        registry.register(
            "lambda_serving_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        registry.register(
            "lambda_serving_request_duration_seconds",
            "HTTP request latency by route",
            self.latency.clone(),
        );
        registry.register(
            "lambda_collector_events",
            "Events received by the collector, by outcome",
            self.ingested.clone(),
        );
        registry.register_collector(Box::new(layers));
        let mut out = String::new();
        prometheus_text::encode(&mut out, &registry)
            .map_err(|e| ServingError::Internal(format!("metrics exposition: {e}")))?;
        Ok(out)
    }
}

/// The `Content-Type` of [`Telemetry::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A value owned by another layer, read at scrape time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A counter's total.
    Count(u64),
    /// A gauge in whole units (records, a version, 0 or 1).
    Int(i64),
    /// A gauge of a measure (seconds).
    Float(f64),
}

/// One sample of a gauge or counter owned elsewhere.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The family name as exposed (a counter's ends in `_total`).
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Labels,
    pub value: Value,
}

/// The other layers' samples, rendered grouped by family (families in the order they first
/// appear), and, for callers with the query token, which URL each speed instance label
/// stands for.
#[derive(Debug, Default)]
pub struct LayerMetrics {
    samples: Vec<Sample>,
    instances: Vec<(String, String)>,
}

impl LayerMetrics {
    /// The samples, without instance URLs.
    pub fn new(samples: Vec<Sample>) -> Self {
        LayerMetrics {
            samples,
            instances: Vec::new(),
        }
    }

    /// Adds `lambda_speed_instance_info{instance, url}` for each `(label, url)`.
    pub fn with_instance_urls(mut self, instances: Vec<(String, String)>) -> Self {
        self.instances = instances;
        self
    }
}

impl Collector for LayerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut families: Vec<&'static str> = Vec::new();
        for s in &self.samples {
            if !families.contains(&s.name) {
                families.push(s.name);
            }
        }
        for name in families {
            let mut members = self.samples.iter().filter(|s| s.name == name).peekable();
            let Some(first) = members.peek() else {
                continue;
            };
            // The encoder appends `_total` to counter names itself.
            let (base, kind) = match first.value {
                Value::Count(_) => (
                    name.strip_suffix("_total").unwrap_or(name),
                    MetricType::Counter,
                ),
                Value::Int(_) | Value::Float(_) => (name, MetricType::Gauge),
            };
            let mut family = encoder.encode_descriptor(base, first.help, None, kind)?;
            for s in members {
                let series = family.encode_family(&s.labels)?;
                match s.value {
                    Value::Count(n) => ConstCounter::new(n).encode(series)?,
                    Value::Int(n) => ConstGauge::new(n).encode(series)?,
                    Value::Float(x) => ConstGauge::new(x).encode(series)?,
                }
            }
        }
        if !self.instances.is_empty() {
            let mut family = encoder.encode_descriptor(
                "lambda_speed_instance",
                "The speed instance each instance label stands for.",
                None,
                MetricType::Info,
            )?;
            for (instance, url) in &self.instances {
                let labels: Labels = vec![("instance", instance.clone())];
                family
                    .encode_family(&labels)?
                    .encode_info(&vec![("url", url.clone())])?;
            }
        }
        Ok(())
    }
}

fn sample(name: &'static str, help: &'static str, labels: Labels, value: Value) -> Sample {
    Sample {
        name,
        help,
        labels,
        value,
    }
}

/// The gauges and counters about the other layers, read when `/metrics` is scraped: the
/// batch manifest served, each metric's boundary age, and each speed instance's counters,
/// lag, checkpoint age, freshness and watermark lag (`now` in epoch ms). `speed` holds each
/// instance's label and status; an instance that did not answer is `lambda_speed_up 0`.
pub fn layer_samples(
    published: Option<&Published>,
    speed: &[(String, Option<Status>)],
    now: i64,
) -> Vec<Sample> {
    let secs = |ms: i64| Value::Float(ms as f64 / 1000.0);
    let mut extra = vec![sample(
        "lambda_serving_batch_manifest_version",
        "Version of the batch manifest served (0: none loaded).",
        vec![],
        Value::Int(published.map_or(0, |p| p.version as i64)),
    )];
    for (metric, boundary) in published.iter().flat_map(|p| &p.time_boundary) {
        let ms = boundary
            .as_deref()
            .and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok())
            .map(|t| t.timestamp_millis());
        if let Some(ms) = ms {
            extra.push(sample(
                "lambda_batch_boundary_age_seconds",
                "Now minus the batch time boundary, per metric.",
                vec![("metric", metric.clone())],
                secs(now - ms),
            ));
        }
    }
    for (instance, status) in speed {
        let inst = || vec![("instance", instance.clone())];
        extra.push(sample(
            "lambda_speed_up",
            "Whether the speed instance answered.",
            inst(),
            Value::Int(status.is_some() as i64),
        ));
        let Some(s) = status else {
            continue;
        };
        let c = &s.progress.counters;
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
            extra.push(sample(name, help, inst(), Value::Count(value)));
        }
        for (policy, value) in [
            ("dropped", c.late_dropped),
            ("side_output", c.late_side_output),
            ("updated", c.late_updated),
        ] {
            let mut labels = inst();
            labels.push(("policy", policy.into()));
            extra.push(sample(
                "lambda_speed_late_events_total",
                "Events behind the closed windows, by what happened to them.",
                labels,
                Value::Count(value),
            ));
        }
        for (partition, lag) in &s.progress.lag {
            let mut labels = inst();
            labels.push(("partition", partition.to_string()));
            extra.push(sample(
                "lambda_speed_consumer_lag_records",
                "Records between the consumer's position and the partition's end.",
                labels,
                Value::Int(*lag),
            ));
        }
        for (name, help, at) in [
            (
                "lambda_speed_checkpoint_age_seconds",
                "Seconds since the last checkpoint.",
                s.progress.last_checkpoint_ms,
            ),
            (
                "lambda_speed_freshness_seconds",
                "Age of the newest visible event.",
                s.progress.newest_event_ms,
            ),
            (
                "lambda_speed_watermark_lag_seconds",
                "Now minus the watermark.",
                s.progress.watermark,
            ),
        ] {
            if let Some(at) = at {
                extra.push(sample(name, help, inst(), secs(now - at)));
            }
        }
    }
    extra
}

/// Each speed instance's label and status (`None`: it did not answer, logged with why).
pub async fn speed_statuses(speed: &SpeedViews) -> Vec<(String, Option<Status>)> {
    speed
        .statuses()
        .await
        .into_iter()
        .map(|(instance, status)| {
            let status = status
                .map_err(|e| tracing::warn!(%instance, error = %e, "speed status unavailable"))
                .ok();
            (instance, status)
        })
        .collect()
}

/// The `/metrics` text, with the data-quality samples `quality`; with `detail`, the speed
/// instances' URLs too.
pub async fn exposition(
    telemetry: &Telemetry,
    published: Option<&Published>,
    speed: &SpeedViews,
    detail: bool,
    now: i64,
    quality: Vec<Sample>,
) -> Result<String, ServingError> {
    let statuses = speed_statuses(speed).await;
    let mut samples = layer_samples(published, &statuses, now);
    samples.extend(quality);
    let mut layers = LayerMetrics::new(samples);
    if detail {
        let labels = statuses.into_iter().map(|(label, _)| label);
        layers = layers.with_instance_urls(labels.zip(speed.describe()).collect());
    }
    telemetry.render(layers)
}

/// Readiness: the batch manifest is loaded and the speed layer answers (holding
/// partitions). The body is `{"ready": …}`; with `detail`, also what each layer said.
pub async fn readiness(
    published: Option<&Published>,
    speed: &SpeedViews,
    detail: bool,
) -> (bool, Json) {
    let speed = match speed {
        SpeedViews::InProcess(views) if views.partitions().is_empty() => {
            Err("the speed layer holds no partition yet".to_string())
        }
        other => other.status().await.map(|_| ()).map_err(|e| e.to_string()),
    };
    let ready = published.is_some() && speed.is_ok();
    if !detail {
        return (ready, json!({ "ready": ready }));
    }
    let body = json!({
        "ready": ready,
        "batch": match published {
            Some(p) => json!({"manifest_version": p.version, "hours": p.hours.len()}),
            None => json!("the batch manifest is not loaded yet"),
        },
        "speed": speed.err().unwrap_or_else(|| "ok".into()),
    });
    (ready, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(records: u64, lag: &[(i32, i64)]) -> Status {
        let mut s: Status = serde_json::from_value(json!({
            "views_version": 1,
            "progress": {"watermark": null, "newest_event_ms": null, "offsets": {}, "lag": {},
                         "last_checkpoint_ms": null, "counters": {"records": 0, "events": 0,
                         "rejected": 0, "duplicates": 0, "late_dropped": 0,
                         "late_side_output": 0, "late_updated": 0}},
            "allowed_lateness_ms": 0, "out_of_orderness_ms": 0, "logic": "", "revised_windows": [],
            "live_keys": 0, "dedup_keys": 0, "session_users": 0
        }))
        .expect("a status");
        s.progress.counters.records = records;
        s.progress.lag = lag.iter().copied().collect();
        s
    }

    #[test]
    fn exposition_counts_requests_and_buckets_latency() {
        let t = Telemetry::default();
        t.record_request("/v1/metrics/{metric}", 200, Duration::from_micros(700));
        t.record_request("/v1/metrics/{metric}", 200, Duration::from_millis(30));
        t.record_request("/v1/metrics/{metric}", 400, Duration::from_micros(100));
        t.record_ingest(3, 1);
        let text = t
            .render(LayerMetrics::new(vec![sample(
                "lambda_speed_consumer_lag_records",
                "Records behind.",
                vec![("partition", "0".into())],
                Value::Int(12),
            )]))
            .unwrap();
        for needle in [
            "lambda_serving_requests_total{route=\"/v1/metrics/{metric}\",status=\"200\"} 2\n",
            "lambda_serving_request_duration_seconds_bucket{route=\"/v1/metrics/{metric}\",le=\"0.001\"} 2\n",
            "lambda_serving_request_duration_seconds_bucket{route=\"/v1/metrics/{metric}\",le=\"+Inf\"} 3\n",
            "lambda_collector_events_total{outcome=\"accepted\"} 3\n",
            "lambda_collector_events_total{outcome=\"rejected\"} 1\n",
            "# TYPE lambda_speed_consumer_lag_records gauge\n",
            "lambda_speed_consumer_lag_records{partition=\"0\"} 12\n",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }

    #[test]
    fn families_stay_whole_across_speed_instances() {
        let speed = vec![
            ("speed-0".to_string(), Some(status(10, &[(0, 5), (1, 7)]))),
            ("speed-1".to_string(), None),
            ("speed-2".to_string(), Some(status(20, &[(2, 1)]))),
        ];
        let layers = LayerMetrics::new(layer_samples(None, &speed, 0)).with_instance_urls(vec![
            ("speed-0".into(), "http://a:9101/".into()),
            ("speed-2".into(), "http://b:9101/".into()),
        ]);
        let text = Telemetry::default().render(layers).unwrap();
        // Each family: one TYPE line, then all its samples in one run.
        let mut seen: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&current), "{current} typed twice:\n{text}");
                seen.push(current.clone());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    name.starts_with(&current),
                    "{name} outside {current}:\n{text}"
                );
            }
        }
        for needle in [
            "lambda_speed_up{instance=\"speed-1\"} 0\n",
            "lambda_speed_records_total{instance=\"speed-2\"} 20\n",
            "lambda_speed_consumer_lag_records{instance=\"speed-0\",partition=\"1\"} 7\n",
            "lambda_speed_instance_info{instance=\"speed-2\",url=\"http://b:9101/\"} 1\n",
            "lambda_serving_batch_manifest_version 0\n",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
    }
}
