//! Arrow schemas as Delta schemas. Delta has no unsigned integers and one timestamp type
//! (microseconds, UTC); the files we write keep their Arrow types, and a Delta reader casts
//! them to the table's (Parquet's millisecond timestamps and signed 64-bit integers read as
//! Delta `timestamp` and `long`).

use arrow::datatypes::{DataType as ArrowType, Schema};
use deltalake::kernel::{DataType, Metadata, PrimitiveType, StructField, StructType};

use super::partition::{DATE_COLUMN, HOUR_COLUMN};

fn delta_type(arrow: &ArrowType) -> Result<DataType, String> {
    Ok(match arrow {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::STRING,
        ArrowType::Binary | ArrowType::LargeBinary | ArrowType::BinaryView => DataType::BINARY,
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Int8 => DataType::BYTE,
        ArrowType::Int16 => DataType::SHORT,
        ArrowType::Int32 => DataType::INTEGER,
        ArrowType::Int64 | ArrowType::UInt32 | ArrowType::UInt64 => DataType::LONG,
        ArrowType::Float32 => DataType::FLOAT,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Date32 => DataType::DATE,
        ArrowType::Timestamp(_, Some(_)) => DataType::TIMESTAMP,
        ArrowType::Timestamp(_, None) => DataType::TIMESTAMP_NTZ,
        other => return Err(format!("no Delta type for Arrow {other}")),
    })
}

/// The Delta schema of files in `arrow` schema, plus the hour partition columns.
pub fn hour_partitioned(arrow: &Schema) -> Result<Vec<StructField>, String> {
    let mut fields = Vec::with_capacity(arrow.fields().len() + 2);
    for f in arrow.fields() {
        fields.push(StructField::new(
            f.name().clone(),
            delta_type(f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))?,
            f.is_nullable(),
        ));
    }
    fields.push(StructField::new(
        DATE_COLUMN,
        DataType::Primitive(PrimitiveType::Date),
        false,
    ));
    fields.push(StructField::new(
        HOUR_COLUMN,
        DataType::Primitive(PrimitiveType::Integer),
        false,
    ));
    Ok(fields)
}

/// `metadata` (of a table whose schema is `schema`) with `columns` as its partition
/// columns, which must be columns of the schema; everything else kept.
pub fn with_partition_columns(
    metadata: &Metadata,
    schema: &StructType,
    columns: &[String],
) -> Result<Metadata, String> {
    if let Some(missing) = columns.iter().find(|c| schema.field(c.as_str()).is_none()) {
        return Err(format!("no column `{missing}` to partition by"));
    }
    let value = serde_json::json!({
        "id": metadata.id(),
        "name": metadata.name(),
        "description": metadata.description(),
        "format": { "provider": "parquet", "options": {} },
        "schemaString": serde_json::to_string(schema).map_err(|e| e.to_string())?,
        "partitionColumns": columns,
        "configuration": metadata.configuration(),
        "createdTime": metadata.created_time(),
    });
    serde_json::from_value(value).map_err(|e| format!("metadata: {e}"))
}

/// Whether two Delta schemas have the same columns (names, types, nullability).
pub fn same_columns(a: &StructType, b: &[StructField]) -> bool {
    let a: Vec<&StructField> = a.fields().collect();
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}

/// The columns `ours` adds to a table whose schema is `table`, when `ours` only adds
/// nullable columns to it (each of the table's columns is in `ours` with its type and
/// nullability): what a newer writer may add to an older table. `None` when the schemas
/// conflict otherwise, or add nothing.
pub fn added_columns(table: &StructType, ours: &[StructField]) -> Option<Vec<StructField>> {
    let kept = table.fields().all(|t| {
        ours.iter().any(|o| {
            o.name() == t.name()
                && o.data_type() == t.data_type()
                && o.is_nullable() == t.is_nullable()
        })
    });
    let added: Vec<StructField> = ours
        .iter()
        .filter(|o| table.field(o.name()).is_none())
        .cloned()
        .collect();
    (kept && !added.is_empty() && added.iter().all(|f| f.is_nullable())).then_some(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_schema_has_a_delta_schema_with_partition_columns() {
        let fields = hour_partitioned(&shared_logic::schema::event_schema()).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.first(), Some(&"event_id"));
        assert_eq!(&names[names.len() - 2..], &["date", "hour"]);
        let bad = Schema::new(vec![arrow::datatypes::Field::new(
            "d",
            ArrowType::Duration(arrow::datatypes::TimeUnit::Second),
            false,
        )]);
        assert!(hour_partitioned(&bad).unwrap_err().contains("column `d`"));
    }
}
