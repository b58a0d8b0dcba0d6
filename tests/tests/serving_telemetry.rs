//! What `/metrics` and `/readyz` tell, and to whom, with several speed instances:
//! - the Prometheus text stays valid with two speed instances (each metric family whole:
//!   one HELP/TYPE and all its samples together), checked with the Python
//!   `prometheus_client` parser (`scripts/python-tools.sh` installs it);
//! - anonymous callers learn only the state: no instance URL, no error text (readiness is
//!   a bare `{"ready": …}` with 200/503); the detail (URLs, reasons) answers callers with
//!   the query token.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lambda_tests::speed_instance;
use serde_json::Value;
use serving::batch_views::BatchViews;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::generate::{Generator, GeneratorConfig};
use speed::partition::TimeSettings;
use tower::ServiceExt;

const QUERY_TOKEN: &str = "telemetry-test-query-token-5f1c9a";

/// Checks Prometheus text with the Python `prometheus_client` parser: every family is
/// parsed once and typed (a family split in two parses as two families, the second one
/// untyped), and no series repeats. Prints `<families> <samples>`.
const CHECK: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    if f.name in families:
        sys.exit("family %s appears twice: its samples are not together" % f.name)
    if f.type in ("unknown", "untyped"):
        sys.exit("family %s has no TYPE: samples outside their family" % f.name)
    series = [(s.name, tuple(sorted(s.labels.items()))) for s in f.samples]
    if len(set(series)) != len(series):
        sys.exit("family %s repeats a series" % f.name)
    families[f.name] = len(series)
print(len(families), sum(families.values()))
"#;

/// Runs [`CHECK`] on `text`; the parser's complaint when it fails.
fn parse_prometheus(text: &str) -> Result<String, String> {
    let venv = std::env::var("LAMBDA_VENV").unwrap_or_else(|_| "/var/tmp/lambda-venv".into());
    let python = format!("{venv}/bin/python");
    let mut child = Command::new(&python)
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{python} does not run ({e}): run scripts/python-tools.sh first")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("No module named"),
        "{stderr}: run scripts/python-tools.sh first"
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(stderr)
    }
}

/// A speed instance holding the generated events of the partitions `keep` accepts (three
/// in all); its base URL.
async fn instance_holding(keep: impl Fn(i32) -> bool) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let lines: Vec<Vec<u8>> = Generator::new(GeneratorConfig {
        seed: 4,
        start_ms: now - 20 * 60_000,
        events_per_second: 2.0,
        ..GeneratorConfig::default()
    })
    .take(2_000)
    .map(|r| r.json)
    .collect();
    let views = speed_instance::views_of(&lines, TimeSettings::default(), keep);
    speed_instance::serve(views, None).await
}

/// A server reading `urls` as its speed instances, over an empty published lake, with a
/// query token.
async fn server(dir: &std::path::Path, urls: &[String]) -> Arc<AppState> {
    let lake = lambda_io::Lake::open(dir.to_str().unwrap(), true).unwrap();
    let state = Arc::new(AppState {
        batch: BatchViews::new(lake, 16),
        speed: SpeedViews::remote(urls, Duration::from_secs(2))
            .unwrap()
            .into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions {
            query_token: Some(QUERY_TOKEN.into()),
            ..ApiOptions::default()
        },
    });
    state.batch.refresh().await.unwrap();
    state
}

/// `GET uri`, with the query token when `token`: status and body text.
async fn get(state: &Arc<AppState>, uri: &str, token: bool) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if token {
        request = request.header("authorization", format!("Bearer {QUERY_TOKEN}"));
    }
    let response = serving::router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The value of the sample `series` (name and labels as rendered) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_two_speed_instances_are_valid_prometheus_text() {
    let urls = vec![
        instance_holding(|p| p < 2).await,
        instance_holding(|p| p == 2).await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), &urls).await;
    let (status, _) = get(&state, "/v1/metrics/page_views?granularity=hour", true).await;
    assert_eq!(status, StatusCode::OK);

    let (status, text) = get(&state, "/metrics", false).await;
    assert_eq!(status, StatusCode::OK);
    let parsed = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    eprintln!("families and samples: {parsed}");
    for instance in ["speed-0", "speed-1"] {
        assert_eq!(
            sample(
                &text,
                &format!("lambda_speed_up{{instance=\"{instance}\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(
                &text,
                &format!("lambda_speed_records_total{{instance=\"{instance}\"}}")
            )
            .is_some_and(|n| n > 0.0),
            "{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "lambda_serving_requests_total{route=\"/v1/metrics/{metric}\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("http://"),
        "no URL for anonymous callers:\n{text}"
    );

    // With the query token the instances' URLs are there too, and the text stays valid.
    let (_, detailed) = get(&state, "/metrics", true).await;
    parse_prometheus(&detailed).unwrap_or_else(|e| panic!("{e}\n{detailed}"));
    for url in &urls {
        assert!(detailed.contains(url.as_str()), "{url} in\n{detailed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_get_the_state_without_urls_or_errors() {
    // Instance 1 does not answer (nothing listens on port 1).
    let urls = vec![
        instance_holding(|_| true).await,
        "http://127.0.0.1:1".to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let state = server(dir.path(), &urls).await;

    let (status, body) = get(&state, "/readyz", false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json, serde_json::json!({"ready": false}), "a generic body");
    let (status, body) = get(&state, "/readyz", true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("127.0.0.1:1"),
        "the query token sees which instance is down: {body}"
    );

    let (status, text) = get(&state, "/metrics", false).await;
    assert_eq!(status, StatusCode::OK);
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for secret in ["http://", "127.0.0.1", "error", "did not answer"] {
        assert!(
            !text.contains(secret),
            "`{secret}` shown to anyone:\n{text}"
        );
    }
    // Each instance is reported on its own: the one that answers keeps its metrics.
    assert_eq!(
        sample(&text, "lambda_speed_up{instance=\"speed-0\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "lambda_speed_up{instance=\"speed-1\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "lambda_speed_records_total{instance=\"speed-0\"}").is_some(),
        "{text}"
    );
    let (_, detailed) = get(&state, "/metrics", true).await;
    assert!(detailed.contains("http://127.0.0.1:1"), "{detailed}");
    // A wrong token is anonymous.
    let mut request = Request::get("/readyz");
    request = request.header("authorization", "Bearer not-the-token");
    let response = serving::router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        serde_json::json!({"ready": false})
    );
}
