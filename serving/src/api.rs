//! The HTTP API of the serving layer (axum): routes, handlers, authentication and request
//! metrics. Handlers parse and check input ([`crate::query`]), read both layers
//! ([`crate::batch_views`], [`crate::speed_views`]), merge ([`crate::merge`]) and shape the
//! JSON; every failure is a [`ServingError`] with a status and a stable code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use shared_logic::metric::{catalog, Funnel, Metric, Orders, PageViews, Revenue, Sessions};
use shared_logic::window::WindowStart;
use shared_logic::MetricContext;

use crate::answer_cache::{Answer, AnswerCache, Lookup};
use crate::batch_views::{BatchRead, BatchViews};
use crate::collector::Collector;
use crate::error::ServingError;
use crate::merge::{Merger, SpeedClock};
use crate::query::{parse_time, MetricKind, MetricQuery, QueryLimits};
use crate::speed_views::{SpeedSwitch, SpeedViews};
use crate::telemetry::{Sample, Telemetry};

/// One route: method and path template.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// Every route the server answers (the OpenAPI document is built from this list).
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/v1/metrics",
    },
    Route {
        method: "get",
        path: "/v1/metrics/{metric}",
    },
    Route {
        method: "get",
        path: "/v1/lineage",
    },
    Route {
        method: "post",
        path: "/v1/events",
    },
    Route {
        method: "put",
        path: "/v1/admin/speed",
    },
    Route {
        method: "get",
        path: "/healthz",
    },
    Route {
        method: "get",
        path: "/readyz",
    },
    Route {
        method: "get",
        path: "/metrics",
    },
    Route {
        method: "get",
        path: "/openapi.json",
    },
    Route {
        method: "get",
        path: "/",
    },
    Route {
        method: "get",
        path: "/assets/app.js",
    },
    Route {
        method: "get",
        path: "/assets/style.css",
    },
];

/// How the API behaves.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    pub limits: QueryLimits,
    /// Bearer token for the query routes (`/v1/metrics…`, `/v1/lineage`); none: open.
    pub query_token: Option<String>,
    /// Bearer token for `POST /v1/events`; none: open.
    pub ingest_token: Option<String>,
    /// Bearer token for the admin routes (`PUT /v1/admin/speed`); none: they are disabled.
    pub admin_token: Option<String>,
    /// The metric context both layers use (windows, reporting currency).
    pub ctx: MetricContext,
}

/// What the handlers share.
pub struct AppState {
    pub batch: BatchViews,
    pub speed: SpeedSwitch,
    /// `None`: this server does not collect (`POST /v1/events` answers 503).
    pub collector: Option<Collector>,
    pub telemetry: Telemetry,
    /// Bounded-staleness answers for repeated queries (off by default).
    pub answers: AnswerCache,
    pub opts: ApiOptions,
}

/// RFC 3339 in UTC, seconds unless the time has milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The router with every route of [`ROUTES`].
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state
        .collector
        .as_ref()
        .map_or(5 * 1024 * 1024, |c| c.options().max_body_bytes);
    let query = Router::new()
        .route("/v1/metrics", get(list_metrics))
        .route("/v1/metrics/{metric}", get(metric))
        .route("/v1/lineage", get(lineage))
        .route_layer(middleware::from_fn_with_state(state.clone(), query_auth));
    let admin = Router::new()
        .route("/v1/admin/speed", axum::routing::put(switch_speed))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_auth));
    let ingest = Router::new()
        .route("/v1/events", post(ingest))
        .layer(DefaultBodyLimit::max(body_limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), ingest_auth));
    Router::new()
        .merge(query)
        .merge(ingest)
        .merge(admin)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/", get(crate::dashboard::index))
        .route("/assets/app.js", get(crate::dashboard::app_js))
        .route("/assets/style.css", get(crate::dashboard::style_css))
        .fallback(|| async {
            ServingError::NotFound {
                code: "not_found",
                message: "no such route; see /openapi.json".into(),
            }
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Records each request's route, status and latency.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ROUTES.iter().find(|r| r.path == m.as_str()))
        .map_or("unmatched", |r| r.path);
    let started = Instant::now();
    let response = next.run(request).await;
    let mut response = response;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response = ServingError::NotFound {
            code: "method_not_allowed",
            message: format!("{route} does not take this method; see /openapi.json"),
        }
        .into_response();
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    }
    state
        .telemetry
        .record_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// Compares without an early exit on the first differing byte.
fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (*x ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn check_token(expected: Option<&str>, request: &Request, what: &str) -> Result<(), ServingError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if token_matches(expected, token.trim()) => Ok(()),
        Some(_) => Err(ServingError::Unauthorized {
            message: format!("the bearer token is not valid for {what}"),
        }),
        None => Err(ServingError::Unauthorized {
            message: format!("{what} needs `Authorization: Bearer <token>`"),
        }),
    }
}

async fn query_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    check_token(state.opts.query_token.as_deref(), &request, "queries")?;
    Ok(next.run(request).await)
}

async fn ingest_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    check_token(state.opts.ingest_token.as_deref(), &request, "ingest")?;
    Ok(next.run(request).await)
}

async fn admin_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    let Some(token) = state.opts.admin_token.as_deref() else {
        return Err(ServingError::Forbidden {
            code: "admin_disabled",
            message: "admin routes are disabled: start the server with an admin token".into(),
        });
    };
    check_token(Some(token), &request, "admin routes")?;
    Ok(next.run(request).await)
}

/// Body of `PUT /v1/admin/speed`.
#[derive(serde::Deserialize)]
struct SwitchSpeed {
    speed_urls: Vec<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Switches the real-time views to other speed instances (a replayed views version) once
/// every one of them answers; the old ones answer until then.
async fn switch_speed(
    State(state): State<Arc<AppState>>,
    body: Result<Json<SwitchSpeed>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ServingError> {
    let Json(body) = body.map_err(|e| ServingError::bad("bad_body", e.body_text()))?;
    if body.speed_urls.is_empty() {
        return Err(ServingError::bad("bad_body", "`speed_urls` is empty"));
    }
    let timeout = Duration::from_millis(body.timeout_ms.unwrap_or(2_000).clamp(100, 60_000));
    let next = SpeedViews::remote(&body.speed_urls, timeout)?;
    let status = next.status().await?;
    let current = next.describe();
    let previous = state.speed.replace(next).describe();
    tracing::info!(?previous, ?current, "real-time views switched");
    Ok(Json(
        json!({ "previous": previous, "current": current, "status": status }),
    ))
}

async fn list_metrics() -> Json<Value> {
    Json(json!({ "metrics": catalog().iter().map(|m| json!({
        "name": m.name,
        "dimensions": m.dimensions,
        "values": m.values.iter().map(|(name, kind)| json!({"name": name, "kind": kind})).collect::<Vec<_>>(),
    })).collect::<Vec<_>>() }))
}

async fn metric(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ServingError> {
    let Path(name) = path.map_err(|e| ServingError::bad("bad_path", e.body_text()))?;
    let query = MetricQuery::parse(&name, raw.as_deref(), now_ms(), &state.opts.limits)?;
    let answer = if state.answers.enabled() {
        let version = state.batch.published().map_or(0, |p| p.version);
        let key = format!(
            "{query:?}|manifest {version}|speed {}",
            state.speed.generation()
        );
        match state.answers.lookup(&key).await {
            Lookup::Fresh(answer)
            | Lookup::Stale {
                answer,
                refresh: None,
            } => answer,
            Lookup::Stale {
                answer,
                refresh: Some(refresh),
            } => {
                let (state, query) = (state.clone(), query.clone());
                tokio::spawn(async move {
                    match compute_off_runtime(state, query).await {
                        Ok(fresh) => refresh.store(fresh),
                        Err(e) => tracing::warn!(error = %e, "answer refresh failed"),
                    }
                });
                answer
            }
            Lookup::Compute(refresh) => {
                let fresh = compute_off_runtime(state.clone(), query).await?;
                refresh.store(fresh.clone());
                fresh
            }
        }
    } else {
        compute_off_runtime(state.clone(), query).await?
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        answer.render(now_ms()),
    )
        .into_response())
}

/// [`compute`] on a blocking thread: merging hundreds of thousands of states takes the
/// CPU for a while, and the runtime's workers must stay free to serve cached answers (on
/// one core the OS then interleaves the two).
async fn compute_off_runtime(
    state: Arc<AppState>,
    query: MetricQuery,
) -> Result<Answer, ServingError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(compute(&state, &query)))
        .await
        .map_err(|e| ServingError::Internal(format!("answer task: {e}")))?
}

/// Computes one query's answer.
async fn compute(state: &AppState, query: &MetricQuery) -> Result<Answer, ServingError> {
    let computed_at = Instant::now();
    let (value, newest_event_ms) = match query.metric {
        MetricKind::PageViews => answer::<PageViews>(state, query).await?,
        MetricKind::Funnel => answer::<Funnel>(state, query).await?,
        MetricKind::Revenue => answer::<Revenue>(state, query).await?,
        MetricKind::Sessions => answer::<Sessions>(state, query).await?,
        MetricKind::Orders => answer::<Orders>(state, query).await?,
    };
    let body = serde_json::to_vec(&value)
        .map_err(|e| ServingError::Internal(format!("answer encoding: {e}")))?;
    Ok(Answer {
        body: body.into(),
        computed_at,
        newest_event_ms,
    })
}

/// Answers one query: batch for covered hours, speed for the others, merged, derived.
/// Returns the answer object (without `freshness_ms`, which depends on when it is served)
/// and the newest event time of the real-time views it read.
pub async fn answer<M: Metric>(
    state: &AppState,
    query: &MetricQuery,
) -> Result<(Value, Option<i64>), ServingError> {
    let q = &query.query;
    let published = state.batch.published();
    let batch = match &published {
        Some(p) => state.batch.read::<M>(p, q.from_ms, q.to_ms).await?,
        None => BatchRead {
            views: Vec::new(),
            covered: Default::default(),
        },
    };
    let mut merger = Merger::<M>::new(q, &batch.covered, state.opts.ctx.windows);
    for hour in &batch.views {
        for (key, s) in hour.iter() {
            merger.add_batch(key, s);
        }
    }
    let time = state
        .speed
        .current()
        .read::<M>(q.from_ms, q.to_ms, |key, s| merger.add_speed(key, s))
        .await?;
    let rows = merger.finish(SpeedClock {
        watermark: time.watermark,
        allowed_lateness_ms: time.allowed_lateness_ms,
    });
    let group_names = query.group_by_names();
    let truncated = rows.len() > query.limit;
    let rows: Vec<Value> = rows
        .iter()
        .take(query.limit)
        .map(|r| {
            let dims: Map<String, Value> = group_names
                .iter()
                .zip(&r.dims)
                .map(|(n, v)| (n.to_string(), Value::from(v.as_str())))
                .collect();
            let values: Map<String, Value> = M::VALUES
                .iter()
                .zip(M::values(&r.state))
                .map(|((n, _), v)| {
                    (
                        n.to_string(),
                        serde_json::to_value(v).unwrap_or(Value::Null),
                    )
                })
                .collect();
            json!({
                "window_start": rfc3339(r.window_start),
                "window_end": rfc3339(r.window_end),
                "dimensions": dims,
                "values": values,
                "source": r.source,
                "final": r.is_final,
            })
        })
        .collect();
    let filters: Map<String, Value> = query
        .filter_pairs()
        .into_iter()
        .map(|(n, v)| (n.to_string(), Value::from(v)))
        .collect();
    let answer = json!({
        "metric": M::NAME,
        "from": rfc3339(q.from_ms),
        "to": rfc3339(q.to_ms),
        "granularity": query.granularity.name(),
        "group_by": group_names,
        "filters": filters,
        "currency": state.opts.ctx.rates.reporting().code(),
        "time_boundary": published.as_ref().and_then(|p| p.time_boundary.get(M::NAME).cloned().flatten()),
        "manifest_version": published.as_ref().map(|p| p.version),
        "watermark": time.watermark.map(rfc3339),
        "newest_event_time": time.newest_event_ms.map(rfc3339),
        "rows": rows,
        "truncated": truncated,
    });
    Ok((answer, time.newest_event_ms))
}

async fn lineage(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ServingError> {
    let mut metric = None;
    let mut window = None;
    for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "metric" => metric = Some(MetricKind::parse(&value)?),
            "window" => window = Some(parse_time("window", &value)?),
            _ => {
                return Err(ServingError::bad(
                    "unknown_parameter",
                    "lineage takes `metric` and `window`",
                ))
            }
        }
    }
    let (Some(metric), Some(window)) = (metric, window) else {
        return Err(ServingError::bad(
            "missing_parameter",
            "lineage needs `metric` and `window` (a time inside the window)",
        ));
    };
    let start = WindowStart(window)
        .truncate(state.opts.ctx.windows.size_ms())
        .0;
    let published = state.batch.published();
    let speed = if crate::lineage::batch_covers(published.as_deref(), metric.name(), start) {
        BTreeMap::new()
    } else {
        state.speed.current().status().await?
    };
    let answer = crate::lineage::lineage(metric.name(), start, published.as_deref(), speed);
    serde_json::to_value(answer)
        .map(Json)
        .map_err(|e| ServingError::Internal(format!("lineage: {e}")))
}

async fn ingest(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ServingError> {
    let Some(collector) = &state.collector else {
        return Err(ServingError::unavailable(
            "collector_disabled",
            "this server does not collect events",
        ));
    };
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ServingError::TooLarge {
            limit: collector.options().max_body_bytes,
        },
        _ => ServingError::bad("unreadable_body", e.body_text()),
    })?;
    let report = collector.ingest(&body).await?;
    state
        .telemetry
        .record_ingest(report.accepted, report.rejected);
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| ServingError::Internal(format!("ingest report: {e}")))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let published = state.batch.published();
    let speed = match &*state.speed.current() {
        SpeedViews::InProcess(views) if views.partitions().is_empty() => {
            Err("the speed layer holds no partition yet".to_string())
        }
        other => other.status().await.map(|_| ()).map_err(|e| e.to_string()),
    };
    let ready = published.is_some() && speed.is_ok();
    let body = json!({
        "ready": ready,
        "batch": match &published {
            Some(p) => json!({"manifest_version": p.version, "hours": p.hours.len()}),
            None => json!("the batch manifest is not loaded yet"),
        },
        "speed": speed.err().unwrap_or_else(|| "ok".into()),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
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

async fn prometheus(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let now = now_ms();
    let mut extra = Vec::new();
    let published = state.batch.published();
    extra.push(sample(
        "lambda_serving_batch_manifest_version",
        "Version of the batch manifest served (0: none loaded).",
        "gauge",
        vec![],
        published.as_ref().map_or(0.0, |p| p.version as f64),
    ));
    if let Some(p) = &published {
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
    match state.speed.current().status().await {
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
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(&extra),
    )
}

/// Polls the batch manifest every `period` until `shutdown`, logging each new version.
pub async fn watch_manifest(
    state: Arc<AppState>,
    period: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match state.batch.refresh().await {
            Ok(Some(version)) => {
                tracing::info!(version, views = %state.batch.location(), "serving batch manifest")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "batch manifest not reloaded"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret!"));
        assert!(!token_matches("s3cret", ""));
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc = crate::openapi::document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = 0;
        for (path, ops) in paths {
            for (method, _) in ops.as_object().unwrap() {
                assert!(
                    ROUTES.iter().any(|r| r.path == path && r.method == method),
                    "{method} {path} is documented but not routed"
                );
                documented += 1;
            }
        }
        assert_eq!(documented, ROUTES.len());
    }
}
