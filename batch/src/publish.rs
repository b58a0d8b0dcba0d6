//! Publication of batch views: each metric's view of an hour becomes visible by one commit
//! to the metric's Delta table ([`lambda_io::view_tables::publish`]: no lock; a later run
//! of the same hour wins whatever the interleaving, runs of other hours commit side by
//! side), and each run leaves its record under `_manifests/`.

use std::collections::{BTreeMap, HashMap};

use lambda_io::manifest::{ChangeLogRead, HourView, RunRecord};
use lambda_io::view_tables::{self, HourPublication, Publisher, CHANGE_LOG_KEY};
use lambda_io::Lake;
use shared_logic::metric::BuiltFrom;
use shared_logic::window::HourKey;
use shared_logic::{MetricId, MetricVisitor, Registered};

use crate::error::BatchError;
use crate::view_files::{view_columns, WrittenView};

/// The Delta columns of a metric's views table.
pub(crate) struct Columns;

impl MetricVisitor for Columns {
    type Output = Result<Vec<lambda_io::delta::StructField>, BatchError>;

    fn visit<M: Registered>(self) -> Self::Output {
        view_columns::<M>()
    }
}

/// Publishes one hour computed from events: every metric built from the hour's events or
/// sessions gets the hour's file `written` (or, when the run left it pending, loses the
/// hour: the speed layer answers it). Returns the metrics whose hour a later run had
/// published already.
pub async fn publish_hour(
    views: &Lake,
    publisher: &Publisher,
    hour: HourKey,
    view: &HourView,
    written: &[WrittenView],
) -> Result<Vec<&'static str>, BatchError> {
    let mut superseded = Vec::new();
    for id in MetricId::ALL {
        if id.built_from() == BuiltFrom::OrderChanges {
            continue;
        }
        let file = written.iter().find(|w| w.metric == id.name());
        let publication = HourPublication {
            file: file.map(|w| w.file.clone()),
            hour_view: Some(view.clone()),
            digest: None,
        };
        let columns = match file {
            Some(w) => w.columns.clone(),
            None => id.visit(Columns)?,
        };
        let hours = BTreeMap::from([(hour, publication)]);
        let done =
            view_tables::publish(views, id.name(), columns, publisher, &hours, HashMap::new())
                .await?;
        if done.is_empty() {
            superseded.push(id.name());
        }
    }
    if !superseded.is_empty() {
        tracing::info!(%hour, run_id = %publisher.run_id, ?superseded, "a later run published this hour already; its views stand");
    }
    Ok(superseded)
}

/// Publishes metric `M`'s views computed from the change log: each changed hour's file, in
/// one commit that also records the change log read, when given. Returns the hours
/// published.
pub async fn publish_change_log_views<M: shared_logic::Metric>(
    views: &Lake,
    publisher: &Publisher,
    changed: &BTreeMap<HourKey, (WrittenView, String)>,
    read: Option<&ChangeLogRead>,
) -> Result<Vec<HourKey>, BatchError> {
    if changed.is_empty() && read.is_none() {
        return Ok(Vec::new());
    }
    let metric = M::NAME;
    let columns = view_columns::<M>()?;
    let hours: BTreeMap<HourKey, HourPublication> = changed
        .iter()
        .map(|(hour, (written, digest))| {
            (
                *hour,
                HourPublication {
                    file: Some(written.file.clone()),
                    hour_view: None,
                    digest: Some(digest.clone()),
                },
            )
        })
        .collect();
    let mut info = HashMap::new();
    if let Some(read) = read {
        info.insert(
            CHANGE_LOG_KEY.to_string(),
            serde_json::to_value(read)
                .map_err(|e| BatchError::Usage(format!("change log: {e}")))?,
        );
    }
    Ok(view_tables::publish(views, metric, columns, publisher, &hours, info).await?)
}

/// Writes a run's record.
pub async fn write_run_record(views: &Lake, record: &RunRecord) -> Result<(), BatchError> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| BatchError::Usage(format!("run record: {e}")))?;
    views
        .put(
            &views.path(&format!("_manifests/{}.json", record.run_id)),
            bytes,
        )
        .await?;
    Ok(())
}
