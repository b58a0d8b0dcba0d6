//! Who may call what: bearer tokens per group of routes (queries, ingest, admin), checked
//! by middleware before a handler runs, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ServingError;
use crate::state::AppState;

/// Compares without an early exit on the first differing byte.
fn token_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= (*x ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

fn check_token(expected: Option<&str>, request: &Request, what: &str) -> Result<(), ServingError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if token_matches(expected, token.trim()) => Ok(()),
        Some(_) => Err(ServingError::Unauthorized {
            message: format!("the bearer token is not valid for {what}"),
        }),
        None => Err(ServingError::Unauthorized {
            message: format!("{what} needs `Authorization: Bearer <token>`"),
        }),
    }
}

/// Middleware: the query token, when one is set.
pub async fn query_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    check_token(state.opts.query_token.as_deref(), &request, "queries")?;
    Ok(next.run(request).await)
}

/// Middleware: the ingest token, when one is set.
pub async fn ingest_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    check_token(state.opts.ingest_token.as_deref(), &request, "ingest")?;
    Ok(next.run(request).await)
}

/// Middleware: the admin token; admin routes are disabled without one.
pub async fn admin_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    let Some(token) = state.opts.admin_token.as_deref() else {
        return Err(ServingError::Forbidden {
            code: "admin_disabled",
            message: "admin routes are disabled: start the server with an admin token".into(),
        });
    };
    check_token(Some(token), &request, "admin routes")?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret!"));
        assert!(!token_matches("s3cret", ""));
    }
}
