//! Errors of the tools: configuration mistakes (the binary exits 2 on them), wrong
//! arguments, failed operations with what was being done, and the layers' own errors.

/// What failed in a tool.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// A configuration mistake: its place and its reason.
    #[error("{0}")]
    Config(String),
    /// An argument or a precondition that does not hold.
    #[error("{0}")]
    Invalid(String),
    /// An operation failed: what was being done, and why.
    #[error("{what}: {cause}")]
    Failed { what: String, cause: String },
    #[error(transparent)]
    Io(#[from] lambda_io::IoError),
    #[error(transparent)]
    Batch(#[from] batch::BatchError),
    #[error(transparent)]
    Speed(#[from] speed::SpeedError),
    #[error(transparent)]
    Serving(#[from] serving::ServingError),
}

/// Says what was being done when an operation failed.
pub trait Context<T> {
    /// The error becomes [`ToolsError::Failed`] with `what`.
    fn context(self, what: impl Into<String>) -> Result<T, ToolsError>;
    /// The same, with `what` computed only on failure.
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T, ToolsError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T, ToolsError> {
        self.map_err(|e| ToolsError::Failed {
            what: what.into(),
            cause: e.to_string(),
        })
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T, ToolsError> {
        self.map_err(|e| ToolsError::Failed {
            what: what().into(),
            cause: e.to_string(),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Into<String>) -> Result<T, ToolsError> {
        self.ok_or_else(|| ToolsError::Invalid(what.into()))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T, ToolsError> {
        self.ok_or_else(|| ToolsError::Invalid(what().into()))
    }
}

/// `Err(ToolsError::Invalid(format!(..)))`, returned.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::ToolsError::Invalid(format!($($arg)*)))
    };
}
