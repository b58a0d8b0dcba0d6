//! Errors of the serving layer.

/// What failed in the serving layer, with the input that made it fail.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// A request parameter is not usable.
    #[error("bad request: {0}")]
    BadRequest(String),
}
