//! The HTTP calls of the serving layer to remote speed instances: a GET with the speed
//! token, the views (`GET /v1/speed/views/{metric}`, whole or grouped and incremental),
//! the status, and the errors that say which instance did not answer.

use lambda_io::grouped_rows;
use lambda_io::speed_api::{
    Answered, Progress, RealtimeSource, Since, Status, ViewsVersion, ALLOWED_LATENESS_HEADER,
    CHANGED_WINDOWS_HEADER, NEWEST_EVENT_HEADER, VIEWS_VERSION_HEADER, WATERMARK_HEADER,
};
use lambda_io::views_file::merge_views_file;
use shared_logic::{Grouping, Metric, MetricViews};

use crate::error::ServingError;

/// What the speed layer said about time, next to the states it handed over.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpeedTime {
    /// Minimum over instances (a window is final only when every instance is past it).
    pub watermark: Option<i64>,
    /// Newest event visible in any instance.
    pub newest_event_ms: Option<i64>,
    pub allowed_lateness_ms: i64,
}

impl SpeedTime {
    /// What the in-process layer said (`progress`, read with its states).
    pub(crate) fn in_process(progress: &Progress, views: &dyn RealtimeSource) -> SpeedTime {
        SpeedTime {
            watermark: progress.watermark,
            newest_event_ms: progress.newest_event_ms,
            allowed_lateness_ms: views.allowed_lateness_ms(),
        }
    }

    /// The time of instances `0..i` and instance `i` (which said `t`) together.
    pub(crate) fn and(self, i: usize, t: SpeedTime) -> SpeedTime {
        SpeedTime {
            watermark: match (i, self.watermark, t.watermark) {
                (0, _, w) => w,
                (_, Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            },
            newest_event_ms: self.newest_event_ms.max(t.newest_event_ms),
            allowed_lateness_ms: self.allowed_lateness_ms.max(t.allowed_lateness_ms),
        }
    }
}

/// `GET /v1/speed/status` of the instance at `base`.
pub(crate) async fn instance_status(
    get: impl Fn(url::Url) -> reqwest::RequestBuilder,
    base: &url::Url,
) -> Result<Status, ServingError> {
    let url = join(base, "v1/speed/status")?;
    get(url.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| unreachable_instance(&url, e))?
        .json()
        .await
        .map_err(|e| unreachable_instance(&url, e))
}

/// A GET of `client` with the speed token, when there is one.
pub(crate) fn authorized<'a>(
    client: &'a reqwest::Client,
    token: &'a Option<String>,
) -> impl Fn(url::Url) -> reqwest::RequestBuilder + 'a {
    move |url| {
        let request = client.get(url);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

pub(crate) fn join(base: &url::Url, path: &str) -> Result<url::Url, ServingError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path)
        .map_err(|e| ServingError::Internal(format!("speed URL {base}{path}: {e}")))
}

pub(crate) fn unreachable_instance(url: &url::Url, e: impl std::fmt::Display) -> ServingError {
    ServingError::unavailable(
        "speed_unavailable",
        format!("speed instance {url} did not answer: {e}"),
    )
}

/// `GET` of `path` at `base` with `params`: the body, what the instance said about time,
/// the URL asked (for errors) and the answer's headers.
pub(crate) async fn fetch_body(
    get: impl Fn(url::Url) -> reqwest::RequestBuilder,
    base: &url::Url,
    path: &str,
    params: &[(&str, String)],
) -> Result<(bytes::Bytes, SpeedTime, String, reqwest::header::HeaderMap), ServingError> {
    let mut url = join(base, path)?;
    url.query_pairs_mut().extend_pairs(params);
    let response = get(url.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| unreachable_instance(&url, e))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let time = SpeedTime {
        watermark: header(WATERMARK_HEADER),
        newest_event_ms: header(NEWEST_EVENT_HEADER),
        allowed_lateness_ms: header(ALLOWED_LATENESS_HEADER).unwrap_or_default(),
    };
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable_instance(&url, e))?;
    Ok((body, time, url.to_string(), headers))
}

/// One instance's rows of metric `M` grouped by `grouping` (an Arrow stream, decoded by
/// the caller), of the windows changed since what the caller holds (`since`), with the
/// version read at and the windows answered when the instance answered incrementally.
pub(crate) async fn fetch_grouped<M: Metric>(
    get: impl Fn(url::Url) -> reqwest::RequestBuilder,
    base: &url::Url,
    from_ms: i64,
    to_ms: i64,
    grouping: &Grouping,
    since: Option<&Since>,
) -> Result<GroupedAnswer, ServingError> {
    let mut params = vec![("from", from_ms.to_string()), ("to", to_ms.to_string())];
    params.extend(grouped_rows::request_params::<M>(grouping));
    if let Some(since) = since {
        params.extend(grouped_rows::since_params(since));
    }
    let (body, time, url, headers) =
        fetch_body(get, base, &format!("v1/speed/views/{}", M::NAME), &params).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let read = match (header(VIEWS_VERSION_HEADER), header(CHANGED_WINDOWS_HEADER)) {
        (Some(version), Some(changed)) => {
            let parsed = version
                .parse::<ViewsVersion>()
                .and_then(|v| Answered::parse(changed).map(|a| (v, a)));
            Some(parsed.map_err(|e| {
                ServingError::unavailable("speed_unavailable", format!("speed instance {url}: {e}"))
            })?)
        }
        _ => None,
    };
    Ok((body, time, url, read))
}

/// A grouped answer: the body, what the instance said about time, the URL asked, and the
/// version read at and windows answered of an incremental answer.
pub(crate) type GroupedAnswer = (
    bytes::Bytes,
    SpeedTime,
    String,
    Option<(ViewsVersion, Answered)>,
);

pub(crate) async fn fetch<M: Metric>(
    get: impl Fn(url::Url) -> reqwest::RequestBuilder,
    base: &url::Url,
    from_ms: i64,
    to_ms: i64,
) -> Result<(MetricViews<M>, SpeedTime), ServingError> {
    let params = [("from", from_ms.to_string()), ("to", to_ms.to_string())];
    let (body, time, name, _) =
        fetch_body(get, base, &format!("v1/speed/views/{}", M::NAME), &params).await?;
    let views = tokio::task::spawn_blocking({
        let name = name.clone();
        move || {
            let mut views = MetricViews::<M>::default();
            merge_views_file(&mut views, body, &name).map(|()| views)
        }
    })
    .await
    .map_err(|e| ServingError::Internal(format!("speed view decoder task: {e}")))?
    .map_err(|e| {
        ServingError::unavailable(
            "speed_unavailable",
            format!("speed instance {name}: unreadable views: {e}"),
        )
    })?;
    Ok((views, time))
}
