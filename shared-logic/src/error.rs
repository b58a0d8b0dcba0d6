//! Errors of the shared logic: bad configuration (rates, windows) and malformed Arrow input.
//!
//! Invalid *events* are not errors: they are data, a [`crate::DeadLetter`] with a reason code.

/// What went wrong in shared-logic, with the offending input.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// A line of the exchange-rates table could not be used.
    #[error("rates table line {line}: {reason}")]
    Rates { line: usize, reason: String },
    /// A window specification that cannot assign windows.
    #[error("invalid window spec: {0}")]
    Window(String),
    /// An Arrow batch that does not follow the lake's event schema.
    #[error("record batch does not match the event schema: {0}")]
    Schema(String),
    /// An Arrow operation failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A serialised state could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
}
