//! `lambda verify` as an operator runs it: it exits 0 only when it compared windows of both
//! layers and found them equal, and exits 3 with the reason when it compared nothing (no
//! batch manifest, no covered hour in the range, or a speed layer holding none of the
//! covered hours), so a check that checked nothing never passes for a green one.

use std::process::Output;

use lambda_tests::published::{publish_hours, PublishedLake};
use lambda_tests::speed_instance;
use speed::partition::{LatePolicy, TimeSettings};

/// A speed instance holding `lines` under the `update` policy (its views then equal the
/// batch computation); its base URL.
async fn instance_holding(lines: &[Vec<u8>]) -> String {
    let time = TimeSettings {
        out_of_orderness_ms: 5_000,
        allowed_lateness_ms: 60_000,
        late_policy: LatePolicy::Update,
    };
    speed_instance::serve(speed_instance::views_of(lines, time, |_| true), None).await
}

/// `lambda verify` over `[from, to)` of `metric` (every metric when `None`).
async fn verify(views: &str, speed_url: &str, range: (i64, i64), metric: Option<&str>) -> Output {
    let mut cmd = std::process::Command::new(lambda_tests::bin::lambda_bin());
    cmd.args(["verify", "--views", views, "--speed-url", speed_url])
        .args(["--from", &range.0.to_string(), "--to", &range.1.to_string()])
        .env("LAMBDA_LOG", "warn");
    if let Some(m) = metric {
        cmd.args(["--metric", m]);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("lambda verify runs"))
        .await
        .expect("verify thread")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn views_of(p: &PublishedLake) -> String {
    p.views.display()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_without_a_manifest_exits_3_saying_nothing_was_published() {
    let dir = tempfile::tempdir().unwrap();
    let views = dir.path().join("views");
    std::fs::create_dir_all(&views).unwrap();
    let speed = instance_holding(&[]).await;
    let now = chrono::Utc::now().timestamp_millis();
    let out = verify(
        views.to_str().unwrap(),
        &speed,
        (now - 3_600_000, now),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("no batch manifest"),
        "the reason is named: {}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_3_when_the_speed_layer_holds_none_of_the_covered_hours() {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 31, 2).await;
    let range = (published.from_ms, published.to_ms);
    // A speed instance that answers but holds nothing of those hours (evicted, or a new
    // consumer group that started at the end of the topic).
    let empty = instance_holding(&[]).await;
    let out = verify(&views_of(&published), &empty, range, None).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("the speed layer holds none of"),
        "the reason is named: {}",
        text(&out)
    );
    // A range the batch layer covers no hour of compares nothing either.
    let before = (range.0 - 3 * 3_600_000, range.0 - 3_600_000);
    let out = verify(&views_of(&published), &empty, before, Some("page_views")).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("covers no hour"),
        "the reason is named: {}",
        text(&out)
    );
    // The same hours held by the speed layer are compared, equal: exit 0.
    let holding = instance_holding(&published.lines).await;
    let out = verify(&views_of(&published), &holding, range, Some("page_views")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("page_views: 2 hours compared"),
        "{}",
        text(&out)
    );
}

/// The valid events of `lines` per hour (`2026-11-24T10`), each event id once: what the
/// batch layer reads of each hour, computed here from the generated lines.
fn events_per_hour(lines: &[Vec<u8>]) -> std::collections::BTreeMap<String, u64> {
    let validator = shared_logic::Validator::default();
    let mut ids = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for (i, line) in lines.iter().enumerate() {
        if let Ok(e) = validator.validate(
            line,
            shared_logic::Origin::import_line(i as i64),
            i64::MAX / 2,
        ) {
            let hour = shared_logic::window::HourKey(e.event_time().0.div_euclid(3_600_000));
            ids.entry(hour.to_string())
                .or_default()
                .insert(format!("{:?}", e.event_id()));
        }
    }
    ids.into_iter()
        .map(|(h, ids)| (h, ids.len() as u64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_says_how_many_events_each_compared_hour_held_and_warns_when_they_are_few() {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 37, 2).await;
    let range = (published.from_ms, published.to_ms);
    let holding = instance_holding(&published.lines).await;
    let out = verify(&views_of(&published), &holding, range, Some("page_views")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = events_per_hour(&published.lines);
    assert_eq!(expected.len(), 2, "{expected:?}");
    let each: Vec<String> = expected
        .iter()
        .map(|(hour, n)| format!("{hour}: {n} events"))
        .collect();
    assert!(
        text(&out).contains(&format!(
            "page_views: 2 hours compared ({})",
            each.join(", ")
        )),
        "each hour with its events, as counted from the generated lines: {each:?}\n{}",
        text(&out)
    );
    assert!(!text(&out).contains("thin"), "{}", text(&out));
    // The same comparison asked to rest on more events than the hours held: a warning,
    // and still exit 0 (the views are equal).
    let total: u64 = expected.values().sum();
    let mut cmd = std::process::Command::new(lambda_tests::bin::lambda_bin());
    cmd.args([
        "verify",
        "--views",
        &views_of(&published),
        "--speed-url",
        &holding,
    ])
    .args(["--from", &range.0.to_string(), "--to", &range.1.to_string()])
    .args(["--min-events", &(total + 1).to_string()])
    .args(["--metric", "page_views"])
    .env("LAMBDA_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: a thin comparison: the compared hours held {total} event(s) in all, fewer than --min-events {}",
            total + 1
        )),
        "{}",
        text(&out)
    );

    // A demo just started: its one covered hour holds a handful of events.
    let dir = tempfile::tempdir().unwrap();
    let sparse = lambda_tests::published::publish_hours_at(dir.path(), 41, 1, 0.002).await;
    let holding = instance_holding(&sparse.lines).await;
    let out = verify(
        &views_of(&sparse),
        &holding,
        (sparse.from_ms, sparse.to_ms),
        Some("page_views"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: a thin comparison"),
        "{}",
        text(&out)
    );
}
