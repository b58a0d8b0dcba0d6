//! Parquet files as every layer writes them: zstd level 3, row groups of 256 Ki rows, and
//! `created_by` naming this program. Encoding happens in memory; the caller puts the bytes
//! into the object store in one piece (readers see the whole file or nothing).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::IoError;

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_created_by(format!("lambda {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A Parquet writer into memory with the properties every layer writes (for a file
/// written batch by batch, e.g. compaction rolling its output at a size).
pub fn parquet_writer(schema: SchemaRef, name: &str) -> Result<ArrowWriter<Vec<u8>>, IoError> {
    ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties()))
        .map_err(IoError::parquet(name))
}

/// Encodes record batches as one Parquet file in memory.
pub fn encode_parquet(
    schema: SchemaRef,
    batches: &[RecordBatch],
    name: &str,
) -> Result<Vec<u8>, IoError> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(writer_properties()))
        .map_err(IoError::parquet(name))?;
    for batch in batches {
        writer.write(batch).map_err(IoError::parquet(name))?;
    }
    writer.close().map_err(IoError::parquet(name))?;
    Ok(buffer)
}
