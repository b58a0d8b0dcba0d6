//! Speed instances for serving tests without a broker: real-time views filled from
//! records in this process, served over HTTP on loopback as `lambda speed` serves them.

use std::time::Duration;

use shared_logic::{MetricContext, Validator};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;

/// Real-time views under `time` holding the records of `lines` that fall on the partitions
/// `keep` accepts (record `i` is on partition `i % 3`, at offset `i / 3`, stamped now).
pub fn views_of(
    lines: &[Vec<u8>],
    time: TimeSettings,
    keep: impl Fn(i32) -> bool,
) -> RealtimeViews {
    let views = RealtimeViews::new(MetricContext::default(), time, Duration::from_secs(3_600));
    let now = chrono::Utc::now().timestamp_millis();
    speed::consumer::apply_records(
        &views,
        &Validator::default(),
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| ((i % 3) as i32, (i / 3) as i64, now, l.as_slice()))
            .filter(|(p, ..)| keep(*p)),
    );
    views
}

/// Serves `views` (requiring `token` when given) on a free loopback port until the test's
/// runtime ends; the instance's base URL.
pub async fn serve(views: RealtimeViews, token: Option<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = speed::http::router(views, token);
    tokio::spawn(async move { axum::serve(listener, router).await.expect("speed serves") });
    url
}
