//! Who may call what: bearer tokens per group of routes (queries, ingest, admin), checked
//! by middleware before a handler runs. The header is read and compared by
//! [`lambda_io::bearer`] (the scheme in any case, the token in constant time), as every
//! endpoint of the platform does. The ingest middleware also counts each request against
//! its client's rate ([`crate::rate_limit`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use lambda_io::bearer::{bearer_token, token_matches};

use crate::error::ServingError;
use crate::rate_limit::Client;
use crate::state::AppState;

/// The bearer token of `request`: `Ok(None)` without an `Authorization` header, an error
/// for a header of another scheme.
fn given_token<'r>(request: &'r Request, what: &str) -> Result<Option<&'r str>, ServingError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(bearer_token)
        .map(Some)
        .ok_or_else(|| ServingError::Unauthorized {
            message: format!("{what} needs `Authorization: Bearer <token>`"),
        })
}

/// The position of the token of `request` among `accepted`; an error when it carries none
/// or another one.
fn check_token(accepted: &[String], request: &Request, what: &str) -> Result<usize, ServingError> {
    let Some(given) = given_token(request, what)? else {
        return Err(ServingError::Unauthorized {
            message: format!("{what} needs `Authorization: Bearer <token>`"),
        });
    };
    // Every accepted token is compared, so the time does not say which one matched.
    let mut matched = None;
    for (i, token) in accepted.iter().enumerate() {
        if token_matches(token, given) && matched.is_none() {
            matched = Some(i);
        }
    }
    matched.ok_or_else(|| ServingError::Unauthorized {
        message: format!("the bearer token is not valid for {what}"),
    })
}

/// Whether `request` may see what the query token guards (everyone when no query token is
/// set): the detail behind `/readyz` and `/metrics` (instance URLs, reasons).
pub fn query_allowed(state: &AppState, request: &Request) -> bool {
    match &state.opts.query_token {
        Some(token) => check_token(std::slice::from_ref(token), request, "queries").is_ok(),
        None => true,
    }
}

/// Middleware: the query token, when one is set.
pub async fn query_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    if let Some(token) = &state.opts.query_token {
        check_token(std::slice::from_ref(token), &request, "queries")?;
    }
    Ok(next.run(request).await)
}

/// Middleware: one of the ingest tokens, when any is set; then the request counts against
/// its client's rate (its token, or its peer address when ingest is open), before its body
/// is read: 429 with `Retry-After` when the client is over it.
pub async fn ingest_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    let client = if state.opts.ingest_tokens.is_empty() {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(Client::Unknown, |c| Client::Address(c.0.ip()))
    } else {
        Client::Token(check_token(&state.opts.ingest_tokens, &request, "ingest")?)
    };
    if let Some(collector) = &state.collector {
        collector.admit(&client)?;
    }
    Ok(next.run(request).await)
}

/// Middleware: the admin token. Callers without credentials get 401 whether or not admin
/// routes are enabled; a token on a server without an admin token gets 403 (disabled).
pub async fn admin_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ServingError> {
    let what = "admin routes";
    match state.opts.admin_token.as_ref() {
        Some(token) => {
            check_token(std::slice::from_ref(token), &request, what)?;
        }
        None => {
            if given_token(&request, what)?.is_none() {
                return Err(ServingError::Unauthorized {
                    message: format!("{what} need `Authorization: Bearer <token>`"),
                });
            }
            return Err(ServingError::Forbidden {
                code: "admin_disabled",
                message: "admin routes are disabled: start the server with an admin token".into(),
            });
        }
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: Option<&str>) -> Request {
        let mut request = Request::builder().uri("/");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn the_matching_token_is_found_whatever_the_scheme_case() {
        let accepted = ["first-7c1d9e2b5a40f8", "second-3e8a1f6c2d9b07"].map(String::from);
        for header in [
            "Bearer second-3e8a1f6c2d9b07",
            "bearer second-3e8a1f6c2d9b07",
            "BEARER second-3e8a1f6c2d9b07",
        ] {
            assert_eq!(check_token(&accepted, &with(Some(header)), "x").unwrap(), 1);
        }
        for header in [
            None,
            Some("Basic second-3e8a1f6c2d9b07"),
            Some("Bearer nope"),
        ] {
            let e = check_token(&accepted, &with(header), "x").unwrap_err();
            assert!(matches!(e, ServingError::Unauthorized { .. }), "{header:?}");
        }
    }
}
