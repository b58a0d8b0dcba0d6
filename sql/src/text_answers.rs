//! The simple query protocol's answers to queries, their rows written by
//! [`crate::text_rows`]: the last query hook, taking a `SELECT` (or any query) the
//! read-only guard let through and answering it as datafusion-postgres would — the
//! statement planned from its text in the session's context, the fields described from
//! its schema in the text format with the session's format options — but with rows
//! written column by column. Other statements, and the extended protocol (whose result
//! formats the client chooses per column), go on to datafusion-postgres.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::QueryHook;
use futures::StreamExt;
use pgwire::api::portal::Format;
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
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = Arc::new(arrow_schema_to_pg_fields(
        frame.schema().as_arrow(),
        &Format::UnifiedText,
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
