//! Writing validated events and dead letters into the lake as Parquet (zstd).
//!
//! A flush covers one source partition's offset range `[first, last]`: its events go to one
//! file per event-time hour and its rejects to one dead-letter file, every file named
//! `<source>-p<partition>-<first>-<last>.parquet`. A retry of the same range writes the
//! same names (a put replaces), so no range is ever in the lake twice; ranges of one
//! partition never overlap. Rows are sorted by origin, so a file's bytes depend only on its
//! records.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use lambda_io::lake::{hour_partition, Lake};
use lambda_io::lake_names::flush_file_name;
use lambda_io::parquet_file::encode_parquet;
use shared_logic::window::HourKey;
use shared_logic::{schema, DeadLetter, Event, Origin};

use crate::error::BatchError;

/// The schema of dead-letter files.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("raw", DataType::Binary, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new(schema::col::PARTITION, DataType::Int32, false),
        Field::new(schema::col::OFFSET, DataType::Int64, false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// One rejected record as the dead-letter file keeps it: the bytes as received, the
/// reason code (an event's or a change's), a message and where it was read.
pub struct Rejected {
    pub raw: Vec<u8>,
    pub reason: &'static str,
    pub message: String,
    pub origin: Origin,
}

impl From<DeadLetter> for Rejected {
    fn from(d: DeadLetter) -> Self {
        Rejected {
            raw: d.raw,
            reason: d.reason.code(),
            message: d.message,
            origin: d.origin,
        }
    }
}

fn dead_letter_batch(letters: &[Rejected], received_ms: i64) -> Result<RecordBatch, BatchError> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.raw.as_slice()))
                .collect::<BinaryArray>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.reason))
                .collect::<StringArray>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.message.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.origin.partition))
                .collect::<Int32Array>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.origin.offset))
                .collect::<Int64Array>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|_| Some(received_ms))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(dead_letter_schema(), columns)
        .map_err(|e| BatchError::logic("dead-letter batch")(shared_logic::LogicError::Arrow(e)))
}

/// One source partition's records over an offset range, validated.
pub struct Flush {
    pub source: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    pub events: Vec<Event>,
    /// Checked change records (a change topic's flush; see [`crate::cdc_files`]).
    pub changes: Vec<crate::cdc_files::RawChange>,
    pub dead_letters: Vec<Rejected>,
    /// Wall-clock time the records were received: dates the dead-letter file.
    pub received_ms: i64,
}

/// What a flush wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub files: Vec<String>,
    pub events: u64,
    pub changes: u64,
    pub dead_letters: u64,
    pub bytes: u64,
}

fn dead_letter_date(received_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(received_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// The files (relative to the lake root) that [`write_flush`] will write for `flush`.
pub fn planned_files(flush: &Flush) -> Vec<String> {
    let name = flush_file_name(&flush.source, flush.partition, flush.first, flush.last);
    let hours: std::collections::BTreeSet<HourKey> = flush
        .events
        .iter()
        .map(|e| HourKey::of(e.event_time()))
        .collect();
    let mut files: Vec<String> = hours
        .into_iter()
        .map(|h| format!("events/{}/{name}", hour_partition(h)))
        .collect();
    files.extend(crate::cdc_files::planned(&flush.changes, &name));
    if !flush.dead_letters.is_empty() {
        files.push(format!(
            "dead-letter/date={}/{name}",
            dead_letter_date(flush.received_ms)
        ));
    }
    files
}

/// Writes a flush: one Parquet file per event-time hour, one dead-letter file. Returns
/// when every file is durable in the store.
pub async fn write_flush(lake: &Lake, mut flush: Flush) -> Result<FlushReport, BatchError> {
    let name = flush_file_name(&flush.source, flush.partition, flush.first, flush.last);
    let mut by_hour: BTreeMap<HourKey, Vec<Event>> = BTreeMap::new();
    for e in flush.events.drain(..) {
        by_hour
            .entry(HourKey::of(e.event_time()))
            .or_default()
            .push(e);
    }
    let mut report = FlushReport::default();
    let mut encoded = Vec::new();
    for (hour, mut events) in by_hour {
        events.sort_by_key(|e| e.origin());
        let path = lake.path(&format!("events/{}/{name}", hour_partition(hour)));
        report.events += events.len() as u64;
        let display = lake.object_url(&path);
        let bytes = tokio::task::spawn_blocking(move || {
            let batch = schema::to_record_batch(&events).map_err(BatchError::logic(&display))?;
            Ok::<_, BatchError>(encode_parquet(schema::event_schema(), &[batch], &display)?)
        })
        .await
        .map_err(|e| BatchError::Usage(format!("encoder task failed: {e}")))??;
        encoded.push((path, bytes));
    }
    for (path, bytes, rows) in
        crate::cdc_files::encode(lake, std::mem::take(&mut flush.changes), &name)?
    {
        report.changes += rows;
        encoded.push((path, bytes));
    }
    if !flush.dead_letters.is_empty() {
        flush.dead_letters.sort_by_key(|d| d.origin);
        let date = dead_letter_date(flush.received_ms);
        let path = lake.path(&format!("dead-letter/date={date}/{name}"));
        report.dead_letters = flush.dead_letters.len() as u64;
        let batch = dead_letter_batch(&flush.dead_letters, flush.received_ms)?;
        encoded.push((
            path.clone(),
            encode_parquet(dead_letter_schema(), &[batch], path.as_ref())?,
        ));
    }
    for (path, bytes) in encoded {
        report.bytes += bytes.len() as u64;
        lake.put(&path, bytes).await?;
        report.files.push(lake.object_url(&path));
    }
    Ok(report)
}
