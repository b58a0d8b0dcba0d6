//! Publication of batch views: under the publish lock, the run's hours replace those of
//! the published state (`_current.json`, see [`lambda_io::manifest`]) in one put, and each
//! run leaves its record under `_manifests/`.

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_io::manifest::{ChangeLogRead, HourView, Published, RunRecord, CURRENT};
use lambda_io::Lake;

use crate::error::BatchError;
use crate::lock::Lock;

/// Publishes hours computed by a run: under the publish lock, reads the current state,
/// replaces those hours, rederives coverage and boundaries, and replaces `_current.json`.
///
/// The publish lock is held for one read and one put; a run killed while holding it leaves
/// it behind for `lock_ttl` (at most five minutes), after which the next run takes over.
pub async fn publish(
    views: &Lake,
    run_id: &str,
    logic: &str,
    metrics: &[&str],
    hours: &BTreeMap<String, HourView>,
    lock_ttl: Duration,
) -> Result<Published, BatchError> {
    publish_with(views, run_id, logic, metrics, lock_ttl, |state| {
        for (h, v) in hours {
            let mut v = v.clone();
            // Views of other inputs than the hour's events stay unless recomputed.
            if let Some(old) = state.hours.get(h) {
                for (metric, digest) in &old.digests {
                    if v.digests.contains_key(metric) {
                        continue;
                    }
                    if let Some(path) = old.views.get(metric) {
                        v.views.insert(metric.clone(), path.clone());
                        v.digests.insert(metric.clone(), digest.clone());
                    }
                }
            }
            state.hours.insert(h.clone(), v);
        }
    })
    .await
}

/// Publishes views computed from the change log (see [`crate::orders`]): for each given
/// hour, the views it holds a digest for replace those of the current entry (an hour not
/// published yet gets the given entry), and the change log read is recorded.
pub async fn publish_with_change_log(
    views: &Lake,
    run_id: &str,
    logic: &str,
    metrics: &[&str],
    hours: &BTreeMap<String, HourView>,
    read: ChangeLogRead,
    lock_ttl: Duration,
) -> Result<Published, BatchError> {
    publish_with(views, run_id, logic, metrics, lock_ttl, |state| {
        for (h, v) in hours {
            let entry = state.hours.entry(h.clone()).or_insert_with(|| v.clone());
            for (metric, digest) in &v.digests {
                if let Some(path) = v.views.get(metric) {
                    entry.views.insert(metric.clone(), path.clone());
                    entry.digests.insert(metric.clone(), digest.clone());
                }
            }
        }
        state.change_log = Some(read);
    })
    .await
}

/// Under the publish lock: reads the current state, applies `change`, rederives coverage
/// and boundaries, and replaces `_current.json`.
async fn publish_with(
    views: &Lake,
    run_id: &str,
    logic: &str,
    metrics: &[&str],
    lock_ttl: Duration,
    change: impl FnOnce(&mut Published),
) -> Result<Published, BatchError> {
    let ttl = lock_ttl.min(Duration::from_secs(300));
    let lock = Lock::acquire(views, "publish", run_id, ttl).await?;
    let result = async {
        let mut state = Published::load(views).await?;
        if !state.logic.is_empty() && state.logic != logic {
            tracing::warn!(old = %state.logic, new = %logic, "metric logic changed: hours computed under the old logic are dropped from coverage");
            state.hours.clear();
            state.change_log = None;
        }
        state.logic = logic.to_string();
        change(&mut state);
        state.version += 1;
        state.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        state.derive(metrics);
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| BatchError::Usage(format!("manifest: {e}")))?;
        views.put(&views.path(CURRENT), bytes).await?;
        Ok(state)
    }
    .await;
    lock.release().await?;
    result
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_view(run: &str) -> HourView {
        let mut view = HourView::without_events(run, String::new());
        view.views.insert("page_views".into(), "x".into());
        view
    }

    #[tokio::test]
    async fn publication_merges_hours_and_bumps_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let views = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        assert_eq!(Published::load(&views).await.unwrap(), Published::default());
        let a = BTreeMap::from([("2026-01-01T00".to_string(), hour_view("r1"))]);
        publish(
            &views,
            "r1",
            "L",
            &["page_views"],
            &a,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let b = BTreeMap::from([("2026-01-01T01".to_string(), hour_view("r2"))]);
        let p = publish(
            &views,
            "r2",
            "L",
            &["page_views"],
            &b,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert_eq!(p.version, 2);
        assert_eq!(p.hours.len(), 2);
        assert_eq!(Published::load(&views).await.unwrap(), p);
    }
}
