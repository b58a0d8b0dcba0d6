//! Raw change files: what `lambda lake --cdc <table>` writes and the batch job replays.
//!
//! A change topic's flush writes, per hour of the changes' source time (`source.ts_ms`),
//! `cdc/<table>/date=…/hour=…/<topic>-p<partition>-<first>-<last>-<suffix>.parquet` (the
//! table `cdc/<table>`'s files, [`crate::lake_tables`]) with one row per
//! checked change: Kafka partition and offset (`kafka_partition`, `kafka_offset`), key, op, source time and the Debezium
//! record exactly as received (`payload`). The layers re-derive everything from the
//! payload with `shared_logic::cdc`, so the files are the log itself, not an
//! interpretation of it; rows are sorted by offset.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit};
use lambda_io::delta::HourPartition;
use lambda_io::lake::Lake;
use lambda_io::parquet_file::encode_parquet;
use object_store::path::Path;
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shared_logic::cdc::{CdcTable, Change};
use shared_logic::orders::{LoggedChange, Unapplied};
use shared_logic::schema::col;
use shared_logic::window::HourKey;

use crate::error::BatchError;
use crate::lake_schemas::Encoded;
pub use crate::lake_schemas::{change_schema as schema, table_dir};

/// One checked change record of a change topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChange {
    pub table: CdcTable,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub op: &'static str,
    /// Source time (`source.ts_ms`), epoch ms.
    pub ts_ms: i64,
    /// The record as received.
    pub payload: Vec<u8>,
}

fn file_of(table: CdcTable, hour: HourKey, name: &str) -> String {
    format!(
        "{}/{}/{name}",
        table_dir(table),
        HourPartition(hour).directory()
    )
}

fn change_batch(group: &[RawChange], display: &str) -> Result<RecordBatch, BatchError> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            group
                .iter()
                .map(|c| Some(c.partition))
                .collect::<Int32Array>(),
        ),
        Arc::new(group.iter().map(|c| Some(c.offset)).collect::<Int64Array>()),
        Arc::new(
            group
                .iter()
                .map(|c| Some(c.key.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(group.iter().map(|c| Some(c.op)).collect::<StringArray>()),
        Arc::new(
            group
                .iter()
                .map(|c| Some(c.ts_ms))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Arc::new(
            group
                .iter()
                .map(|c| Some(c.payload.as_slice()))
                .collect::<BinaryArray>(),
        ),
    ];
    RecordBatch::try_new(schema(), columns)
        .map_err(|e| BatchError::logic(display.to_string())(shared_logic::LogicError::Arrow(e)))
}

fn hour_of(c: &RawChange) -> HourKey {
    HourKey::of(shared_logic::EventTime(c.ts_ms))
}

/// Encodes one table's `changes` into one file per source-time hour, rows sorted by offset.
pub fn encode_hours(changes: &mut [RawChange], display: &str) -> Result<Vec<Encoded>, BatchError> {
    changes.sort_by_key(|c| (hour_of(c), c.offset));
    let mut out = Vec::new();
    for group in changes.chunk_by(|a, b| hour_of(a) == hour_of(b)) {
        let batch = change_batch(group, display)?;
        out.push(Encoded {
            event_type: None,
            hour: hour_of(&group[0]),
            bytes: encode_parquet(schema(), &[batch], display)?,
            rows: group.len() as u64,
        });
    }
    Ok(out)
}

/// Encodes `changes` into one file per (table, hour): (path, bytes, rows). The files are
/// not in their table until a commit adds them ([`crate::flush_commit`] does both).
pub fn encode(
    lake: &Lake,
    mut changes: Vec<RawChange>,
    name: &str,
) -> Result<Vec<(Path, Vec<u8>, u64)>, BatchError> {
    changes.sort_by_key(|c| (file_of(c.table, hour_of(c), name), c.offset));
    let mut out = Vec::new();
    for group in changes.chunk_by(|a, b| a.table == b.table && hour_of(a) == hour_of(b)) {
        let path = lake.path(&file_of(group[0].table, hour_of(&group[0]), name));
        let display = lake.object_url(&path);
        let batch = change_batch(group, &display)?;
        let bytes = encode_parquet(schema(), &[batch], &display)?;
        out.push((path, bytes, group.len() as u64));
    }
    Ok(out)
}

/// The first fields of a dimension file: the key, and the validity of each version.
fn version_fields(key: &str) -> Vec<Field> {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    vec![
        Field::new(key, DataType::Utf8, false),
        // Null: valid for all earlier time (first seen by a snapshot).
        Field::new("valid_from", ts(), true),
        // Null: the current version.
        Field::new("valid_to", ts(), true),
    ]
}

/// The columns of [`version_fields`]: `(key, valid_from, valid_to)` of each version.
fn version_columns<'a>(
    versions: impl Iterator<Item = (&'a str, i64, Option<i64>)> + Clone,
) -> Vec<ArrayRef> {
    vec![
        Arc::new(
            versions
                .clone()
                .map(|(key, _, _)| Some(key))
                .collect::<StringArray>(),
        ),
        Arc::new(
            versions
                .clone()
                .map(|(_, from, _)| (from != i64::MIN).then_some(from))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Arc::new(
            versions
                .map(|(_, _, to)| to)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
    ]
}

/// One dimension file of `columns` in `schema`, as Parquet.
fn encode_dimension(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    name: &str,
) -> Result<Vec<u8>, BatchError> {
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| BatchError::logic(name.to_string())(shared_logic::LogicError::Arrow(e)))?;
    Ok(encode_parquet(schema, &[batch], name)?)
}

/// The schema of the products dimension file: every version of every product.
pub fn products_schema() -> SchemaRef {
    let mut fields = version_fields("product_id");
    // Null: the product was deleted.
    fields.push(Field::new("category", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// Encodes product versions as the products dimension file.
pub fn encode_products(
    versions: &[shared_logic::cdc::ProductVersion],
    name: &str,
) -> Result<Vec<u8>, BatchError> {
    let mut columns = version_columns(
        versions
            .iter()
            .map(|v| (v.product_id.as_str(), v.valid_from, v.valid_to)),
    );
    columns.push(Arc::new(
        versions
            .iter()
            .map(|v| v.category.as_deref())
            .collect::<StringArray>(),
    ));
    encode_dimension(products_schema(), columns, name)
}

/// The schema of the users dimension file: every version of every user.
pub fn users_schema() -> SchemaRef {
    let mut fields = version_fields("user_id");
    // Null: no country, or the user was deleted.
    fields.push(Field::new("country", DataType::Utf8, true));
    fields.push(Field::new("birth_year", DataType::Int32, true));
    Arc::new(Schema::new(fields))
}

/// Encodes user versions as the users dimension file.
pub fn encode_users(
    versions: &[shared_logic::cdc::UserVersion],
    name: &str,
) -> Result<Vec<u8>, BatchError> {
    let mut columns = version_columns(
        versions
            .iter()
            .map(|v| (v.user_id.as_str(), v.valid_from, v.valid_to)),
    );
    columns.push(Arc::new(
        versions
            .iter()
            .map(|v| v.attributes.as_ref().and_then(|a| a.country.as_deref()))
            .collect::<StringArray>(),
    ));
    columns.push(Arc::new(
        versions
            .iter()
            .map(|v| v.attributes.as_ref().and_then(|a| a.birth_year))
            .collect::<arrow::array::Int32Array>(),
    ));
    encode_dimension(users_schema(), columns, name)
}

/// A table's change log as the lake holds it: every change of the files read, and the rows
/// that no longer parse (a file written by another version).
pub struct TableLog {
    pub changes: Vec<LoggedChange>,
    pub unreadable: Vec<Unapplied>,
    /// Files that are not readable Parquet, skipped (`skip_corrupt`).
    pub skipped_files: Vec<String>,
}

/// A table's change files in the current snapshot of its Delta table, sorted by path
/// (none when the table does not exist yet).
pub async fn list(lake: &Lake, table: CdcTable) -> Result<Vec<ObjectMeta>, BatchError> {
    let table = crate::lake_tables::LakeTable::Cdc(table);
    let Some(opened) = table.open(lake).await? else {
        return Ok(Vec::new());
    };
    let location = table.location(lake);
    Ok(opened
        .files()?
        .iter()
        .map(|f| location.table_object(f))
        .collect())
}

/// Reads `files` (from [`list`]) of a table; a file that is not readable Parquet fails the
/// read, or with `skip_corrupt` is skipped (and listed).
pub async fn read(
    lake: &Lake,
    table: CdcTable,
    files: &[ObjectMeta],
    skip_corrupt: bool,
) -> Result<TableLog, BatchError> {
    let mut log = TableLog {
        changes: Vec::new(),
        unreadable: Vec::new(),
        skipped_files: Vec::new(),
    };
    for object in files {
        let url = lake.object_url(&object.location);
        let Some(bytes) = lake.get(&object.location).await? else {
            continue;
        };
        let decoded = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(BatchError::parquet(&url))
            .and_then(|reader| {
                reader
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| BatchError::logic(url.clone())(shared_logic::LogicError::Arrow(e)))
            });
        let batches = match decoded {
            Ok(batches) => batches,
            Err(e) if skip_corrupt => {
                tracing::warn!(file = %url, error = %e, "skipping a corrupt change file");
                log.skipped_files.push(url);
                continue;
            }
            Err(e) => return Err(e),
        };
        for batch in batches {
            let column = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| BatchError::Manifest {
                        path: url.clone(),
                        reason: format!("not a change file: no `{name}` column"),
                    })
            };
            let partitions = column(col::PARTITION)?.as_primitive::<Int32Type>().clone();
            let offsets = column(col::OFFSET)?.as_primitive::<Int64Type>().clone();
            let payloads = column("payload")?.as_binary::<i32>().clone();
            for i in 0..batch.num_rows() {
                let (partition, offset) = (partitions.value(i), offsets.value(i));
                match Change::parse(table, payloads.value(i)) {
                    Ok(Some(change)) => log.changes.push(LoggedChange {
                        partition,
                        offset,
                        change,
                    }),
                    Ok(None) => {}
                    Err(rejection) => log.unreadable.push(Unapplied {
                        partition,
                        offset,
                        rejection,
                    }),
                }
            }
        }
    }
    Ok(log)
}
