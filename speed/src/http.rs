//! The speed layer's HTTP endpoint, so that a separate serving process can read (and merge)
//! the views of one or more speed instances:
//!
//! - `GET /v1/speed/views/{metric}?from=&to=`: the metric's states for windows starting in
//!   `[from, to)` (epoch ms or RFC 3339), as a Parquet file in the views schema of
//!   `shared_logic::views`; with `group_by=` (and `filter=`, `sketches=`), grouped as asked
//!   ([`lambda_io::grouped_rows`]), from the rows kept per window ([`crate::rollups`]); headers `x-lambda-watermark` and `x-lambda-newest-event` (ms);
//!   `x-lambda-allowed-lateness` (ms); a grouped read may say what the reader holds
//!   (`since=<version>&known_from=&known_to=`) and is then answered only the windows
//!   changed since or unknown to it, with headers `x-lambda-views-version` and
//!   `x-lambda-changed-windows` (`lambda_io::speed_api::Since`);
//! - `GET /v1/speed/quality?from=&to=`: what only the speed layer saw of the hours starting
//!   in the range, for the quality report: arrivals per event-time hour and producer (out
//!   of order, late) and the first dead letters of each hour, producer and reason
//!   (`lambda_io::speed_api::QualityNotes`);
//! - `GET /v1/speed/status`: watermark, counters, offsets, lag, last checkpoint, revised
//!   windows, live keys (`lambda_io::speed_api::Status`);
//! - `GET /healthz`: a bare liveness probe, the only route open without the token.
//!
//! With a speed token (`lambda speed --speed-token`), the `/v1/speed/…` routes answer 401
//! unless the request carries `Authorization: Bearer <token>` (read and compared by
//! `lambda_io::bearer`, as the serving layer does): the views are every metric's numbers.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lambda_io::grouped_rows;
use lambda_io::speed_api::{
    Answered, Progress, QualityNotes, Status, ViewsVersion, ALLOWED_LATENESS_HEADER,
    CHANGED_WINDOWS_HEADER, NEWEST_EVENT_HEADER, VIEWS_VERSION_HEADER, WATERMARK_HEADER,
};
use lambda_io::views_file::encode_views;
use shared_logic::{registry, MetricViews, MetricVisitor, Registered};

use crate::views::RealtimeViews;

/// An error answer: a status and a JSON body with a stable code.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "code": self.code, "message": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ApiError {
    fn bad_request(message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message,
        }
    }

    fn unauthorized(message: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    fn internal(message: String) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message,
        }
    }

    fn unknown_metric(name: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "unknown_metric",
            message: format!("no metric `{name}`"),
        }
    }
}

/// What a views request asks for: a time range (`from`, `to`) and, when it names one
/// (`group_by=`), a grouping (see [`lambda_io::grouped_rows::request_params`]).
struct Range {
    from: Option<String>,
    to: Option<String>,
    params: Vec<(String, String)>,
}

impl Range {
    fn of(query: Option<&str>) -> Range {
        let params = grouped_rows::query_pairs(query.unwrap_or_default());
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Range {
            from: get("from"),
            to: get("to"),
            params,
        }
    }
}

impl Range {
    fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let parse = |text: &Option<String>, default: i64| match text.as_deref() {
            None => Ok(default),
            Some(text) => shared_logic::instant::parse_instant(text)
                .map_err(|e| ApiError::bad_request(format!("`{text}` {e}"))),
        };
        let (from, to) = (parse(&self.from, i64::MIN)?, parse(&self.to, i64::MAX)?);
        if from >= to {
            return Err(ApiError::bad_request(format!(
                "from ({from}) must be before to ({to})"
            )));
        }
        Ok((from, to))
    }
}

/// Metric `M`'s states of windows starting in `[from, to)`, merged across partitions: as
/// Parquet, or grouped as the request asks in an Arrow stream; with its media type and the
/// progress read under the same lock.
#[derive(Clone)]
struct ViewsFile<'a> {
    realtime: &'a RealtimeViews,
    from: i64,
    to: i64,
    params: &'a [(String, String)],
}

/// A views answer: the body, its media type, the progress read with it, and for an
/// incremental grouped answer the version read at and the windows answered.
type ViewsAnswer = (
    Vec<u8>,
    &'static str,
    Progress,
    Option<(ViewsVersion, Answered)>,
);

impl MetricVisitor for ViewsFile<'_> {
    type Output = Result<ViewsAnswer, ApiError>;

    fn visit<M: Registered>(self) -> Self::Output {
        if let Some(grouping) =
            grouped_rows::parse_request::<M>(self.params).map_err(ApiError::bad_request)?
        {
            let since = grouped_rows::parse_since(self.params).map_err(ApiError::bad_request)?;
            let mut encoder = grouped_rows::Encoder::<M>::new(&grouping);
            let (progress, answered) = self.realtime.select_since::<M>(
                self.from,
                self.to,
                &grouping,
                since.as_ref(),
                |key, state| encoder.push(key, state),
            );
            let bytes = encoder
                .finish()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok((bytes, grouped_rows::CONTENT_TYPE, progress, answered));
        }
        let mut views = MetricViews::<M>::default();
        let progress = self.realtime.visit::<M>(self.from, self.to, |key, state| {
            views.merge_group(key, state)
        });
        let bytes = encode_views(&views, &self.realtime.ctx.windows, M::NAME)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((bytes, "application/vnd.apache.parquet", progress, None))
    }
}

async fn metric_views(
    State(views): State<RealtimeViews>,
    Path(metric): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let range = Range::of(query.as_deref());
    let (from, to) = range.bounds()?;
    if !registry::NAMES.contains(&metric.as_str()) {
        return Err(ApiError::unknown_metric(&metric));
    }
    let (body, media_type, progress, answered) = tokio::task::spawn_blocking({
        let views = views.clone();
        move || {
            let file = ViewsFile {
                realtime: &views,
                from,
                to,
                params: &range.params,
            };
            registry::dispatch(&metric, file)
                .unwrap_or_else(|| Err(ApiError::unknown_metric(&metric)))
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    for (name, value) in [
        (WATERMARK_HEADER, progress.watermark),
        (NEWEST_EVENT_HEADER, progress.newest_event_ms),
        (
            ALLOWED_LATENESS_HEADER,
            Some(views.time.allowed_lateness_ms),
        ),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v.to_string()).ok()) {
            headers.insert(name, v);
        }
    }
    if let Some((version, answered)) = answered {
        for (name, value) in [
            (VIEWS_VERSION_HEADER, version.to_string()),
            (CHANGED_WINDOWS_HEADER, answered.header()),
        ] {
            let value = HeaderValue::from_str(&value)
                .map_err(|e| ApiError::internal(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
    }
    Ok((headers, body).into_response())
}

async fn quality_notes(
    State(views): State<RealtimeViews>,
    RawQuery(query): RawQuery,
) -> Result<Json<QualityNotes>, ApiError> {
    let range = Range::of(query.as_deref());
    if let Some((name, _)) = range.params.iter().find(|(k, _)| k != "from" && k != "to") {
        return Err(ApiError::bad_request(format!(
            "quality takes `from` and `to`, not `{name}`"
        )));
    }
    let (from, to) = range.bounds()?;
    Ok(Json(views.quality_notes(from, to)))
}

async fn status(State(views): State<RealtimeViews>) -> Json<Status> {
    Json(views.status())
}

/// Middleware: the speed token, when one is set.
async fn speed_auth(
    State(token): State<Option<Arc<str>>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(expected) = token.as_deref() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(lambda_io::bearer::bearer_token);
        match given {
            None => {
                return Err(ApiError::unauthorized(
                    "the speed views need `Authorization: Bearer <speed token>`",
                ))
            }
            Some(given) if !lambda_io::bearer::token_matches(expected, given) => {
                return Err(ApiError::unauthorized(
                    "the bearer token is not the speed token",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(next.run(request).await)
}

/// The router of the speed endpoint; with `token`, every route but `/healthz` requires it.
pub fn router(views: RealtimeViews, token: Option<String>) -> Router {
    let token: Option<Arc<str>> = token.map(Arc::from);
    Router::new()
        .route("/v1/speed/views/{metric}", get(metric_views))
        .route("/v1/speed/status", get(status))
        .route("/v1/speed/quality", get(quality_notes))
        .route_layer(middleware::from_fn_with_state(token, speed_auth))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(views)
}
