//! Time travel through the API: after late events recompute a published hour, the batch
//! views' table holds both publications, and `as_of_version` / `as_of_time` answer what was
//! served at each point (the direct computation over the events the lake held then), with
//! the lineage of that point; bad or conflicting time-travel parameters are clear 400s.

use std::time::Duration;

use batch::job::{BatchOptions, HourSelection};
use lambda_tests::published::publish_hours;
use lambda_tests::serving::{api_rows, direct_rows, get_json, start_batch_only};
use shared_logic::generate::GeneratorConfig;
use shared_logic::metrics::PageViews;
use shared_logic::window::HourKey;
use shared_logic::{Event, Origin, Validator};

fn valid(lines: &[Vec<u8>], from: i64, to: i64) -> Vec<Event> {
    let v = Validator::default();
    let now = chrono::Utc::now().timestamp_millis();
    let events = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), now).ok())
        .filter(|e| (from..to).contains(&e.event_time().0));
    shared_logic::dedup::first_wins(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_answers_what_was_served_then_with_its_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let published = publish_hours(dir.path(), 23, 1).await;
    let (from, to) = (published.from_ms, published.to_ms);
    let before = published.events();
    let first_commit_done = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // Late events for the hour, imported under another source: the hour is recomputed.
    let now = chrono::Utc::now().timestamp_millis();
    let late = lambda_tests::data::records_until(
        99,
        from,
        to,
        now,
        GeneratorConfig {
            events_per_second: 0.05,
            ..GeneratorConfig::default()
        },
    );
    lambda_tests::data::import_lines(&published.lake, &late, "late", 5_000, now).await;
    let hour = HourKey(from / shared_logic::window::HOUR_MS);
    batch::job::run(
        &published.lake,
        &published.views,
        &HourSelection::One(hour),
        &BatchOptions::default(),
    )
    .await
    .unwrap();
    let mut after = before.clone();
    // The late import's line numbers start again at 0 under its own source: the events are
    // new (other ids), so the direct computation is over both sets.
    after.extend(valid(&late, from, to));

    let addr = start_batch_only(&published.views).await;
    let path = |extra: &str| {
        format!(
            "/v1/metrics/page_views?from={from}&to={to}&granularity=minute&group_by=country{extra}"
        )
    };
    let expected =
        |events: &[Event]| direct_rows::<PageViews>(events, from, to, 60_000, &["country"], &[]);
    assert_ne!(
        expected(&before),
        expected(&after),
        "the late events change the answer"
    );

    // Version 0 creates the table, 1 is the first publication, 2 the recomputation.
    let (status, latest) = get_json(&addr, &path(""), &[]).await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["table_version"], 2, "{latest}");
    assert_eq!(api_rows(&latest), expected(&after));
    for (version, events) in [(1, &before), (2, &after)] {
        let (status, answer) =
            get_json(&addr, &path(&format!("&as_of_version={version}")), &[]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["table_version"], version);
        assert_eq!(answer["as_of"]["version"], version);
        assert_eq!(
            api_rows(&answer),
            expected(events),
            "as_of_version={version}"
        );
    }
    let (status, answer) = get_json(
        &addr,
        &path(&format!("&as_of_time={first_commit_done}")),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["table_version"], 1, "{answer}");
    assert_eq!(
        api_rows(&answer),
        expected(&before),
        "as_of_time between the publications"
    );

    // Lineage of each point: the run that computed the hour then, and its inputs.
    let lineage = |extra: &str| format!("/v1/lineage?metric=page_views&window={from}{extra}");
    let (_, then) = get_json(&addr, &lineage("&as_of_version=1"), &[]).await;
    let (_, now) = get_json(&addr, &lineage(""), &[]).await;
    assert_eq!(then["batch"]["table_version"], 1, "{then}");
    assert_eq!(now["batch"]["table_version"], 2, "{now}");
    assert_ne!(then["batch"]["run_id"], now["batch"]["run_id"]);
    let inputs = |l: &serde_json::Value| l["batch"]["inputs"].as_array().map_or(0, Vec::len);
    assert!(
        inputs(&now) > inputs(&then),
        "the recomputation read the late file too: {then} {now}"
    );

    // Bad input: clear 400s.
    for (extra, code) in [
        ("&as_of_version=99", "unknown_version"),
        ("&as_of_version=-1", "bad_version"),
        ("&as_of_version=x", "bad_version"),
        ("&as_of_version=1&as_of_time=0", "conflicting_parameters"),
        ("&as_of_time=yesterday", "bad_time"),
    ] {
        let (status, answer) = get_json(&addr, &path(extra), &[]).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{extra}: {answer}"
        );
    }
}
