//! Reading an hour's Parquet files with DataFusion: each file's footer checked first
//! ([`inspect_inputs`]), then a listing table over the files and partitioned streams of
//! the columns a pass needs. The passes themselves ([`crate::dedup`], [`crate::fold`],
//! [`crate::sessions`]) decide what to do with the rows.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use lambda_io::Lake;
use object_store::{ObjectMeta, ObjectStoreExt};
use parquet::file::metadata::ParquetMetaDataReader;
use shared_logic::window::HourKey;

use crate::error::BatchError;

/// Reads each file's footer: row counts for the manifest, and corrupt files found before
/// any work is done.
pub(crate) async fn inspect_inputs(
    lake: &Lake,
    files: Vec<ObjectMeta>,
    skip_corrupt: bool,
) -> Result<(Vec<(ObjectMeta, u64)>, Vec<String>), BatchError> {
    let mut good = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        match footer_rows(lake, &file).await {
            Ok(rows) => good.push((file, rows)),
            Err(reason) if skip_corrupt => {
                tracing::warn!(file = %lake.object_url(&file.location), %reason, "skipping a corrupt file");
                skipped.push(lake.object_url(&file.location));
            }
            Err(reason) => {
                return Err(BatchError::Parquet {
                    path: lake.object_url(&file.location),
                    source: Box::new(parquet::errors::ParquetError::General(reason)),
                })
            }
        }
    }
    Ok((good, skipped))
}

/// Rows of a Parquet file, from its footer; the reason when it is not a readable Parquet file.
async fn footer_rows(lake: &Lake, file: &ObjectMeta) -> Result<u64, String> {
    if file.size < 12 {
        return Err(format!(
            "{} bytes is too short for a Parquet file",
            file.size
        ));
    }
    let tail = lake
        .store()
        .get_range(&file.location, file.size - 8..file.size)
        .await
        .map_err(|e| e.to_string())?;
    if &tail[4..] != b"PAR1" {
        return Err("no Parquet magic at the end of the file (truncated or not Parquet)".into());
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if len + 12 > file.size {
        return Err(format!(
            "footer length {len} exceeds the file size {}",
            file.size
        ));
    }
    let footer = lake
        .store()
        .get_range(&file.location, file.size - 8 - len..file.size - 8)
        .await
        .map_err(|e| e.to_string())?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| e.to_string())?;
    Ok(metadata.file_metadata().num_rows().max(0) as u64)
}

/// A DataFusion session over the lake's object store, `threads` partitions wide.
pub(crate) fn session(lake: &Lake, threads: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_batch_size(16 * 1024);
    let session = SessionContext::new_with_config(config);
    session.register_object_store(lake.store_url(), lake.store().clone());
    session
}

/// A listing table over the given lake files (URLs as `Lake::object_url` gives them).
pub(crate) async fn table(
    session: &SessionContext,
    paths: Vec<String>,
    hour: HourKey,
) -> Result<Arc<ListingTable>, BatchError> {
    let scan_err = |e| BatchError::Scan {
        hour: hour.to_string(),
        source: Box::new(e),
    };
    let urls = paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(scan_err)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&session.state())
        .await
        .map_err(scan_err)?;
    Ok(Arc::new(ListingTable::try_new(config).map_err(scan_err)?))
}

/// The table's `columns`, one stream per DataFusion partition (scanned in parallel).
pub(crate) async fn streams(
    session: &SessionContext,
    table: &Arc<ListingTable>,
    hour: HourKey,
    columns: &[&str],
) -> Result<Vec<SendableRecordBatchStream>, BatchError> {
    let scan_err = |e| BatchError::Scan {
        hour: hour.to_string(),
        source: Box::new(e),
    };
    // Files written before a column was added lack it: when none of the hour's has it,
    // the pass reads the column as absent ([`shared_logic::schema::ADDED_COLUMNS`]).
    let schema = table.schema();
    let columns: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| {
            schema.field_with_name(c).is_ok() || !shared_logic::schema::ADDED_COLUMNS.contains(c)
        })
        .collect();
    let df = session
        .read_table(table.clone())
        .map_err(scan_err)?
        .select_columns(&columns)
        .map_err(scan_err)?;
    df.execute_stream_partitioned().await.map_err(scan_err)
}

/// Whether an id (or user) hash falls in `bucket` of `buckets` (hours larger than the
/// memory budget are processed bucket by bucket).
pub(crate) fn in_bucket(hash: u128, (bucket, buckets): (u64, u64)) -> bool {
    buckets == 1 || (hash % buckets as u128) as u64 == bucket
}
