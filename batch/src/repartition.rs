//! `lambda lake migrate`, second step: an events table partitioned by hour only (written
//! before the `event_type` level existed) becomes partitioned by (date, hour, event_type).
//!
//! Delta cannot change a table's partitioning in place, so each file of the snapshot is
//! read and split by its `event_type` column into one file per type, under
//! `date=…/hour=…/event_type=…/` with the input's name and tags (a flush file's name still
//! says which offsets it holds, so lineage and the writer's exactly-once checks are
//! unchanged; the application transactions stay in the log). One commit then replaces the
//! partition columns (a Delta `metaData` action), removes the old files and adds the new
//! ones, with `dataChange = false`: the rows are the same, which is checked per file before
//! anything is committed. Memory holds one input file and its outputs at a time.
//!
//! A lake writer appending meanwhile loses its commit to the repartition (a metadata
//! change conflicts with every concurrent commit), re-reads the table and writes the new
//! layout; a file it managed to commit on the old layout first is caught by the next round,
//! which rewrites the files still lacking a type. The replaced files go with `lambda lake
//! vacuum` once past the retention.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use lambda_io::delta::{AddFile, CommitKind, Table, TableFile};
use lambda_io::parquet_file::encode_parquet;
use lambda_io::IoError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shared_logic::schema::col;
use shared_logic::EventType;

use crate::error::BatchError;
use crate::lake_tables::LakeTable;

/// Rounds of rewriting before giving up (each one caused by files appended meanwhile).
const ROUNDS: usize = 5;

/// What the repartition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repartition {
    /// Files read (and removed from the snapshot).
    pub files_in: u64,
    /// Files written, one per input file and event type it held.
    pub files_out: u64,
    pub rows: u64,
    /// Commits lost to a concurrent one and planned again.
    pub conflicts: u64,
}

/// Repartitions the lake's events table by event type (see the module docs); `None` when
/// there is no events table or it already has the level.
pub async fn repartition_events(lake: &lambda_io::Lake) -> Result<Option<Repartition>, BatchError> {
    let Some(mut table) = LakeTable::Events.open(lake).await? else {
        return Ok(None);
    };
    let target: Vec<String> = LakeTable::Events
        .partition_columns()
        .iter()
        .map(|c| c.to_string())
        .collect();
    if table.partition_columns()? == target {
        return Ok(None);
    }
    let mut done = Repartition::default();
    for _round in 0..ROUNDS {
        let pending: Vec<TableFile> = table
            .files()?
            .into_iter()
            .filter(|f| f.event_type.is_none())
            .collect();
        let repartitioned = table.partition_columns()? == target;
        if pending.is_empty() && repartitioned {
            return Ok(Some(done));
        }
        let mut adds = Vec::new();
        let mut rows = 0;
        for file in &pending {
            let (split, n) = split_file(&table, file).await?;
            adds.extend(split);
            rows += n;
        }
        let kind = match repartitioned {
            true => CommitKind::Compact,
            false => CommitKind::Repartition(target.clone()),
        };
        let metadata = HashMap::from([(
            "lambda.repartition".to_string(),
            serde_json::json!({ "partition_by": target, "removed": pending.len(), "added": adds.len() }),
        )]);
        match table.commit(kind, &adds, &pending, None, metadata).await {
            Ok(version) => {
                done.files_in += pending.len() as u64;
                done.files_out += adds.len() as u64;
                done.rows += rows;
                tracing::info!(
                    version,
                    removed = pending.len(),
                    added = adds.len(),
                    rows,
                    "events table repartitioned by event type"
                );
            }
            Err(IoError::TableConflict { reason, .. }) => {
                done.conflicts += 1;
                tracing::info!(%reason, "repartition lost to a concurrent commit; planning again");
            }
            Err(e) => return Err(e.into()),
        }
        table.refresh().await?;
    }
    Err(BatchError::Usage(format!(
        "the events table kept changing: {ROUNDS} repartition rounds left files without an event type; stop the lake writers and run `lambda lake migrate` again"
    )))
}

/// Reads one file of the snapshot and writes its rows per event type (written, not yet
/// committed); the files to add and the rows they hold.
async fn split_file(table: &Table, file: &TableFile) -> Result<(Vec<AddFile>, u64), BatchError> {
    let location = table.location().clone();
    let path = location.path(&file.path);
    let url = location.object_url(&path);
    let Some(hour) = file.hour else {
        return Err(BatchError::Usage(format!(
            "{url}: a file of the events table outside every hour partition"
        )));
    };
    let Some(bytes) = location.get(&path).await? else {
        return Err(BatchError::Usage(format!(
            "{url}: a file of the snapshot is missing; nothing committed"
        )));
    };
    let name = file
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&file.path)
        .to_string();
    let split = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || split_rows(bytes, &url))
            .await
            .map_err(|e| BatchError::Usage(format!("repartition task failed: {e}")))??
    };
    let rows_out: u64 = split.values().map(|(_, n)| n).sum();
    if file.rows.is_some_and(|r| r != rows_out) {
        return Err(BatchError::Usage(format!(
            "{url}: the log says {:?} rows, the file holds {rows_out}; nothing committed",
            file.rows
        )));
    }
    let mut adds = Vec::with_capacity(split.len());
    for (event_type, (bytes, rows)) in split {
        let add = AddFile {
            name: name.clone(),
            hour,
            event_type: Some(event_type.as_str().to_string()),
            size: bytes.len() as u64,
            rows,
            tags: file.tags.clone(),
        };
        location.put(&location.path(&add.path()), bytes).await?;
        adds.push(add);
    }
    Ok((adds, rows_out))
}

/// A Parquet file's rows split by their event type: per type, the encoded file and its row
/// count (in the input's order). A row whose type is not one of ours fails the split.
fn split_rows(
    bytes: bytes::Bytes,
    url: &str,
) -> Result<BTreeMap<EventType, (Vec<u8>, u64)>, BatchError> {
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(BatchError::parquet(url))?;
    let schema = reader.schema().clone();
    let column = schema
        .index_of(col::EVENT_TYPE)
        .map_err(|_| BatchError::Usage(format!("{url}: no `{}` column", col::EVENT_TYPE)))?;
    let mut parts: BTreeMap<EventType, Vec<RecordBatch>> = BTreeMap::new();
    for batch in reader.build().map_err(BatchError::parquet(url))? {
        let batch =
            batch.map_err(|e| BatchError::logic(url)(shared_logic::LogicError::Arrow(e)))?;
        let types = arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Utf8)
            .map_err(|e| BatchError::logic(url)(shared_logic::LogicError::Arrow(e)))?;
        let types = types.as_string::<i32>();
        let mut of_row = Vec::with_capacity(types.len());
        for i in 0..types.len() {
            let t = (!types.is_null(i))
                .then(|| EventType::parse(types.value(i)))
                .flatten()
                .ok_or_else(|| {
                    BatchError::Usage(format!(
                        "{url}: row {i} has event type {:?}, not one of ours",
                        (!types.is_null(i)).then(|| types.value(i))
                    ))
                })?;
            of_row.push(t);
        }
        for t in EventType::ALL {
            let mask: BooleanArray = of_row.iter().map(|r| Some(*r == t)).collect();
            if mask.true_count() == 0 {
                continue;
            }
            let part = filter_record_batch(&batch, &mask)
                .map_err(|e| BatchError::logic(url)(shared_logic::LogicError::Arrow(e)))?;
            parts.entry(t).or_default().push(part);
        }
    }
    let mut out = BTreeMap::new();
    for (t, batches) in parts {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        out.insert(t, (encode_parquet(schema.clone(), &batches, url)?, rows));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::flush_commit::tests::{mixed_flush, offsets};
    use crate::flush_commit::{app_id, commit_flush};
    use crate::lake_tables::LakeTables;
    use lambda_io::delta::{DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN};
    use lambda_io::Lake;

    /// The event types the rows of a file of the events table hold.
    pub(crate) async fn types_in(lake: &Lake, file: &TableFile) -> BTreeSet<String> {
        let location = LakeTable::Events.location(lake);
        let bytes = location
            .get(&location.path(&file.path))
            .await
            .unwrap()
            .unwrap();
        let mut out = BTreeSet::new();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let column = batch.column_by_name(col::EVENT_TYPE).unwrap();
            let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
            out.extend(
                column
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_string),
            );
        }
        out
    }

    /// Every file of the events table holds exactly the type its partition names.
    pub(crate) async fn files_hold_their_partitions_type(lake: &Lake) -> BTreeSet<String> {
        let table = LakeTable::Events.open(lake).await.unwrap().unwrap();
        let mut seen = BTreeSet::new();
        for file in table.files().unwrap() {
            let t = file.event_type.clone().expect("a typed partition");
            assert!(
                file.path.contains(&format!("/event_type={t}/")),
                "{}",
                file.path
            );
            assert_eq!(types_in(lake, &file).await, BTreeSet::from([t.clone()]));
            seen.insert(t);
        }
        seen
    }

    #[tokio::test]
    async fn an_hour_partitioned_events_table_is_split_by_type_keeping_rows_offsets_and_transactions(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        // An events table of the earlier layout, written by the lake writer.
        LakeTable::Events
            .open_or_create_by(&lake, &[DATE_COLUMN, HOUR_COLUMN])
            .await
            .unwrap();
        let mut writer = LakeTables::new(lake.clone());
        let app = app_id("events", 0, "g");
        for k in 0..4 {
            commit_flush(&mut writer, mixed_flush(30 * k, 30 * k + 29), &app)
                .await
                .unwrap();
        }
        let old = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert!(old.files().unwrap().iter().all(|f| f.event_type.is_none()));
        let files_before = old.files().unwrap().len() as u64;
        let before = offsets(&lake, LakeTable::Events).await;

        let done = repartition_events(&lake).await.unwrap().unwrap();
        assert_eq!(done.files_in, files_before);
        assert_eq!(done.rows, before.len() as u64);
        let table = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert_eq!(
            table.partition_columns().unwrap(),
            [DATE_COLUMN, HOUR_COLUMN, EVENT_TYPE_COLUMN]
        );
        assert_eq!(
            files_hold_their_partitions_type(&lake).await,
            BTreeSet::from(["add_to_cart", "page_view", "purchase"].map(String::from))
        );
        assert_eq!(done.files_out, table.files().unwrap().len() as u64);
        assert_eq!(offsets(&lake, LakeTable::Events).await, before);
        assert_eq!(table.transaction_version(&app).await.unwrap(), Some(119));
        assert_eq!(repartition_events(&lake).await.unwrap(), None, "done once");

        // The writer, still holding the old snapshot, loses its next commit to the
        // repartition, re-reads and writes the new layout: exactly once, typed.
        let r = commit_flush(&mut writer, mixed_flush(100, 149), &app)
            .await
            .unwrap();
        // Offsets 100–119 (events and dead letters) were committed before.
        assert_eq!((r.already_committed, r.conflicts), (20, 1));
        files_hold_their_partitions_type(&lake).await;
        assert_eq!(
            offsets(&lake, LakeTable::Events).await,
            (0..150).step_by(2).collect::<Vec<_>>()
        );
    }
}
