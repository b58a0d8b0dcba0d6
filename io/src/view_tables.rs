//! The batch views as Delta tables: one table per metric under the views root
//! (`<views>/<metric>/`, partitioned by hour like the lake), and how the published state
//! ([`Published`]: coverage map, time boundary, what computed each hour) is read from them.
//!
//! Publishing replaces an hour's file of a metric in one commit. Every view file carries
//! tags: the run that computed it, the run's **claim** (its start time in microseconds plus
//! a tie-breaker: a total order of runs), the logic fingerprint, and what the run read for
//! the hour ([`HourView`], without the view paths). A publisher replaces an hour only when
//! no run with a later claim has published it, and every commit that touches an hour
//! carries the application transaction `lambda.views/<hour>`, so two publishers of the same
//! hour conflict in Delta's conflict checker and the loser re-plans on the winner's
//! snapshot. Whatever the interleaving, every metric's table ends with the hour of the
//! latest claim, and a reader of one table version never sees two runs' files for an hour.
//! No lock is taken: runs of different hours commit side by side (a conflict only costs a
//! retry).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deltalake::kernel::StructField;
use serde_json::Value;
use shared_logic::registry;
use shared_logic::window::HourKey;

use crate::delta::{AddFile, CommitKind, Table, TableFile};
use crate::error::IoError;
use crate::lake::Lake;
use crate::manifest::{ChangeLogRead, HourView, Published};

/// Tag: the run that wrote a view file.
pub const RUN_TAG: &str = "lambda.run";
/// Tag: the run's claim (orders publishers of an hour).
pub const CLAIM_TAG: &str = "lambda.claim";
/// Tag: the logic fingerprint the view was computed with.
pub const LOGIC_TAG: &str = "lambda.logic";
/// Tag: what the run read for the hour ([`HourView`] without its view paths), on views
/// computed from the hour's events.
pub const HOUR_TAG: &str = "lambda.hour";
/// Tag: the content digest of a view computed from the change log (`orders`).
pub const DIGEST_TAG: &str = "lambda.digest";
/// Commit info key: the change log an `orders` replay read ([`ChangeLogRead`]).
pub const CHANGE_LOG_KEY: &str = "lambda.changeLog";

/// A publisher: a batch run, ordered against other runs by its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    pub run_id: String,
    pub claim: i64,
    pub logic: String,
}

impl Publisher {
    /// A run started at `started_ms`: later starts win; runs started in the same
    /// millisecond are ordered by a hash of their ids.
    pub fn new(run_id: &str, started_ms: i64, logic: &str) -> Publisher {
        let tie = (xxhash_rust::xxh3::xxh3_64(run_id.as_bytes()) % 1000) as i64;
        Publisher {
            run_id: run_id.to_string(),
            claim: started_ms.saturating_mul(1000).saturating_add(tie),
            logic: logic.to_string(),
        }
    }

    fn outranks(&self, claim: i64, run: &str) -> bool {
        (self.claim, self.run_id.as_str()) >= (claim, run)
    }
}

/// One view file to publish: the metric's view of an hour, written under
/// `<views>/<metric>/<hour directory>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewFile {
    pub hour: HourKey,
    pub name: String,
    pub size: u64,
    pub rows: u64,
}

/// What to publish for one hour of one metric: a file, or `None` to withdraw the hour (a
/// view not final yet is answered by the speed layer).
#[derive(Debug, Clone)]
pub struct HourPublication {
    pub file: Option<ViewFile>,
    /// The hour's [`HourView`] (tagged on views of events) ...
    pub hour_view: Option<HourView>,
    /// ... or the view's digest (views of the change log).
    pub digest: Option<String>,
}

fn tag_claim(file: &TableFile) -> (i64, &str) {
    let claim = file
        .tags
        .get(CLAIM_TAG)
        .and_then(|c| c.parse().ok())
        .unwrap_or(i64::MIN);
    (claim, file.tags.get(RUN_TAG).map_or("", String::as_str))
}

fn hour_app_id(hour: HourKey) -> String {
    format!("lambda.views/{hour}")
}

/// Publishes `hours` of `metric` (whose files were written already): in one commit, each
/// hour no later claim has published is replaced, and files computed under another logic
/// fingerprint are withdrawn. Returns the hours published (the others were superseded).
pub async fn publish(
    views: &Lake,
    metric: &str,
    columns: Vec<StructField>,
    publisher: &Publisher,
    hours: &BTreeMap<HourKey, HourPublication>,
    info: HashMap<String, Value>,
) -> Result<Vec<HourKey>, IoError> {
    let mut table = Table::open_or_create(&views.child(metric), metric, columns).await?;
    let mut attempt = 0u32;
    loop {
        let current = table.files()?;
        let mut published = Vec::new();
        let mut remove: Vec<TableFile> = Vec::new();
        let mut add = Vec::new();
        let mut touched: BTreeSet<HourKey> = BTreeSet::new();
        for (hour, publication) in hours {
            let at_hour: Vec<&TableFile> =
                current.iter().filter(|f| f.hour == Some(*hour)).collect();
            if at_hour
                .iter()
                .any(|f| !publisher.outranks(tag_claim(f).0, tag_claim(f).1))
            {
                continue;
            }
            remove.extend(at_hour.into_iter().cloned());
            touched.insert(*hour);
            published.push(*hour);
            if let Some(file) = &publication.file {
                add.push(add_file(publisher, file, publication)?);
            }
        }
        // Views of another logic no longer answer anything.
        for f in &current {
            let stale = f.tags.get(LOGIC_TAG).is_some_and(|l| *l != publisher.logic);
            if stale && !remove.iter().any(|r| r.path == f.path) {
                remove.push(f.clone());
                touched.extend(f.hour);
            }
        }
        let has_info = !info.is_empty();
        if touched.is_empty() && !has_info {
            return Ok(published);
        }
        let transactions: Vec<(String, i64)> = touched
            .iter()
            .map(|h| (hour_app_id(*h), publisher.claim))
            .collect();
        let mut info = info.clone();
        info.insert("lambda.run".into(), Value::from(publisher.run_id.clone()));
        match table
            .commit_with(
                CommitKind::ReplaceHours(touched.into_iter().collect()),
                &add,
                &remove,
                &transactions,
                info,
            )
            .await
        {
            Ok(_) => return Ok(published),
            Err(IoError::TableConflict { .. }) if attempt < 30 => {
                attempt += 1;
                let backoff = 20 * u64::from(attempt.min(10));
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                table.refresh().await?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn add_file(
    publisher: &Publisher,
    file: &ViewFile,
    publication: &HourPublication,
) -> Result<AddFile, IoError> {
    let mut tags = BTreeMap::from([
        (RUN_TAG.to_string(), publisher.run_id.clone()),
        (CLAIM_TAG.to_string(), publisher.claim.to_string()),
        (LOGIC_TAG.to_string(), publisher.logic.clone()),
    ]);
    if let Some(view) = &publication.hour_view {
        let mut view = view.clone();
        view.views.clear();
        view.digests.clear();
        let json = serde_json::to_string(&view).map_err(|e| IoError::Manifest {
            path: file.name.clone(),
            reason: e.to_string(),
        })?;
        tags.insert(HOUR_TAG.to_string(), json);
    }
    if let Some(digest) = &publication.digest {
        tags.insert(DIGEST_TAG.to_string(), digest.clone());
    }
    Ok(AddFile {
        name: file.name.clone(),
        hour: file.hour,
        event_type: None,
        size: file.size,
        rows: file.rows,
        tags,
    })
}

impl Published {
    /// Reads the latest published state of the views under `views` (empty when nothing
    /// was published yet).
    pub async fn load(views: &Lake) -> Result<Published, IoError> {
        ViewTables::open(views, AsOf::Latest)
            .await?
            .published()
            .await
    }
}

/// Which version of the views to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The latest versions.
    Latest,
    /// Every table as it was at this time (ms since the epoch).
    Time(i64),
    /// One metric's table at this version (and no other table).
    Version(&'static str, u64),
}

/// The metric tables of a views root, each at a snapshot.
pub struct ViewTables {
    views: Lake,
    tables: BTreeMap<&'static str, Table>,
}

impl ViewTables {
    /// The tables under `views` (metrics never published have none), as of `as_of`.
    pub async fn open(views: &Lake, as_of: AsOf) -> Result<ViewTables, IoError> {
        let mut tables = BTreeMap::new();
        for metric in registry::NAMES {
            let Some(mut table) = Table::open(&views.child(metric)).await? else {
                continue;
            };
            match as_of {
                AsOf::Latest => {}
                AsOf::Time(ms) => {
                    let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else {
                        return Err(IoError::Manifest {
                            path: views.display(),
                            reason: format!("{ms} ms is not a time"),
                        });
                    };
                    // A table created after `at` had nothing then.
                    if table.load_at(at).await.is_err() {
                        continue;
                    }
                }
                AsOf::Version(m, v) if m == *metric => table.load_version(v).await?,
                // Only the metric's own table: its hours' entries come from its files.
                AsOf::Version(..) => continue,
            }
            tables.insert(*metric, table);
        }
        Ok(ViewTables {
            views: views.clone(),
            tables,
        })
    }

    /// Moves every table to its latest version (and opens tables created meanwhile);
    /// true when any version changed.
    pub async fn refresh(&mut self) -> Result<bool, IoError> {
        let mut changed = false;
        for metric in registry::NAMES {
            match self.tables.get_mut(metric) {
                Some(table) => {
                    let before = table.version();
                    table.refresh().await?;
                    changed |= table.version() != before;
                }
                None => {
                    if let Some(table) = Table::open(&self.views.child(metric)).await? {
                        self.tables.insert(*metric, table);
                        changed = true;
                    }
                }
            }
        }
        Ok(changed)
    }

    /// The published state these snapshots hold.
    pub async fn published(&self) -> Result<Published, IoError> {
        let mut published = Published::default();
        // metric → hour → file, of the newest logic.
        let mut files: Vec<(&str, TableFile)> = Vec::new();
        for (metric, table) in &self.tables {
            published
                .versions
                .insert(metric.to_string(), table.version());
            published.version += table.version();
            if let Some(ms) = table.version_timestamp() {
                let text = chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                published.updated_at = published.updated_at.max(text);
            }
            files.extend(table.files()?.into_iter().map(|f| (*metric, f)));
        }
        let newest = files
            .iter()
            .max_by(|a, b| tag_claim(&a.1).cmp(&tag_claim(&b.1)));
        published.logic = newest
            .and_then(|(_, f)| f.tags.get(LOGIC_TAG).cloned())
            .unwrap_or_default();
        files.retain(|(_, f)| f.tags.get(LOGIC_TAG) == Some(&published.logic) && f.hour.is_some());
        // The hour's entry: from the view of events with the latest claim.
        files.sort_by(|a, b| tag_claim(&a.1).cmp(&tag_claim(&b.1)));
        for (metric, f) in &files {
            let hour = f.hour.expect("kept with an hour").to_string();
            let run = f.tags.get(RUN_TAG).cloned().unwrap_or_default();
            let entry = published
                .hours
                .entry(hour.clone())
                .or_insert_with(|| HourView::without_events(&run, String::new()));
            if let Some(json) = f.tags.get(HOUR_TAG) {
                let view: HourView = serde_json::from_str(json).map_err(|e| IoError::Manifest {
                    path: self
                        .views
                        .object_url(&self.views.path(&format!("{metric}/{}", f.path))),
                    reason: format!("tag {HOUR_TAG}: {e}"),
                })?;
                let (views, digests) = (
                    std::mem::take(&mut entry.views),
                    std::mem::take(&mut entry.digests),
                );
                *entry = view;
                entry.views = views;
                entry.digests = digests;
            }
            if let Some(digest) = f.tags.get(DIGEST_TAG) {
                entry.digests.insert(metric.to_string(), digest.clone());
            }
            entry
                .views
                .insert(metric.to_string(), format!("{metric}/{}", f.path));
            published
                .coverage
                .entry(metric.to_string())
                .or_default()
                .insert(hour, run);
        }
        published.derive_boundaries(registry::NAMES);
        if let Some(orders) = self
            .tables
            .get(<shared_logic::Orders as shared_logic::Metric>::NAME)
        {
            if let Some(read) = orders.latest_commit_info(CHANGE_LOG_KEY, 100).await? {
                published.change_log = serde_json::from_value::<ChangeLogRead>(read).ok();
            }
        }
        Ok(published)
    }
}
