//! The API's contract without a broker: bad parameters are 400s with stable codes (never a
//! 500, never a panic, whatever the query string), unknown routes and methods are JSON
//! errors, tokens guard query and ingest separately, every documented route answers,
//! readiness follows the views, the collector refuses what it cannot take and answers 503
//! when Kafka does not acknowledge; several speed instances over HTTP merge to the same
//! answer as one in-process speed layer, and read after read, with writes between, when
//! only the windows changed since cross.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lambda_io::kafka::KafkaSettings;
use lambda_tests::speed_instance;
use proptest::prelude::*;
use serde_json::Value;
use serving::batch_views::BatchViews;
use serving::collector::{Collector, CollectorOptions};
use serving::openapi::ROUTES;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::{MetricContext, Validator};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tower::ServiceExt;

fn realtime(with_data: bool) -> RealtimeViews {
    let views = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    );
    if with_data {
        let now = chrono::Utc::now().timestamp_millis();
        let records: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
            start_ms: now - 20 * 60_000,
            events_per_second: 2.0,
            ..GeneratorConfig::default()
        })
        .take(2_000)
        .map(|r| r.json)
        .collect();
        speed::consumer::apply_records(
            &views,
            &Validator::default(),
            records
                .iter()
                .enumerate()
                .map(|(i, r)| ((i % 2) as i32, i as i64, now, r.as_slice())),
        );
    }
    views
}

/// A state over an empty views dir, in-process speed views, and a collector whose broker
/// does not exist (port 1).
fn state(dir: &std::path::Path, opts: ApiOptions, speed: RealtimeViews) -> Arc<AppState> {
    let lake = lambda_io::Lake::open(dir.to_str().unwrap(), true).unwrap();
    let collector = Collector::new(
        &KafkaSettings::new("127.0.0.1:1"),
        CollectorOptions {
            delivery_timeout: Duration::from_millis(1_500),
            max_body_bytes: 64 * 1024,
            ..CollectorOptions::default()
        },
    )
    .unwrap();
    Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::in_process(speed).into(),
        collector: Some(collector),
        telemetry: Default::default(),
        answers: Default::default(),
        opts,
    })
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let response = serving::router(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

async fn get(state: &Arc<AppState>, uri: &str) -> (StatusCode, Value) {
    call(state, "GET", uri, None, Vec::new()).await
}

#[tokio::test]
async fn bad_parameters_are_400s_with_stable_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default(), realtime(true));
    s.batch.refresh().await.unwrap();
    for (uri, code) in [
        ("/v1/metrics/nope", "unknown_metric"),
        (
            "/v1/metrics/page_views?group_by=category",
            "unknown_dimension",
        ),
        (
            "/v1/metrics/revenue?filter=device:mobile",
            "unknown_dimension",
        ),
        ("/v1/metrics/page_views?filter=country", "bad_filter"),
        ("/v1/metrics/page_views?from=tomorrow", "bad_time"),
        (
            "/v1/metrics/page_views?from=2026-13-01T00:00:00Z",
            "bad_time",
        ),
        ("/v1/metrics/page_views?from=2000&to=1000", "bad_range"),
        (
            "/v1/metrics/page_views?from=0&to=1767225600000",
            "range_too_large",
        ),
        (
            "/v1/metrics/page_views?granularity=second",
            "bad_granularity",
        ),
        ("/v1/metrics/page_views?limit=-1", "bad_limit"),
        ("/v1/metrics/page_views?select=*", "unknown_parameter"),
        ("/v1/metrics/page_views?from=1&from=2", "repeated_parameter"),
        ("/v1/metrics/%FF%FE", "bad_path"),
        ("/v1/lineage?metric=page_views", "missing_parameter"),
        ("/v1/lineage?metric=x&window=0", "unknown_metric"),
        ("/v1/lineage?metric=page_views&window=soon", "bad_time"),
    ] {
        let (status, body) = get(&s, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], code, "{uri}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{uri}"
        );
    }
    let (status, body) = get(&s, "/v1/nothing").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = call(&s, "DELETE", "/v1/metrics", None, Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn a_good_query_answers_rows_with_boundary_and_freshness() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default(), realtime(true));
    s.batch.refresh().await.unwrap();
    let (status, body) = get(&s, "/v1/metrics/funnel?group_by=device&filter=country:US").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["source"] == "speed" && r["dimensions"]["device"].is_string()));
    assert_eq!(body["filters"]["country"], "US");
    assert!(body["time_boundary"].is_null(), "nothing published: {body}");
    assert!(body["freshness_ms"].as_i64().is_some());
    let (_, limited) = get(&s, "/v1/metrics/funnel?group_by=device&limit=1").await;
    assert_eq!(limited["rows"].as_array().unwrap().len(), 1);
    assert_eq!(limited["truncated"], true);
    let (_, catalog) = get(&s, "/v1/metrics").await;
    let names: Vec<&str> = catalog["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "page_views",
            "funnel",
            "revenue",
            "sessions",
            "orders",
            "daily_sales",
            "quality"
        ]
    );
}

#[tokio::test]
async fn tokens_guard_query_and_ingest_separately() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ApiOptions {
        query_token: Some("q-secret".into()),
        ingest_tokens: vec!["i-secret".into()],
        ..ApiOptions::default()
    };
    let s = state(dir.path(), opts, realtime(true));
    s.batch.refresh().await.unwrap();
    for uri in [
        "/v1/metrics",
        "/v1/metrics/page_views",
        "/v1/lineage?metric=page_views&window=0",
    ] {
        let (status, body) = call(&s, "GET", uri, None, Vec::new()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{uri}"
        );
        let (status, _) = call(&s, "GET", uri, Some("i-secret"), Vec::new()).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "the ingest token does not query: {uri}"
        );
        let (status, body) = call(&s, "GET", uri, Some("q-secret"), Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    let event = br#"{"event_id":"e1"}"#.to_vec();
    let (status, _) = call(&s, "POST", "/v1/events", None, event.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&s, "POST", "/v1/events", Some("q-secret"), event.clone()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the query token does not ingest"
    );
    // With the right token the request reaches the collector (an invalid event: rejected,
    // and its dead-letter record cannot be acknowledged without a broker: 503).
    let (status, body) = call(&s, "POST", "/v1/events", Some("i-secret"), event).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Health, readiness, metrics, the OpenAPI document and the dashboard stay open.
    for uri in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/",
        "/assets/app.js",
        "/assets/style.css",
    ] {
        let (status, _) = get(&s, uri).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[tokio::test]
async fn every_documented_route_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default(), realtime(true));
    s.batch.refresh().await.unwrap();
    let (_, doc) = get(&s, "/openapi.json").await;
    for route in ROUTES {
        assert!(
            doc["paths"][route.path][route.method].is_object(),
            "{} {} documented",
            route.method,
            route.path
        );
        let uri = route.path.replace("{metric}", "page_views");
        let (status, body) =
            call(&s, &route.method.to_uppercase(), &uri, None, b"\n".to_vec()).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {uri}: {status} {body}",
            route.method
        );
    }
}

#[tokio::test]
async fn readiness_waits_for_the_views() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default(), realtime(false));
    let (status, body) = get(&s, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    s.batch.refresh().await.unwrap();
    let (status, body) = get(&s, "/readyz").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no speed partition yet: {body}"
    );
    let s = state(dir.path(), ApiOptions::default(), realtime(true));
    s.batch.refresh().await.unwrap();
    let (status, body) = get(&s, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    get(&s, "/v1/metrics/page_views?granularity=hour").await;
    let response = serving::router(s.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for needle in [
        "lambda_serving_requests_total{route=\"/v1/metrics/{metric}\",status=\"200\"} 1",
        "lambda_serving_request_duration_seconds_count{route=\"/v1/metrics/{metric}\"} 1",
        "lambda_speed_events_total{instance=\"in-process\"}",
        "lambda_speed_watermark_lag_seconds{instance=\"in-process\"}",
        "lambda_serving_batch_manifest_version 0",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[tokio::test]
async fn the_collector_refuses_what_it_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default(), realtime(false));
    let (status, body) = call(&s, "POST", "/v1/events", None, Vec::new()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_body"))
    );
    let (status, body) = call(&s, "POST", "/v1/events", None, b"[{\"a\":1},".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_body"))
    );
    let big = vec![b' '; 65 * 1024];
    let (status, body) = call(&s, "POST", "/v1/events", None, big).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")),
        "{body}"
    );
    // Valid events, but no broker acknowledges them: 503, nothing counted as accepted.
    let now = chrono::Utc::now().timestamp_millis();
    let mut body = Vec::new();
    for r in Generator::new(GeneratorConfig {
        start_ms: now - 60_000,
        invalid_fraction: 0.0,
        ..GeneratorConfig::default()
    })
    .take(20)
    {
        body.extend_from_slice(&r.json);
        body.push(b'\n');
    }
    let started = std::time::Instant::now();
    let (status, answer) = call(&s, "POST", "/v1/events", None, body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("kafka_unavailable")),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the query string, the answer is a 200 or a 4xx with a JSON code.
    #[test]
    fn no_query_string_makes_a_server_error(
        metric in prop_oneof![Just("page_views".to_string()), Just("funnel".to_string()), "[a-z_%0-9]{0,12}"],
        query in "([a-z_]{1,12}=[ -~]{0,24}&?){0,5}",
    ) {
        static SHARED: std::sync::OnceLock<(tempfile::TempDir, Arc<AppState>)> = std::sync::OnceLock::new();
        let (_, s) = SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let s = state(dir.path(), ApiOptions::default(), realtime(true));
            (dir, s)
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let query: String = query.chars().map(|c| if c == ' ' || c == '#' { '+' } else { c }).collect();
        let uri = format!("/v1/metrics/{metric}?{query}");
        let Ok(request) = Request::get(&uri).body(Body::empty()) else {
            return Ok(()); // not a URI a client could send
        };
        let (status, body) = rt.block_on(async {
            let response = serving::router(s.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        });
        prop_assert!(status == StatusCode::OK || status.is_client_error(), "{uri}: {status} {body}");
        if status != StatusCode::OK {
            prop_assert!(body["code"].is_string(), "{uri}: {body}");
        }
    }
}

/// The speed token of the instances of the test below.
const SPEED: &str = "merge-test-5d2a9c7e1f03b8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_several_speed_instances_over_http_merge_to_the_in_process_answer() {
    let now = chrono::Utc::now().timestamp_millis();
    let lines: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
        seed: 9,
        start_ms: now - 50 * 60_000,
        events_per_second: 3.0,
        ..GeneratorConfig::default()
    })
    .take(8_000)
    .map(|r| r.json)
    .collect();
    // Instance A holds partitions 0 and 1, instance B partition 2.
    let mut urls = Vec::new();
    for keep in [|p: i32| p < 2, |p: i32| p == 2] {
        let views = speed_instance::views_of(&lines, TimeSettings::default(), keep);
        urls.push(speed_instance::serve(views, Some(SPEED.into())).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = lambda_io::Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let remote = Arc::new(AppState {
        batch: BatchViews::new(lake.clone(), 16),
        speed: SpeedViews::remote(&urls, Duration::from_secs(10))
            .unwrap()
            .with_token(Some(SPEED.into()))
            .into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions::default(),
    });
    let local = Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::in_process(speed_instance::views_of(
            &lines,
            TimeSettings::default(),
            |_| true,
        ))
        .into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions::default(),
    });
    for s in [&remote, &local] {
        s.batch.refresh().await.unwrap();
    }
    for query in [
        "/v1/metrics/page_views?granularity=minute&group_by=country",
        "/v1/metrics/funnel?granularity=hour&group_by=device,category",
        "/v1/metrics/revenue?granularity=minute&filter=country:US",
    ] {
        let (status, from_remote) = get(&remote, query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {from_remote}");
        let (_, from_local) = get(&local, query).await;
        assert!(
            !from_local["rows"].as_array().unwrap().is_empty(),
            "{query}"
        );
        assert_eq!(from_remote["rows"], from_local["rows"], "{query}");
        assert_eq!(from_remote["watermark"], from_local["watermark"], "{query}");
    }
    // Lineage lists each instance's offsets.
    let (_, lineage) = get(&remote, &format!("/v1/lineage?metric=funnel&window={now}")).await;
    assert_eq!(lineage["layer"], "speed");
    assert_eq!(lineage["speed"].as_object().unwrap().len(), 2, "{lineage}");
    // An instance that does not answer makes the answer unavailable, not wrong.
    let down = Arc::new(AppState {
        batch: BatchViews::new(
            lambda_io::Lake::open(dir.path().to_str().unwrap(), true).unwrap(),
            16,
        ),
        speed: SpeedViews::remote(
            &[urls[0].clone(), "http://127.0.0.1:1".into()],
            Duration::from_secs(2),
        )
        .unwrap()
        .with_token(Some(SPEED.into()))
        .into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions::default(),
    });
    down.batch.refresh().await.unwrap();
    let (status, body) = get(&down, "/v1/metrics/page_views").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("speed_unavailable")),
        "{body}"
    );
}

/// A grouped read of `path` from a speed instance: the version and changed-windows
/// headers, and the window of every row.
async fn speed_read(base: &str, path: String) -> (Option<String>, Option<String>, Vec<i64>) {
    let addr = base.trim_start_matches("http://").to_string();
    let auth = format!("Bearer {SPEED}");
    let (status, head, body) = tokio::task::spawn_blocking(move || {
        lambda_tests::http::request_with_head(&addr, "GET", &path, &[("authorization", &auth)], &[])
    })
    .await
    .unwrap()
    .expect("the speed instance answers");
    assert_eq!(status, 200, "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    let grouping = shared_logic::Grouping {
        group_by: vec![0],
        filters: Vec::new(),
        sketches: false,
    };
    let mut windows = Vec::new();
    lambda_io::grouped_rows::decode::<shared_logic::metrics::PageViews>(
        body.into(),
        &grouping,
        "speed",
        |w, _, _| windows.push(w.0),
    )
    .unwrap();
    (
        header("x-lambda-views-version"),
        header("x-lambda-changed-windows"),
        windows,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_process_reads_only_the_windows_changed_since_and_answers_as_a_full_read() {
    let now = chrono::Utc::now().timestamp_millis();
    let minute = 60_000;
    let generate = |seed, start_ms, count| -> Vec<Vec<u8>> {
        Generator::new(GeneratorConfig {
            seed,
            start_ms,
            events_per_second: 3.0,
            ..GeneratorConfig::default()
        })
        .take(count)
        .map(|r| r.json)
        .collect()
    };
    let lines = generate(11, now - 40 * minute, 5_000);
    let instances: Vec<RealtimeViews> = [|p: i32| p < 2, |p: i32| p == 2]
        .into_iter()
        .map(|keep| speed_instance::views_of(&lines, TimeSettings::default(), keep))
        .collect();
    let local = speed_instance::views_of(&lines, TimeSettings::default(), |_| true);
    let mut urls = Vec::new();
    for views in &instances {
        urls.push(speed_instance::serve(views.clone(), Some(SPEED.into())).await);
    }
    // The instance's side: a read saying what it holds gets only the windows changed.
    let first = (now / minute - 45) * minute;
    let range = format!(
        "from={first}&to={}&group_by=url&sketches=false",
        first + 50 * minute
    );
    let (version, changed, windows) =
        speed_read(&urls[0], format!("/v1/speed/views/page_views?{range}")).await;
    let version = version.expect("a grouped read is versioned");
    assert_eq!(changed.as_deref(), Some("all"));
    assert!(windows.len() > 100, "{} rows", windows.len());
    let since = format!(
        "{range}&since={version}&known_from={first}&known_to={}",
        first + 50 * minute
    );
    let (again, changed, windows) =
        speed_read(&urls[0], format!("/v1/speed/views/page_views?{since}")).await;
    assert_eq!(
        (again.as_deref(), changed.as_deref(), windows.len()),
        (Some(version.as_str()), Some(""), 0),
        "nothing changed: nothing sent"
    );
    let mut offset = 1_000_000;
    let mut apply = |views: &[&RealtimeViews], lines: &[Vec<u8>]| {
        for (i, line) in lines.iter().enumerate() {
            let partition = (i % 3) as i32;
            let record = [(partition, offset, now, line.as_slice())];
            offset += 1;
            for v in views {
                if v.holds(partition) {
                    speed::consumer::apply_records(v, &Validator::default(), record);
                }
            }
        }
    };
    let late = generate(12, now - 11 * minute, 3);
    apply(&[&instances[0], &instances[1], &local], &late);
    let (_, changed, windows) =
        speed_read(&urls[0], format!("/v1/speed/views/page_views?{since}")).await;
    let changed: Vec<i64> = changed
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(!changed.is_empty() && changed.len() <= 3, "{changed:?}");
    assert!(windows.iter().all(|w| changed.contains(w)), "{windows:?}");

    // The serving side: reads over shifting ranges, with writes between them, answer as
    // the in-process layer holding everything does.
    let dir = tempfile::tempdir().unwrap();
    let lake = lambda_io::Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let state_of = |speed: SpeedViews| {
        Arc::new(AppState {
            batch: BatchViews::new(lake.clone(), 16),
            speed: speed.into(),
            collector: None,
            telemetry: Default::default(),
            answers: Default::default(),
            opts: ApiOptions::default(),
        })
    };
    let remote = state_of(
        SpeedViews::remote(&urls, Duration::from_secs(10))
            .unwrap()
            .with_token(Some(SPEED.into())),
    );
    let whole = state_of(SpeedViews::in_process(local.clone()));
    for s in [&remote, &whole] {
        s.batch.refresh().await.unwrap();
    }
    let instant = |ms: i64| shared_logic::instant::format_instant(ms);
    for round in 0..8i64 {
        let from = instant((now / minute - 50 + round * 3) * minute);
        let to = instant((now / minute + 1) * minute);
        for query in [
            format!("/v1/metrics/page_views?granularity=minute&group_by=url&from={from}&to={to}"),
            format!("/v1/metrics/page_views?granularity=minute&group_by=url&from={from}&to={to}&filter=country:US"),
            format!("/v1/metrics/revenue?granularity=minute&group_by=category&from={from}&to={to}"),
        ] {
            let (status, from_remote) = get(&remote, &query).await;
            assert_eq!(status, StatusCode::OK, "{query}: {from_remote}");
            let (_, from_whole) = get(&whole, &query).await;
            assert!(!from_whole["rows"].as_array().unwrap().is_empty(), "{query}");
            assert_eq!(from_remote["rows"], from_whole["rows"], "round {round}: {query}");
        }
        let more = generate(20 + round as u64, now - (10 - round) * minute, 40);
        apply(&[&instances[0], &instances[1], &local], &more);
    }
}

#[tokio::test]
async fn repeated_queries_are_answered_from_the_cache_and_say_how_old_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lambda_io::Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let realtime = realtime(true);
    let s = Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::in_process(realtime.clone()).into(),
        collector: None,
        telemetry: Default::default(),
        answers: serving::answer_cache::AnswerCache::new(Duration::from_secs(60), 16),
        opts: ApiOptions::default(),
    });
    s.batch.refresh().await.unwrap();
    let uri = "/v1/metrics/page_views?granularity=hour&group_by=device";
    let (_, first) = get(&s, uri).await;
    // More events arrive; within the staleness bound the same question gets the same answer.
    let now = chrono::Utc::now().timestamp_millis();
    let more: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
        seed: 77,
        start_ms: now - 5 * 60_000,
        ..GeneratorConfig::default()
    })
    .take(500)
    .map(|r| r.json)
    .collect();
    speed::consumer::apply_records(
        &realtime,
        &Validator::default(),
        more.iter()
            .enumerate()
            .map(|(i, r)| (5, i as i64, now, r.as_slice())),
    );
    let (status, second) = get(&s, uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["rows"], second["rows"], "served from the cache");
    assert!(second["answer_age_ms"].as_u64().is_some(), "{second}");
    assert!(second["freshness_ms"].as_i64().is_some(), "{second}");
    // Another question is computed afresh and sees the new events.
    let (_, other) = get(
        &s,
        "/v1/metrics/page_views?granularity=hour&group_by=country",
    )
    .await;
    let total = |v: &Value| -> u64 {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["values"]["views"].as_u64().unwrap())
            .sum()
    };
    assert!(
        total(&other) > total(&first),
        "the new events are in a fresh answer"
    );
    // The same question with `Cache-Control: no-cache` is computed now and sees them too.
    let request = Request::builder()
        .uri(uri)
        .header("cache-control", "max-age=0, No-Cache")
        .body(Body::empty())
        .unwrap();
    let response = serving::router(s.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let fresh: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(total(&fresh) > total(&first), "no-cache bypasses the cache");
    assert_eq!(total(&fresh), total(&other));
}
