//! The Arrow schema of a validated event (the lake's schema) and conversions both ways
//! between [`Event`]s and `RecordBatch`es.
//!
//! Money is stored as `price_minor` (integer minor units) with `currency`; the Kafka
//! `partition` and `offset` (or, for imported files, partition -1 and the line number) are
//! kept for the dedup rule and for lineage.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, LargeStringArray, PrimitiveArray,
    RecordBatch, StringArray, StringViewArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Field, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};

use crate::error::LogicError;
use crate::event::{Device, Event, EventId, EventRef, EventTime, EventType, Origin};
use crate::money::{Currency, Minor};

/// Column names, in schema order.
pub mod col {
    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_TYPE: &str = "event_type";
    pub const EVENT_TIME: &str = "event_time";
    pub const USER_ID: &str = "user_id";
    pub const SESSION_ID: &str = "session_id";
    pub const URL: &str = "url";
    pub const PRODUCT_ID: &str = "product_id";
    pub const CATEGORY: &str = "category";
    pub const COUNTRY: &str = "country";
    pub const DEVICE: &str = "device";
    pub const QUANTITY: &str = "quantity";
    pub const PRICE_MINOR: &str = "price_minor";
    pub const CURRENCY: &str = "currency";
    pub const PARTITION: &str = "kafka_partition";
    pub const OFFSET: &str = "kafka_offset";
    pub const SOURCE: &str = "source";
    pub const RECORD_TIME: &str = "record_time";
}

/// Columns added to the lake after its first version: nullable, and read as absent (the
/// source `unknown`, no record time) from files written before them.
pub const ADDED_COLUMNS: [&str; 2] = [col::SOURCE, col::RECORD_TIME];

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The schema of validated events in the lake.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(col::EVENT_ID, DataType::Utf8, false),
                Field::new(col::EVENT_TYPE, DataType::Utf8, false),
                Field::new(col::EVENT_TIME, timestamp_type(), false),
                Field::new(col::USER_ID, DataType::Utf8, false),
                Field::new(col::SESSION_ID, DataType::Utf8, true),
                Field::new(col::URL, DataType::Utf8, false),
                Field::new(col::PRODUCT_ID, DataType::Utf8, true),
                Field::new(col::CATEGORY, DataType::Utf8, false),
                Field::new(col::COUNTRY, DataType::Utf8, false),
                Field::new(col::DEVICE, DataType::Utf8, false),
                Field::new(col::QUANTITY, DataType::Int64, true),
                Field::new(col::PRICE_MINOR, DataType::Int64, true),
                Field::new(col::CURRENCY, DataType::Utf8, true),
                Field::new(col::PARTITION, DataType::Int32, false),
                Field::new(col::OFFSET, DataType::Int64, false),
                Field::new(col::SOURCE, DataType::Utf8, true),
                Field::new(col::RECORD_TIME, timestamp_type(), true),
            ]))
        })
        .clone()
}

/// Builds a record batch of events in the lake schema.
pub fn to_record_batch(events: &[Event]) -> Result<RecordBatch, LogicError> {
    fn strings<'a>(events: &'a [Event], f: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
        Arc::new(events.iter().map(f).collect::<StringArray>())
    }
    let columns: Vec<ArrayRef> = vec![
        strings(events, |e| Some(e.event_id.0.as_str())),
        strings(events, |e| Some(e.event_type.as_str())),
        Arc::new(
            events
                .iter()
                .map(|e| Some(e.event_time.0))
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        strings(events, |e| Some(e.user_id.as_str())),
        strings(events, |e| e.session_id.as_deref()),
        strings(events, |e| Some(e.url.as_str())),
        strings(events, |e| e.product_id.as_deref()),
        strings(events, |e| Some(e.category.as_str())),
        strings(events, |e| Some(e.country.as_str())),
        strings(events, |e| Some(e.device.as_str())),
        Arc::new(events.iter().map(|e| e.quantity).collect::<Int64Array>()),
        Arc::new(
            events
                .iter()
                .map(|e| e.price.map(|p| p.0))
                .collect::<Int64Array>(),
        ),
        strings(events, |e| e.currency.map(Currency::code)),
        Arc::new(
            events
                .iter()
                .map(|e| Some(e.origin.partition))
                .collect::<Int32Array>(),
        ),
        Arc::new(
            events
                .iter()
                .map(|e| Some(e.origin.offset))
                .collect::<Int64Array>(),
        ),
        strings(events, |e| Some(e.source.as_str())),
        Arc::new(
            events
                .iter()
                .map(|e| e.record_ms)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(event_schema(), columns)?)
}

/// Reads events back from a record batch with the lake's columns (in any order; string
/// columns may be `Utf8`, `LargeUtf8`, `Utf8View` or dictionaries, as Parquet readers give).
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Event>, LogicError> {
    let schema = event_schema();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) => column.clone(),
            None if ADDED_COLUMNS.contains(&field.name().as_str()) => {
                arrow::array::new_null_array(field.data_type(), batch.num_rows())
            }
            None => {
                return Err(LogicError::Schema(format!(
                    "missing column `{}`",
                    field.name()
                )))
            }
        };
        let column = if column.data_type() == field.data_type() {
            column
        } else {
            arrow::compute::cast(&column, field.data_type())
                .map_err(|e| LogicError::Schema(format!("column `{}`: {e}", field.name())))?
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(LogicError::Schema(format!(
                "column `{}` has nulls",
                field.name()
            )));
        }
        cols.push(column);
    }
    let s = |i: usize| cols[i].as_string::<i32>();
    let (ids, types, users, sessions, urls, products, categories, countries, devices, currencies) =
        (s(0), s(1), s(3), s(4), s(5), s(6), s(7), s(8), s(9), s(12));
    let times = cols[2].as_primitive::<TimestampMillisecondType>();
    let quantities = cols[10].as_primitive::<Int64Type>();
    let prices = cols[11].as_primitive::<Int64Type>();
    let partitions = cols[13].as_primitive::<Int32Type>();
    let offsets = cols[14].as_primitive::<Int64Type>();
    let sources = s(15);
    let record_times = cols[16].as_primitive::<TimestampMillisecondType>();
    let opt_str = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let opt_i64 = |a: &Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));

    (0..batch.num_rows())
        .map(|i| {
            let bad =
                |what: &str, value: &str| LogicError::Schema(format!("row {i}: {what} `{value}`"));
            let event_type = EventType::parse(types.value(i))
                .ok_or_else(|| bad("unknown event_type", types.value(i)))?;
            let device = Device::parse(devices.value(i))
                .ok_or_else(|| bad("unknown device", devices.value(i)))?;
            let currency = match opt_str(currencies, i) {
                Some(c) => Some(Currency::parse(&c).ok_or_else(|| bad("unknown currency", &c))?),
                None => None,
            };
            Ok(Event {
                event_id: EventId(ids.value(i).to_string()),
                event_type,
                event_time: EventTime(times.value(i)),
                user_id: users.value(i).to_string(),
                session_id: opt_str(sessions, i),
                url: urls.value(i).to_string(),
                product_id: opt_str(products, i),
                category: categories.value(i).to_string(),
                country: countries.value(i).to_string(),
                device,
                quantity: opt_i64(quantities, i),
                price: opt_i64(prices, i).map(Minor),
                currency,
                origin: Origin {
                    partition: partitions.value(i),
                    offset: offsets.value(i),
                },
                source: opt_str(sources, i).unwrap_or_else(crate::source::unknown),
                record_ms: (!record_times.is_null(i)).then(|| record_times.value(i)),
            })
        })
        .collect()
}

/// A string column as Parquet readers hand it out, read without copying.
enum Strings<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(batch: &'a RecordBatch, name: &str, nullable: bool) -> Result<Self, LogicError> {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| LogicError::Schema(format!("missing column `{name}`")))?;
        if !nullable && array.null_count() > 0 {
            return Err(LogicError::Schema(format!("column `{name}` has nulls")));
        }
        match array.data_type() {
            DataType::Utf8 => Ok(Strings::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(Strings::Large(array.as_string::<i64>())),
            DataType::Utf8View => Ok(Strings::View(array.as_string_view())),
            other => Err(LogicError::Schema(format!(
                "column `{name}` is {other}, expected a string type"
            ))),
        }
    }

    fn value(&self, i: usize) -> &'a str {
        match self {
            Strings::Utf8(a) => a.value(i),
            Strings::Large(a) => a.value(i),
            Strings::View(a) => a.value(i),
        }
    }

    fn opt(&self, i: usize) -> Option<&'a str> {
        let null = match self {
            Strings::Utf8(a) => a.is_null(i),
            Strings::Large(a) => a.is_null(i),
            Strings::View(a) => a.is_null(i),
        };
        (!null).then(|| self.value(i))
    }
}

fn primitive<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
    nullable: bool,
) -> Result<&'a PrimitiveArray<T>, LogicError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| LogicError::Schema(format!("missing column `{name}`")))?;
    if !nullable && array.null_count() > 0 {
        return Err(LogicError::Schema(format!("column `{name}` has nulls")));
    }
    array.as_primitive_opt::<T>().ok_or_else(|| {
        LogicError::Schema(format!(
            "column `{name}` is {}, expected {}",
            array.data_type(),
            T::DATA_TYPE
        ))
    })
}

/// The lake columns of one record batch, read row by row as [`EventRef`]s without copying:
/// the batch layer's way to feed Parquet data to the metric code.
///
/// Only the columns metrics and the dedup rule read are required (`session_id` and
/// `product_id` may be projected away).
pub struct EventColumns<'a> {
    /// The columns sessions read too: ids, type, time, user, country, device, origin.
    core: SessionColumns<'a>,
    urls: Strings<'a>,
    categories: Strings<'a>,
    quantities: &'a PrimitiveArray<Int64Type>,
    prices: &'a PrimitiveArray<Int64Type>,
    currencies: Strings<'a>,
    /// Absent in files written before the column ([`ADDED_COLUMNS`]).
    sources: Option<Strings<'a>>,
    record_times: Option<&'a PrimitiveArray<TimestampMillisecondType>>,
}

/// Columns the metrics and the dedup rule read (a projection for scans).
pub const METRIC_COLUMNS: [&str; 15] = [
    col::EVENT_ID,
    col::EVENT_TYPE,
    col::EVENT_TIME,
    col::USER_ID,
    col::URL,
    col::CATEGORY,
    col::COUNTRY,
    col::DEVICE,
    col::QUANTITY,
    col::PRICE_MINOR,
    col::CURRENCY,
    col::PARTITION,
    col::OFFSET,
    col::SOURCE,
    col::RECORD_TIME,
];

impl<'a> EventColumns<'a> {
    /// Binds the columns of `batch`, checking names, types and nullability.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, LogicError> {
        Ok(EventColumns {
            core: SessionColumns::new(batch)?,
            urls: Strings::of(batch, col::URL, false)?,
            categories: Strings::of(batch, col::CATEGORY, false)?,
            quantities: primitive::<Int64Type>(batch, col::QUANTITY, true)?,
            prices: primitive::<Int64Type>(batch, col::PRICE_MINOR, true)?,
            currencies: Strings::of(batch, col::CURRENCY, true)?,
            sources: match batch.column_by_name(col::SOURCE) {
                Some(_) => Some(Strings::of(batch, col::SOURCE, true)?),
                None => None,
            },
            record_times: match batch.column_by_name(col::RECORD_TIME) {
                Some(_) => Some(primitive::<TimestampMillisecondType>(
                    batch,
                    col::RECORD_TIME,
                    true,
                )?),
                None => None,
            },
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// True when the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// The event id of row `i` (for dedup before the whole row is read).
    pub fn event_id(&self, i: usize) -> &'a str {
        self.core.ids.value(i)
    }

    /// The origin of row `i`.
    pub fn origin(&self, i: usize) -> Origin {
        self.core.origin(i)
    }

    /// Row `i` as an event; an error when a value is outside the event model (a lake file
    /// not written by the platform, or corrupted).
    pub fn row(&self, i: usize) -> Result<EventRef<'a>, LogicError> {
        let (event_type, device) = self.core.type_and_device(i)?;
        let currency =
            match self.currencies.opt(i) {
                Some(c) => Some(Currency::parse(c).ok_or_else(|| {
                    LogicError::Schema(format!("row {i}: unknown currency `{c}`"))
                })?),
                None => None,
            };
        let opt = |a: &PrimitiveArray<Int64Type>| (!a.is_null(i)).then(|| a.value(i));
        let core = &self.core;
        Ok(EventRef {
            event_id: core.ids.value(i),
            event_type,
            event_time: EventTime(core.times.value(i)),
            user_id: core.users.value(i),
            url: self.urls.value(i),
            category: self.categories.value(i),
            country: core.countries.value(i),
            device,
            quantity: opt(self.quantities),
            price: opt(self.prices).map(Minor),
            currency,
            origin: self.origin(i),
            source: self
                .sources
                .as_ref()
                .and_then(|s| s.opt(i))
                .unwrap_or(crate::event::UNKNOWN),
            record_ms: self
                .record_times
                .and_then(|t| (!t.is_null(i)).then(|| t.value(i))),
        })
    }
}

/// Columns the `sessions` pass reads (a projection for the batch layer's scan).
pub const SESSION_COLUMNS: [&str; 8] = [
    col::EVENT_ID,
    col::EVENT_TYPE,
    col::EVENT_TIME,
    col::USER_ID,
    col::COUNTRY,
    col::DEVICE,
    col::PARTITION,
    col::OFFSET,
];

/// The columns of a lake record batch that sessions read ([`SESSION_COLUMNS`]), bound
/// once per batch: time, user and origin are read directly, so rows can be filtered before
/// the rest of the row is decoded.
pub struct SessionColumns<'a> {
    rows: usize,
    ids: Strings<'a>,
    types: Strings<'a>,
    times: &'a PrimitiveArray<TimestampMillisecondType>,
    users: Strings<'a>,
    countries: Strings<'a>,
    devices: Strings<'a>,
    partitions: &'a PrimitiveArray<Int32Type>,
    offsets: &'a PrimitiveArray<Int64Type>,
}

impl<'a> SessionColumns<'a> {
    /// Binds the columns of `batch`, checking names, types and nullability.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, LogicError> {
        Ok(SessionColumns {
            rows: batch.num_rows(),
            ids: Strings::of(batch, col::EVENT_ID, false)?,
            types: Strings::of(batch, col::EVENT_TYPE, false)?,
            times: primitive::<TimestampMillisecondType>(batch, col::EVENT_TIME, false)?,
            users: Strings::of(batch, col::USER_ID, false)?,
            countries: Strings::of(batch, col::COUNTRY, false)?,
            devices: Strings::of(batch, col::DEVICE, false)?,
            partitions: primitive::<Int32Type>(batch, col::PARTITION, false)?,
            offsets: primitive::<Int64Type>(batch, col::OFFSET, false)?,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The event time of row `i` (epoch ms).
    pub fn time(&self, i: usize) -> i64 {
        self.times.value(i)
    }

    /// The user of row `i`.
    pub fn user_id(&self, i: usize) -> &'a str {
        self.users.value(i)
    }

    /// The origin of row `i`.
    pub fn origin(&self, i: usize) -> Origin {
        Origin {
            partition: self.partitions.value(i),
            offset: self.offsets.value(i),
        }
    }

    /// The event type and device of row `i`, parsed.
    fn type_and_device(&self, i: usize) -> Result<(EventType, Device), LogicError> {
        let bad =
            |what: &str, value: &str| LogicError::Schema(format!("row {i}: {what} `{value}`"));
        let type_text = self.types.value(i);
        let event_type =
            EventType::parse(type_text).ok_or_else(|| bad("unknown event_type", type_text))?;
        let device_text = self.devices.value(i);
        let device =
            Device::parse(device_text).ok_or_else(|| bad("unknown device", device_text))?;
        Ok((event_type, device))
    }

    /// Row `i` as sessions see it ([`crate::sessions::Activity::of`] for a whole event).
    pub fn activity(&self, i: usize) -> Result<crate::sessions::Activity<'a>, LogicError> {
        let (event_type, device) = self.type_and_device(i)?;
        Ok(crate::sessions::Activity {
            time: self.times.value(i),
            tie: crate::dedup::id_hash(self.ids.value(i)),
            page_view: event_type == EventType::PageView,
            country: self.countries.value(i),
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Validator;

    fn events() -> Vec<Event> {
        let lines = [
            r#"{"event_id":"a","event_type":"page_view","event_time":1000,"user_id":"u1","url":"/","country":"us","device":"mobile"}"#,
            r#"{"event_id":"b","event_type":"add_to_cart","event_time":2000,"user_id":"u2","product_id":"p","quantity":2,"session_id":"s"}"#,
            r#"{"event_id":"c","event_type":"purchase","event_time":3000,"user_id":"u3","product_id":"p","quantity":1,"price":"9.99","currency":"GBP","category":"toys","source":"Shop"}"#,
        ];
        let headers: [Option<&[u8]>; 3] = [Some(b"web"), None, None];
        lines
            .iter()
            .zip(headers)
            .enumerate()
            .map(|(i, (l, source_header))| {
                let meta = crate::event::RecordMeta {
                    origin: Origin {
                        partition: 3,
                        offset: i as i64,
                    },
                    record_ms: (i != 1).then_some(4_000 + i as i64),
                    source_header,
                };
                Validator::default()
                    .validate_record(l.as_bytes(), meta, 10_000)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_source_and_record_time_are_kept() {
        let events = events();
        let kept: Vec<_> = events.iter().map(|e| (e.source(), e.record_ms())).collect();
        assert_eq!(
            kept,
            [
                ("web", Some(4_000)),
                ("unknown", None),
                ("shop", Some(4_002))
            ]
        );
    }

    #[test]
    fn files_written_before_the_added_columns_read_as_unknown_source_and_no_record_time() {
        let events = events();
        let batch = to_record_batch(&events).unwrap();
        let old = batch
            .project(&(0..batch.num_columns() - ADDED_COLUMNS.len()).collect::<Vec<_>>())
            .unwrap();
        assert!(old.column_by_name(col::SOURCE).is_none());
        let read = from_record_batch(&old).unwrap();
        let cols = EventColumns::new(&old).unwrap();
        for (i, (e, r)) in events.iter().zip(&read).enumerate() {
            assert_eq!((r.source(), r.record_ms()), ("unknown", None));
            assert_eq!(r.event_id(), e.event_id());
            let row = cols.row(i).unwrap();
            assert_eq!((row.source(), row.record_ms()), ("unknown", None));
            assert_eq!(row.event_id(), e.event_id().0);
        }
    }

    #[test]
    fn events_round_trip_through_a_record_batch() {
        let events = events();
        let batch = to_record_batch(&events).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), event_schema());
        assert_eq!(from_record_batch(&batch).unwrap(), events);
    }

    #[test]
    fn view_typed_and_reordered_columns_are_accepted() {
        let events = events();
        let batch = to_record_batch(&events).unwrap();
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()).rev() {
            let (field, column) = if f.data_type() == &DataType::Utf8 {
                let cast = arrow::compute::cast(c, &DataType::Utf8View).unwrap();
                (
                    Field::new(f.name(), DataType::Utf8View, f.is_nullable()),
                    cast,
                )
            } else {
                (f.as_ref().clone(), c.clone())
            };
            fields.push(field);
            columns.push(column);
        }
        let reordered = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(from_record_batch(&reordered).unwrap(), events);
    }

    #[test]
    fn a_batch_without_the_lake_columns_is_an_error() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let err = from_record_batch(&batch).unwrap_err();
        assert!(
            err.to_string().contains("missing column `event_id`"),
            "{err}"
        );
    }

    #[test]
    fn columns_read_rows_as_the_events_they_hold() {
        let events = events();
        let batch = to_record_batch(&events).unwrap();
        let cols = EventColumns::new(&batch).unwrap();
        assert_eq!(cols.len(), 3);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(cols.row(i).unwrap(), e.view());
        }
        let view_batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                col::EVENT_ID,
                DataType::Utf8View,
                false,
            )])),
            vec![arrow::compute::cast(batch.column(0), &DataType::Utf8View).unwrap()],
        )
        .unwrap();
        let err = EventColumns::new(&view_batch)
            .err()
            .expect("event_type is missing");
        assert!(
            err.to_string().contains("missing column `event_type`"),
            "{err}"
        );
    }
}
