//! Errors of the speed layer.

/// What failed in the speed layer, with the input that made it fail.
#[derive(Debug, thiserror::Error)]
pub enum SpeedError {
    /// Kafka or the object store failed (see [`lambda_io::IoError`]).
    #[error(transparent)]
    Io(#[from] lambda_io::IoError),
    /// The configuration cannot work (the reason says why).
    #[error("{0}")]
    Usage(String),
    /// A checkpoint could not be written or restored.
    #[error("checkpoint of partition {partition}: {reason}")]
    Checkpoint { partition: i32, reason: String },
}
