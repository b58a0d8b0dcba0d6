//! Read-only statements: the hook that runs before any other on every statement, simple
//! and extended. Queries, `SHOW`, `EXPLAIN`, transactions and cursors pass; the session
//! settings clients send (`SET statement_timeout`, `SET application_name`, ...) are kept
//! per session; anything that would write or change the context every session shares
//! (`INSERT`, `CREATE`, `DROP`, `SET datafusion.*`, `SELECT ... INTO`) is refused with a
//! SQLSTATE, and the session stays usable.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::QueryHook;
use pgwire::api::results::{Response, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

/// Session settings the pgwire layer keeps per session (datafusion-postgres' SET hook).
const SESSION_SETTINGS: &[&str] = &[
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

/// First words of statements that write.
const WRITES: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "CREATE", "DROP", "ALTER", "TRUNCATE", "GRANT",
    "REVOKE", "COMMENT", "VACUUM", "REFRESH", "REINDEX", "CLUSTER", "LOCK",
];

/// What becomes of a statement.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The next hooks and DataFusion answer it.
    Pass,
    /// Answered `SET` with no effect (client settings this server has no use for).
    Acknowledge,
    /// Refused with a SQLSTATE.
    Refuse(&'static str, String),
}

fn first_words(statement: &Statement, n: usize) -> String {
    statement
        .to_string()
        .split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The verdict on one statement, from its syntax alone.
pub fn verdict(statement: &Statement) -> Verdict {
    match statement {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. } => Verdict::Pass,
        Statement::Set(set) => match set {
            Set::SingleAssignment { variable, .. } => {
                let name = variable.to_string().to_lowercase();
                if SESSION_SETTINGS.contains(&name.as_str()) {
                    Verdict::Pass
                } else if name.starts_with("datafusion.") {
                    Verdict::Refuse(
                        "42501",
                        format!("permission denied to set parameter \"{name}\": server settings are read-only"),
                    )
                } else {
                    Verdict::Acknowledge
                }
            }
            Set::SetTimeZone { .. } => Verdict::Pass,
            _ => Verdict::Acknowledge,
        },
        Statement::Discard { .. } | Statement::Deallocate { .. } => Verdict::Acknowledge,
        other => {
            let verb = first_words(other, 1);
            if WRITES.contains(&verb.as_str()) {
                Verdict::Refuse(
                    "25006",
                    format!(
                        "cannot execute {} in a read-only transaction",
                        first_words(other, 2)
                    ),
                )
            } else {
                Verdict::Refuse(
                    "0A000",
                    format!("{} is not supported", first_words(other, 2)),
                )
            }
        }
    }
}

/// A query that writes through its body (`SELECT ... INTO`, a data-modifying `WITH`): the
/// plan says so. Only queries whose text names such a clause are planned here.
async fn query_writes(statement: &Statement, ctx: &SessionContext) -> Option<Verdict> {
    let text = statement.to_string().to_uppercase();
    if !["INTO", "UPDATE", "DELETE", "MERGE", "INSERT"]
        .iter()
        .any(|w| text.contains(w))
    {
        return None;
    }
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
        .await
        .ok()?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    options.verify_plan(&plan).err().map(|_| {
        Verdict::Refuse(
            "25006",
            "cannot execute a query that writes in a read-only transaction".into(),
        )
    })
}

fn refusal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

/// The hook.
pub struct ReadOnly;

impl ReadOnly {
    async fn judge(&self, statement: &Statement, ctx: &SessionContext) -> Verdict {
        match verdict(statement) {
            Verdict::Pass if matches!(statement, Statement::Query(_)) => {
                query_writes(statement, ctx).await.unwrap_or(Verdict::Pass)
            }
            v => v,
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match self.judge(statement, ctx).await {
            Verdict::Pass => None,
            Verdict::Acknowledge => Some(Ok(Response::Execution(Tag::new("SET")))),
            Verdict::Refuse(code, message) => Some(Err(refusal(code, message))),
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match self.judge(statement, ctx).await {
            Verdict::Pass => None,
            // Planned as an empty relation; answered `SET` when executed (below).
            Verdict::Acknowledge => Some(Ok(LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: std::sync::Arc::new(datafusion::common::DFSchema::empty()),
                },
            ))),
            Verdict::Refuse(code, message) => Some(Err(refusal(code, message))),
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match verdict(statement) {
            Verdict::Acknowledge => Some(Ok(Response::Execution(Tag::new("SET")))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn judge(sql: &str) -> Verdict {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        verdict(&statements[0])
    }

    #[test]
    fn reads_pass_writes_are_refused_and_client_settings_are_kept_or_acknowledged() {
        assert_eq!(judge("SELECT 1"), Verdict::Pass);
        assert_eq!(judge("SHOW server_version"), Verdict::Pass);
        assert_eq!(judge("BEGIN"), Verdict::Pass);
        assert_eq!(judge("SET statement_timeout = '50ms'"), Verdict::Pass);
        assert_eq!(judge("SET client_encoding = 'UTF8'"), Verdict::Acknowledge);
        assert!(matches!(
            judge("SET datafusion.execution.batch_size = 1"),
            Verdict::Refuse("42501", _)
        ));
        assert!(
            matches!(judge("INSERT INTO page_views VALUES (1)"), Verdict::Refuse("25006", m) if m.contains("INSERT INTO"))
        );
        assert!(matches!(
            judge("CREATE TABLE x AS SELECT 1"),
            Verdict::Refuse("25006", _)
        ));
        assert!(matches!(
            judge("DROP TABLE page_views"),
            Verdict::Refuse("25006", _)
        ));
        assert!(matches!(
            judge("PREPARE p AS SELECT 1"),
            Verdict::Refuse("0A000", _)
        ));
    }

    #[tokio::test]
    async fn a_query_that_creates_a_table_is_refused_by_its_plan() {
        let ctx = SessionContext::new();
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT 1 AS a INTO t").unwrap();
        let v = ReadOnly.judge(&statements[0], &ctx).await;
        assert!(matches!(v, Verdict::Refuse("25006", _)), "{v:?}");
        assert!(!ctx.table_exist("t").unwrap_or(false));
        let plain = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT 'INTO' AS a").unwrap();
        assert_eq!(ReadOnly.judge(&plain[0], &ctx).await, Verdict::Pass);
    }
}
