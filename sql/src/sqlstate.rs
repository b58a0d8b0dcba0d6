//! The SQLSTATE of every error a client sees. pgwire sends errors it did not build itself
//! as `XX000` (internal error); clients and BI tools branch on the code (syntax error,
//! unknown table, timeout), so each DataFusion and parser error gets PostgreSQL's.

use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use pgwire::api::{ClientInfo, ErrorHandler};
use pgwire::error::{ErrorInfo, PgWireError};
use serving::ServingError;

use crate::error::StateError;

/// The SQLSTATE and message of a DataFusion error.
pub fn of_datafusion(e: &DataFusionError) -> (&'static str, String) {
    let root = e.find_root();
    let message = root.strip_backtrace();
    let code = match root {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { .. } => "42703",
            SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P10",
        },
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => "42P01",
        DataFusionError::Plan(m)
            if m.contains("Invalid function") || m.contains("No function matches") =>
        {
            "42883"
        }
        DataFusionError::Plan(m) if m.contains("coerce") || m.contains("Cannot infer") => "42804",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::DivideByZero => "22012",
            ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
            ArrowError::ArithmeticOverflow(_) => "22003",
            _ => "XX000",
        },
        DataFusionError::External(inner) => {
            if let Some(s) = inner.downcast_ref::<StateError>() {
                return (s.code, s.message.clone());
            }
            if let Some(s) = inner.downcast_ref::<ServingError>() {
                return (serving_code(s), s.to_string());
            }
            if let Some(d) = inner.downcast_ref::<DataFusionError>() {
                return of_datafusion(d);
            }
            "XX000"
        }
        DataFusionError::Execution(m) if m.contains("Cast error") => "22P02",
        _ => "XX000",
    };
    (code, message)
}

/// A serving error (reading the views) as a SQLSTATE: bad requests are the client's,
/// the rest is the server's.
fn serving_code(e: &ServingError) -> &'static str {
    match e {
        ServingError::BadRequest { .. } => "22023",
        // A layer the range needs does not answer now (the REST API's 503).
        ServingError::Unavailable { .. } => "57P03",
        _ => "XX000",
    }
}

/// The SQLSTATE and message of an error a handler returned, if it is not one already.
pub fn of_api_error(e: &(dyn std::error::Error + Send + Sync + 'static)) -> (&'static str, String) {
    if let Some(d) = e.downcast_ref::<DataFusionError>() {
        of_datafusion(d)
    } else if let Some(p) = e.downcast_ref::<ParserError>() {
        ("42601", p.to_string())
    } else if let Some(s) = e.downcast_ref::<StateError>() {
        (s.code, s.message.clone())
    } else {
        ("XX000", e.to_string())
    }
}

/// Rewrites errors before they are sent.
pub struct SqlStates;

impl ErrorHandler for SqlStates {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(e) = error {
            let (code, message) = of_api_error(e.as_ref());
            tracing::debug!(peer = %client.socket_addr(), code, %message, "SQL error");
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                code.into(),
                message,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn code_of(sql: &str) -> &'static str {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS SELECT 1 AS a").await.unwrap();
        let err = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.unwrap_err(),
            Err(e) => e,
        };
        of_datafusion(&err).0
    }

    #[tokio::test]
    async fn datafusion_errors_get_postgresql_codes() {
        assert_eq!(code_of("SELEC 1").await, "42601");
        assert_eq!(code_of("SELECT * FROM nope").await, "42P01");
        assert_eq!(code_of("SELECT nope FROM t").await, "42703");
        assert_eq!(code_of("SELECT nope(a) FROM t").await, "42883");
        assert_eq!(code_of("SELECT CAST('x' AS INT)").await, "22P02");
    }

    #[test]
    fn our_own_codes_pass_through_datafusion() {
        let e = DataFusionError::Context(
            "scan".into(),
            Box::new(StateError::new("54000", "too many rows").into_datafusion()),
        );
        assert_eq!(of_datafusion(&e), ("54000", "too many rows".to_string()));
        let p = ParserError::ParserError("Expected: an SQL statement".into());
        assert_eq!(of_api_error(&p).0, "42601");
    }
}
