//! Encoding a flush's records as the lake's Parquet files (zstd): events in one file per
//! event-time hour, rejects in one dead-letter file per hour of their Kafka record time
//! (the hour they were received when they have none), rows sorted by origin. Which files become the tables' data is [`crate::flush_commit`]'s
//! business.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};

use lambda_io::parquet_file::encode_parquet;
use shared_logic::window::HourKey;
use shared_logic::{schema, DeadLetter, Event, Origin};

use crate::error::BatchError;
pub use crate::lake_schemas::{dead_letter_schema, Encoded};

/// One rejected record as the dead-letter file keeps it: the bytes as received, the
/// reason code (an event's or a change's), a message, where it was read, the source it
/// names, its Kafka record timestamp, and the stream it was read from (`events` or
/// `cdc/<table>`).
pub struct Rejected {
    pub raw: Vec<u8>,
    pub reason: &'static str,
    pub message: String,
    pub origin: Origin,
    pub source: String,
    pub record_ms: Option<i64>,
    pub stream: String,
}

impl From<DeadLetter> for Rejected {
    fn from(d: DeadLetter) -> Self {
        Rejected {
            raw: d.raw,
            reason: d.reason.code(),
            message: d.message,
            origin: d.origin,
            source: d.source,
            record_ms: d.record_ms,
            stream: crate::lake_schemas::EVENTS_STREAM.to_string(),
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
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.source.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| d.record_ms)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Arc::new(
            letters
                .iter()
                .map(|d| Some(d.stream.as_str()))
                .collect::<StringArray>(),
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
    /// Wall-clock time the records were received: the dead letters' hour.
    pub received_ms: i64,
}

/// Encodes events as one file per event-time hour, or per (hour, event type) when
/// `by_type` (off the async threads); gives the events back, sorted by (hour, type, origin).
pub async fn encode_events(
    mut events: Vec<Event>,
    display: String,
    by_type: bool,
) -> Result<(Vec<Event>, Vec<Encoded>), BatchError> {
    tokio::task::spawn_blocking(move || {
        let partition = |e: &Event| (HourKey::of(e.event_time()), by_type.then(|| e.event_type()));
        events.sort_by_key(|e| (partition(e), e.origin()));
        let mut files = Vec::new();
        for group in events.chunk_by(|a, b| partition(a) == partition(b)) {
            let batch = schema::to_record_batch(group).map_err(BatchError::logic(&display))?;
            let (hour, event_type) = partition(&group[0]);
            files.push(Encoded {
                hour,
                event_type,
                bytes: encode_parquet(schema::event_schema(), &[batch], &display)?,
                rows: group.len() as u64,
            });
        }
        Ok::<_, BatchError>((events, files))
    })
    .await
    .map_err(|e| BatchError::Usage(format!("encoder task failed: {e}")))?
}

/// The hour a dead letter is filed under: the hour of its Kafka record time, else of when
/// it was received (the batch job counts an hour's rejects from that hour's files).
pub fn dead_letter_hour(record_ms: Option<i64>, received_ms: i64) -> HourKey {
    HourKey::of(shared_logic::EventTime(record_ms.unwrap_or(received_ms)))
}

/// Encodes dead letters as one file per hour ([`dead_letter_hour`]), sorted by origin.
pub fn encode_dead_letters(
    letters: &mut [Rejected],
    received_ms: i64,
    display: &str,
) -> Result<Vec<Encoded>, BatchError> {
    let hour = |d: &Rejected| dead_letter_hour(d.record_ms, received_ms);
    letters.sort_by_key(|d| (hour(d), d.origin));
    let mut files = Vec::new();
    for group in letters.chunk_by(|a, b| hour(a) == hour(b)) {
        let batch = dead_letter_batch(group, received_ms)?;
        files.push(Encoded {
            hour: hour(&group[0]),
            event_type: None,
            bytes: encode_parquet(dead_letter_schema(), &[batch], display)?,
            rows: group.len() as u64,
        });
    }
    Ok(files)
}
