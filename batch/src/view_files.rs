//! A run's view files: each metric's view of an hour encoded as Parquet (on a blocking
//! thread) under `<metric>/date=…/hour=…/<run id>.parquet` (the metric's Delta table; the
//! file is published by a commit, [`crate::publish`]), and published views read back into
//! states.

use std::future::Future;
use std::pin::Pin;

use lambda_io::delta::{HourPartition, StructField};
use lambda_io::lake::Lake;
use lambda_io::manifest::Published;
use lambda_io::view_tables::ViewFile;
use lambda_io::views_file::{encode_views, merge_views_file};
use shared_logic::metric::{BuiltFrom, Metric};
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext, MetricId, MetricViews, MetricVisitor, Registered};

use crate::error::BatchError;

/// A view file written (not yet published).
#[derive(Debug, Clone)]
pub struct WrittenView {
    pub metric: &'static str,
    /// Relative to the views root.
    pub relative: String,
    pub file: ViewFile,
    /// The metric table's columns.
    pub columns: Vec<StructField>,
}

/// The Delta columns of metric `M`'s views table.
pub(crate) fn view_columns<M: Metric>() -> Result<Vec<StructField>, BatchError> {
    lambda_io::delta::schema::hour_partitioned(&shared_logic::views::view_schema::<M>())
        .map_err(|reason| BatchError::Usage(format!("views of {}: {reason}", M::NAME)))
}

/// Encodes (on a blocking thread) and writes one metric's view of an hour.
pub(crate) async fn write_view<M: Metric>(
    views: &Lake,
    hour: HourKey,
    run_id: &str,
    states: MetricViews<M>,
    ctx: &MetricContext,
) -> Result<WrittenView, BatchError> {
    let name = format!("{run_id}.parquet");
    let relative = format!("{}/{}/{name}", M::NAME, HourPartition(hour).directory());
    let path = views.path(&relative);
    let rows = states.len() as u64;
    let (windows, url) = (ctx.windows, views.object_url(&path));
    let bytes = tokio::task::spawn_blocking(move || encode_views(&states, &windows, &url))
        .await
        .map_err(|e| BatchError::Usage(format!("view encoder task failed: {e}")))??;
    let size = bytes.len() as u64;
    views.put(&path, bytes).await?;
    Ok(WrittenView {
        metric: M::NAME,
        relative,
        file: ViewFile {
            hour,
            name,
            size,
            rows,
        },
        columns: view_columns::<M>()?,
    })
}

type ViewWrite = Pin<Box<dyn Future<Output = Result<WrittenView, BatchError>> + Send>>;

/// Takes one metric's views out of a fold and writes them, if the metric is built from
/// events.
struct EventView<'a> {
    aggregates: &'a mut Aggregates,
    views: &'a Lake,
    hour: HourKey,
    run_id: &'a str,
    ctx: &'a MetricContext,
}

impl MetricVisitor for EventView<'_> {
    type Output = Option<ViewWrite>;

    fn visit<M: Registered>(self) -> Option<ViewWrite> {
        if M::BUILT_FROM != BuiltFrom::Events {
            return None;
        }
        let states = std::mem::take(M::views_in_mut(self.aggregates));
        let (views, run_id, ctx) = (
            self.views.clone(),
            self.run_id.to_string(),
            self.ctx.clone(),
        );
        let hour = self.hour;
        Some(Box::pin(async move {
            write_view::<M>(&views, hour, &run_id, states, &ctx).await
        }))
    }
}

/// Writes the view of every metric built from events (taken out of `aggregates`), encoding
/// them in parallel (Parquet encoding is the CPU-heavy part).
pub(crate) async fn write_event_views(
    aggregates: &mut Aggregates,
    views: &Lake,
    hour: HourKey,
    run_id: &str,
    ctx: &MetricContext,
) -> Result<Vec<WrittenView>, BatchError> {
    let writes: Vec<ViewWrite> = MetricId::ALL
        .iter()
        .filter_map(|id| {
            id.visit(EventView {
                aggregates: &mut *aggregates,
                views,
                hour,
                run_id,
                ctx,
            })
        })
        .collect();
    futures::future::try_join_all(writes).await
}

/// Reads one metric's published views for the given hours back into states.
pub async fn read_views<M: Metric>(
    views: &Lake,
    published: &Published,
    hours: &[HourKey],
) -> Result<MetricViews<M>, BatchError> {
    let mut out = MetricViews::<M>::default();
    for hour in hours {
        let Some(relative) = published.view_of(M::NAME, *hour) else {
            continue;
        };
        let path = views.path(relative);
        let name = views.object_url(&path);
        let bytes = views
            .get(&path)
            .await?
            .ok_or_else(|| BatchError::Manifest {
                path: name.clone(),
                reason: "the manifest names a view file that does not exist".into(),
            })?;
        merge_views_file(&mut out, bytes, &name)?;
    }
    Ok(out)
}

type ViewRead<'a> = Pin<Box<dyn Future<Output = Result<(), BatchError>> + Send + 'a>>;

/// Reads one metric's published views into a fold of every metric.
struct ReadInto<'a> {
    aggregates: &'a mut Aggregates,
    views: &'a Lake,
    published: &'a Published,
    hours: &'a [HourKey],
}

impl<'a> MetricVisitor for ReadInto<'a> {
    type Output = ViewRead<'a>;

    fn visit<M: Registered>(self) -> ViewRead<'a> {
        Box::pin(async move {
            *M::views_in_mut(self.aggregates) =
                read_views::<M>(self.views, self.published, self.hours).await?;
            Ok(())
        })
    }
}

/// Reads every metric's published views for the given hours.
pub async fn read_all_views(
    views: &Lake,
    published: &Published,
    hours: &[HourKey],
) -> Result<Aggregates, BatchError> {
    let mut aggregates = Aggregates::default();
    for id in MetricId::ALL {
        id.visit(ReadInto {
            aggregates: &mut aggregates,
            views,
            published,
            hours,
        })
        .await?;
    }
    Ok(aggregates)
}
