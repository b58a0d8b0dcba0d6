//! Errors of the serving layer and their HTTP answers.
//!
//! Each variant maps to one status code, and each error carries a stable machine-readable
//! `code` beside a message for people; the JSON body is `{"code": …, "message": …}`.
//! Nothing a client sends can produce a 500: bad input is a 4xx with the parameter named,
//! a layer that cannot be reached is a 503.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What failed in the serving layer, with the input that made it fail.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// A request parameter or body is not usable (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No such route or object (404).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A token is missing or wrong (401).
    #[error("{message}")]
    Unauthorized { message: String },
    /// The token is valid but not for this, or the route is disabled (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A client over its ingest rate (429, with `Retry-After`).
    #[error("too many requests from this client: retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// A request body over the configured limit (413).
    #[error("the request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// A body in an encoding the server does not decode (415).
    #[error("{message}")]
    UnsupportedEncoding { message: String },
    /// A layer the answer depends on cannot be reached (503).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// The batch views could not be read.
    #[error("batch views: {0}")]
    BatchViews(#[from] lambda_io::IoError),
    /// Something on our side failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ServingError {
    /// A 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ServingError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 503 with `code`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ServingError::Unavailable {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ServingError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ServingError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServingError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ServingError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ServingError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServingError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServingError::UnsupportedEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServingError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServingError::BatchViews(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServingError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            ServingError::BadRequest { code, .. }
            | ServingError::NotFound { code, .. }
            | ServingError::Forbidden { code, .. }
            | ServingError::Unavailable { code, .. } => code,
            ServingError::Unauthorized { .. } => "unauthorized",
            ServingError::TooManyRequests { .. } => "rate_limited",
            ServingError::TooLarge { .. } => "body_too_large",
            ServingError::UnsupportedEncoding { .. } => "unsupported_encoding",
            ServingError::BatchViews(_) => "batch_views_unavailable",
            ServingError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ServingError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ServingError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let body = Json(serde_json::json!({ "code": self.code(), "message": self.to_string() }));
        let mut response = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
