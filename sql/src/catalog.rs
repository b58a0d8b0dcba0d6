//! The session context every SQL session shares: the metric tables (minute, hourly,
//! daily, sliding where configured), `approx_distinct_merge`, PostgreSQL's `pg_catalog` as clients read it, and an
//! `information_schema` with PostgreSQL's type names. Tables read the current views at
//! each scan, so nothing is registered per query.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use serving::AppState;
use shared_logic::registry::{visit_all, MetricVisitor};
use shared_logic::Registered;

use crate::error::SqlError;
use crate::info_schema;
use crate::tables::{table, Rollup, ScanLimits};
use crate::udaf::approx_distinct_merge;

/// The catalogue (database) name clients see.
pub const CATALOG: &str = "lambda";
/// The schema the tables are in.
pub const SCHEMA: &str = "public";

/// A table the context serves.
pub struct NamedTable {
    pub name: String,
    pub provider: Arc<dyn TableProvider>,
}

#[derive(Clone)]
struct Tables {
    state: Arc<AppState>,
    limits: ScanLimits,
}

impl MetricVisitor for Tables {
    type Output = Vec<NamedTable>;

    fn visit<M: Registered>(self) -> Vec<NamedTable> {
        let sliding = self.state.opts.ctx.sliding.of(M::NAME).map(Rollup::Sliding);
        Rollup::ALL
            .iter()
            .chain(sliding.iter())
            .map(|r| NamedTable {
                name: r.table_name(M::NAME),
                provider: table::<M>(self.state.clone(), *r, self.limits),
            })
            .collect()
    }
}

/// Every metric's tables over `state`.
pub fn metric_tables(state: Arc<AppState>, limits: ScanLimits) -> Vec<NamedTable> {
    visit_all(Tables { state, limits })
        .into_iter()
        .flatten()
        .collect()
}

/// The shared session context. One partition per query: a scan is one batch of merged
/// rows (the merge behind it is one task), so spreading its aggregation over partitions
/// only adds a repartition and a merge of sorted streams, while the cores serve other
/// sessions (Grafana sends a panel's queries at once).
pub fn context(state: Arc<AppState>, limits: ScanLimits) -> Result<Arc<SessionContext>, SqlError> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, SCHEMA)
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(false)
        .with_target_partitions(1);
    let ctx = SessionContext::new_with_config(config);
    let tables = metric_tables(state, limits);
    for t in &tables {
        ctx.register_table(t.name.as_str(), t.provider.clone())
            .map_err(|e| SqlError::Catalog(format!("table {}: {e}", t.name)))?;
    }
    ctx.register_udaf(approx_distinct_merge());
    setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider)
        .map_err(|e| SqlError::Catalog(format!("pg_catalog: {e}")))?;
    info_schema::register(&ctx, &tables)?;
    Ok(Arc::new(ctx))
}
