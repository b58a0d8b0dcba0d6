//! The published state of the batch layer, as every reader sees it ([`Published`]).
//!
//! For every hour the batch layer has computed: which run computed it, from which input
//! files, and where its view files are; from that, per metric, the **coverage map** (hour
//! → run) and the **time boundary** (end of the latest hour of the contiguous covered run
//! that starts at the earliest covered hour). The state lives in the views' Delta tables,
//! read by `Published::load` in the `view_tables` module (a view file is visible once the
//! commit that adds it is, so a run that dies leaves files nobody references, never a
//! half-published view); this module owns the model and the coverage rule. Versions before the Delta tables kept it
//! in `_current.json` ([`Published::load_legacy`], read by `lambda lake migrate`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared_logic::window::HourKey;

use crate::error::IoError;
use crate::lake::Lake;

/// One input file of an hour, as the run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
}

/// What one run computed for one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourView {
    pub run_id: String,
    pub computed_at: String,
    pub inputs: Vec<InputFile>,
    /// Rows read from the inputs (before dedup).
    pub rows_read: u64,
    /// Rows dropped as duplicate deliveries.
    pub duplicates: u64,
    /// Files skipped as corrupt (`--skip-corrupt`).
    pub skipped_files: Vec<String>,
    /// Metric name → view file path (relative to the views root).
    pub views: BTreeMap<String, String>,
    /// Other hours the view read (sessions span hours) → their files as read; an empty list
    /// for an hour that had no data then. A change in any of them makes this hour dirty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub neighbours: BTreeMap<String, Vec<InputFile>>,
    /// Metrics whose view of this hour is not final yet (sessions that may continue past
    /// the settle horizon): not published, so the speed layer answers them, and the hour
    /// stays dirty until a run finds them final.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Metric → digest of the view's content, for views computed from inputs other than
    /// the hour's event files (`orders`, from the change log). Such views survive a
    /// recomputation of the hour's events, and are republished only when their digest
    /// changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
    /// The hour's dead-letter files as read (the rejects the `quality` view counts; `rows`:
    /// the rejects noted from each). A change makes the hour dirty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<InputFile>,
}

impl HourView {
    /// An entry for an hour that has no event files (yet): only views of other inputs.
    pub fn without_events(run_id: &str, computed_at: String) -> Self {
        HourView {
            run_id: run_id.to_string(),
            computed_at,
            inputs: vec![],
            rows_read: 0,
            duplicates: 0,
            skipped_files: vec![],
            views: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            pending: vec![],
            digests: BTreeMap::new(),
            dead_letters: vec![],
        }
    }
}

/// What the last change-log pass replayed (the batch layer's `orders` pass, which builds
/// `orders` and `daily_sales`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLogRead {
    /// The change files of every table, as read.
    pub files: Vec<InputFile>,
    /// The end (exclusive) of the hours it published.
    pub through: Option<String>,
    /// The products dimension it wrote (every version: product, valid from, valid to,
    /// category), relative to the views root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<String>,
    /// The users dimension it wrote (every version: user, valid from, valid to, country,
    /// birth year), relative to the views root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
}

/// The published state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Increases with every publication: the sum of the metric tables' versions.
    pub version: u64,
    /// Metric → the version of its table read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, u64>,
    /// Fingerprint of the metric logic, windows and rates the views were computed with.
    pub logic: String,
    pub updated_at: String,
    /// Hour (`2026-11-24T10`) → what covers it.
    pub hours: BTreeMap<String, HourView>,
    /// Metric → hour → run id.
    pub coverage: BTreeMap<String, BTreeMap<String, String>>,
    /// Metric → end of the latest contiguous covered hour (RFC 3339), if any.
    pub time_boundary: BTreeMap<String, Option<String>>,
    /// The change log the `orders` views were replayed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_log: Option<ChangeLogRead>,
}

/// One run's record: `_manifests/<run id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub logic_version: String,
    pub logic: String,
    pub started_at: String,
    pub finished_at: String,
    pub hours: BTreeMap<String, HourView>,
    /// Hours requested that had no data (not covered).
    pub empty_hours: Vec<String>,
    pub status: String,
}

/// The published state's file name under the views root, before the Delta tables.
pub const CURRENT: &str = "_current.json";

impl Published {
    /// Reads `_current.json`, the published state of versions before the Delta tables
    /// (empty when there is none).
    pub async fn load_legacy(views: &Lake) -> Result<Published, IoError> {
        let path = views.path(CURRENT);
        match views.get(&path).await? {
            None => Ok(Published::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| IoError::Manifest {
                path: views.object_url(&path),
                reason: e.to_string(),
            }),
        }
    }

    /// The view file (relative to the views root) that covers `hour` for `metric`, if any.
    pub fn view_of(&self, metric: &str, hour: HourKey) -> Option<&str> {
        self.hours
            .get(&hour.to_string())
            .and_then(|h| h.views.get(metric))
            .map(String::as_str)
    }

    /// Recomputes coverage and time boundaries of `metrics` from `hours`.
    pub fn derive(&mut self, metrics: &[&str]) {
        self.coverage.clear();
        for m in metrics {
            let covered: BTreeMap<String, String> = self
                .hours
                .iter()
                .filter(|(_, v)| v.views.contains_key(*m))
                .map(|(h, v)| (h.clone(), v.run_id.clone()))
                .collect();
            self.coverage.insert(m.to_string(), covered);
        }
        self.derive_boundaries(metrics);
    }

    /// Recomputes the time boundaries of `metrics` from the coverage map.
    pub fn derive_boundaries(&mut self, metrics: &[&str]) {
        self.time_boundary.clear();
        for m in metrics {
            let covered = self.coverage.entry(m.to_string()).or_default();
            let keys: Vec<HourKey> = covered.keys().filter_map(|h| HourKey::parse(h)).collect();
            let mut boundary = None;
            if let Some(first) = keys.first() {
                let mut end = first.0;
                for k in &keys {
                    if k.0 != end {
                        break;
                    }
                    end += 1;
                }
                boundary = chrono::DateTime::from_timestamp_millis(HourKey(end).start_ms())
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
            self.time_boundary.insert(m.to_string(), boundary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_view(run: &str) -> HourView {
        let mut view = HourView::without_events(run, String::new());
        view.views.insert("page_views".into(), "x".into());
        view
    }

    #[test]
    fn boundary_is_the_end_of_the_contiguous_covered_run() {
        let mut p = Published::default();
        for h in ["2026-01-01T00", "2026-01-01T01", "2026-01-01T03"] {
            p.hours.insert(h.into(), hour_view("r1"));
        }
        p.derive(&["page_views", "funnel"]);
        assert_eq!(
            p.time_boundary["page_views"].as_deref(),
            Some("2026-01-01T02:00:00Z")
        );
        assert_eq!(p.coverage["page_views"].len(), 3);
        assert_eq!(p.time_boundary["funnel"], None);
        p.hours.insert("2026-01-01T02".into(), hour_view("r2"));
        p.derive(&["page_views"]);
        assert_eq!(
            p.time_boundary["page_views"].as_deref(),
            Some("2026-01-01T04:00:00Z")
        );
        assert_eq!(p.coverage["page_views"]["2026-01-01T02"], "r2");
    }

    #[tokio::test]
    async fn an_unreadable_manifest_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let views = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        views
            .put(&views.path(CURRENT), b"{not json".to_vec())
            .await
            .unwrap();
        let err = Published::load_legacy(&views).await.unwrap_err();
        assert!(err.to_string().contains("_current.json"), "{err}");
    }
}
