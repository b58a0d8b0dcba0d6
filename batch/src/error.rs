//! Errors of the batch layer, each naming the input it concerns.

/// What failed in the batch layer.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The lake, a manifest or Kafka failed (see [`lambda_io::IoError`]).
    #[error(transparent)]
    Io(#[from] lambda_io::IoError),
    /// A Parquet file could not be written or read.
    #[error("parquet file `{path}`: {source}")]
    Parquet {
        path: String,
        #[source]
        source: Box<parquet::errors::ParquetError>,
    },
    /// DataFusion failed to plan or run a scan.
    #[error("scan of hour {hour}: {source}")]
    Scan {
        hour: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    /// Shared logic rejected data (a lake file that does not follow the event schema).
    #[error("{context}: {source}")]
    Logic {
        context: String,
        #[source]
        source: shared_logic::LogicError,
    },
    /// Reading an input file (import) failed.
    #[error("reading {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An argument the user gave is not usable.
    #[error("{0}")]
    Usage(String),
    /// The published manifest is unreadable.
    #[error("manifest `{path}` is unreadable: {reason}")]
    Manifest { path: String, reason: String },
    /// An hour has no input files in the lake.
    #[error("hour {hour} has no data in {lake}")]
    NoData { hour: String, lake: String },
}

impl BatchError {
    pub(crate) fn parquet(
        path: impl ToString,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> BatchError {
        let path = path.to_string();
        move |source| BatchError::Parquet {
            path,
            source: Box::new(source),
        }
    }

    pub(crate) fn logic(
        context: impl ToString,
    ) -> impl FnOnce(shared_logic::LogicError) -> BatchError {
        let context = context.to_string();
        move |source| BatchError::Logic { context, source }
    }
}
