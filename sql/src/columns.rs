//! A metric table's columns and their SQL types, and merged rows into Arrow.
//!
//! Columns, in order: `window_start`, `window_end` (timestamptz), the metric's dimensions
//! (text), its values (counts bigint; money as `numeric` in the reporting currency beside
//! the `_minor` column in minor units; ratios double precision), one `<name>_sketch`
//! (bytea) per distinct-count sketch, `source` (text) and `final` (boolean).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanArray, Decimal128Array, Float64Array, Int64Array,
    StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serving::merge::{Row, Source};
use shared_logic::metric::{Value, ValueKind};
use shared_logic::Metric;

/// Precision of the money columns (`numeric(38, exponent)`).
const MONEY_PRECISION: u8 = 38;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    WindowStart,
    WindowEnd,
    /// A dimension, by its index in the metric's dimensions.
    Dimension(usize),
    /// A value as the metric reports it, by its index in the metric's values.
    Value(usize),
    /// A money value in the reporting currency's units (`numeric`).
    Amount(usize),
    /// A distinct-count sketch, by its index in the metric's sketches.
    Sketch(usize),
    Source,
    Final,
}

/// The columns of metric `M`'s tables, with their Arrow fields.
#[derive(Debug, Clone)]
pub struct Layout {
    pub schema: SchemaRef,
    pub columns: Vec<Column>,
}

/// The name of a money value's `numeric` column: `revenue_minor` → `revenue`.
pub fn amount_name(value: &str) -> String {
    match value.strip_suffix("_minor") {
        Some(base) => base.to_string(),
        None => format!("{value}_amount"),
    }
}

/// The layout of metric `M`'s tables, money in a currency with `exponent` decimals.
pub fn layout<M: Metric>(exponent: u32) -> Layout {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("window_start", time(), false),
        Field::new("window_end", time(), false),
    ];
    let mut columns = vec![Column::WindowStart, Column::WindowEnd];
    for (i, name) in M::DIMENSIONS.iter().enumerate() {
        fields.push(Field::new(*name, DataType::Utf8, false));
        columns.push(Column::Dimension(i));
    }
    for (i, (name, kind)) in M::VALUES.iter().enumerate() {
        match kind {
            ValueKind::Count => fields.push(Field::new(*name, DataType::Int64, false)),
            ValueKind::Money => {
                let scale = exponent.min(MONEY_PRECISION as u32) as i8;
                fields.push(Field::new(
                    amount_name(name),
                    DataType::Decimal128(MONEY_PRECISION, scale),
                    false,
                ));
                columns.push(Column::Amount(i));
                fields.push(Field::new(*name, DataType::Int64, false));
            }
            ValueKind::Ratio => fields.push(Field::new(*name, DataType::Float64, true)),
            ValueKind::Millis => fields.push(Field::new(*name, DataType::Int64, true)),
            ValueKind::Time => fields.push(Field::new(*name, time(), true)),
        }
        columns.push(Column::Value(i));
    }
    for (i, (name, _)) in M::SKETCHES.iter().enumerate() {
        fields.push(Field::new(
            format!("{name}_sketch"),
            DataType::Binary,
            false,
        ));
        columns.push(Column::Sketch(i));
    }
    fields.push(Field::new("source", DataType::Utf8, false));
    columns.push(Column::Source);
    fields.push(Field::new("final", DataType::Boolean, false));
    columns.push(Column::Final);
    Layout {
        schema: Arc::new(Schema::new(fields)),
        columns,
    }
}

/// Merged rows as a record batch of the columns `projection` names (every column when
/// `None`). `grouped` lists the dimensions the rows are grouped by, in row order: a
/// projected dimension must be among them.
pub fn record_batch<M: Metric>(
    layout: &Layout,
    projection: Option<&[usize]>,
    rows: &[Row<'_, M::State>],
    grouped: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let all: Vec<usize> = (0..layout.columns.len()).collect();
    let projection = projection.unwrap_or(&all);
    let schema = Arc::new(layout.schema.project(projection)?);
    let needs_values = projection
        .iter()
        .any(|c| matches!(layout.columns[*c], Column::Value(_) | Column::Amount(_)));
    // Every row's values, one row after the other (row `i`'s value `v` at `i * width + v`).
    let width = M::VALUES.len();
    let mut values: Vec<Value> = Vec::new();
    if needs_values {
        values.reserve(rows.len() * width);
        for r in rows {
            let row = M::values(&r.state);
            values.extend(
                row.into_iter()
                    .chain(std::iter::repeat(Value::Count(0)))
                    .take(width),
            );
        }
    }
    let values = || values.chunks_exact(width.max(1));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(projection.len());
    for &c in projection {
        let field = layout.schema.field(c);
        arrays.push(match layout.columns[c] {
            Column::WindowStart => times(rows.iter().map(|r| r.window_start)),
            Column::WindowEnd => times(rows.iter().map(|r| r.window_end)),
            Column::Dimension(d) => {
                let at = grouped.iter().position(|g| *g == d).ok_or_else(|| {
                    ArrowError::InvalidArgumentError(format!(
                        "dimension {} was not grouped",
                        M::DIMENSIONS[d]
                    ))
                })?;
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
                for r in rows {
                    b.append_value(&r.dims[at]);
                }
                Arc::new(b.finish())
            }
            Column::Value(v) => match field.data_type() {
                DataType::Float64 => {
                    Arc::new(Float64Array::from_iter(values().map(|vs| match vs[v] {
                        Value::Ratio(r) => r,
                        _ => None,
                    })))
                }
                DataType::Timestamp(..) => Arc::new(
                    TimestampMicrosecondArray::from_iter(values().map(|vs| match vs[v] {
                        Value::Time(t) => t.map(|ms| ms.saturating_mul(1000)),
                        _ => None,
                    }))
                    .with_timezone("UTC"),
                ),
                _ if field.is_nullable() => {
                    Arc::new(Int64Array::from_iter(values().map(|vs| match vs[v] {
                        Value::Millis(d) => d.map(|d| d.min(i64::MAX as u64) as i64),
                        _ => None,
                    })))
                }
                _ => Arc::new(Int64Array::from_iter_values(
                    values().map(|vs| integer(vs[v]) as i64),
                )),
            },
            Column::Amount(v) => {
                let DataType::Decimal128(p, s) = field.data_type() else {
                    unreachable!("amount columns are decimals")
                };
                Arc::new(
                    Decimal128Array::from_iter_values(values().map(|vs| integer(vs[v])))
                        .with_precision_and_scale(*p, *s)?,
                )
            }
            Column::Sketch(k) => {
                let mut b = BinaryBuilder::with_capacity(rows.len(), rows.len() * 16);
                for r in rows {
                    b.append_value(M::sketches(&r.state)[k].to_bytes());
                }
                Arc::new(b.finish())
            }
            Column::Source => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 5);
                for r in rows {
                    b.append_value(match r.source {
                        Source::Batch => "batch",
                        Source::Speed => "speed",
                        Source::BatchAndSpeed => "batch+speed",
                    });
                }
                Arc::new(b.finish())
            }
            Column::Final => Arc::new(BooleanArray::from_iter(
                rows.iter().map(|r| Some(r.is_final)),
            )),
        });
    }
    RecordBatch::try_new_with_options(
        schema,
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
}

/// Epoch milliseconds as UTC microsecond timestamps.
fn times(ms: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(ms.map(|m| m.saturating_mul(1000)))
            .with_timezone("UTC"),
    )
}

/// A count or an amount in minor units, as an integer (counts above `i64::MAX` clamp).
fn integer(value: Value) -> i128 {
    match value {
        Value::Count(n) => n.min(i64::MAX as u64) as i128,
        Value::Money(m) => m as i128,
        Value::Ratio(_) | Value::Millis(_) | Value::Time(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
    use shared_logic::hll::Hll;
    use shared_logic::metrics::{PageViews, Revenue, RevenueState};

    use super::*;

    #[test]
    fn money_is_a_decimal_beside_its_minor_units_and_sketches_are_bytes() {
        let layout = layout::<Revenue>(2);
        let names: Vec<&str> = layout
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "window_start",
                "window_end",
                "category",
                "country",
                "orders",
                "items",
                "revenue",
                "revenue_minor",
                "distinct_buyers",
                "average_order_value_minor",
                "buyers_sketch",
                "source",
                "final"
            ]
        );
        let mut buyers = Hll::default();
        buyers.add_hash(7);
        let state = RevenueState {
            orders: 2,
            items: 3,
            revenue_minor: 12_345,
            buyers: buyers.clone(),
        };
        let rows = vec![Row {
            window_start: 60_000,
            window_end: 120_000,
            dims: vec![Cow::Borrowed("US")],
            state: Cow::Borrowed(&state),
            source: Source::Speed,
            is_final: false,
        }];
        let batch = record_batch::<Revenue>(&layout, None, &rows, &[1]);
        assert!(batch.is_err(), "category is projected but was not grouped");
        let projection = [0, 3, 6, 7, 9, 10, 12];
        let batch = record_batch::<Revenue>(&layout, Some(&projection), &rows, &[1]).unwrap();
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            60_000_000
        );
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "US");
        let amount = batch.column(2).as_primitive::<Decimal128Type>();
        assert_eq!(
            (amount.value(0), amount.precision(), amount.scale()),
            (12_345, 38, 2)
        );
        assert_eq!(batch.column(3).as_primitive::<Int64Type>().value(0), 12_345);
        assert_eq!(
            batch
                .column(4)
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(0),
            6172.5
        );
        assert_eq!(
            batch.column(5).as_binary::<i32>().value(0),
            buyers.to_bytes()
        );
        assert!(!batch.column(6).as_boolean().value(0));
    }

    #[test]
    fn an_answer_without_columns_still_counts_its_rows() {
        let layout = layout::<PageViews>(2);
        let state = Default::default();
        let row = Row {
            window_start: 0,
            window_end: 60_000,
            dims: vec![],
            state: Cow::Borrowed(&state),
            source: Source::Batch,
            is_final: true,
        };
        let batch =
            record_batch::<PageViews>(&layout, Some(&[]), &[row.clone(), row], &[]).unwrap();
        assert_eq!((batch.num_rows(), batch.num_columns()), (2, 0));
        assert_eq!(layout.schema.field(5).name(), "views");
        assert!(batch.schema().fields().is_empty());
        let _ = batch.column_by_name("views").map(|c| c.len());
    }
}
