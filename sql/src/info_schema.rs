//! `information_schema.schemata`, `.tables` and `.columns` with PostgreSQL's type names
//! (`bigint`, `timestamp with time zone`, and `udt_name` beside them): what Grafana's
//! table and column pickers and other BI tools read. DataFusion's own reports Arrow type
//! names and has no `udt_name`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::catalog::{NamedTable, CATALOG, SCHEMA};
use crate::error::SqlError;

/// A column type as PostgreSQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    /// `information_schema.columns.data_type`: `bigint`, `timestamp with time zone`.
    pub name: &'static str,
    /// `udt_name`: `int8`, `timestamptz`.
    pub udt: &'static str,
    pub precision: Option<i32>,
    pub scale: Option<i32>,
}

/// PostgreSQL's name of an Arrow column type.
pub fn pg_type(t: &DataType) -> PgType {
    let named = |name, udt| PgType {
        name,
        udt,
        precision: None,
        scale: None,
    };
    let numeric = |name, udt, p: i32, s: Option<i32>| PgType {
        name,
        udt,
        precision: Some(p),
        scale: s,
    };
    match t {
        DataType::Timestamp(_, Some(_)) => named("timestamp with time zone", "timestamptz"),
        DataType::Timestamp(_, None) => named("timestamp without time zone", "timestamp"),
        DataType::Int64 => numeric("bigint", "int8", 64, Some(0)),
        DataType::Int32 => numeric("integer", "int4", 32, Some(0)),
        DataType::Float64 => numeric("double precision", "float8", 53, None),
        DataType::Decimal128(p, s) => numeric("numeric", "numeric", *p as i32, Some(*s as i32)),
        DataType::Boolean => named("boolean", "bool"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => named("bytea", "bytea"),
        _ => named("text", "text"),
    }
}

/// One row of `information_schema.columns`.
struct ColumnRow {
    table: String,
    name: String,
    position: i32,
    nullable: bool,
    pg: PgType,
}

fn text(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn batch(fields: Vec<(&str, DataType)>, columns: Vec<ArrayRef>) -> Result<MemTable, SqlError> {
    let schema = Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| SqlError::Catalog(format!("information_schema: {e}")))?;
    MemTable::try_new(schema, vec![vec![batch]])
        .map_err(|e| SqlError::Catalog(format!("information_schema: {e}")))
}

/// Registers `information_schema` for `tables` in the context's catalogue.
pub fn register(ctx: &SessionContext, tables: &[NamedTable]) -> Result<(), SqlError> {
    let s = |v: &str| Some(v.to_string());
    let schemata = batch(
        vec![
            ("catalog_name", DataType::Utf8),
            ("schema_name", DataType::Utf8),
            ("schema_owner", DataType::Utf8),
        ],
        vec![
            text(vec![s(CATALOG); 3]),
            text(vec![s(SCHEMA), s("information_schema"), s("pg_catalog")]),
            text(vec![s("lambda"); 3]),
        ],
    )?;
    let n = tables.len();
    let listed = batch(
        vec![
            ("table_catalog", DataType::Utf8),
            ("table_schema", DataType::Utf8),
            ("table_name", DataType::Utf8),
            ("table_type", DataType::Utf8),
        ],
        vec![
            text(vec![s(CATALOG); n]),
            text(vec![s(SCHEMA); n]),
            text(tables.iter().map(|t| s(&t.name)).collect()),
            text(vec![s("BASE TABLE"); n]),
        ],
    )?;
    let mut rows = Vec::new();
    for t in tables {
        for (i, f) in t.provider.schema().fields().iter().enumerate() {
            rows.push(ColumnRow {
                table: t.name.clone(),
                name: f.name().clone(),
                position: i as i32 + 1,
                nullable: f.is_nullable(),
                pg: pg_type(f.data_type()),
            });
        }
    }
    let n = rows.len();
    let columns = batch(
        vec![
            ("table_catalog", DataType::Utf8),
            ("table_schema", DataType::Utf8),
            ("table_name", DataType::Utf8),
            ("column_name", DataType::Utf8),
            ("ordinal_position", DataType::Int32),
            ("column_default", DataType::Utf8),
            ("is_nullable", DataType::Utf8),
            ("data_type", DataType::Utf8),
            ("udt_name", DataType::Utf8),
            ("numeric_precision", DataType::Int32),
            ("numeric_scale", DataType::Int32),
        ],
        vec![
            text(vec![s(CATALOG); n]),
            text(vec![s(SCHEMA); n]),
            text(rows.iter().map(|r| s(&r.table)).collect()),
            text(rows.iter().map(|r| s(&r.name)).collect()),
            Arc::new(Int32Array::from_iter_values(
                rows.iter().map(|r| r.position),
            )),
            text(vec![None; n]),
            text(
                rows.iter()
                    .map(|r| s(if r.nullable { "YES" } else { "NO" }))
                    .collect(),
            ),
            text(rows.iter().map(|r| s(r.pg.name)).collect()),
            text(rows.iter().map(|r| s(r.pg.udt)).collect()),
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.pg.precision).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.pg.scale).collect::<Vec<_>>(),
            )),
        ],
    )?;
    let schema = Arc::new(MemorySchemaProvider::new());
    for (name, t) in [
        ("schemata", schemata),
        ("tables", listed),
        ("columns", columns),
    ] {
        schema
            .register_table(name.to_string(), Arc::new(t))
            .map_err(|e| SqlError::Catalog(format!("information_schema.{name}: {e}")))?;
    }
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| SqlError::Catalog(format!("no catalogue {CATALOG}")))?;
    catalog
        .register_schema("information_schema", schema)
        .map_err(|e| SqlError::Catalog(format!("information_schema: {e}")))?;
    Ok(())
}
