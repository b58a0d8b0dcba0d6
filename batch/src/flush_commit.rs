//! One flush into the lake's tables, exactly once: for each table the flush has records for
//! (its events or its changes, its dead letters), one Delta commit that adds the flush's
//! files together with the application transaction of its source (`app_id`, version = the
//! flush's last offset).
//!
//! The invariant, enforced here: a record destined to table T whose offset is at or below
//! T's transaction version for `app_id` is already in T. So before each commit the table is
//! refreshed and such records are dropped (a resumed writer re-reading a range it had
//! committed before its crash, a zombie that lost its partition); a commit that loses to a
//! concurrent commit of the same `app_id` is a conflict (Delta's conflict checker), after
//! which the table is refreshed, the records now committed are dropped, the rest re-encoded
//! and committed again. Files written for a commit that lost are in no snapshot: garbage
//! that `lambda lake vacuum` removes. Every file name carries a random suffix
//! ([`lambda_io::lake_names::unique_flush_file_name`]), so two writes of one range never
//! replace each other's bytes.

use std::collections::HashMap;

use lambda_io::delta::{AddFile, CommitKind};
use lambda_io::lake_names::unique_flush_file_name;
use lambda_io::IoError;

use crate::error::BatchError;
use crate::lake_tables::{LakeTable, LakeTables};
use crate::writer::{encode_dead_letters, encode_events, Encoded, Flush};

/// Commits a table tries before giving up on a flush (each lost only to a concurrent one).
const ATTEMPTS: usize = 20;

/// What a flush committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// URLs of the files committed.
    pub files: Vec<String>,
    pub events: u64,
    pub changes: u64,
    pub dead_letters: u64,
    pub bytes: u64,
    /// Records dropped because their table already held them.
    pub already_committed: u64,
    /// Commits lost to a concurrent commit and retried.
    pub conflicts: u64,
}

/// Drops the records destined to `table` at or below `done`; how many went.
fn drop_committed(flush: &mut Flush, table: LakeTable, done: i64) -> u64 {
    let before;
    let after;
    match table {
        LakeTable::Events => {
            before = flush.events.len();
            flush.events.retain(|e| e.origin().offset > done);
            after = flush.events.len();
        }
        LakeTable::DeadLetter => {
            before = flush.dead_letters.len();
            flush.dead_letters.retain(|d| d.origin.offset > done);
            after = flush.dead_letters.len();
        }
        LakeTable::Cdc(t) => {
            before = flush.changes.len();
            flush.changes.retain(|c| c.table != t || c.offset > done);
            after = flush.changes.len();
        }
    }
    (before - after) as u64
}

/// Encodes the flush's records of `table` (events per event type too when `by_type`).
async fn encode(
    flush: &mut Flush,
    table: LakeTable,
    display: &str,
    by_type: bool,
) -> Result<Vec<Encoded>, BatchError> {
    match table {
        LakeTable::Events => {
            let events = std::mem::take(&mut flush.events);
            let (events, files) = encode_events(events, display.to_string(), by_type).await?;
            flush.events = events;
            Ok(files)
        }
        LakeTable::DeadLetter => {
            encode_dead_letters(&mut flush.dead_letters, flush.received_ms, display)
        }
        LakeTable::Cdc(t) => {
            // This table's changes first, then the others.
            flush.changes.sort_by_key(|c| c.table != t);
            let mine = flush.changes.partition_point(|c| c.table == t);
            crate::cdc_files::encode_hours(&mut flush.changes[..mine], display)
        }
    }
}

/// Commits the flush's records of one table (see the module docs).
async fn commit_table(
    tables: &mut LakeTables,
    table: LakeTable,
    flush: &mut Flush,
    app_id: &str,
    report: &mut FlushReport,
) -> Result<(), BatchError> {
    let location = table.location(tables.lake());
    for attempt in 0..ATTEMPTS {
        // The version this process committed last, when nothing moved the snapshot since;
        // otherwise the refreshed table's (a commit of the same application by another
        // writer conflicts either way).
        let known = match attempt {
            0 => tables.known_transaction(table, app_id),
            _ => None,
        };
        let done = match known {
            Some(version) => version,
            None => tables
                .latest(table)
                .await?
                .transaction_version(app_id)
                .await?
                .unwrap_or(i64::MIN),
        };
        report.already_committed += drop_committed(flush, table, done);
        let name = unique_flush_file_name(&flush.source, flush.partition, flush.first, flush.last);
        // The table's partitioning as of this attempt's snapshot (a migration may change it
        // between two attempts: its commit conflicts with ours, and we re-plan).
        let by_type = tables.get(table).await?.by_event_type()?;
        let display = location.object_url(&location.path(&name));
        let files = encode(flush, table, &display, by_type).await?;
        if files.is_empty() {
            return Ok(());
        }
        let mut adds = Vec::with_capacity(files.len());
        let mut urls = Vec::with_capacity(files.len());
        let (mut rows, mut bytes) = (0, 0);
        for file in files {
            let add = AddFile {
                name: name.clone(),
                hour: file.hour,
                event_type: file.event_type.map(|t| t.as_str().to_string()),
                size: file.bytes.len() as u64,
                rows: file.rows,
                tags: Default::default(),
            };
            let path = location.path(&add.path());
            (rows, bytes) = (rows + file.rows, bytes + add.size);
            location.put(&path, file.bytes).await?;
            urls.push(location.object_url(&path));
            adds.push(add);
        }
        let metadata = HashMap::from([(
            "lambda.flush".to_string(),
            serde_json::json!({
                "source": flush.source, "partition": flush.partition,
                "first": flush.first, "last": flush.last,
            }),
        )]);
        let committed = tables
            .get(table)
            .await?
            .commit(
                CommitKind::Append,
                &adds,
                &[],
                Some((app_id, flush.last)),
                metadata,
            )
            .await;
        match committed {
            Ok(_) => {
                tables.committed(table, app_id, flush.last);
                report.files.extend(urls);
                report.bytes += bytes;
                match table {
                    LakeTable::Events => report.events += rows,
                    LakeTable::DeadLetter => report.dead_letters += rows,
                    LakeTable::Cdc(_) => report.changes += rows,
                }
                return Ok(());
            }
            Err(IoError::TableConflict { reason, .. }) => {
                report.conflicts += 1;
                tracing::info!(table = %table.dir(), app_id, first = flush.first, last = flush.last, %reason, "flush commit lost to a concurrent commit; re-planning on the new snapshot");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IoError::TableConflict {
        table: location.display(),
        reason: format!(
            "the flush of {app_id} [{}, {}] lost {ATTEMPTS} commits in a row to concurrent ones",
            flush.first, flush.last
        ),
    }
    .into())
}

/// Commits `flush` into the lake's tables under the application id `app_id` (see the
/// module docs). Returns what was committed; records already committed are counted, not
/// written again.
pub async fn commit_flush(
    tables: &mut LakeTables,
    mut flush: Flush,
    app_id: &str,
) -> Result<FlushReport, BatchError> {
    let mut report = FlushReport::default();
    let mut targets = Vec::new();
    if !flush.events.is_empty() {
        targets.push(LakeTable::Events);
    }
    for table in flush.changes.iter().map(|c| LakeTable::Cdc(c.table)) {
        if !targets.contains(&table) {
            targets.push(table);
        }
    }
    if !flush.dead_letters.is_empty() {
        targets.push(LakeTable::DeadLetter);
    }
    for table in targets {
        commit_table(tables, table, &mut flush, app_id, &mut report).await?;
    }
    Ok(report)
}

/// The application id of a Kafka source partition read by a consumer group.
pub fn app_id(topic: &str, partition: i32, group: &str) -> String {
    format!("{topic}/{partition}/{group}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use lambda_io::Lake;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use shared_logic::{Origin, Validator};

    pub(crate) const NOW: i64 = 1_767_225_600_000;

    /// A flush of `[first, last]` of partition 0: even offsets valid (event time `NOW`
    /// minus the offset in seconds), odd ones rejected.
    pub(crate) fn flush(first: i64, last: i64) -> Flush {
        flush_of(first, last, false)
    }

    /// [`flush`] whose events cycle through the three event types (by offset).
    pub(crate) fn mixed_flush(first: i64, last: i64) -> Flush {
        flush_of(first, last, true)
    }

    fn flush_of(first: i64, last: i64, mixed: bool) -> Flush {
        let v = Validator::default();
        let mut f = Flush {
            source: "events".into(),
            partition: 0,
            first,
            last,
            events: Vec::new(),
            changes: Vec::new(),
            dead_letters: Vec::new(),
            received_ms: NOW,
        };
        for offset in first..=last {
            let t = NOW - offset * 1000;
            let json = if mixed && offset % 2 == 0 && offset % 3 == 1 {
                format!(
                    r#"{{"event_id":"e{offset}","event_type":"add_to_cart","event_time":{t},"user_id":"u","product_id":"p","quantity":1}}"#
                )
            } else if mixed && offset % 2 == 0 && offset % 3 == 2 {
                format!(
                    r#"{{"event_id":"e{offset}","event_type":"purchase","event_time":{t},"user_id":"u","product_id":"p","quantity":1,"price":"2.50","currency":"USD"}}"#
                )
            } else if offset % 2 == 0 {
                format!(
                    r#"{{"event_id":"e{offset}","event_type":"page_view","event_time":{},"user_id":"u","url":"/"}}"#,
                    NOW - offset * 1000
                )
            } else {
                "{not json".to_string()
            };
            match v.validate(
                json.as_bytes(),
                Origin {
                    partition: 0,
                    offset,
                },
                NOW,
            ) {
                Ok(e) => f.events.push(e),
                Err(d) => f.dead_letters.push(d.into()),
            }
        }
        f
    }

    /// The offsets of every row of the table's current snapshot, sorted, duplicates kept.
    pub(crate) async fn offsets(lake: &Lake, table: LakeTable) -> Vec<i64> {
        let t = table.open(lake).await.unwrap().unwrap();
        let location = table.location(lake);
        let mut out = Vec::new();
        for f in t.files().unwrap() {
            let bytes = location
                .get(&location.path(&f.path))
                .await
                .unwrap()
                .unwrap();
            for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
            {
                let batch = batch.unwrap();
                let o = batch.column_by_name("kafka_offset").unwrap();
                out.extend(o.as_primitive::<Int64Type>().values().iter().copied());
            }
        }
        out.sort_unstable();
        out
    }

    #[tokio::test]
    async fn events_land_in_one_file_per_hour_and_event_type_and_an_older_table_keeps_its_layout() {
        use crate::repartition::tests::files_hold_their_partitions_type;
        use lambda_io::delta::{DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN};
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let mut tables = LakeTables::new(lake.clone());
        let r = commit_flush(&mut tables, mixed_flush(0, 59), &app_id("events", 0, "g"))
            .await
            .unwrap();
        let events = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert_eq!(
            events.partition_columns().unwrap(),
            [DATE_COLUMN, HOUR_COLUMN, EVENT_TYPE_COLUMN]
        );
        let types = files_hold_their_partitions_type(&lake).await;
        assert_eq!(types.len(), 3, "{types:?}");
        // One commit still: every file of the flush, one transaction.
        assert_eq!(events.version(), 1);
        let events_files = r.files.iter().filter(|u| u.contains("/events/")).count();
        assert_eq!(events_files, events.files().unwrap().len());
        assert_eq!(r.events, 30);
        assert_eq!(
            offsets(&lake, LakeTable::Events).await,
            (0..60).step_by(2).collect::<Vec<_>>()
        );

        // A table of the earlier layout (by hour only) is written as it is.
        let old_dir = tempfile::tempdir().unwrap();
        let old = Lake::open(old_dir.path().to_str().unwrap(), false).unwrap();
        LakeTable::Events
            .open_or_create_by(&old, &[DATE_COLUMN, HOUR_COLUMN])
            .await
            .unwrap();
        let mut tables = LakeTables::new(old.clone());
        commit_flush(&mut tables, mixed_flush(0, 59), &app_id("events", 0, "g"))
            .await
            .unwrap();
        let events = LakeTable::Events.open(&old).await.unwrap().unwrap();
        assert!(events
            .files()
            .unwrap()
            .iter()
            .all(|f| f.event_type.is_none()));
        assert_eq!(
            offsets(&old, LakeTable::Events).await,
            (0..60).step_by(2).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_zombie_flush_of_a_committed_range_commits_only_what_is_not_there() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let app = app_id("events", 0, "g");
        // The partition's owner commits [0, 9] ...
        let mut owner = LakeTables::new(lake.clone());
        let r = commit_flush(&mut owner, flush(0, 9), &app).await.unwrap();
        assert_eq!((r.events, r.dead_letters, r.already_committed), (5, 5, 0));
        // ... a writer that had the partition before (or a resumed one) flushes [0, 14]:
        // only 10..=14 go in, the rest is counted as already there.
        let mut zombie = LakeTables::new(lake.clone());
        let r = commit_flush(&mut zombie, flush(0, 14), &app).await.unwrap();
        assert_eq!((r.events, r.dead_letters, r.already_committed), (3, 2, 10));
        // The same range again: nothing.
        let r = commit_flush(&mut owner, flush(0, 14), &app).await.unwrap();
        assert_eq!((r.events, r.dead_letters, r.files.len()), (0, 0, 0));
        assert_eq!(
            offsets(&lake, LakeTable::Events).await,
            (0..=14).step_by(2).collect::<Vec<_>>()
        );
        assert_eq!(
            offsets(&lake, LakeTable::DeadLetter).await,
            (1..=14).step_by(2).collect::<Vec<_>>()
        );
        // Another group's application id is another source position.
        let r = commit_flush(&mut owner, flush(0, 1), &app_id("events", 0, "other"))
            .await
            .unwrap();
        assert_eq!(r.events, 1);
    }

    #[tokio::test]
    async fn a_version_known_from_an_own_commit_is_not_trusted_once_the_table_moved() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let (x, y) = (app_id("events", 0, "g"), app_id("events", 1, "g"));
        let mut a = LakeTables::new(lake.clone());
        commit_flush(&mut a, flush(0, 9), &x).await.unwrap();
        assert_eq!(a.known_transaction(LakeTable::Events, &x), Some(9));
        // Another writer takes partition 0 over and commits [10, 19].
        let mut b = LakeTables::new(lake.clone());
        commit_flush(&mut b, flush(0, 19), &x).await.unwrap();
        // A commits for another partition: its snapshot moves past B's commit, so what it
        // knew of partition 0 no longer holds (no conflict would catch a stale filter).
        commit_flush(&mut a, flush(0, 3), &y).await.unwrap();
        assert_eq!(a.known_transaction(LakeTable::Events, &x), None);
        let r = commit_flush(&mut a, flush(0, 19), &x).await.unwrap();
        assert_eq!((r.events, r.dead_letters, r.already_committed), (0, 0, 20));
        let partition_0: Vec<i64> = offsets(&lake, LakeTable::Events).await;
        assert_eq!(partition_0.len(), 10 + 2, "{partition_0:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_flushing_the_same_ranges_at_once_never_both_commit_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let app = app_id("events", 0, "g");
        let (mut a, mut b) = (LakeTables::new(lake.clone()), LakeTables::new(lake.clone()));
        let mut conflicts = 0;
        for round in 0..8i64 {
            // The two cut the partition differently: their ranges overlap partly.
            let (first, last_a, last_b) = (round * 20, round * 20 + 19, round * 20 + 13);
            let (ra, rb) = tokio::join!(
                commit_flush(&mut a, flush(first, last_a), &app),
                commit_flush(&mut b, flush(first, last_b), &app)
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            conflicts += ra.conflicts + rb.conflicts;
        }
        eprintln!("commits lost to the other writer and re-planned: {conflicts}");
        let events = offsets(&lake, LakeTable::Events).await;
        let letters = offsets(&lake, LakeTable::DeadLetter).await;
        assert_eq!(
            events,
            (0..160).step_by(2).collect::<Vec<_>>(),
            "conflicts: {conflicts}"
        );
        assert_eq!(letters, (1..160).step_by(2).collect::<Vec<_>>());
    }
}
