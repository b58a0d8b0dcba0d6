//! The doors of the platform, tried from outside: the speed endpoint answers its views only
//! with its token, the `Bearer` scheme is matched in any case, admin routes answer 401 to
//! anonymous callers, every process refuses to start with a placeholder token, the OpenAPI
//! document does not call an empty time parameter valid, and ingest is rate-limited per
//! client token (429 with `Retry-After`) against the real broker.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use serving::batch_views::BatchViews;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::MetricContext;
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tower::ServiceExt;

const QUERY_TOKEN: &str = "q-3f9a0c7be21d48e6a5b0";
const SPEED_TOKEN: &str = "s-8d1e6b2f04c9a7e35b1d";

fn realtime() -> RealtimeViews {
    RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    )
}

fn state(dir: &std::path::Path, opts: ApiOptions) -> Arc<AppState> {
    let lake = lambda_io::Lake::open(dir.to_str().unwrap(), true).unwrap();
    Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::in_process(realtime()).into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts,
    })
}

/// One request to `router`: status, headers and the body as JSON (`Null` when not JSON).
async fn call(
    router: axum::Router,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = router
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_speed_endpoint_answers_views_only_with_its_token() {
    let router = || speed::http::router(realtime(), Some(SPEED_TOKEN.into()));
    for uri in [
        "/v1/speed/status",
        "/v1/speed/views/page_views?from=0&to=3600000",
        // Sample dead letters hold records as received.
        "/v1/speed/quality?from=0&to=3600000",
    ] {
        let (status, headers, body) = call(router(), "GET", uri, None, b"").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} without a token");
        assert_eq!(body["code"], "unauthorized", "{uri}: {body}");
        assert_eq!(headers["www-authenticate"], "Bearer", "{uri}");
        let wrong = format!("Bearer {QUERY_TOKEN}");
        let (status, ..) = call(router(), "GET", uri, Some(&wrong), b"").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} with another token");
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let given = format!("{scheme} {SPEED_TOKEN}");
            let (status, _, body) = call(router(), "GET", uri, Some(&given), b"").await;
            assert_eq!(status, StatusCode::OK, "{uri} with `{scheme}`: {body}");
        }
    }
    let (status, ..) = call(router(), "GET", "/healthz", None, b"").await;
    assert_eq!(status, StatusCode::OK, "the liveness probe stays open");
    let token = format!("Bearer {SPEED_TOKEN}");
    for (uri, why) in [
        ("/v1/speed/quality?from=10&to=5", "before"),
        ("/v1/speed/quality?from=yesterday", "yesterday"),
        ("/v1/speed/quality?metric=page_views", "not `metric`"),
    ] {
        let (status, _, body) = call(router(), "GET", uri, Some(&token), b"").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(why),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(
        dir.path(),
        ApiOptions {
            query_token: Some(QUERY_TOKEN.into()),
            ..ApiOptions::default()
        },
    );
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let given = format!("{scheme} {QUERY_TOKEN}");
        let (status, _, body) = call(
            serving::router(s.clone()),
            "GET",
            "/v1/metrics",
            Some(&given),
            b"",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "`{scheme}`: {body}");
    }
    let (status, ..) = call(
        serving::router(s),
        "GET",
        "/v1/metrics",
        Some(&format!("Basic {QUERY_TOKEN}")),
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another scheme");
}

#[tokio::test]
async fn admin_routes_answer_401_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"speed_urls": ["http://127.0.0.1:1"]}"#;
    // Disabled (no admin token configured) or enabled: anonymous callers get 401.
    for admin_token in [None, Some("a-5c2e9f7d1b3a8e64c0f2")] {
        let s = state(
            dir.path(),
            ApiOptions {
                admin_token: admin_token.map(String::from),
                ..ApiOptions::default()
            },
        );
        let (status, headers, answer) = call(
            serving::router(s.clone()),
            "PUT",
            "/v1/admin/speed",
            None,
            body,
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "admin token {admin_token:?}: {answer}"
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
        let wrong = format!("Bearer {QUERY_TOKEN}");
        let (status, _, answer) = call(
            serving::router(s),
            "PUT",
            "/v1/admin/speed",
            Some(&wrong),
            body,
        )
        .await;
        let expected = if admin_token.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "a token, admin {admin_token:?}: {answer}");
    }
    // The document says so.
    let doc = serving::openapi::document();
    let admin = &doc["paths"]["/v1/admin/speed"]["put"];
    assert!(admin["responses"]["401"].is_object(), "{admin}");
    assert_eq!(admin["security"], serde_json::json!([{"adminToken": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["adminToken"]["scheme"],
        "bearer"
    );
}

/// Every operation that names a security scheme declares its 401, and every scheme it
/// names is defined.
#[test]
fn secured_operations_declare_401_and_their_schemes() {
    let doc = serving::openapi::document();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut secured = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(security) = op["security"].as_array() else {
                continue;
            };
            secured += 1;
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} declares 401"
            );
            for requirement in security {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
        }
    }
    assert!(secured >= 5, "{secured} secured operations");
}

/// The schema of each time parameter (`from`, `to` of the metric route, `window` of
/// lineage) against what the server parses: an empty or unparsable value must not be
/// valid according to the document.
#[test]
fn the_openapi_time_parameters_do_not_call_an_empty_value_valid() {
    let doc = serving::openapi::document();
    let params = |path: &str| -> Vec<Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone()
    };
    let mut checked = 0;
    for (path, name) in [
        ("/v1/metrics/{metric}", "from"),
        ("/v1/metrics/{metric}", "to"),
        ("/v1/metrics/{metric}", "as_of_time"),
        ("/v1/lineage", "window"),
        ("/v1/lineage", "as_of_time"),
    ] {
        let param = params(path)
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} documents `{name}`"));
        let schema = &param["schema"];
        assert_eq!(schema["type"], "string", "{name}: {schema}");
        assert!(
            schema["minLength"].as_u64().is_some_and(|n| n >= 1),
            "{path} `{name}` declares minLength: {schema}"
        );
        let pattern = schema["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} `{name}` declares a pattern: {schema}"));
        let pattern = regex::Regex::new(pattern).expect("the pattern is a regular expression");
        let formats: Vec<&str> = schema["anyOf"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["format"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            formats.contains(&"date-time"),
            "{path} `{name}` names the date-time format: {schema}"
        );
        let valid = |text: &str| {
            text.chars().count() as u64 >= schema["minLength"].as_u64().unwrap()
                && pattern.is_match(text)
        };
        for good in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00+01:00",
            "2026-01-01T00:00:00.250Z",
            "1767225600000",
            "0",
        ] {
            assert!(valid(good), "{name}={good} is valid");
            assert!(shared_logic::instant::parse_instant(good).is_ok(), "{good}");
        }
        for bad in ["", "tomorrow", "2026-01-01", "-1", "1767225600000ms", " 0"] {
            assert!(!valid(bad), "{name}={bad:?} is not valid per the document");
            assert!(
                shared_logic::instant::parse_instant(bad).is_err(),
                "and the server refuses {bad:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
    // Lineage answers 400 without `metric` or `window`: the document says they are
    // required (the time-travel parameters are optional), and which metrics exist.
    let lineage = params("/v1/lineage");
    for p in &lineage {
        let required = ["metric", "window"].contains(&p["name"].as_str().unwrap_or_default());
        assert_eq!(
            p["required"].as_bool().unwrap_or(false),
            required,
            "lineage `{}`",
            p["name"]
        );
    }
    let metric = lineage.iter().find(|p| p["name"] == "metric").unwrap();
    let names: Vec<&str> = metric["schema"]["enum"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(names, shared_logic::registry::NAMES, "{metric}");
}

#[tokio::test]
async fn an_empty_from_answers_400_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(dir.path(), ApiOptions::default());
    for uri in [
        "/v1/metrics/page_views?from=",
        "/v1/metrics/page_views?to=",
        "/v1/lineage?metric=page_views&window=",
    ] {
        let (status, _, body) = call(serving::router(s.clone()), "GET", uri, None, b"").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "bad_time", "{uri}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains('`')),
            "the message names the parameter: {body}"
        );
    }
}

/// Arguments, variables, and the option the refusal must name.
type RefusedCase = (Vec<String>, Vec<(&'static str, &'static str)>, &'static str);

/// Runs `lambda <args>` expecting it to refuse to start: its exit status and stderr (a
/// process still running after the timeout fails the test).
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(lambda_tests::bin::lambda_bin());
    cmd.args(args)
        .env_remove("KAFKA_BROKERS")
        .env("LAMBDA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = lambda_tests::ChildGuard(cmd.spawn().expect("lambda starts"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "`lambda {}` still runs: it did not refuse its token",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn every_process_refuses_to_start_with_a_placeholder_token() {
    let dir = tempfile::tempdir().unwrap();
    let views = dir.path().join("views").display().to_string();
    let checkpoints = dir.path().join("cp").display().to_string();
    let listen = lambda_tests::http::free_addr();
    let serve = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "serve",
            "--no-collector",
            "--listen",
            &listen,
            "--views",
            &views,
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let speed = |listen: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "speed",
            "--listen",
            listen,
            "--checkpoints",
            &checkpoints,
            "--brokers",
            "127.0.0.1:1",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let cases: Vec<RefusedCase> = vec![
        (
            serve(&["--query-token", "change-me"]),
            vec![],
            "--query-token",
        ),
        (
            serve(&["--ingest-token", "secret"]),
            vec![],
            "--ingest-token",
        ),
        (
            serve(&["--admin-token", "short-token"]),
            vec![],
            "--admin-token",
        ),
        (serve(&["--query-token", ""]), vec![], "--query-token"),
        (
            serve(&["--speed-token", "changeme"]),
            vec![],
            "--speed-token",
        ),
        (
            speed(&listen, &["--speed-token", "password"]),
            vec![],
            "--speed-token",
        ),
        (
            speed(&listen, &[]),
            vec![("LAMBDA_SPEED_TOKEN", "token")],
            "--speed-token",
        ),
    ];
    for (args, env, option) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = refused_start(&args, &env);
        assert_ne!(code, 0, "{args:?}: {stderr}");
        assert!(
            stderr.contains(option) && stderr.contains("openssl rand"),
            "{args:?} {env:?}: the error names {option} and how to make a token: {stderr}"
        );
    }
    // The speed endpoint on a non-loopback address without a token is an open door.
    let args = speed("0.0.0.0:0", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = refused_start(&args, &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("--speed-token"), "{stderr}");
}

/// Posts `body` to the collector at `addr` with ingest `token`: status, `Retry-After` (s)
/// and the JSON answer.
async fn post_events(addr: &str, token: &str, body: &[u8]) -> (u16, Option<u64>, Value) {
    let (addr, body) = (addr.to_string(), body.to_vec());
    let authorization = format!("Bearer {token}");
    let (status, head, bytes) = tokio::task::spawn_blocking(move || {
        lambda_tests::http::request_with_head(
            &addr,
            "POST",
            "/v1/events",
            &[("Authorization", &authorization)],
            &body,
        )
    })
    .await
    .unwrap()
    .expect("the collector answers");
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().expect("Retry-After is whole seconds"))
    });
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, retry_after, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_over_a_clients_rate_answers_429_with_retry_after_and_spares_other_clients() {
    use serving::collector::{Collector, CollectorOptions};
    use serving::rate_limit::RateLimit;

    let broker = lambda_tests::Broker::start();
    let kafka = lambda_io::kafka::KafkaSettings::new(broker.brokers());
    let (topic, dlq) = ("security-ingest", "security-ingest-dlq");
    lambda_io::kafka::ensure_topics(&kafka, &[(topic, 1), (dlq, 1)], Duration::from_secs(30))
        .await
        .expect("topics");
    let (first, second) = ("ingest-a-6e1f0c9d3b7a2854", "ingest-b-2c8e5a1d9f4b7036");
    let burst = 3;
    let collector = Collector::new(
        &kafka,
        CollectorOptions {
            topic: topic.into(),
            dead_letter_topic: dlq.into(),
            rate_limit: RateLimit {
                // Slow enough that the burst's round trips to the broker refill no request.
                per_second: 0.25,
                burst,
                ..RateLimit::default()
            },
            ..CollectorOptions::default()
        },
    )
    .expect("collector");
    let dir = tempfile::tempdir().unwrap();
    let lake = lambda_io::Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let state = Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::in_process(realtime()).into(),
        collector: Some(collector),
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions {
            ingest_tokens: vec![first.into(), second.into()],
            ..ApiOptions::default()
        },
    });
    let addr = lambda_tests::serving::start(state).await;
    let events: Vec<Vec<u8>> =
        shared_logic::generate::Generator::new(shared_logic::generate::GeneratorConfig {
            seed: 16,
            start_ms: chrono::Utc::now().timestamp_millis() - 60_000,
            invalid_fraction: 0.0,
            duplicate_fraction: 0.0,
            ..Default::default()
        })
        .take(8)
        .map(|r| r.json)
        .collect();
    let event = |i: u32| events[i as usize].clone();
    let id = |i: u32| {
        serde_json::from_slice::<Value>(&events[i as usize]).unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The burst is served (and acknowledged by the broker).
    for i in 0..burst {
        let (status, _, body) = post_events(&addr, first, &event(i)).await;
        assert_eq!(status, 200, "request {i} of the burst: {body}");
        assert_eq!(body["accepted"], 1, "{body}");
    }
    // One more at once is over the rate: 429, a reason, and when to come back.
    let (status, retry_after, body) = post_events(&addr, first, &event(5)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let retry_after = retry_after.expect("a Retry-After header");
    assert!((1..=4).contains(&retry_after), "Retry-After {retry_after}");
    // Another client token is not affected.
    let (status, _, body) = post_events(&addr, second, &event(6)).await;
    assert_eq!(status, 200, "the other client: {body}");
    // After the time the answer said, the first client is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) = post_events(&addr, first, &event(7)).await;
    assert_eq!(status, 200, "after Retry-After: {body}");
    // The limited request never reached the topic.
    let config = kafka.client_config(lambda_io::kafka::ClientRole::Consumer, &[]);
    let stored = tokio::task::spawn_blocking(move || lambda_tests::topic::read_all(&config, topic))
        .await
        .unwrap();
    let ids: Vec<String> = lambda_tests::topic::topic_events(&stored)
        .iter()
        .map(|e| e.event_id().to_string())
        .collect();
    assert_eq!(ids.len(), burst as usize + 2, "{ids:?}");
    assert!(!ids.contains(&id(5)), "{ids:?}");
}
