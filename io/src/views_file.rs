//! A metric's views as one Parquet file, in the views schema of `shared_logic::views`: what
//! the batch layer publishes per hour and what a speed instance answers on
//! `GET /v1/speed/views/{metric}`. Encoding and decoding are CPU work: callers on an async
//! runtime run them on a blocking thread.

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;
use shared_logic::window::WindowSpec;
use shared_logic::{views, Metric, MetricViews};

use crate::error::IoError;
use crate::parquet_file::encode_parquet;

/// Encodes metric `M`'s views; `name` names the file in errors.
pub fn encode_views<M: Metric>(
    states: &MetricViews<M>,
    windows: &WindowSpec,
    name: &str,
) -> Result<Vec<u8>, IoError> {
    let batch = views::to_record_batch(states, windows).map_err(|source| IoError::Views {
        path: name.to_string(),
        source,
    })?;
    encode_parquet(views::view_schema::<M>(), &[batch], name)
}

/// Decodes a views file of metric `M` and merges its states into `out`.
pub fn merge_views_file<M: Metric>(
    out: &mut MetricViews<M>,
    bytes: bytes::Bytes,
    name: &str,
) -> Result<(), IoError> {
    for batch in decode_batches(bytes, name)? {
        views::merge_record_batch(out, &batch).map_err(|source| IoError::Views {
            path: name.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Every record batch of a Parquet file. The decoder panics on some corrupt files (slice
/// bounds in its bit reader, found by the `views` fuzz target); a views file comes from
/// another process or the lake, so such a panic is this file's error, not the caller's
/// crash. Nothing is merged before the whole file has decoded. The footer is checked first
/// ([`crate::parquet_footer`]), so a hostile one costs work in its length, not in what it
/// claims.
fn decode_batches(bytes: bytes::Bytes, name: &str) -> Result<Vec<RecordBatch>, IoError> {
    // The decoder trusts the footer's element counts: check them first (bounded work).
    crate::parquet_footer::check(&bytes)
        .map_err(|e| IoError::parquet(name)(ParquetError::General(e.0)))?;
    let decode = || -> Result<Vec<RecordBatch>, ParquetError> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        reader
            .map(|batch| batch.map_err(ParquetError::from))
            .collect()
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(decoded) => decoded.map_err(IoError::parquet(name)),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(IoError::parquet(name)(ParquetError::General(format!(
                "corrupt file: the decoder failed ({why})"
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::generate::{Generator, GeneratorConfig};
    use shared_logic::metrics::{PageViews, Revenue};
    use shared_logic::{Aggregates, MetricContext, Origin, Validator};

    #[test]
    fn views_round_trip_through_a_file() {
        let v = Validator::default();
        let events: Vec<_> = Generator::new(GeneratorConfig::default())
            .take(2_000)
            .enumerate()
            .map(|(i, r)| {
                v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                    .unwrap()
            })
            .collect();
        let ctx = MetricContext::default();
        let agg = Aggregates::fold(&events, &ctx);
        let bytes = encode_views(&agg.page_views, &ctx.windows, "pv").unwrap();
        let mut back = MetricViews::<PageViews>::default();
        merge_views_file(&mut back, bytes.into(), "pv").unwrap();
        assert_eq!(back, agg.page_views);
        assert!(!back.is_empty());
    }

    #[test]
    fn a_file_that_is_not_parquet_is_a_clear_error() {
        let mut out = MetricViews::<Revenue>::default();
        let err = merge_views_file(&mut out, bytes::Bytes::from_static(b"nope"), "x.parquet")
            .unwrap_err();
        assert!(err.to_string().contains("x.parquet"), "{err}");
    }
}
