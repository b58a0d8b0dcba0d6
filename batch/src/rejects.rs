//! The rejected records of an hour, as the speed layer notes them: the dead-letter rows of
//! the events streams whose Kafka record time falls in the hour (the lake writer files a
//! dead letter under the hour of its record time, so they are the hour's own dead-letter
//! files), noted by source and reason code in the metrics that count rejects. Rows without
//! a record time (imported lines, files written before the column) and rejected changes of
//! the CDC streams are not the speed layer's rejects and are left out.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimestampMillisecondType};
use lambda_io::manifest::InputFile;
use lambda_io::Lake;
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use shared_logic::schema::col;
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Aggregates, MetricContext, Reason};

use crate::error::BatchError;
use crate::lake_schemas::{EVENTS_STREAM, STREAM_COLUMN};
use crate::lake_tables::LakeTable;

/// The dead-letter files of every hour in the table's current snapshot, each hour's sorted
/// by path (none without a table).
pub(crate) async fn files_by_hour(
    lake: &Lake,
) -> Result<BTreeMap<HourKey, Vec<ObjectMeta>>, BatchError> {
    let table = LakeTable::DeadLetter;
    let Some(opened) = table.open(lake).await? else {
        return Ok(BTreeMap::new());
    };
    let location = table.location(lake);
    let mut by_hour: BTreeMap<HourKey, Vec<ObjectMeta>> = BTreeMap::new();
    for f in opened.files()? {
        if let Some(hour) = f.hour {
            by_hour
                .entry(hour)
                .or_default()
                .push(location.table_object(&f));
        }
    }
    for files in by_hour.values_mut() {
        files.sort_by(|a, b| a.location.cmp(&b.location));
    }
    Ok(by_hour)
}

/// The dead-letter files of `hour` (see [`files_by_hour`]).
pub(crate) async fn hour_files(lake: &Lake, hour: HourKey) -> Result<Vec<ObjectMeta>, BatchError> {
    Ok(files_by_hour(lake).await?.remove(&hour).unwrap_or_default())
}

/// Notes the hour's rejects from `files` in `agg`; each file as read, with the rejects
/// noted from it.
pub(crate) async fn note_rejects(
    lake: &Lake,
    files: &[ObjectMeta],
    hour: HourKey,
    agg: &mut Aggregates,
    ctx: &MetricContext,
) -> Result<Vec<InputFile>, BatchError> {
    let mut read = Vec::new();
    for object in files {
        let mut noted = 0;
        let url = lake.object_url(&object.location);
        let Some(bytes) = lake.get(&object.location).await? else {
            continue;
        };
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(BatchError::parquet(&url))?;
        let wanted = ["reason", col::SOURCE, col::RECORD_TIME, STREAM_COLUMN];
        let schema = builder.schema().clone();
        if wanted.iter().any(|c| schema.column_with_name(c).is_none()) {
            // Written before the columns: no row of it has a record time.
            read.push(InputFile {
                path: url,
                bytes: object.size,
                rows: 0,
            });
            continue;
        }
        let mask = ProjectionMask::columns(builder.parquet_schema(), wanted);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(BatchError::parquet(&url))?;
        for batch in reader {
            let batch = batch
                .map_err(|e| BatchError::logic(url.clone())(shared_logic::LogicError::Arrow(e)))?;
            noted += note_batch(&batch, hour, agg, ctx).map_err(|reason| BatchError::Manifest {
                path: url.clone(),
                reason,
            })?;
        }
        read.push(InputFile {
            path: url,
            bytes: object.size,
            rows: noted,
        });
    }
    Ok(read)
}

/// Notes the rejects of one batch of dead-letter rows.
fn note_batch(
    batch: &RecordBatch,
    hour: HourKey,
    agg: &mut Aggregates,
    ctx: &MetricContext,
) -> Result<u64, String> {
    let text = |name: &str| {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no `{name}` column"))?;
        arrow::compute::cast(column, &DataType::Utf8).map_err(|e| format!("column `{name}`: {e}"))
    };
    let (reasons, sources, streams) = (text("reason")?, text(col::SOURCE)?, text(STREAM_COLUMN)?);
    let (reasons, sources, streams) = (
        reasons.as_string::<i32>(),
        sources.as_string::<i32>(),
        streams.as_string::<i32>(),
    );
    let times = batch
        .column_by_name(col::RECORD_TIME)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| format!("`{}` is not a millisecond timestamp", col::RECORD_TIME))?;
    let (start, end) = (hour.start_ms(), hour.start_ms() + HOUR_MS);
    let mut noted = 0;
    for i in 0..batch.num_rows() {
        if times.is_null(i) || streams.is_null(i) || streams.value(i) != EVENTS_STREAM {
            continue;
        }
        let at = times.value(i);
        let Some(reason) = (!reasons.is_null(i))
            .then(|| Reason::parse(reasons.value(i)))
            .flatten()
        else {
            continue;
        };
        if !(start..end).contains(&at) {
            continue;
        }
        let source = if sources.is_null(i) {
            shared_logic::event::UNKNOWN
        } else {
            sources.value(i)
        };
        agg.note_reject(source, reason, at, ctx);
        noted += 1;
    }
    Ok(noted)
}
