//! Tests of [`super::table`] against tables on the local filesystem.

use std::collections::{BTreeMap, HashMap};

use arrow::datatypes::{DataType, Field, Schema};
use shared_logic::window::HourKey;

use super::schema::hour_partitioned;
use super::table::{AddFile, CommitKind, Table};
use crate::error::IoError;
use crate::lake::Lake;

fn columns() -> Vec<deltalake::kernel::StructField> {
    hour_partitioned(&Schema::new(vec![Field::new("x", DataType::Int64, false)])).unwrap()
}

fn file(name: &str, hour: &str, rows: u64) -> AddFile {
    AddFile {
        name: name.into(),
        hour: HourKey::parse(hour).unwrap(),
        event_type: None,
        size: 10,
        rows,
        tags: BTreeMap::from([("run".to_string(), name.to_string())]),
    }
}

#[tokio::test]
async fn appends_carry_transaction_versions_and_replacements_swap_an_hours_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
    let location = lake.child("t");
    assert!(Table::open(&location).await.unwrap().is_none());
    let mut table = Table::open_or_create(&location, "t", columns())
        .await
        .unwrap();
    assert_eq!(table.version(), 0);
    // A second opener (another process) sees the same table.
    let mut other = Table::open_or_create(&location, "t", columns())
        .await
        .unwrap();

    let v = table
        .commit(
            CommitKind::Append,
            &[file("a", "2026-01-01T07", 3), file("b", "2026-01-01T08", 4)],
            &[],
            Some(("events/0/g", 41)),
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(
        table.transaction_version("events/0/g").await.unwrap(),
        Some(41)
    );
    assert_eq!(table.transaction_version("events/1/g").await.unwrap(), None);
    let files = table.files().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "date=2026-01-01/hour=07/a");
    assert_eq!(files[0].rows, Some(3));
    assert_eq!(files[0].hour, HourKey::parse("2026-01-01T07"));
    assert_eq!(files[0].tags["run"], "a");

    // The other process, on its old snapshot, commits the same application id: conflict.
    let err = other
        .commit(
            CommitKind::Append,
            &[file("c", "2026-01-01T07", 1)],
            &[],
            Some(("events/0/g", 45)),
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IoError::TableConflict { .. }), "{err}");
    // A blind append of another application retries on top of the winner.
    other
        .commit(
            CommitKind::Append,
            &[file("d", "2026-01-01T09", 1)],
            &[],
            Some(("events/1/g", 7)),
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(other.files().unwrap().len(), 3);

    // Replace hour 07: its file goes, a new one comes; other hours stay.
    table.refresh().await.unwrap();
    let old: Vec<_> = table
        .files()
        .unwrap()
        .into_iter()
        .filter(|f| f.hour == HourKey::parse("2026-01-01T07"))
        .collect();
    let hour = HourKey::parse("2026-01-01T07").unwrap();
    table
        .commit(
            CommitKind::ReplaceHours(vec![hour]),
            &[file("e", "2026-01-01T07", 9)],
            &old,
            None,
            HashMap::new(),
        )
        .await
        .unwrap();
    let paths: Vec<String> = table.files().unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(
        paths,
        [
            "date=2026-01-01/hour=07/e",
            "date=2026-01-01/hour=08/b",
            "date=2026-01-01/hour=09/d"
        ]
    );
    // Removing a file a concurrent commit already removed is a conflict.
    let err = other
        .commit(
            CommitKind::ReplaceHours(vec![hour]),
            &[file("f", "2026-01-01T07", 9)],
            &old,
            None,
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IoError::TableConflict { .. }), "{err}");

    // Time travel: version 1 had a and b.
    table.load_version(1).await.unwrap();
    assert_eq!(table.files().unwrap().len(), 2);
}

#[tokio::test]
async fn a_table_with_other_columns_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
    Table::open_or_create(&lake.child("t"), "t", columns())
        .await
        .unwrap();
    let other =
        hour_partitioned(&Schema::new(vec![Field::new("y", DataType::Utf8, false)])).unwrap();
    let err = Table::open_or_create(&lake.child("t"), "t", other)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("columns"), "{err}");
}

#[tokio::test]
async fn a_newer_writer_adds_its_nullable_columns_and_keeps_the_files_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
    let location = lake.child("t");
    let mut old = Table::open_or_create(&location, "t", columns())
        .await
        .unwrap();
    old.commit(
        CommitKind::Append,
        &[file("a", "2026-01-01T07", 3)],
        &[],
        Some(("events/0/g", 9)),
        HashMap::new(),
    )
    .await
    .unwrap();
    let newer = hour_partitioned(&Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("source", DataType::Utf8, true),
    ]))
    .unwrap();
    let table = Table::open_or_create(&location, "t", newer.clone())
        .await
        .unwrap();
    assert_eq!(table.version(), 2);
    assert_eq!(table.files().unwrap().len(), 1);
    assert_eq!(
        table.transaction_version("events/0/g").await.unwrap(),
        Some(9)
    );
    // Opening it again changes nothing; the older writer's columns are now refused.
    let again = Table::open_or_create(&location, "t", newer).await.unwrap();
    assert_eq!(again.version(), 2);
    let err = Table::open_or_create(&location, "t", columns())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("source"), "{err}");
    // A new column that is not nullable cannot be added (old files have no value for it).
    let required = hour_partitioned(&Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("source", DataType::Utf8, true),
        Field::new("z", DataType::Int64, false),
    ]))
    .unwrap();
    assert!(Table::open_or_create(&location, "t", required)
        .await
        .is_err());
    // The log's last commit is an ADD COLUMNS naming the column.
    let log =
        std::fs::read_to_string(dir.path().join("t/_delta_log/00000000000000000002.json")).unwrap();
    assert!(
        log.contains("ADD COLUMN") && log.contains("source"),
        "{log}"
    );
}

#[tokio::test]
async fn a_table_partitioned_by_event_type_takes_only_typed_files_until_repartitioned() {
    use super::partition::{DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN};
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
    let columns = hour_partitioned(&Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new(EVENT_TYPE_COLUMN, DataType::Utf8, false),
    ]))
    .unwrap();
    let typed = [DATE_COLUMN, HOUR_COLUMN, EVENT_TYPE_COLUMN];
    let mut table = Table::open_or_create_by(&lake.child("t"), "t", columns.clone(), &typed)
        .await
        .unwrap();
    assert!(table.by_event_type().unwrap());
    // An existing table keeps its partitioning, whatever the opener would create.
    let reopened = Table::open_or_create(&lake.child("t"), "t", columns)
        .await
        .unwrap();
    assert_eq!(reopened.partition_columns().unwrap(), typed);

    let mut purchase = file("p", "2026-01-01T07", 2);
    purchase.event_type = Some("purchase".into());
    table
        .commit(
            CommitKind::Append,
            &[purchase.clone()],
            &[],
            None,
            HashMap::new(),
        )
        .await
        .unwrap();
    let files = table.files().unwrap();
    assert_eq!(
        files[0].path,
        "date=2026-01-01/hour=07/event_type=purchase/p"
    );
    assert_eq!(files[0].event_type.as_deref(), Some("purchase"));
    assert_eq!(files[0].hour, HourKey::parse("2026-01-01T07"));

    // A file without a type, or with a type a path would have to escape: refused, nothing
    // committed.
    let untyped = file("u", "2026-01-01T07", 1);
    let mut escaping = file("e", "2026-01-01T07", 1);
    escaping.event_type = Some("../x".into());
    for bad in [untyped.clone(), escaping] {
        let err = table
            .commit(CommitKind::Append, &[bad], &[], None, HashMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, IoError::Partition { .. }), "{err}");
    }
    assert_eq!(table.version(), 1);

    // Back to hours only: one commit changes the partition columns, removes the typed file
    // and adds an untyped one; a column that does not exist is refused.
    let hours = vec![DATE_COLUMN.to_string(), HOUR_COLUMN.to_string()];
    let err = table
        .commit(
            CommitKind::Repartition(vec!["nope".into()]),
            &[],
            &[],
            None,
            HashMap::new(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no column `nope`"), "{err}");
    table
        .commit(
            CommitKind::Repartition(hours.clone()),
            &[untyped],
            &table.files().unwrap(),
            None,
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(table.partition_columns().unwrap(), hours);
    let reloaded = Table::open(&lake.child("t")).await.unwrap().unwrap();
    assert_eq!(reloaded.partition_columns().unwrap(), hours);
    let files = reloaded.files().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "date=2026-01-01/hour=07/u");
    assert_eq!(files[0].event_type, None);
}
