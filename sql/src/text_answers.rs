//! Answers to queries with their rows written by [`crate::text_rows`], as
//! datafusion-postgres would answer them otherwise (the same plan, the fields described
//! from its schema with the session's format options) but column by column:
//! - the simple query protocol (psql, Grafana): [`TextAnswers`], the last query hook,
//!   takes a query the read-only guard let through, planned from its text;
//! - the extended protocol (psycopg once it prepares a statement, JDBC): [`portal_answer`]
//!   takes a portal of a query without parameters, its plan made at parse time, in the
//!   result formats the client asked for (a binary column leaves its batches to arrow-pg).
//!
//! Other statements, and portals with parameters (whose types datafusion-postgres
//! infers), go on to datafusion-postgres.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::QueryHook;

/// The statement a portal of datafusion-postgres executes: its text, and the parsed
/// statement with its plan.
pub type DfStatement = (String, Option<(Statement, LogicalPlan)>);
use futures::StreamExt;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{FieldInfo, QueryResponse, Response};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use crate::text_rows;

/// See the module docs.
pub struct TextAnswers;

fn api_error(e: datafusion::error::DataFusionError) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// The rows of one batch: written here, or by arrow-pg for a type not written here.
fn batch_rows(
    batch: datafusion::error::Result<datafusion::arrow::record_batch::RecordBatch>,
    fields: &Arc<Vec<FieldInfo>>,
) -> Vec<PgWireResult<DataRow>> {
    match batch {
        Ok(batch) => match text_rows::encode(&batch, fields) {
            Some(rows) => rows.into_iter().map(Ok).collect(),
            None => encode_recordbatch(fields.clone(), batch).collect(),
        },
        Err(e) => vec![Err(api_error(e))],
    }
}

async fn answer(
    statement: &Statement,
    ctx: &SessionContext,
    client: &dyn HookClient,
) -> PgWireResult<Response> {
    let frame = ctx.sql(&statement.to_string()).await.map_err(api_error)?;
    respond(frame, &Format::UnifiedText, client).await
}

/// The answer to a portal of a query without parameters, or `None` for datafusion-postgres
/// to answer.
pub async fn portal_answer<C: ClientInfo + ?Sized>(
    ctx: &SessionContext,
    portal: &Portal<DfStatement>,
    client: &C,
) -> Option<PgWireResult<Response>> {
    let (_, Some((Statement::Query(_), plan))) = &portal.statement.statement else {
        return None;
    };
    let no_parameters = plan.get_parameter_types().is_ok_and(|p| p.is_empty());
    if !portal.parameters.is_empty() || !no_parameters {
        return None;
    }
    let answer = async {
        let optimised = ctx.state().optimize(plan).map_err(api_error)?;
        let frame = ctx
            .execute_logical_plan(optimised)
            .await
            .map_err(api_error)?;
        respond(frame, &portal.result_column_format, client).await
    };
    Some(answer.await)
}

/// The response streaming `frame`'s rows in `format`.
async fn respond<C: ClientInfo + ?Sized>(
    frame: DataFrame,
    format: &Format,
    client: &C,
) -> PgWireResult<Response> {
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = Arc::new(arrow_schema_to_pg_fields(
        frame.schema().as_arrow(),
        format,
        Some(options),
    )?);
    let batches = frame.execute_stream().await.map_err(api_error)?;
    let described = fields.clone();
    let rows = batches.flat_map(move |batch| futures::stream::iter(batch_rows(batch, &described)));
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

#[async_trait]
impl QueryHook for TextAnswers {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match statement {
            Statement::Query(_) => Some(answer(statement, ctx, client).await),
            _ => None,
        }
    }

    async fn handle_extended_parse_query(
        &self,
        _statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        None
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}
