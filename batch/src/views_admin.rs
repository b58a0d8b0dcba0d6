//! Keeping the views' tables: their history (`lambda views history`), vacuum (`lambda views
//! vacuum`: files no version within the retention needs), and the one-time migration of
//! views published before the Delta tables (`_current.json` and its files, converted in
//! place: `lambda views migrate`, also run by `lambda lake migrate`).

use std::collections::{BTreeMap, HashMap};

use lambda_io::delta::Table;
use lambda_io::manifest::{Published, CURRENT};
use lambda_io::view_tables::{self, HourPublication, Publisher, ViewFile, CHANGE_LOG_KEY};
use lambda_io::Lake;
use parquet::file::metadata::ParquetMetaDataReader;
use shared_logic::window::HourKey;
use shared_logic::{registry, MetricId};

use crate::error::BatchError;

/// One commit of a views table, as `lambda views history` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub version: u64,
    pub time: Option<String>,
    pub operation: String,
    pub run_id: Option<String>,
}

/// The last `limit` versions of `metric`'s views table, newest first (none: never published).
pub async fn history(views: &Lake, metric: &str, limit: usize) -> Result<Vec<Version>, BatchError> {
    let Some(table) = Table::open(&views.child(metric)).await? else {
        return Ok(Vec::new());
    };
    Ok(table
        .history(limit)
        .await?
        .into_iter()
        .map(|(version, ms, operation, info)| Version {
            version,
            time: ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            operation,
            run_id: info
                .get("lambda.run")
                .and_then(|v| v.as_str())
                .map(String::from),
        })
        .collect())
}

/// Vacuums every metric's views table: deletes the files that no version committed within
/// `retain` needs (replaced hours, views of an older logic) and files no commit added (a
/// run that died before publishing), once older than `retain`. Returns metric → files.
pub async fn vacuum(
    views: &Lake,
    retain: chrono::Duration,
    dry_run: bool,
) -> Result<BTreeMap<String, Vec<String>>, BatchError> {
    let mut deleted = BTreeMap::new();
    for metric in registry::NAMES {
        if let Some(mut table) = Table::open(&views.child(metric)).await? {
            deleted.insert(metric.to_string(), table.vacuum(retain, dry_run).await?);
        }
    }
    Ok(deleted)
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Nothing to do: no `_current.json`, or the tables exist already.
    pub already: bool,
    /// Hours and view files now in the tables.
    pub hours: usize,
    pub files: usize,
}

/// Converts views published before the Delta tables in place: every view file the old
/// `_current.json` names is added to its metric's table (same path), tagged with the run
/// that computed it, and `_current.json` is kept as `_current.json.migrated`. Idempotent.
pub async fn migrate(views: &Lake) -> Result<Migrated, BatchError> {
    for metric in registry::NAMES {
        if Table::open(&views.child(metric)).await?.is_some() {
            return Ok(Migrated {
                already: true,
                ..Migrated::default()
            });
        }
    }
    let legacy = Published::load_legacy(views).await?;
    if legacy.hours.is_empty() {
        return Ok(Migrated {
            already: true,
            ..Migrated::default()
        });
    }
    let mut migrated = Migrated::default();
    for id in MetricId::ALL {
        let metric = id.name();
        // Run → hour → publication, so that each run keeps its claim.
        let mut by_run: BTreeMap<(i64, String), BTreeMap<HourKey, HourPublication>> =
            BTreeMap::new();
        for (hour_text, view) in &legacy.hours {
            let (Some(hour), Some(relative)) = (HourKey::parse(hour_text), view.views.get(metric))
            else {
                continue;
            };
            let path = views.path(relative);
            let bytes = views
                .get(&path)
                .await?
                .ok_or_else(|| BatchError::Manifest {
                    path: views.object_url(&path),
                    reason: "_current.json names a view file that does not exist".into(),
                })?;
            let rows = ParquetMetaDataReader::new()
                .parse_and_finish(&bytes)
                .map_err(BatchError::parquet(views.object_url(&path)))?
                .file_metadata()
                .num_rows()
                .max(0) as u64;
            let name = relative.rsplit('/').next().unwrap_or(relative).to_string();
            let started_ms = chrono::DateTime::parse_from_rfc3339(&view.computed_at)
                .map(|t| t.timestamp_millis())
                .unwrap_or(0);
            let digest = view.digests.get(metric).cloned();
            by_run
                .entry((started_ms, view.run_id.clone()))
                .or_default()
                .insert(
                    hour,
                    HourPublication {
                        file: Some(ViewFile {
                            hour,
                            name,
                            size: bytes.len() as u64,
                            rows,
                        }),
                        hour_view: digest.is_none().then(|| view.clone()),
                        digest,
                    },
                );
            migrated.files += 1;
        }
        let runs = by_run.len();
        for (i, ((started_ms, run_id), hours)) in by_run.into_iter().enumerate() {
            let publisher = Publisher::new(&run_id, started_ms, &legacy.logic);
            let mut info = HashMap::new();
            if i + 1 == runs && metric == <shared_logic::Orders as shared_logic::Metric>::NAME {
                if let Some(read) = &legacy.change_log {
                    info.insert(
                        CHANGE_LOG_KEY.to_string(),
                        serde_json::to_value(read)
                            .map_err(|e| BatchError::Usage(format!("change log: {e}")))?,
                    );
                }
            }
            view_tables::publish(
                views,
                metric,
                id.visit(crate::publish::Columns)?,
                &publisher,
                &hours,
                info,
            )
            .await?;
        }
    }
    migrated.hours = legacy.hours.len();
    let current = views.path(CURRENT);
    if let Some(bytes) = views.get(&current).await? {
        views
            .put(&views.path(&format!("{CURRENT}.migrated")), bytes.to_vec())
            .await?;
        views.delete(&current).await?;
    }
    for lock in views.list(&views.path("_locks")).await? {
        views.delete(&lock.location).await?;
    }
    Ok(migrated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_io::manifest::HourView;
    use shared_logic::generate::{Generator, GeneratorConfig};
    use shared_logic::metrics::PageViews;
    use shared_logic::{Event, MetricContext, MetricViews, Origin, Validator};

    /// Views of one hour published the old way: a view file and `_current.json`.
    async fn legacy_views(views: &Lake, hour: HourKey) -> MetricViews<PageViews> {
        let validator = Validator::default();
        let events: Vec<Event> = Generator::new(GeneratorConfig {
            seed: 3,
            start_ms: hour.start_ms(),
            events_per_second: 1.0,
            ..GeneratorConfig::default()
        })
        .take(600)
        .enumerate()
        .filter_map(|(i, r)| {
            validator
                .validate(&r.json, Origin::import_line(i as i64), 4_000_000_000_000)
                .ok()
        })
        .collect();
        let ctx = MetricContext::default();
        let states = shared_logic::Aggregates::fold(&events, &ctx).page_views;
        let relative = format!(
            "page_views/{}/old-run.parquet",
            lambda_io::delta::HourPartition(hour).directory()
        );
        let bytes = lambda_io::views_file::encode_views(&states, &ctx.windows, "x").unwrap();
        views.put(&views.path(&relative), bytes).await.unwrap();
        let mut view = HourView::without_events("old-run", "2026-11-30T10:00:00.000Z".into());
        view.rows_read = 600;
        view.views.insert("page_views".into(), relative);
        let mut legacy = Published {
            version: 7,
            logic: ctx.fingerprint(),
            ..Published::default()
        };
        legacy.hours.insert(hour.to_string(), view);
        legacy.derive(registry::NAMES);
        views
            .put(&views.path(CURRENT), serde_json::to_vec(&legacy).unwrap())
            .await
            .unwrap();
        views
            .put(&views.path("_locks/publish.lock"), b"{}".to_vec())
            .await
            .unwrap();
        states
    }

    #[tokio::test]
    async fn views_published_before_the_tables_are_migrated_in_place_once() {
        let dir = tempfile::tempdir().unwrap();
        let views = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let hour = HourKey::parse("2026-01-01T05").unwrap();
        let states = legacy_views(&views, hour).await;
        assert_eq!(Published::load(&views).await.unwrap().hours.len(), 0);

        let done = migrate(&views).await.unwrap();
        assert_eq!((done.already, done.hours, done.files), (false, 1, 1));
        let published = Published::load(&views).await.unwrap();
        assert_eq!(
            published.coverage["page_views"][&hour.to_string()],
            "old-run"
        );
        assert_eq!(published.hours[&hour.to_string()].rows_read, 600);
        assert!(published.time_boundary["page_views"].is_some());
        let read = crate::view_files::read_views::<PageViews>(&views, &published, &[hour])
            .await
            .unwrap();
        assert_eq!(read, states);
        assert!(views.get(&views.path(CURRENT)).await.unwrap().is_none());
        assert!(views.list(&views.path("_locks")).await.unwrap().is_empty());

        assert!(migrate(&views).await.unwrap().already);
        let history = history(&views, "page_views", 10).await.unwrap();
        assert_eq!(
            history.first().and_then(|v| v.run_id.as_deref()),
            Some("old-run")
        );
    }

    #[tokio::test]
    async fn vacuum_deletes_replaced_view_files_and_keeps_the_served_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let views = lake.child("views");
        let hour = HourKey::parse("2026-01-01T05").unwrap();
        let mut text = Vec::new();
        for r in Generator::new(GeneratorConfig {
            seed: 4,
            start_ms: hour.start_ms(),
            events_per_second: 0.5,
            ..GeneratorConfig::default()
        })
        .take(1_000)
        {
            text.extend_from_slice(&r.json);
            text.push(b'\n');
        }
        let options = crate::import::ImportOptions {
            source: "gen".into(),
            chunk_lines: 1_000,
            validator: Validator::default(),
            now_ms: 4_000_000_000_000,
        };
        crate::import::import_ndjson(&lake, Box::new(std::io::Cursor::new(text)), "gen", options)
            .await
            .unwrap();
        let one = crate::job::HourSelection::One(hour);
        let opts = crate::job::BatchOptions::default();
        for _run in 0..2 {
            crate::job::run(&lake, &views, &one, &opts).await.unwrap();
        }
        let before = Published::load(&views).await.unwrap();
        // Nothing is old enough for a week's retention.
        let kept = vacuum(&views, chrono::Duration::hours(168), false)
            .await
            .unwrap();
        assert!(kept.values().all(Vec::is_empty), "{kept:?}");
        // Without retention, the first run's file of each metric goes (dry run first).
        let listed = vacuum(&views, chrono::Duration::zero(), true)
            .await
            .unwrap();
        let deleted = vacuum(&views, chrono::Duration::zero(), false)
            .await
            .unwrap();
        assert_eq!(listed, deleted);
        assert_eq!(deleted["page_views"].len(), 1, "{deleted:?}");
        assert!(
            deleted.values().all(|files| files.len() == 1),
            "{deleted:?}"
        );
        let after = Published::load(&views).await.unwrap();
        assert_eq!(after.coverage, before.coverage);
        let read = crate::view_files::read_views::<PageViews>(&views, &after, &[hour])
            .await
            .unwrap();
        assert!(!read.is_empty(), "the served views are kept");
    }
}
