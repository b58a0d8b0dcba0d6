//! What the lake's tables hold and where they live: the Arrow schemas of their files
//! (events are `shared_logic::schema`'s), each table's directory, and an encoded file of an
//! hour partition on its way into a table.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use shared_logic::cdc::CdcTable;
use shared_logic::schema::{self, col};
use shared_logic::window::HourKey;

/// The dead-letter column naming the stream a rejected record was read from: `events` (a
/// record of an events topic, rejected by event validation) or `cdc/<table>`.
pub const STREAM_COLUMN: &str = "stream";

/// The `stream` value of a rejected event.
pub const EVENTS_STREAM: &str = "events";

/// Dead-letter columns added after the table's first version: nullable, absent from files
/// written before them.
pub const DEAD_LETTER_ADDED_COLUMNS: [&str; 3] = [col::SOURCE, col::RECORD_TIME, STREAM_COLUMN];

/// The schema of dead-letter files: the record as received, why it was rejected, where it
/// was read, when the lake writer received it, the source it names (`unknown` when none or
/// unreadable), its Kafka record timestamp and the stream it was read from.
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
        Field::new(col::SOURCE, DataType::Utf8, true),
        Field::new(
            col::RECORD_TIME,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new(STREAM_COLUMN, DataType::Utf8, true),
    ]))
}

/// The schema of raw change files.
pub fn change_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(col::PARTITION, DataType::Int32, false),
        Field::new(col::OFFSET, DataType::Int64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("op", DataType::Utf8, false),
        Field::new(
            "ts_ms",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("payload", DataType::Binary, false),
    ]))
}

/// The directory (relative to the lake root) of a table's change files.
pub fn table_dir(table: CdcTable) -> String {
    format!("cdc/{}", table.name())
}

/// One encoded file of an hour partition (of one event type, in a table partitioned by
/// event type too).
pub struct Encoded {
    pub hour: HourKey,
    pub event_type: Option<shared_logic::EventType>,
    pub bytes: Vec<u8>,
    pub rows: u64,
}
