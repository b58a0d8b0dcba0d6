//! The Arrow form of a metric's views: what the batch layer writes as Parquet, what serving
//! reads back, and what `verify` compares.
//!
//! One row per key (window × dimension values): `window_start`, `window_end`, one string
//! column per dimension, one column per value (evaluated, for people and other engines
//! such as DuckDB), and `state`: the mergeable state in a stable binary encoding (postcard),
//! which is the only column merges read.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMillisecondType};

use crate::error::LogicError;
use crate::group_key::GroupKey;
use crate::metric::{Metric, Value, ValueKind};
use crate::metric_views::MetricViews;
use crate::window::{WindowSpec, WindowStart};

/// Name of the column holding the encoded state.
pub const STATE_COLUMN: &str = "state";

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The schema of metric `M`'s view files.
pub fn view_schema<M: Metric>() -> SchemaRef {
    let mut fields = vec![
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
    ];
    fields.extend(
        M::DIMENSIONS
            .iter()
            .map(|d| Field::new(*d, DataType::Utf8, false)),
    );
    fields.extend(M::VALUES.iter().map(|(name, kind)| match kind {
        // Signed: Delta, SQL engines and Spark have no unsigned 64-bit integer (a count
        // never reaches 2^63; it saturates there).
        ValueKind::Count => Field::new(*name, DataType::Int64, false),
        ValueKind::Money => Field::new(*name, DataType::Int64, false),
        ValueKind::Ratio => Field::new(*name, DataType::Float64, true),
        ValueKind::Millis => Field::new(*name, DataType::Int64, true),
        ValueKind::Time => Field::new(*name, ts(), true),
    }));
    fields.push(Field::new(STATE_COLUMN, DataType::Binary, false));
    Arc::new(Schema::new(fields))
}

/// Encodes a state (postcard: compact, stable across platforms).
pub fn encode_state<M: Metric>(state: &M::State) -> Result<Vec<u8>, LogicError> {
    postcard::to_stdvec(state).map_err(|e| LogicError::Decode {
        what: "metric state",
        reason: e.to_string(),
    })
}

/// Decodes [`encode_state`]'s bytes.
pub fn decode_state<M: Metric>(bytes: &[u8]) -> Result<M::State, LogicError> {
    postcard::from_bytes(bytes).map_err(|e| LogicError::Decode {
        what: "metric state",
        reason: e.to_string(),
    })
}

/// Views as a record batch, rows sorted by key (so equal views give equal files).
pub fn to_record_batch<M: Metric>(
    views: &MetricViews<M>,
    windows: &WindowSpec,
) -> Result<RecordBatch, LogicError> {
    let rows = views.sorted();
    let mut columns: Vec<ArrayRef> = Vec::new();
    columns.push(Arc::new(
        rows.iter()
            .map(|(k, _)| Some(k.window.0))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    ));
    columns.push(Arc::new(
        rows.iter()
            .map(|(k, _)| Some(windows.end(k.window)))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    ));
    let mut dims: Vec<arrow::array::StringBuilder> = M::DIMENSIONS
        .iter()
        .map(|_| arrow::array::StringBuilder::with_capacity(rows.len(), rows.len() * 8))
        .collect();
    for (key, _) in &rows {
        let mut values = key.dims();
        for column in dims.iter_mut() {
            column.append_value(values.next().unwrap_or_default());
        }
    }
    for mut column in dims {
        columns.push(Arc::new(column.finish()));
    }
    let values: Vec<Vec<Value>> = rows.iter().map(|(_, s)| M::values(s)).collect();
    for (v, (_, kind)) in M::VALUES.iter().enumerate() {
        let column: ArrayRef = match kind {
            ValueKind::Count => Arc::new(
                values
                    .iter()
                    .map(|row| match row[v] {
                        Value::Count(c) => i64::try_from(c).unwrap_or(i64::MAX),
                        _ => 0,
                    })
                    .collect::<Int64Array>(),
            ),
            ValueKind::Money => Arc::new(
                values
                    .iter()
                    .map(|row| if let Value::Money(m) = row[v] { m } else { 0 })
                    .collect::<Int64Array>(),
            ),
            ValueKind::Ratio => Arc::new(
                values
                    .iter()
                    .map(|row| {
                        if let Value::Ratio(r) = row[v] {
                            r
                        } else {
                            None
                        }
                    })
                    .collect::<Float64Array>(),
            ),
            ValueKind::Millis => Arc::new(
                values
                    .iter()
                    .map(|row| match row[v] {
                        Value::Millis(d) => d.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                        _ => None,
                    })
                    .collect::<Int64Array>(),
            ),
            ValueKind::Time => Arc::new(
                values
                    .iter()
                    .map(|row| if let Value::Time(t) = row[v] { t } else { None })
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
        };
        columns.push(column);
    }
    // One scratch buffer for every state: no allocation per row.
    let mut states = arrow::array::BinaryBuilder::with_capacity(rows.len(), rows.len() * 32);
    let mut scratch = Vec::with_capacity(256);
    for (_, s) in &rows {
        scratch.clear();
        scratch = postcard::to_io(*s, scratch).map_err(|e| LogicError::Decode {
            what: "metric state",
            reason: e.to_string(),
        })?;
        states.append_value(&scratch);
    }
    columns.push(Arc::new(states.finish()));
    Ok(RecordBatch::try_new(view_schema::<M>(), columns)?)
}

/// Reads views back from a record batch of [`view_schema`] (string columns may be views),
/// merging rows that share a key.
pub fn merge_record_batch<M: Metric>(
    views: &mut MetricViews<M>,
    batch: &RecordBatch,
) -> Result<(), LogicError> {
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            LogicError::Schema(format!("view of {} has no column `{name}`", M::NAME))
        })
    };
    let starts = column("window_start")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| LogicError::Schema("window_start is not a millisecond timestamp".into()))?;
    let dims: Vec<ArrayRef> = M::DIMENSIONS
        .iter()
        .map(|d| arrow::compute::cast(column(d)?, &DataType::Utf8).map_err(LogicError::from))
        .collect::<Result<_, _>>()?;
    let dims: Vec<&StringArray> = dims.iter().map(|a| a.as_string::<i32>()).collect();
    let states = arrow::compute::cast(column(STATE_COLUMN)?, &DataType::Binary)?;
    let states = states.as_binary::<i32>();
    for i in 0..batch.num_rows() {
        if starts.is_null(i) || states.is_null(i) || dims.iter().any(|d| d.is_null(i)) {
            return Err(LogicError::Schema(format!(
                "view of {} has a null key or state in row {i}",
                M::NAME
            )));
        }
        let values: Vec<&str> = dims.iter().map(|d| d.value(i)).collect();
        let key = GroupKey::new(WindowStart(starts.value(i)), &values);
        views.merge_group(&key, &decode_state::<M>(states.value(i))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{Generator, GeneratorConfig};
    use crate::metric::MetricContext;
    use crate::metrics::{Funnel, PageViews, Revenue};
    use crate::registry::Aggregates;
    use crate::{Origin, Validator};

    fn aggregates() -> Aggregates {
        let v = Validator::default();
        let events: Vec<_> = Generator::new(GeneratorConfig::default())
            .take(20_000)
            .enumerate()
            .map(|(i, r)| {
                v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                    .unwrap()
            })
            .collect();
        Aggregates::fold(&events, &MetricContext::default())
    }

    fn round_trip<M: Metric>(views: &MetricViews<M>) {
        let batch = to_record_batch(views, &WindowSpec::default()).unwrap();
        assert_eq!(batch.num_rows(), views.len());
        let mut back = MetricViews::<M>::default();
        merge_record_batch(&mut back, &batch).unwrap();
        assert_eq!(&back, views);
        // Reading the same rows twice merges them: counts double.
        merge_record_batch(&mut back, &batch).unwrap();
        assert_ne!(&back, views);
    }

    #[test]
    fn views_round_trip_through_record_batches() {
        let agg = aggregates();
        round_trip::<PageViews>(&agg.page_views);
        round_trip::<Funnel>(&agg.funnel);
        round_trip::<Revenue>(&agg.revenue);
    }

    #[test]
    fn states_written_with_i64_sums_read_back_into_the_i128_sums() {
        // Issue 16 widened the signed sums to i128. Postcard writes both as the same zigzag
        // varint, so views files and checkpoints written before stay readable.
        #[derive(serde::Serialize)]
        struct Before {
            orders: i64,
            gross_minor: i64,
            cancellations: i64,
            reversed_minor: i64,
        }
        let old = Before {
            orders: 3,
            gross_minor: -i64::MAX,
            cancellations: 1,
            reversed_minor: i64::MAX,
        };
        let state =
            decode_state::<crate::metrics::Orders>(&postcard::to_stdvec(&old).unwrap()).unwrap();
        assert_eq!(
            (state.orders, state.gross_minor, state.reversed_minor),
            (3, -(i64::MAX as i128), i64::MAX as i128)
        );
        assert_eq!(
            encode_state::<crate::metrics::Orders>(&state).unwrap(),
            postcard::to_stdvec(&old).unwrap()
        );
    }

    #[test]
    fn corrupt_state_bytes_are_an_error() {
        assert!(decode_state::<Funnel>(&[0xff, 0xff, 0xff]).is_err());
    }
}
