//! The speed layer's HTTP endpoint, so that a separate serving process can read (and merge)
//! the views of one or more speed instances:
//!
//! - `GET /v1/speed/views/{metric}?from=&to=`: the metric's states for windows starting in
//!   `[from, to)` (epoch ms or RFC 3339), as a Parquet file in the views schema of
//!   `shared_logic::views`; headers `x-lambda-watermark` and `x-lambda-newest-event` (ms);
//!   `x-lambda-allowed-lateness` (ms);
//! - `GET /v1/speed/status`: watermark, counters, offsets, lag, last checkpoint, revised
//!   windows, live keys ([`Status`]);
//! - `GET /healthz`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shared_logic::metric::{Funnel, Metric, Orders, PageViews, Revenue, Sessions};
use shared_logic::MetricViews;

use crate::views::{Progress, RealtimeViews};

/// An error answer: a status and a JSON body with a stable code.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "bad_request",
        message,
    }
}

/// Parses epoch milliseconds or RFC 3339.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("`{text}` is neither epoch milliseconds nor RFC 3339"))
}

#[derive(Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

impl Range {
    fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let from = self
            .from
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(bad_request)?
            .unwrap_or(i64::MIN);
        let to = self
            .to
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(bad_request)?
            .unwrap_or(i64::MAX);
        if from >= to {
            return Err(bad_request(format!(
                "from ({from}) must be before to ({to})"
            )));
        }
        Ok((from, to))
    }
}

/// Encodes one metric's views of a range.
type Encoder = fn(&RealtimeViews, i64, i64) -> Result<(Vec<u8>, Progress), ApiError>;

/// Metric `M`'s states of windows starting in `[from, to)`, merged across partitions, as
/// Parquet; and the progress read under the same lock.
fn parquet_of<M: Metric>(
    realtime: &RealtimeViews,
    from: i64,
    to: i64,
) -> Result<(Vec<u8>, Progress), ApiError> {
    let internal = |message: String| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message,
    };
    let mut views = MetricViews::<M>::default();
    let progress = realtime.visit::<M>(from, to, |key, state| views.merge_group(key, state));
    let batch = shared_logic::views::to_record_batch(&views, &realtime.ctx.windows)
        .map_err(|e| internal(e.to_string()))?;
    let bytes =
        batch::writer::encode_parquet(shared_logic::views::view_schema::<M>(), &[batch], M::NAME)
            .map_err(|e| internal(e.to_string()))?;
    Ok((bytes, progress))
}

async fn metric_views(
    State(views): State<RealtimeViews>,
    Path(metric): Path<String>,
    Query(range): Query<Range>,
) -> Result<Response, ApiError> {
    let (from, to) = range.bounds()?;
    let encode: Encoder = match metric.as_str() {
        PageViews::NAME => parquet_of::<PageViews>,
        Funnel::NAME => parquet_of::<Funnel>,
        Revenue::NAME => parquet_of::<Revenue>,
        Sessions::NAME => parquet_of::<Sessions>,
        Orders::NAME => parquet_of::<Orders>,
        other => {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "unknown_metric",
                message: format!("no metric `{other}`"),
            })
        }
    };
    let (body, progress) = tokio::task::spawn_blocking({
        let views = views.clone();
        move || encode(&views, from, to)
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: e.to_string(),
    })??;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apache.parquet"),
    );
    for (name, value) in [
        ("x-lambda-watermark", progress.watermark),
        ("x-lambda-newest-event", progress.newest_event_ms),
        (
            "x-lambda-allowed-lateness",
            Some(views.time.allowed_lateness_ms),
        ),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v.to_string()).ok()) {
            headers.insert(name, v);
        }
    }
    Ok((headers, body).into_response())
}

/// The body of `/v1/speed/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Which computation of the views this instance serves (`--views-version`).
    pub views_version: u32,
    pub progress: Progress,
    pub allowed_lateness_ms: i64,
    pub out_of_orderness_ms: i64,
    /// Fingerprint of the metric logic, windows and rates the views are computed with.
    pub logic: String,
    pub revised_windows: Vec<i64>,
    pub live_keys: usize,
    pub dedup_keys: usize,
    /// Users whose open sessions are held.
    pub session_users: usize,
    /// What the change streams did (the `orders` metric).
    #[serde(default)]
    pub changes: crate::orders::ChangeCounters,
    /// Order changes held for re-derivation when a product version arrives.
    #[serde(default)]
    pub held_order_changes: usize,
}

impl Status {
    /// The status of in-process views.
    pub fn of(views: &RealtimeViews) -> Status {
        let (live_keys, dedup_keys) = views.live_keys();
        Status {
            views_version: views.views_version,
            progress: views.progress(),
            allowed_lateness_ms: views.time.allowed_lateness_ms,
            out_of_orderness_ms: views.time.out_of_orderness_ms,
            logic: views.ctx.fingerprint(),
            revised_windows: views.revised_windows(),
            live_keys,
            dedup_keys,
            session_users: views.session_users(),
            changes: views.order_counters(),
            held_order_changes: views.update_orders(|o| o.held_changes()),
        }
    }
}

async fn status(State(views): State<RealtimeViews>) -> Json<Status> {
    Json(Status::of(&views))
}

/// The router of the speed endpoint.
pub fn router(views: RealtimeViews) -> Router {
    Router::new()
        .route("/v1/speed/views/{metric}", get(metric_views))
        .route("/v1/speed/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(views)
}
