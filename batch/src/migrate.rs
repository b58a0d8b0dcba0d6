//! `lambda lake migrate`: turns a lake written before the Delta tables (hive-layout Parquet
//! plus the lake writer's `_writer/` intent files) into the Delta tables
//! ([`crate::lake_tables`]) in place, without copying data.
//!
//! For each of `events`, `dead-letter` and `cdc/<table>` that has Parquet files and no
//! `_delta_log` yet: one commit that adds every Parquet file (rows from its footer; a file
//! that is not readable Parquet of the table's schema is reported and left out), except
//! the files a remaining intent lists (a flush that never committed its offsets: the writer
//! re-reads that range), and that records, per source partition, the application
//! transaction the lake writer checks ([`crate::flush_commit`]): `<topic>/<partition>/<group>`
//! at the highest last offset of the partition's files (`import/<source>` for imports), so
//! the writer resumes exactly once. Dead-letter files of the old layout
//! (`dead-letter/date=…/<file>`, no hour) move to hour 00 of their date. The intent files
//! go last. A table that already has a log is left as it is, so a second run does nothing.
//! The events table is then repartitioned by event type when it is not yet
//! ([`crate::repartition`]): the old files are hour-partitioned, and so is the commit that
//! adds them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lambda_io::delta::{AddFile, CommitKind, HourPartition, DATE_COLUMN, HOUR_COLUMN};
use lambda_io::lake_names::parse_flush_file_name;
use lambda_io::Lake;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shared_logic::cdc::CdcTable;

use crate::error::BatchError;
use crate::lake_tables::LakeTable;

/// What the migration did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMigration {
    pub table: String,
    /// The table had a Delta log already: left as it was.
    pub already_delta: bool,
    pub files: u64,
    pub rows: u64,
    /// Old-layout dead-letter files moved into hour 00 of their date.
    pub moved: u64,
    /// Files left out: (URL, why).
    pub skipped: Vec<(String, String)>,
    /// The application transactions recorded: (app id, version).
    pub transactions: Vec<(String, i64)>,
}

/// What the migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub tables: Vec<TableMigration>,
    pub intents_removed: u64,
    /// The events table's repartition by event type, when it was needed.
    pub repartition: Option<crate::repartition::Repartition>,
}

impl MigrateReport {
    /// Whether the run changed nothing (the lake was migrated, or empty).
    pub fn nothing_done(&self) -> bool {
        self.intents_removed == 0
            && self.repartition.is_none()
            && self
                .tables
                .iter()
                .all(|t| t.files == 0 && t.moved == 0 && t.transactions.is_empty())
    }
}

/// The consumer group whose positions the transactions record, per table: `group` for the
/// events writer, the CDC writers' default groups (`lambda-lake-cdc-<table>`) for theirs.
fn group_of(source: &str, table: LakeTable, group: &str) -> String {
    let cdc = match table {
        LakeTable::Cdc(t) => Some(t),
        _ => CdcTable::ALL
            .into_iter()
            .find(|t| t.default_topic() == source),
    };
    match cdc {
        Some(t) => format!("lambda-lake-cdc-{}", t.name()),
        None => group.to_string(),
    }
}

/// The files the remaining intents list (relative to the lake's root), and the intents.
async fn intents(lake: &Lake) -> Result<(BTreeSet<String>, Vec<Path>), BatchError> {
    #[derive(serde::Deserialize)]
    struct Intent {
        files: Vec<String>,
    }
    let (mut files, mut paths) = (BTreeSet::new(), Vec::new());
    for object in lake.list(&lake.path("_writer")).await? {
        if let Some(bytes) = lake.get(&object.location).await? {
            match serde_json::from_slice::<Intent>(&bytes) {
                Ok(i) => files.extend(i.files),
                Err(e) => {
                    return Err(BatchError::Manifest {
                        path: lake.object_url(&object.location),
                        reason: format!("not an intent file: {e}"),
                    })
                }
            }
        }
        paths.push(object.location);
    }
    Ok((files, paths))
}

/// Migrates the lake at `lake` (see the module docs); `group` is the events writer's
/// consumer group.
pub async fn migrate(lake: &Lake, group: &str) -> Result<MigrateReport, BatchError> {
    let (uncommitted, intent_paths) = intents(lake).await?;
    let mut report = MigrateReport::default();
    for table in LakeTable::ALL {
        report
            .tables
            .push(migrate_table(lake, table, group, &uncommitted).await?);
    }
    for path in intent_paths {
        lake.delete(&path).await?;
        report.intents_removed += 1;
    }
    report.repartition = crate::repartition::repartition_events(lake).await?;
    Ok(report)
}

fn column_names(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

async fn migrate_table(
    lake: &Lake,
    table: LakeTable,
    group: &str,
    uncommitted: &BTreeSet<String>,
) -> Result<TableMigration, BatchError> {
    let location = table.location(lake);
    let mut done = TableMigration {
        table: table.dir(),
        ..Default::default()
    };
    // A table created but never committed to (a run that stopped right after creating
    // it) is migrated into; any other is left alone.
    if let Some(existing) = table.open(lake).await? {
        if existing.version() > 0 || !existing.files()?.is_empty() {
            done.already_delta = true;
            return Ok(done);
        }
    }
    let objects = lake.list(&location.path("")).await?;
    let root = location.path("");
    let expected = column_names(&table.schema());
    let mut adds = Vec::new();
    let mut versions: BTreeMap<String, i64> = BTreeMap::new();
    for object in objects {
        let Some(relative) = object.location.prefix_match(&root) else {
            continue;
        };
        let segments: Vec<String> = relative.map(|p| p.as_ref().to_string()).collect();
        let Some(name) = segments.last().filter(|n| n.ends_with(".parquet")).cloned() else {
            continue;
        };
        let url = lake.object_url(&object.location);
        let from_root = format!("{}/{}", table.dir(), segments.join("/"));
        if uncommitted.contains(&from_root) {
            done.skipped
                .push((url, "listed by an intent: never committed".into()));
            continue;
        }
        let hour = match &segments[..] {
            [date, hour, _] => HourPartition::from_directory(date, hour).map(|h| h.0),
            // The old dead-letter layout: a date, no hour.
            [date, _] if table == LakeTable::DeadLetter => {
                HourPartition::from_directory(date, "hour=00").map(|h| h.0)
            }
            _ => None,
        };
        let Some(hour) = hour else {
            done.skipped
                .push((url, "not in a date=…/hour=… directory".into()));
            continue;
        };
        // The whole file, one at a time: its footer is checked before it is trusted.
        let Some(bytes) = lake.get(&object.location).await? else {
            continue;
        };
        let opened = lambda_io::parquet_footer::check(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())
            });
        let footer = match opened {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %url, error = %e, "not readable Parquet: left out");
                done.skipped
                    .push((url, format!("not readable Parquet: {e}")));
                continue;
            }
        };
        let columns = column_names(footer.schema());
        // Files written before the table's added columns lack them (read as null).
        let added = table.added_columns();
        let older = expected.iter().filter(|c| !added.contains(&c.as_str()));
        if columns != expected && !columns.iter().eq(older) {
            done.skipped.push((
                url,
                format!("not this table's columns: {}", columns.join(", ")),
            ));
            continue;
        }
        let rows = footer.metadata().file_metadata().num_rows().max(0) as u64;
        let add = AddFile {
            name: name.clone(),
            hour,
            event_type: None,
            size: object.size,
            rows,
            tags: Default::default(),
        };
        if segments.len() == 2 {
            let to = location.path(&add.path());
            lake.store()
                .rename(&object.location, &to)
                .await
                .map_err(lambda_io::IoError::store("move", &object.location))?;
            done.moved += 1;
        }
        if let Some((source, partition, _, last)) = parse_flush_file_name(&name) {
            let app = if partition < 0 {
                format!("import/{source}")
            } else {
                crate::flush_commit::app_id(&source, partition, &group_of(&source, table, group))
            };
            let v = versions.entry(app).or_insert(last);
            *v = (*v).max(last);
        }
        done.files += 1;
        done.rows += rows;
        adds.push(add);
    }
    if adds.is_empty() {
        return Ok(done);
    }
    done.transactions = versions.into_iter().collect();
    let transactions: Vec<(String, i64)> = done.transactions.clone();
    let metadata = HashMap::from([(
        "lambda.migrate".to_string(),
        serde_json::json!({ "files": done.files, "rows": done.rows }),
    )]);
    // The old files are partitioned by hour only, so is the table they are committed to
    // (an empty table created with another partitioning takes the hour's back).
    let hours = [DATE_COLUMN, HOUR_COLUMN];
    let mut created = table.open_or_create_by(lake, &hours).await?;
    let kind = match created.partition_columns()? == hours {
        true => CommitKind::Append,
        false => CommitKind::Repartition(hours.iter().map(|c| c.to_string()).collect()),
    };
    created
        .commit_with(kind, &adds, &[], &transactions, metadata)
        .await?;
    tracing::info!(table = %table.dir(), files = done.files, rows = done.rows, skipped = done.skipped.len(), "migrated to a Delta table");
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flush_commit::tests::{flush, offsets, NOW};
    use crate::flush_commit::{app_id, commit_flush};
    use crate::lake_tables::LakeTables;
    use crate::writer::{encode_dead_letters, encode_events};
    use lambda_io::delta::HourPartition;
    use lambda_io::lake_names::flush_file_name;

    /// Writes the flush `[first, last]` of partition 0 as the lake writer did before the
    /// Delta tables: hive paths, names without suffix, dead letters without an hour.
    async fn old_flush(lake: &Lake, first: i64, last: i64) -> Vec<String> {
        let mut f = flush(first, last);
        let name = flush_file_name("events", 0, first, last);
        let mut written = Vec::new();
        let (_, files) = encode_events(std::mem::take(&mut f.events), "old".into(), false)
            .await
            .unwrap();
        for file in files {
            written.push(format!(
                "events/{}/{name}",
                HourPartition(file.hour).directory()
            ));
            lake.put(&lake.path(written.last().unwrap()), file.bytes)
                .await
                .unwrap();
        }
        for file in encode_dead_letters(&mut f.dead_letters, NOW, "old").unwrap() {
            written.push(format!("dead-letter/date=2026-01-01/{name}"));
            lake.put(&lake.path(written.last().unwrap()), file.bytes)
                .await
                .unwrap();
        }
        written
    }

    #[tokio::test]
    async fn an_old_lake_becomes_delta_tables_the_writer_resumes_exactly_once_and_a_second_run_does_nothing(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        // Two committed flushes, one that crashed before its commit (its intent remains),
        // and a corrupt file.
        old_flush(&lake, 0, 9).await;
        old_flush(&lake, 10, 19).await;
        let crashed = old_flush(&lake, 20, 29).await;
        let intent = serde_json::json!({ "first": 20, "last": 29, "files": crashed });
        let intent_path = lake.path(&format!("_writer/events/p0/{:020}-{:020}.json", 20, 29));
        lake.put(&intent_path, intent.to_string().into_bytes())
            .await
            .unwrap();
        let corrupt = "events/date=2025-12-31/hour=23/zz-corrupt.parquet";
        lake.put(&lake.path(corrupt), b"PAR1 not parquet PAR1".to_vec())
            .await
            .unwrap();

        let report = migrate(&lake, "g").await.unwrap();
        let events = &report.tables[0];
        assert_eq!(
            (events.table.as_str(), events.files, events.rows),
            ("events", 3, 10)
        );
        assert_eq!(events.transactions, vec![("events/0/g".to_string(), 19)]);
        let skipped: Vec<&str> = events.skipped.iter().map(|(_, why)| why.as_str()).collect();
        assert_eq!(skipped.len(), 2, "{:?}", events.skipped);
        assert!(events
            .skipped
            .iter()
            .any(|(url, why)| url.ends_with("zz-corrupt.parquet") && why.contains("not readable")));
        let dead = &report.tables[1];
        assert_eq!((dead.files, dead.rows, dead.moved), (2, 10, 2));
        assert_eq!(dead.transactions, vec![("events/0/g".to_string(), 19)]);
        assert_eq!(report.intents_removed, 1);
        assert!(lake.get(&intent_path).await.unwrap().is_none());
        assert!(dir
            .path()
            .join("dead-letter/date=2026-01-01/hour=00")
            .join(flush_file_name("events", 0, 0, 9))
            .exists());
        assert_eq!(lake.hours().await.unwrap().len(), 2);
        // The old events files are split by type (here all page views) into the new layout.
        let split = report
            .repartition
            .clone()
            .expect("the events table repartitioned");
        assert_eq!((split.files_in, split.files_out, split.rows), (3, 3, 10));
        let types = crate::repartition::tests::files_hold_their_partitions_type(&lake).await;
        assert_eq!(types, BTreeSet::from(["page_view".to_string()]));

        // The writer resumes at the crashed range (its Kafka offset was not committed):
        // what the tables hold is skipped, the rest committed once.
        let mut tables = LakeTables::new(lake.clone());
        let r = commit_flush(&mut tables, flush(0, 29), &app_id("events", 0, "g"))
            .await
            .unwrap();
        assert_eq!(r.already_committed, 20);
        assert_eq!(
            offsets(&lake, LakeTable::Events).await,
            (0..30).step_by(2).collect::<Vec<_>>()
        );
        assert_eq!(
            offsets(&lake, LakeTable::DeadLetter).await,
            (1..30).step_by(2).collect::<Vec<_>>()
        );

        let again = migrate(&lake, "g").await.unwrap();
        assert!(again.nothing_done(), "{again:?}");
        assert!(again.tables[..2].iter().all(|t| t.already_delta));
    }
}
