//! The batch layer computes exactly what shared-logic computes directly from the same
//! events: generated data with duplicates, out-of-order and invalid records is imported
//! into a lake, the batch job computes every hour, and the published views equal a direct
//! dedup-and-fold of the same lines. Re-running gives the same view bytes; late files make
//! exactly their hour dirty.

use std::io::Write;

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::Lake;
use lambda_tests::published::published_views;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::metric::Metric;
use shared_logic::metrics::{Funnel, PageViews, Quality, Revenue, Sessions};
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext, MetricViews, Origin, Validator};

const NOW: i64 = 4_000_000_000_000;

fn lines(seed: u64, count: usize, start_ms: i64) -> Vec<Vec<u8>> {
    let cfg = GeneratorConfig {
        seed,
        start_ms,
        events_per_second: 6.0,
        duplicate_fraction: 0.05,
        out_of_order_fraction: 0.05,
        invalid_fraction: 0.02,
        late_fraction: 0.01,
        ..GeneratorConfig::default()
    };
    Generator::new(cfg).take(count).map(|r| r.json).collect()
}

fn direct(lines: &[Vec<u8>], first_line: i64) -> Aggregates {
    let v = Validator::default();
    let events = lines.iter().enumerate().filter_map(|(i, l)| {
        v.validate(l, Origin::import_line(first_line + i as i64), NOW)
            .ok()
    });
    Aggregates::fold_deliveries(events, &MetricContext::default())
}

async fn import(
    lake: &Lake,
    lines: &[Vec<u8>],
    source: &str,
    chunk: usize,
) -> batch::import::ImportReport {
    lambda_tests::data::import_lines(lake, lines, source, chunk, NOW).await
}

/// Equality with a short report (the views themselves are too large to print).
fn assert_same<M: Metric>(actual: &MetricViews<M>, expected: &MetricViews<M>) {
    let differing = lambda_tests::data::keys_differing(actual, expected);
    assert!(
        differing == 0,
        "{}: {differing} keys differ ({} published, {} expected)",
        M::NAME,
        actual.len(),
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_views_equal_the_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap(), true).unwrap();
    let views = lake.child("views");
    let start = 1_767_227_400_000; // 2026-01-01T00:30Z: the stream spans three hours
    let data = lines(11, 40_000, start);
    let report = import(&lake, &data, "gen", 7_000).await;
    assert_eq!(report.lines, 40_000);
    assert!(
        report.dead_letters > 500,
        "invalid records are dead-lettered: {report:?}"
    );

    let opts = BatchOptions {
        threads: 2,
        ..BatchOptions::default()
    };
    let selection = HourSelection::Range {
        from: HourKey::parse("2025-12-31T00").unwrap(),
        to: HourKey::parse("2026-01-02T00").unwrap(),
    };
    let run = job::run(&lake, &views, &selection, &opts)
        .await
        .expect("batch run");
    assert!(
        run.hours.len() >= 2,
        "several hours computed: {:?}",
        run.hours.keys()
    );
    let duplicates: u64 = run.hours.values().map(|h| h.duplicates).sum();
    assert!(
        duplicates > 1_000,
        "duplicates were found and dropped: {duplicates}"
    );

    let expected = direct(&data, 0);
    assert_same(
        &published_views::<PageViews>(&views).await,
        &expected.page_views,
    );
    assert_same(&published_views::<Funnel>(&views).await, &expected.funnel);
    assert_same(&published_views::<Revenue>(&views).await, &expected.revenue);
    assert_same(
        &published_views::<Sessions>(&views).await,
        &expected.sessions,
    );
    // The quality figures, duplicates included: the losing deliveries, noted.
    let quality = published_views::<Quality>(&views).await;
    assert_same(&quality, &expected.quality);
    let noted: u64 = quality.iter().map(|(_, s)| s.duplicates).sum();
    assert_eq!(noted, duplicates, "every dropped duplicate is noted once");

    // A small memory budget: several id buckets per hour for the dedup passes and several
    // user buckets for the sessions; the same views.
    let bucketed = lake.child("views-bucketed");
    let small = BatchOptions {
        threads: 2,
        max_ids_in_memory: 4_000,
        ..BatchOptions::default()
    };
    job::run(&lake, &bucketed, &selection, &small)
        .await
        .expect("bucketed run");
    assert_same(
        &published_views::<PageViews>(&bucketed).await,
        &expected.page_views,
    );
    assert_same(
        &published_views::<Funnel>(&bucketed).await,
        &expected.funnel,
    );
    assert_same(
        &published_views::<Revenue>(&bucketed).await,
        &expected.revenue,
    );
    assert_same(
        &published_views::<Sessions>(&bucketed).await,
        &expected.sessions,
    );
    assert_same(
        &published_views::<Quality>(&bucketed).await,
        &expected.quality,
    );

    // A second run of the same hours publishes the same view bytes under new names.
    let first_files: Vec<String> = run
        .hours
        .values()
        .flat_map(|h| h.views.values().cloned())
        .collect();
    let again = job::run(&lake, &views, &selection, &opts)
        .await
        .expect("second run");
    let second_files: Vec<String> = again
        .hours
        .values()
        .flat_map(|h| h.views.values().cloned())
        .collect();
    assert_eq!(first_files.len(), second_files.len());
    for (a, b) in first_files.iter().zip(&second_files) {
        assert_ne!(a, b);
        let a = views.get(&views.path(a)).await.unwrap().unwrap();
        let b = views.get(&views.path(b)).await.unwrap().unwrap();
        assert!(a == b, "re-running an hour gives the same view bytes");
    }

    // Nothing changed: nothing is dirty.
    assert!(
        job::select_hours(&lake, &views, &HourSelection::Dirty { before: None })
            .await
            .unwrap()
            .is_empty()
    );

    // Late data for one hour arrives: exactly that hour is dirty, and after the dirty run
    // the views equal the direct computation over everything.
    let late_hour = HourKey::parse("2026-01-01T01").unwrap();
    let late = lines(12, 300, late_hour.start_ms() + 600_000);
    import(&lake, &late, "late", 1_000).await;
    let dirty = job::select_hours(&lake, &views, &HourSelection::Dirty { before: None })
        .await
        .unwrap();
    assert!(dirty.contains(&late_hour), "{dirty:?}");
    // Hours that have not settled are not selected (open hours stay with the speed layer).
    let settled = job::select_hours(
        &lake,
        &views,
        &HourSelection::Dirty {
            before: Some(late_hour),
        },
    )
    .await
    .unwrap();
    assert!(settled.iter().all(|h| *h < late_hour), "{settled:?}");
    job::run(&lake, &views, &HourSelection::Dirty { before: None }, &opts)
        .await
        .expect("dirty run");
    assert!(
        job::select_hours(&lake, &views, &HourSelection::Dirty { before: None })
            .await
            .unwrap()
            .is_empty()
    );

    // The late file is a source of its own: the direct computation folds both sources.
    let mut both = direct(&data, 0);
    let late_direct = direct(&late, 0);
    shared_logic::Mergeable::merge(&mut both, &late_direct);
    assert_same(
        &published_views::<PageViews>(&views).await,
        &both.page_views,
    );
    assert_same(&published_views::<Funnel>(&views).await, &both.funnel);
    assert_same(&published_views::<Revenue>(&views).await, &both.revenue);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_without_data_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let views = lake.child("views");
    let hour = HourKey::parse("2026-01-01T05").unwrap();
    let err = job::run(
        &lake,
        &views,
        &HourSelection::One(hour),
        &BatchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("hour 2026-01-01T05 has no data"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_fails_the_run_with_its_name_or_is_skipped_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
    let views = lake.child("views");
    let data = lines(5, 2_000, 1_767_225_600_000);
    import(&lake, &data, "gen", 1_000).await;
    let hour = HourKey::parse("2026-01-01T00").unwrap();
    // Committed into the events table, as a file that rotted after its commit.
    let corrupt = lambda_io::delta::AddFile {
        name: "zz-corrupt.parquet".into(),
        hour,
        event_type: Some("page_view".into()),
        size: 25,
        rows: 1,
        tags: Default::default(),
    };
    let bad = lake.events_table().path(&corrupt.path());
    lake.put(&bad, b"PAR1 this is not parquet".to_vec())
        .await
        .unwrap();
    let mut events = lambda_io::delta::Table::open(&lake.events_table())
        .await
        .unwrap()
        .expect("the events table");
    let corrupt_path = corrupt.path();
    events
        .commit(
            lambda_io::delta::CommitKind::Append,
            &[corrupt],
            &[],
            None,
            Default::default(),
        )
        .await
        .unwrap();
    std::fs::File::options()
        .append(true)
        .open(dir.path().join("events").join(corrupt_path))
        .unwrap()
        .write_all(b"x")
        .unwrap();

    let err = job::run(
        &lake,
        &views,
        &HourSelection::One(hour),
        &BatchOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("zz-corrupt.parquet"), "{err}");
    assert_eq!(
        lambda_io::manifest::Published::load(&views)
            .await
            .unwrap()
            .version,
        0,
        "nothing published"
    );

    let opts = BatchOptions {
        skip_corrupt: true,
        ..BatchOptions::default()
    };
    let run = job::run(&lake, &views, &HourSelection::One(hour), &opts)
        .await
        .expect("skips the corrupt file");
    let view = &run.hours["2026-01-01T00"];
    assert_eq!(view.skipped_files.len(), 1);
    assert!(view.skipped_files[0].ends_with("zz-corrupt.parquet"));
    let mut expected = direct(&data, 0);
    expected.retain_windows(|w| HourKey::of_window(w) == hour);
    assert_same(
        &published_views::<PageViews>(&views).await,
        &expected.page_views,
    );
}

/// A schedule that computes one dirty hour a run (the demo's) reaches a new hour even while
/// an older hour's sessions stay pending or read a neighbour that keeps changing: a user
/// active every ten minutes keeps one session open, so the older hour stays dirty at every
/// run, and used to come first forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hours_never_computed_come_before_hours_only_pending() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap(), true).unwrap();
    let views = lake.child("views");
    let h10 = 1_767_261_600_000i64; // 2026-01-01T10:00Z
    let minute = 60_000;
    let view = |id: String, t: i64, user: &str| {
        format!(
            r#"{{"event_id":"{id}","event_type":"page_view","event_time":{t},"user_id":"{user}","url":"/"}}"#
        )
        .into_bytes()
    };
    // u1 views a page every ten minutes from 10:00 to 11:50: one session.
    let lines: Vec<Vec<u8>> = (0..12)
        .map(|i| view(format!("a{i}"), h10 + i * 10 * minute, "u1"))
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    lambda_tests::data::import_lines(&lake, &lines, "gen", 100, now).await;
    // Computed with the settle horizon at 11:55: the session (starting at 10) may go on,
    // so 10's sessions are pending; 11 starts none.
    let opts = BatchOptions {
        complete_before_ms: Some(h10 + 115 * minute),
        ..BatchOptions::default()
    };
    let range = HourSelection::Range {
        from: HourKey::of(shared_logic::EventTime(h10)),
        to: HourKey::of(shared_logic::EventTime(h10 + 120 * minute)),
    };
    job::run(&lake, &views, &range, &opts).await.unwrap();
    let published = lambda_io::manifest::Published::load(&views).await.unwrap();
    assert_eq!(
        published.hours["2026-01-01T10"].pending,
        vec!["sessions".to_string()]
    );
    assert!(published.hours["2026-01-01T11"].pending.is_empty());
    // A new hour lands (13:00, another user's events), and a late event of another user
    // lands in 11 (11's own files change; 10 reads 11 for its session).
    let mut later: Vec<Vec<u8>> = (0..3)
        .map(|i| view(format!("b{i}"), h10 + 180 * minute + i * minute, "u2"))
        .collect();
    later.push(view("c0".into(), h10 + 75 * minute, "u3"));
    lambda_tests::data::import_lines(&lake, &later, "later", 100, now).await;
    let dirty = job::select_hours(
        &lake,
        &views,
        &HourSelection::Dirty {
            before: Some(HourKey::of(shared_logic::EventTime(h10 + 240 * minute))),
        },
    )
    .await
    .unwrap();
    let hour = |m: i64| HourKey::of(shared_logic::EventTime(h10 + m * minute));
    // New first, then changed files, then dirty only around (pending, neighbours).
    assert_eq!(dirty, vec![hour(180), hour(60), hour(0)]);
}

/// Writes `lines` into a new events table as a version before the `source` and
/// `record_time` columns wrote it: those columns absent from the table and its files.
async fn write_old_lake(lake: &Lake, lines: &[Vec<u8>]) {
    use lambda_io::delta::{schema::hour_partitioned, AddFile, CommitKind, Table};
    let v = Validator::default();
    let events: Vec<shared_logic::Event> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), NOW).ok())
        .collect();
    let schema = shared_logic::schema::event_schema();
    let kept: Vec<usize> = (0..schema.fields().len())
        .filter(|i| {
            !shared_logic::schema::ADDED_COLUMNS.contains(&schema.field(*i).name().as_str())
        })
        .collect();
    let old_schema = std::sync::Arc::new(schema.project(&kept).unwrap());
    let location = lake.child("events");
    let mut table =
        Table::open_or_create(&location, "events", hour_partitioned(&old_schema).unwrap())
            .await
            .unwrap();
    let mut by_hour: std::collections::BTreeMap<HourKey, Vec<shared_logic::Event>> =
        Default::default();
    for e in events {
        by_hour
            .entry(HourKey::of(e.event_time()))
            .or_default()
            .push(e);
    }
    let mut adds = Vec::new();
    for (n, (hour, events)) in by_hour.into_iter().enumerate() {
        let batch = shared_logic::schema::to_record_batch(&events)
            .unwrap()
            .project(&kept)
            .unwrap();
        let bytes =
            lambda_io::parquet_file::encode_parquet(old_schema.clone(), &[batch], "old").unwrap();
        let add = AddFile {
            name: format!("old-{n}.parquet"),
            hour,
            event_type: None,
            size: bytes.len() as u64,
            rows: events.len() as u64,
            tags: Default::default(),
        };
        lake.put(&location.path(&add.path()), bytes).await.unwrap();
        adds.push(add);
    }
    table
        .commit(CommitKind::Append, &adds, &[], None, Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_written_before_the_source_columns_is_read_and_then_extended() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap(), true).unwrap();
    let start = 1_767_227_400_000; // 2026-01-01T00:30Z
    let old = lines(21, 6_000, start);
    write_old_lake(&lake, &old).await;
    let selection = HourSelection::Range {
        from: HourKey::parse("2025-12-31T00").unwrap(),
        to: HourKey::parse("2026-01-02T00").unwrap(),
    };
    let opts = BatchOptions {
        threads: 2,
        ..BatchOptions::default()
    };
    // Only files without the columns: the hours compute as before.
    let views = lake.child("views");
    job::run(&lake, &views, &selection, &opts)
        .await
        .expect("batch run over the old lake");
    let expected = direct(&old, 0);
    assert_same(
        &published_views::<PageViews>(&views).await,
        &expected.page_views,
    );
    assert_same(&published_views::<Revenue>(&views).await, &expected.revenue);

    // This version's writer adds the columns to the table, and its files sit beside the
    // old ones in the same hours.
    let new = lines(22, 6_000, start);
    let report = import(&lake, &new, "new", 2_000).await;
    assert_eq!(report.lines, 6_000);
    let columns = lambda_io::delta::Table::open(&lake.child("events"))
        .await
        .unwrap()
        .unwrap()
        .column_names()
        .unwrap();
    for column in shared_logic::schema::ADDED_COLUMNS {
        assert!(
            columns.iter().any(|c| c == column),
            "{column} added: {columns:?}"
        );
    }
    let views = lake.child("views-after");
    job::run(&lake, &views, &selection, &opts)
        .await
        .expect("batch run over both");
    let all: Vec<Vec<u8>> = old.iter().chain(&new).cloned().collect();
    let expected = direct(&all, 0);
    assert_same(
        &published_views::<PageViews>(&views).await,
        &expected.page_views,
    );
    assert_same(&published_views::<Revenue>(&views).await, &expected.revenue);
    assert_same(
        &published_views::<Sessions>(&views).await,
        &expected.sessions,
    );
}
