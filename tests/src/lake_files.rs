//! Reading a local lake back in tests: which Kafka positions its tables hold. The lake's
//! data is what the Delta tables' current snapshots name ([`table_files`]), never a
//! directory listing (a flush that died before its commit leaves files no snapshot names).

use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every `.parquet` file below `dir`, recursively.
pub fn parquet_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The files of the current snapshot of every Delta table at or below `dir` (a directory
/// with a `_delta_log` is a table; others are searched), sorted.
pub fn table_files(dir: &Path) -> Vec<std::path::PathBuf> {
    snapshot_files(dir)
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// [`table_files`] with each file's row count as its commit recorded it (`numRecords`).
fn snapshot_files(dir: &Path) -> Vec<(std::path::PathBuf, Option<u64>)> {
    if !dir.join("_delta_log").is_dir() {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return out;
        };
        let mut subs: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for sub in subs {
            out.extend(snapshot_files(&sub));
        }
        return out;
    }
    let location = dir.to_str().expect("a UTF-8 path").to_string();
    // A thread of its own: callers may be inside a runtime (or not).
    let files = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let lake = lambda_io::Lake::open(&location, false).expect("the table's directory");
            match lambda_io::delta::Table::open(&lake).await {
                Ok(Some(table)) => table.files().expect("the snapshot's files"),
                Ok(None) => Vec::new(),
                Err(e) => panic!("table {location}: {e}"),
            }
        })
    })
    .join()
    .expect("the reading thread");
    files
        .into_iter()
        .map(|f| (dir.join(f.path), f.rows))
        .collect()
}

/// The `(kafka_partition, kafka_offset)` of every row of the events and dead-letter tables
/// of the lake at `root`, in file order (duplicates kept, so a test can find them).
pub fn positions(root: &Path) -> Vec<(i32, i64)> {
    positions_of(root, &["events", "dead-letter"])
}

/// [`positions`] of the given tables of the lake only (`events`, `dead-letter`).
pub fn positions_of(root: &Path, subs: &[&str]) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    for sub in subs {
        for file in table_files(&root.join(sub)) {
            let Ok(f) = std::fs::File::open(&file) else {
                continue;
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.build())
                .unwrap_or_else(|e| panic!("{} is not readable Parquet: {e}", file.display()));
            for batch in reader {
                let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let p = batch
                    .column_by_name("kafka_partition")
                    .expect("partition column")
                    .as_primitive::<Int32Type>();
                let o = batch
                    .column_by_name("kafka_offset")
                    .expect("offset column")
                    .as_primitive::<Int64Type>();
                out.extend(p.values().iter().copied().zip(o.values().iter().copied()));
            }
        }
    }
    out
}

/// Rows of the Delta tables at or below `dir`: the row counts their commits recorded (the
/// file's footer for a file committed without one). Cheap enough to poll.
pub fn rows(dir: &Path) -> u64 {
    snapshot_files(dir)
        .into_iter()
        .map(|(file, rows)| {
            rows.unwrap_or_else(|| {
                std::fs::File::open(&file)
                    .ok()
                    .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).ok())
                    .map(|b| b.metadata().file_metadata().num_rows() as u64)
                    .unwrap_or(0)
            })
        })
        .sum()
}

/// Rows of the events and dead-letter tables of the lake at `root` ([`rows`]).
pub fn lake_rows(root: &Path) -> u64 {
    rows(&root.join("events")) + rows(&root.join("dead-letter"))
}

/// Views of metric `M` from a Parquet file in the views schema (a view file, or the speed
/// endpoint's answer).
pub fn views_from_parquet<M: shared_logic::Metric>(bytes: Vec<u8>) -> shared_logic::MetricViews<M> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.build())
        .expect("a Parquet views file");
    let mut views = shared_logic::MetricViews::<M>::default();
    for batch in reader {
        shared_logic::views::merge_record_batch(&mut views, &batch.expect("a record batch"))
            .expect("views schema");
    }
    views
}
