//! The HTTP API of the serving layer (axum): the router and its handlers. Handlers parse
//! and check input ([`crate::query`]), leave authentication to [`crate::auth`]'s
//! middleware, answer metric queries through [`crate::answer`] (behind the answer cache)
//! and render `/metrics` from [`crate::telemetry`]; every failure is a [`ServingError`]
//! with a status and a stable code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use shared_logic::registry::catalog;
use shared_logic::window::WindowStart;

use crate::answer::compute_off_runtime;
use crate::answer_cache::Lookup;
use crate::auth::{admin_auth, ingest_auth, query_allowed, query_auth};
use crate::error::ServingError;
use crate::openapi::ROUTES;
use crate::query::{parse_metric, parse_time, MetricQuery};
use crate::speed_views::SpeedViews;
use crate::state::AppState;
use crate::telemetry::{self, exposition, readiness};

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
        .route("/v1/quality", get(quality))
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
    // The new instances take the speed token the current ones take.
    let token = state.speed.current().token().map(String::from);
    let next = SpeedViews::remote(&body.speed_urls, timeout)?.with_token(token);
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

/// True when the request asks for an answer computed now (`Cache-Control: no-cache`).
fn wants_fresh(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-cache"))
}

async fn metric(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ServingError> {
    let Path(name) = path.map_err(|e| ServingError::bad("bad_path", e.body_text()))?;
    let query = MetricQuery::parse_with(
        &name,
        raw.as_deref(),
        now_ms(),
        &state.opts.limits,
        &state.opts.ctx.sliding,
    )?;
    let answer = if state.answers.enabled() && !wants_fresh(&headers) {
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

/// `GET /v1/quality`: the quality report of a range of hours.
async fn quality(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ServingError> {
    let now = now_ms();
    let request = crate::quality::parse_range(raw.as_deref(), now)?;
    let (from, to) = (request.from, request.to);
    let rules = &state.opts.quality_rules.0;
    let (mut hours, windows) =
        crate::quality::quality_report_by_window(&state, (from, to), rules, now, request.by_window)
            .await?;
    let missing = crate::quality::add_speed_notes(&state, from, to, &mut hours).await;
    let boundary = crate::quality::batch_boundary(&state, now);
    Ok(Json(crate::quality::report_json(
        from,
        to,
        rules,
        &hours,
        boundary,
        missing.as_deref(),
        request.by_window.then_some(windows.as_slice()),
    )))
}

async fn lineage(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ServingError> {
    let mut metric = None;
    let mut window = None;
    let (mut as_of_version, mut as_of_time) = (None, None);
    for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "metric" => metric = Some(parse_metric(&value)?),
            "window" => window = Some(parse_time("window", &value)?),
            "as_of_version" => as_of_version = Some(value.to_string()),
            "as_of_time" => as_of_time = Some(value.to_string()),
            _ => return Err(ServingError::bad(
                "unknown_parameter",
                "lineage takes `metric`, `window`, and optionally `as_of_version` or `as_of_time`",
            )),
        }
    }
    let as_of = crate::query::AsOfQuery::parse(as_of_version.as_deref(), as_of_time.as_deref())?;
    let (Some(metric), Some(window)) = (metric, window) else {
        return Err(ServingError::bad(
            "missing_parameter",
            "lineage needs `metric` and `window` (a time inside the window)",
        ));
    };
    let start = WindowStart(window)
        .truncate(state.opts.ctx.windows.size_ms())
        .0;
    let published = match as_of {
        Some(a) => Some(state.batch.published_as_of(a.tables(metric)).await?),
        None => state.batch.published(),
    };
    let speed = if as_of.is_some()
        || crate::lineage::batch_covers(published.as_deref(), metric.name(), start)
    {
        BTreeMap::new()
    } else {
        state.speed.current().status().await?
    };
    let answer = crate::lineage::lineage(metric.name(), start, published.as_deref(), speed);
    serde_json::to_value(answer)
        .map(Json)
        .map_err(|e| ServingError::Internal(format!("lineage: {e}")))
}

/// The collector reads bodies as sent: a `Content-Encoding` other than `identity` (gzip,
/// say) is refused with 415 rather than read as malformed records.
fn refuse_encoded_bodies(headers: &header::HeaderMap) -> Result<(), ServingError> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("(not text)");
        let encoded = text
            .split(',')
            .map(str::trim)
            .any(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        if encoded {
            return Err(ServingError::UnsupportedEncoding {
                message: format!(
                    "Content-Encoding `{}` is not supported: send the body uncompressed",
                    text.chars().take(64).collect::<String>()
                ),
            });
        }
    }
    Ok(())
}

async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: header::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ServingError> {
    let Some(collector) = &state.collector else {
        return Err(ServingError::unavailable(
            "collector_disabled",
            "this server does not collect events",
        ));
    };
    refuse_encoded_bodies(&headers)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ServingError::TooLarge {
            limit: collector.options().max_body_bytes,
        },
        _ => ServingError::bad("unreadable_body", e.body_text()),
    })?;
    let source = headers
        .get(shared_logic::source::SOURCE_HTTP_HEADER)
        .map(|v| v.as_bytes());
    let report = collector.ingest_from(&body, source).await?;
    state
        .telemetry
        .record_ingest(report.accepted, report.rejected);
    serde_json::to_value(report)
        .map(Json)
        .map_err(|e| ServingError::Internal(format!("ingest report: {e}")))
}

/// 200 or 503 with `{"ready": …}`; the reasons only for callers with the query token.
async fn readyz(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let detail = query_allowed(&state, &request);
    let published = state.batch.published();
    let (ready, body) = readiness(published.as_deref(), &state.speed.current(), detail).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The Prometheus text; the speed instances' URLs only for callers with the query token.
async fn prometheus(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ServingError> {
    let detail = query_allowed(&state, &request);
    let published = state.batch.published();
    let speed = state.speed.current();
    let now = now_ms();
    // A report that cannot be computed (a speed instance down) leaves its gauges out; the
    // layers' own gauges say why.
    let quality = crate::quality_metrics::quality_samples(&state, now)
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "no data-quality gauges");
            Vec::new()
        });
    let text = exposition(
        &state.telemetry,
        published.as_deref(),
        &speed,
        detail,
        now,
        quality,
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text).into_response())
}

/// Hours per metric decoded ahead of queries after each new batch version (a day).
const WARM_HOURS: usize = 24;

/// Polls the batch manifest every `period` until `shutdown`, logging each new version and
/// warming the newest hours of the views.
pub async fn watch_manifest(
    state: Arc<AppState>,
    period: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match state.batch.refresh().await {
            Ok(Some(version)) => {
                tracing::info!(version, views = %state.batch.location(), "serving batch manifest");
                // The newest hours are decoded now, not by the first queries that read them.
                let started = std::time::Instant::now();
                match state.batch.warm(WARM_HOURS).await {
                    Ok(hours) => tracing::info!(
                        version,
                        hours,
                        ms = started.elapsed().as_millis() as u64,
                        "batch views warmed"
                    ),
                    Err(e) => tracing::warn!(error = %e, "batch views not warmed"),
                }
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
    use crate::openapi::ROUTES;

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
