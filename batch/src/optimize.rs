//! `lambda lake optimize`: compacts the many small flush files of settled hours into few
//! large ones, in every lake table ([`crate::lake_tables`]).
//!
//! An hour is settled once its end plus the settle time is past. A settled hour with at
//! least two files is rewritten into files of at most the target size. The source offsets
//! the inputs held travel with the output: its `lambda.offsets` tag lists, per source
//! partition, the range of the inputs (`<source>/p<partition>:<first>-<last>;…`), and when
//! they all came from one source partition the name is a flush name over that range
//! (`<source>-p<partition>-<first>-<last>-<suffix>`), so lineage still reads it; otherwise
//! `compacted-<suffix>.parquet`. Memory stays bounded: one input file and one output file
//! at a time. The rows are kept exactly (same count, same content, in the inputs' order),
//! which is checked before the commit.
//!
//! Each hour is one commit that removes the hour's files and adds the new ones with
//! `dataChange = false` (readers of the change feed see no new data). The lake writer's
//! appends are blind and never conflict with it; a compaction commit that conflicts anyway
//! (another optimize, a late append the checker objects to) is abandoned for that hour
//! (the next run compacts it). Its written files, and the replaced ones once older than the
//! retention, go with `lambda lake vacuum`.

use std::collections::{BTreeMap, HashMap};

use arrow::datatypes::SchemaRef;
use lambda_io::delta::{AddFile, CommitKind, Table, TableFile};
use lambda_io::lake_names::{compacted_file_name, parse_flush_file_name, unique_flush_file_name};
use lambda_io::parquet_file::parquet_writer;
use lambda_io::{IoError, Lake};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use shared_logic::window::HourKey;

use crate::error::BatchError;
use crate::lake_tables::LakeTable;

/// How to compact.
#[derive(Debug, Clone)]
pub struct OptimizeOptions {
    /// An hour is compacted once its end is this long past.
    pub settle_ms: i64,
    /// Largest output file.
    pub target_bytes: u64,
    /// The clock the settle time is measured against.
    pub now_ms: i64,
}

/// What a compaction of one table did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCompaction {
    pub table: String,
    pub hours: u64,
    pub files_removed: u64,
    pub files_added: u64,
    pub rows: u64,
    /// Hours whose commit conflicted (left for the next run).
    pub conflicts: u64,
}

/// Compacts every table of `lake`.
pub async fn optimize(
    lake: &Lake,
    opts: &OptimizeOptions,
) -> Result<Vec<TableCompaction>, BatchError> {
    let mut out = Vec::new();
    for table in LakeTable::ALL {
        if let Some(mut opened) = table.open(lake).await? {
            out.push(optimize_table(&mut opened, &table.dir(), opts).await?);
        }
    }
    Ok(out)
}

/// The tag that lists the source offsets a compacted file holds.
pub const OFFSETS_TAG: &str = "lambda.offsets";

/// Per source partition, the offset range a set of files holds (from their names, or the
/// tags of files compacted before).
#[derive(Debug, Default, PartialEq, Eq)]
struct Spans(BTreeMap<(String, i32), (i64, i64)>);

impl Spans {
    fn of(files: &[TableFile]) -> Spans {
        let mut spans = Spans::default();
        for f in files {
            let name = f.path.rsplit('/').next().unwrap_or_default();
            if let Some((source, partition, first, last)) = parse_flush_file_name(name) {
                spans.add(source, partition, first, last);
            }
            for part in f
                .tags
                .get(OFFSETS_TAG)
                .into_iter()
                .flat_map(|t| t.split(';'))
            {
                if let Some(((source, partition), (first, last))) = parse_span(part) {
                    spans.add(source, partition, first, last);
                }
            }
        }
        spans
    }

    fn add(&mut self, source: String, partition: i32, first: i64, last: i64) {
        let e = self.0.entry((source, partition)).or_insert((first, last));
        *e = (e.0.min(first), e.1.max(last));
    }

    fn tag(&self) -> String {
        self.0
            .iter()
            .map(|((s, p), (f, l))| format!("{s}/p{p}:{f}-{l}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// A new name for an output file.
    fn name(&self) -> String {
        match self.0.iter().next() {
            Some(((source, partition), (first, last))) if self.0.len() == 1 => {
                unique_flush_file_name(source, *partition, *first, *last)
            }
            _ => compacted_file_name(),
        }
    }
}

fn parse_span(text: &str) -> Option<((String, i32), (i64, i64))> {
    let (key, range) = text.rsplit_once(':')?;
    let (source, partition) = key.rsplit_once("/p")?;
    let (first, last) = range.split_once('-')?;
    Some((
        (source.to_string(), partition.parse().ok()?),
        (first.parse().ok()?, last.parse().ok()?),
    ))
}

/// Compacts the settled hours of one table.
pub async fn optimize_table(
    table: &mut Table,
    name: &str,
    opts: &OptimizeOptions,
) -> Result<TableCompaction, BatchError> {
    let mut report = TableCompaction {
        table: name.to_string(),
        ..Default::default()
    };
    // Files are compacted within their partition: an hour, or an hour's event type.
    let mut partitions: BTreeMap<(HourKey, Option<String>), Vec<TableFile>> = BTreeMap::new();
    for file in table.files()? {
        if let Some(hour) = file.hour {
            if hour.start_ms() + 3_600_000 + opts.settle_ms <= opts.now_ms {
                let key = (hour, file.event_type.clone());
                partitions.entry(key).or_default().push(file);
            }
        }
    }
    for ((hour, event_type), files) in partitions {
        if files.len() < 2 {
            continue;
        }
        let partition = Partition {
            hour,
            event_type: event_type.as_deref(),
        };
        let Some(added) = rewrite(table.location(), partition, &files, opts.target_bytes).await?
        else {
            continue;
        };
        report.rows += added.iter().map(|f| f.rows).sum::<u64>();
        let removed = files;
        if removed.is_empty() {
            continue;
        }
        let metadata = HashMap::from([(
            "lambda.optimize".to_string(),
            serde_json::json!({ "hour": hour.to_string(), "event_type": event_type, "removed": removed.len(), "added": added.len() }),
        )]);
        match table
            .commit(CommitKind::Compact, &added, &removed, None, metadata)
            .await
        {
            Ok(_) => {
                report.hours += 1;
                report.files_removed += removed.len() as u64;
                report.files_added += added.len() as u64;
                tracing::info!(table = name, %hour, ?event_type, removed = removed.len(), added = added.len(), "partition compacted");
            }
            Err(IoError::TableConflict { reason, .. }) => {
                report.conflicts += 1;
                tracing::warn!(table = name, %hour, ?event_type, %reason, "compaction conflicted with a concurrent commit; the hour is left for the next run");
                table.refresh().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// The partition a group of files shares.
#[derive(Debug, Clone, Copy)]
struct Partition<'a> {
    hour: HourKey,
    event_type: Option<&'a str>,
}

impl std::fmt::Display for Partition<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event_type {
            Some(t) => write!(f, "hour {} type {t}", self.hour),
            None => write!(f, "hour {}", self.hour),
        }
    }
}

struct Output {
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

/// Rewrites one group's files into files of at most `target` bytes (written, not yet
/// committed); `None` when the group cannot be compacted (files of different schemas, an
/// unreadable file: reported, left as they are).
async fn rewrite(
    location: &Lake,
    partition: Partition<'_>,
    group: &[TableFile],
    target: u64,
) -> Result<Option<Vec<AddFile>>, BatchError> {
    let spans = Spans::of(group);
    let mut schema: Option<SchemaRef> = None;
    let mut out: Vec<AddFile> = Vec::new();
    let mut current: Option<Output> = None;
    let mut rows_in = 0u64;
    for file in group {
        let path = location.path(&file.path);
        let url = location.object_url(&path);
        let Some(bytes) = location.get(&path).await? else {
            tracing::warn!(file = %url, "a file of the snapshot is missing; the group is left as it is");
            return Ok(None);
        };
        let decoded =
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(BatchError::parquet(&url));
        let builder = match decoded {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %url, error = %e, "unreadable file; its group is left as it is");
                return Ok(None);
            }
        };
        let file_schema = builder.schema().clone();
        if schema.as_ref().is_some_and(|s| *s != file_schema) {
            tracing::warn!(file = %url, "a file of another schema; its group is left as it is");
            return Ok(None);
        }
        schema = Some(file_schema.clone());
        let reader = builder.build().map_err(BatchError::parquet(&url))?;
        let schema = file_schema;
        // Decoding and encoding are CPU work: off the async threads.
        let (output, read, finished) = tokio::task::spawn_blocking({
            let url = url.clone();
            let name = format!("{} {partition}", location.display());
            let mut output = current.take();
            move || -> Result<_, BatchError> {
                let mut read = 0u64;
                let mut finished = Vec::new();
                for batch in reader {
                    let batch = batch.map_err(|e| {
                        BatchError::logic(url.clone())(shared_logic::LogicError::Arrow(e))
                    })?;
                    read += batch.num_rows() as u64;
                    let o = match output.as_mut() {
                        Some(o) => o,
                        None => output.insert(Output {
                            writer: parquet_writer(schema.clone(), &name)?,
                            rows: 0,
                        }),
                    };
                    o.writer.write(&batch).map_err(BatchError::parquet(&name))?;
                    o.rows += batch.num_rows() as u64;
                    let size = (o.writer.bytes_written() + o.writer.in_progress_size()) as u64;
                    if size >= target {
                        if let Some(o) = output.take() {
                            finished.push(finish(o, &name)?);
                        }
                    }
                }
                Ok((output, read, finished))
            }
        })
        .await
        .map_err(|e| BatchError::Usage(format!("compaction task failed: {e}")))??;
        current = output;
        rows_in += read;
        for (bytes, rows) in finished {
            out.push(put(location, partition, &spans, bytes, rows).await?);
        }
    }
    if let Some(o) = current.take() {
        let name = format!("{} {partition}", location.display());
        let (bytes, rows) = tokio::task::spawn_blocking(move || finish(o, &name))
            .await
            .map_err(|e| BatchError::Usage(format!("compaction task failed: {e}")))??;
        out.push(put(location, partition, &spans, bytes, rows).await?);
    }
    let rows_out: u64 = out.iter().map(|f| f.rows).sum();
    let recorded: Option<u64> = group.iter().map(|f| f.rows).sum();
    if rows_out != rows_in || recorded.is_some_and(|r| r != rows_in) {
        return Err(BatchError::Usage(format!(
            "compaction of {} {partition}: read {rows_in} rows (the log says {recorded:?}), wrote {rows_out}; nothing committed",
            location.display()
        )));
    }
    Ok(Some(out))
}

fn finish(o: Output, name: &str) -> Result<(Vec<u8>, u64), BatchError> {
    let bytes = o.writer.into_inner().map_err(BatchError::parquet(name))?;
    Ok((bytes, o.rows))
}

async fn put(
    location: &Lake,
    partition: Partition<'_>,
    spans: &Spans,
    bytes: Vec<u8>,
    rows: u64,
) -> Result<AddFile, BatchError> {
    let add = AddFile {
        name: spans.name(),
        hour: partition.hour,
        event_type: partition.event_type.map(str::to_string),
        size: bytes.len() as u64,
        rows,
        tags: std::collections::BTreeMap::from([(OFFSETS_TAG.to_string(), spans.tag())]),
    };
    location.put(&location.path(&add.path()), bytes).await?;
    Ok(add)
}

/// Vacuums every table of `lake`: files replaced (by optimize) longer than `retain` ago,
/// and files no commit added once older than `retain` (a flush that died before its
/// commit), are deleted. Returns (table, files deleted or, with `dry_run`, to delete).
pub async fn vacuum(
    lake: &Lake,
    retain: chrono::Duration,
    dry_run: bool,
) -> Result<Vec<(String, Vec<String>)>, BatchError> {
    let mut out = Vec::new();
    for table in LakeTable::ALL {
        if let Some(mut opened) = table.open(lake).await? {
            out.push((table.dir(), opened.vacuum(retain, dry_run).await?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flush_commit::tests::{flush, offsets, NOW};
    use crate::flush_commit::{app_id, commit_flush};
    use crate::lake_tables::LakeTables;

    fn files_of(table: &Table, hour: HourKey) -> Vec<TableFile> {
        table
            .files()
            .unwrap()
            .into_iter()
            .filter(|f| f.hour == Some(hour))
            .collect()
    }

    /// `count` flushes of `size` records (offsets from 1) of partition 0 into `tables`.
    async fn flushes(
        tables: &mut LakeTables,
        count: i64,
        size: i64,
        make: fn(i64, i64) -> crate::writer::Flush,
    ) {
        for k in 0..count {
            let f = make(1 + size * k, size * (k + 1));
            commit_flush(tables, f, &app_id("events", 0, "g"))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_settled_hour_of_60_flushes_ends_in_at_most_2_files_with_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let mut tables = LakeTables::new(lake.clone());
        // 60 flushes of 10 records: events of hour 23 of the day before NOW, dead letters
        // received in NOW's hour.
        flushes(&mut tables, 60, 10, flush).await;
        let (h23, h00) = (
            HourKey::parse("2025-12-31T23").unwrap(),
            HourKey::parse("2026-01-01T00").unwrap(),
        );
        let events = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert_eq!(files_of(&events, h23).len(), 60);
        let before = (
            offsets(&lake, LakeTable::Events).await,
            offsets(&lake, LakeTable::DeadLetter).await,
        );
        let opts = OptimizeOptions {
            settle_ms: 600_000,
            target_bytes: 64 << 20,
            // Hour 23 settled, hour 00 (the dead letters') not yet.
            now_ms: NOW + 3_600_000 + 599_000,
        };
        let report = optimize(&lake, &opts).await.unwrap();
        let events_report = report.iter().find(|r| r.table == "events").unwrap();
        assert_eq!(
            (
                events_report.hours,
                events_report.files_removed,
                events_report.rows
            ),
            (1, 60, 300)
        );
        let mut events = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        let compacted = files_of(&events, h23);
        assert!(compacted.len() <= 2, "{compacted:?}");
        // Lineage still reads the offsets the compacted file spans.
        let name = compacted[0].path.rsplit('/').next().unwrap();
        assert_eq!(
            parse_flush_file_name(name),
            Some(("events".to_string(), 0, 1, 600))
        );
        let dead = LakeTable::DeadLetter.open(&lake).await.unwrap().unwrap();
        assert_eq!(
            files_of(&dead, h00).len(),
            60,
            "an unsettled hour is left alone"
        );
        assert_eq!(
            (
                offsets(&lake, LakeTable::Events).await,
                offsets(&lake, LakeTable::DeadLetter).await
            ),
            before,
            "every row kept, none added"
        );

        // Nothing left to do: a second run commits nothing.
        let again = optimize(&lake, &opts).await.unwrap();
        assert!(again.iter().all(|r| r.hours == 0), "{again:?}");
        // The writer keeps appending to the compacted hour, so does another source; the
        // next run compacts them all into one file whose tag names both sources' ranges.
        commit_flush(&mut tables, flush(601, 610), &app_id("events", 0, "g"))
            .await
            .unwrap();
        for k in 0..3 {
            let mut other = flush(700 + 10 * k, 709 + 10 * k);
            other.source = "other".into();
            commit_flush(&mut tables, other, &app_id("other", 0, "g"))
                .await
                .unwrap();
        }
        events.refresh().await.unwrap();
        assert_eq!(files_of(&events, h23).len(), compacted.len() + 4);
        let before = offsets(&lake, LakeTable::Events).await;
        optimize(&lake, &opts).await.unwrap();
        events.refresh().await.unwrap();
        let mixed = files_of(&events, h23);
        assert_eq!(mixed.len(), 1, "{mixed:?}");
        assert!(mixed[0].path.contains("/compacted-"), "{}", mixed[0].path);
        assert_eq!(
            mixed[0].tags[OFFSETS_TAG],
            "events/p0:1-610;other/p0:700-729"
        );
        assert_eq!(offsets(&lake, LakeTable::Events).await, before);

        // Vacuum: the replaced files go from the store; the snapshot's stay readable.
        let hour_dir = dir
            .path()
            .join("events/date=2025-12-31/hour=23/event_type=page_view");
        let replaced = 60 + compacted.len() + 4;
        assert_eq!(std::fs::read_dir(&hour_dir).unwrap().count(), replaced + 1);
        let dry = vacuum(&lake, chrono::Duration::zero(), true).await.unwrap();
        assert_eq!(
            dry.iter().find(|(t, _)| t == "events").unwrap().1.len(),
            replaced
        );
        assert_eq!(std::fs::read_dir(&hour_dir).unwrap().count(), replaced + 1);
        let vacuumed = vacuum(&lake, chrono::Duration::zero(), false)
            .await
            .unwrap();
        let (_, deleted) = vacuumed.iter().find(|(t, _)| t == "events").unwrap();
        assert_eq!(deleted.len(), replaced, "{deleted:?}");
        assert_eq!(std::fs::read_dir(&hour_dir).unwrap().count(), 1);
        assert_eq!(offsets(&lake, LakeTable::Events).await, before);
    }

    #[tokio::test]
    async fn compaction_merges_files_within_an_event_type_never_across_types() {
        use crate::flush_commit::tests::mixed_flush;
        use crate::repartition::tests::files_hold_their_partitions_type;
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let mut tables = LakeTables::new(lake.clone());
        flushes(&mut tables, 6, 12, mixed_flush).await;
        let h23 = HourKey::parse("2025-12-31T23").unwrap();
        let events = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert_eq!(files_of(&events, h23).len(), 18, "6 flushes × 3 types");
        let before = offsets(&lake, LakeTable::Events).await;
        let opts = OptimizeOptions {
            settle_ms: 600_000,
            target_bytes: 64 << 20,
            now_ms: NOW + 3_600_000 + 599_000,
        };
        let report = optimize(&lake, &opts).await.unwrap();
        let events_report = report.iter().find(|r| r.table == "events").unwrap();
        assert_eq!((events_report.hours, events_report.files_removed), (3, 18));
        let events = LakeTable::Events.open(&lake).await.unwrap().unwrap();
        assert_eq!(files_of(&events, h23).len(), 3, "one file per type");
        assert_eq!(files_hold_their_partitions_type(&lake).await.len(), 3);
        assert_eq!(offsets(&lake, LakeTable::Events).await, before);
    }
}
