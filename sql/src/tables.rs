//! One DataFusion table per metric and window size (`page_views`, `page_views_hourly`,
//! `page_views_daily`, and `page_views_sliding` when the metric has a sliding window
//! configured), each reading the serving layer's one merge
//! ([`serving::answer::with_merged_rows`]; sliding windows assembled from its panes by
//! [`serving::answer::sliding_rows`]), the REST API's answer.
//!
//! A row is a window and one combination of the dimensions the query reads: the projected
//! dimensions are the merge's grouping, so the others are merged away before DataFusion
//! sees a row, and a query reads about as many rows as the REST API answers for the same
//! grouping. Counts and sums add up when SQL regroups rows further; distinct counts do not
//! (a user seen in two rows counts twice), so each sketch is a column and
//! `approx_distinct_merge` merges them.
//!
//! Bounds on `window_start` are the merge's range; without one a query reads the last
//! hour, as the REST API does. A range longer than the REST API's longest is refused.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use serving::answer::{sliding_rows, with_merged_rows};
use serving::merge::Query;
use serving::AppState;
use shared_logic::sliding::SlidingWindow;
use shared_logic::window::{DAY_MS, HOUR_MS};
use shared_logic::Registered;

use crate::columns::{layout, record_batch, Column, Layout};
use crate::error::StateError;
use crate::pushdown;

/// The windows of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    Minute,
    Hour,
    Day,
    /// The metric's configured sliding window: windows of its size, one starting every
    /// slide (they overlap: a row is counted in every window it falls in).
    Sliding(SlidingWindow),
}

impl Rollup {
    /// The tumbling window sizes every metric has.
    pub const ALL: [Rollup; 3] = [Rollup::Minute, Rollup::Hour, Rollup::Day];

    /// The distance between two window starts (the window size, but for sliding windows).
    pub fn step_ms(self) -> i64 {
        match self {
            Rollup::Minute => 60_000,
            Rollup::Hour => HOUR_MS,
            Rollup::Day => DAY_MS,
            Rollup::Sliding(w) => w.slide_ms,
        }
    }

    /// The table's name for `metric`.
    pub fn table_name(self, metric: &str) -> String {
        match self {
            Rollup::Minute => metric.to_string(),
            Rollup::Hour => format!("{metric}_hourly"),
            Rollup::Day => format!("{metric}_daily"),
            Rollup::Sliding(_) => format!("{metric}_sliding"),
        }
    }
}

/// Bounds on what one scan may read.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    /// Merged rows one scan may produce (before SQL aggregates them).
    pub max_rows: usize,
}

/// Metric `M`'s merged views at one window size.
pub struct MetricTable<M> {
    state: Arc<AppState>,
    rollup: Rollup,
    layout: Layout,
    limits: ScanLimits,
    now_ms: fn() -> i64,
    metric: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for MetricTable<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricTable")
            .field("rollup", &self.rollup)
            .finish()
    }
}

impl<M: Registered> MetricTable<M> {
    pub fn new(state: Arc<AppState>, rollup: Rollup, limits: ScanLimits) -> Self {
        let exponent = state.opts.ctx.rates.reporting().exponent();
        MetricTable {
            state,
            rollup,
            layout: layout::<M>(exponent),
            limits,
            now_ms: wall_clock_ms,
            metric: PhantomData,
        }
    }

    /// The merge's query for a scan, and the end of the range of window starts it answers.
    fn query(&self, projection: Option<&Vec<usize>>, filters: &[Expr]) -> Result<(Query, i64)> {
        let pushed = pushdown::read(filters, M::DIMENSIONS);
        let limits = &self.state.opts.limits;
        let size = self.rollup.step_ms();
        // As the REST API: the window containing now at the latest, the last hour by default.
        let to = pushed
            .to_ms
            .unwrap_or_else(|| (self.now_ms)().saturating_add(1));
        let from = pushed
            .from_ms
            .unwrap_or_else(|| to.saturating_sub(limits.default_range_ms));
        let from = from.div_euclid(size) * size;
        let to = to
            .checked_add(size - 1)
            .map(|t| t.div_euclid(size) * size)
            .unwrap_or(i64::MAX / size * size);
        if to.saturating_sub(from) > limits.max_range_ms {
            return Err(StateError::new(
                "54000",
                format!(
                    "the window_start range spans {} hours; at most {} hours per query",
                    to.saturating_sub(from) / HOUR_MS,
                    limits.max_range_ms / HOUR_MS
                ),
            )
            .into_datafusion());
        }
        let all: Vec<usize> = (0..self.layout.columns.len()).collect();
        let mut group_by: Vec<usize> = projection
            .unwrap_or(&all)
            .iter()
            .filter_map(|c| match self.layout.columns[*c] {
                Column::Dimension(d) => Some(d),
                _ => None,
            })
            .collect();
        group_by.sort_unstable();
        group_by.dedup();
        // The sketches travel only when a column read needs one: a sketch, or a value
        // estimated from one (the speed layer then hands over bare counters).
        let sketches = projection
            .unwrap_or(&all)
            .iter()
            .any(|c| match self.layout.columns[*c] {
                Column::Sketch(_) => true,
                Column::Value(v) | Column::Amount(v) => {
                    M::SKETCHED_VALUES.contains(&M::VALUES[v].0)
                }
                _ => false,
            });
        // Sliding windows starting before `to` reach `size - slide` past it: their panes
        // (windows of the slide) are merged up to there.
        let to = to.max(from);
        let panes_to = match self.rollup {
            Rollup::Sliding(w) => to.saturating_add(w.size_ms - w.slide_ms),
            _ => to,
        };
        let query = Query {
            from_ms: from,
            to_ms: panes_to,
            granularity_ms: size,
            group_by,
            filters: pushed.filters,
            sketches,
        };
        Ok((query, to))
    }
}

fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl<M: Registered> TableProvider for MetricTable<M> {
    fn schema(&self) -> SchemaRef {
        self.layout.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown::support(filters, M::DIMENSIONS))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (query, windows_to) = self.query(projection, filters)?;
        let rollup = self.rollup;
        let state = self.state.clone();
        let layout = self.layout.clone();
        let projection_owned = projection.cloned();
        let max_rows = self.limits.max_rows;
        // The merge takes the CPU for a while: off the runtime's workers, as the REST API.
        let runtime = tokio::runtime::Handle::current();
        let batch = tokio::task::spawn_blocking(move || {
            runtime.block_on(with_merged_rows::<M, _>(&state, &query, None, |merged| {
                let assembled;
                let rows = match rollup {
                    Rollup::Sliding(w) => {
                        assembled = sliding_rows(&merged, w, query.from_ms, windows_to);
                        &assembled[..]
                    }
                    _ => merged.rows,
                };
                let rows = &rows[..rows.len().min(limit.unwrap_or(usize::MAX))];
                if rows.len() > max_rows {
                    return Err(StateError::new(
                        "54000",
                        format!(
                            "the scan of {} would read {} rows, more than {max_rows}; narrow the window_start range or read fewer dimensions",
                            M::NAME,
                            rows.len()
                        ),
                    )
                    .into_datafusion());
                }
                record_batch::<M>(&layout, projection_owned.as_deref(), rows, &query.group_by)
                    .map_err(DataFusionError::from)
            }))
        })
        .await
        .map_err(|e| DataFusionError::Execution(format!("the merge task failed: {e}")))?
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
        let schema = batch.schema();
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            None,
        )?)
    }
}

/// The table of metric `M` at window size `rollup`, as DataFusion takes it.
pub fn table<M: Registered>(
    state: Arc<AppState>,
    rollup: Rollup,
    limits: ScanLimits,
) -> Arc<dyn TableProvider> {
    Arc::new(MetricTable::<M>::new(state, rollup, limits))
}
