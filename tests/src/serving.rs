//! Serving-layer test support: the API on a loopback port in this process, calls to it,
//! and the direct computation its answers are compared with.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use shared_logic::Mergeable;
use shared_logic::{Aggregates, Event, Metric, MetricContext, MetricViews, Registered};

/// Serves `state` on a free loopback port (until the test's runtime ends), with the peer
/// addresses the ingest rate limit counts by; the address.
pub async fn start(state: Arc<serving::AppState>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let app =
            serving::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app).await.expect("server runs");
    });
    addr
}

/// Serves the batch views under `views` with every speed instance down (nothing listens
/// on port 1: every call to the speed layer fails), after loading them; the address.
pub async fn start_batch_only(views: &lambda_io::Lake) -> String {
    start(batch_only_state(views).await).await
}

/// The serving state over the batch views under `views`, loaded, with every speed
/// instance down (see [`start_batch_only`]).
pub async fn batch_only_state(views: &lambda_io::Lake) -> Arc<serving::AppState> {
    let speed = serving::speed_views::SpeedViews::remote(
        &["http://127.0.0.1:1".to_string()],
        std::time::Duration::from_secs(2),
    )
    .expect("a speed URL");
    let state = Arc::new(serving::AppState {
        batch: serving::batch_views::BatchViews::new(views.clone(), 16),
        speed: speed.into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: serving::ApiOptions::default(),
    });
    state.batch.refresh().await.expect("the batch views load");
    state
}

/// `GET` on the API from a blocking thread: status and parsed JSON body.
pub async fn get_json(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    request_json(addr, "GET", path, headers, Vec::new()).await
}

/// Any request on the API from a blocking thread: status and parsed JSON body.
pub async fn request_json(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Value) {
    let (addr, method, target) = (addr.to_string(), method.to_string(), path.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (status, bytes) = tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::http::request(&addr, &method, &target, &h, &body)
    })
    .await
    .expect("request thread")
    .unwrap_or_else(|| panic!("no answer to {path}"));
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: answer {status} is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

/// A row's identity: window start (ms) and grouped dimension values in request order.
pub type RowKey = (i64, Vec<String>);

/// The API's rows as `RowKey → values object`.
pub fn api_rows(answer: &Value) -> BTreeMap<RowKey, Value> {
    let groups: Vec<String> = answer["group_by"]
        .as_array()
        .expect("group_by")
        .iter()
        .map(|g| g.as_str().expect("name").to_string())
        .collect();
    answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let start = chrono::DateTime::parse_from_rfc3339(
                row["window_start"].as_str().expect("window_start"),
            )
            .expect("RFC 3339")
            .timestamp_millis();
            let dims = groups
                .iter()
                .map(|g| {
                    row["dimensions"][g]
                        .as_str()
                        .expect("dimension")
                        .to_string()
                })
                .collect();
            ((start, dims), row["values"].clone())
        })
        .collect()
}

/// The rows a query path answers (status 200 asserted), each with its window start (ms).
pub async fn served_rows(addr: &str, path: &str) -> Vec<(i64, Value)> {
    let (status, body) = get_json(addr, path, &[]).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no rows in {body}"))
        .iter()
        .map(|r| {
            let start = chrono::DateTime::parse_from_rfc3339(r["window_start"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            (start, r.clone())
        })
        .collect()
}

/// What a query for metric `M` over `events` (deliveries) must answer, computed directly:
/// deduplicate and fold them with shared-logic, keep windows starting in `[from, to)` that match `filters`,
/// merge into `granularity` windows by the `group_by` dimensions, evaluate.
pub fn direct_rows<M: Registered>(
    events: &[Event],
    from_ms: i64,
    to_ms: i64,
    granularity_ms: i64,
    group_by: &[&str],
    filters: &[(&str, &str)],
) -> BTreeMap<RowKey, Value> {
    // The whole fold: sessions need each user's events together. Deliveries beyond the
    // first of an event are noted as duplicates (none when `events` are deduplicated).
    let all = Aggregates::fold_deliveries(events.iter().cloned(), &MetricContext::default());
    rows_of_views(
        M::views_in(&all),
        from_ms,
        to_ms,
        granularity_ms,
        group_by,
        filters,
    )
}

/// What a query for metric `M` must answer when `views` hold everything: windows starting
/// in `[from, to)` that match `filters`, merged into `granularity` windows (one from
/// `from` when it is the whole range) by the `group_by` dimensions, evaluated.
pub fn rows_of_views<M: Metric>(
    views: &MetricViews<M>,
    from_ms: i64,
    to_ms: i64,
    granularity_ms: i64,
    group_by: &[&str],
    filters: &[(&str, &str)],
) -> BTreeMap<RowKey, Value> {
    let index = |name: &str| {
        M::DIMENSIONS
            .iter()
            .position(|d| *d == name)
            .expect("a dimension of the metric")
    };
    let mut merged: BTreeMap<RowKey, M::State> = BTreeMap::new();
    for (key, state) in views.iter() {
        let w = key.window.0;
        if w < from_ms || w >= to_ms {
            continue;
        }
        if !filters.iter().all(|(d, v)| key.dim(index(d)) == Some(*v)) {
            continue;
        }
        let dims = group_by
            .iter()
            .map(|d| key.dim(index(d)).unwrap_or_default().to_string())
            .collect();
        // A granularity of the whole range is one window from its start (`all`).
        let start = if to_ms - from_ms == granularity_ms {
            from_ms
        } else {
            w.div_euclid(granularity_ms) * granularity_ms
        };
        match merged.get_mut(&(start, dims)) {
            Some(s) => s.merge(state),
            None => {
                let dims = group_by
                    .iter()
                    .map(|d| key.dim(index(d)).unwrap_or_default().to_string())
                    .collect();
                merged.insert((start, dims), state.clone());
            }
        }
    }
    merged
        .into_iter()
        .map(|(k, s)| {
            let values: Map<String, Value> = M::VALUES
                .iter()
                .zip(M::values(&s))
                .map(|((n, _), v)| (n.to_string(), serde_json::to_value(v).expect("value")))
                .collect();
            (k, Value::Object(values))
        })
        .collect()
}

/// Asserts equal row sets, naming the first differences.
pub fn assert_rows_equal(
    what: &str,
    actual: &BTreeMap<RowKey, Value>,
    expected: &BTreeMap<RowKey, Value>,
) {
    if actual == expected {
        return;
    }
    let mut report = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => report.push(format!("missing {k:?}: expected {v}")),
            Some(a) if a != v => report.push(format!("{k:?}: served {a}, expected {v}")),
            _ => {}
        }
    }
    for k in actual.keys().filter(|k| !expected.contains_key(*k)) {
        report.push(format!("extra {k:?}: {}", actual[k]));
    }
    report.truncate(8);
    panic!(
        "{what}: {} served rows vs {} expected; first differences:\n{}",
        actual.len(),
        expected.len(),
        report.join("\n")
    );
}

/// Queries metric `M` over `[from, to)` and asserts that the rows equal the direct
/// computation over `events` (and that the test data covers the range); the answer.
pub async fn assert_served_equals_direct<M: Registered>(
    addr: &str,
    events: &[Event],
    (from, to): (i64, i64),
    granularity: (&str, i64),
    group_by: &[&str],
    filters: &[(&str, &str)],
) -> Value {
    let expected = direct_rows::<M>(events, from, to, granularity.1, group_by, filters);
    assert_served_equals_rows::<M>(addr, expected, (from, to), granularity, group_by, filters).await
}

/// Queries metric `M` over `[from, to)` and asserts that the rows equal `expected` (which
/// must not be empty); the answer.
pub async fn assert_served_equals_rows<M: Metric>(
    addr: &str,
    expected: BTreeMap<RowKey, Value>,
    (from, to): (i64, i64),
    granularity: (&str, i64),
    group_by: &[&str],
    filters: &[(&str, &str)],
) -> Value {
    let mut path = format!(
        "/v1/metrics/{}?from={from}&to={to}&granularity={}&limit=100000",
        M::NAME,
        granularity.0
    );
    if !group_by.is_empty() {
        path.push_str(&format!("&group_by={}", group_by.join(",")));
    }
    if !filters.is_empty() {
        let f: Vec<String> = filters.iter().map(|(d, v)| format!("{d}:{v}")).collect();
        path.push_str(&format!("&filter={}", f.join(",")));
    }
    let (status, answer) = get_json(addr, &path, &[]).await;
    assert_eq!(status, 200, "{path}: {answer}");
    assert_eq!(answer["truncated"], false, "{path}");
    assert!(
        !expected.is_empty(),
        "{path}: the test data covers the range"
    );
    assert_rows_equal(&path, &api_rows(&answer), &expected);
    answer
}
