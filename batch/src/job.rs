//! The hourly batch job: the hours a run selects (one, a range, or every dirty hour), each
//! computed ([`crate::hour`]) and published ([`crate::publish`]) in turn, then the `orders`
//! pass and the run's record. No lock: runs of different hours publish side by side, and
//! of two runs of the same hour the later one's views stand.
//!
//! Per hour, DataFusion scans the hour's Parquet files, the shared dedup rule drops
//! duplicate deliveries, the shared metrics fold the rest into mergeable states, and the
//! views are written and published with a manifest.
//!
//! Dedup runs in two passes over the hour. Pass one reads only `event_id`, partition and
//! offset and finds, for every id seen more than once, its winning (first) origin. Pass two
//! reads the metric columns and folds every row except losing duplicates. Both passes run
//! on all DataFusion partitions in parallel; partial states merge with the monoid merge.
//! Memory holds one 32-byte entry per distinct id of the hour; hours larger than
//! `max_ids_in_memory` are processed in id-hash buckets, one scan pair per bucket, so
//! memory stays bounded whatever the hour's size.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use lambda_io::manifest::{HourView, InputFile, Published, RunRecord};
use lambda_io::view_tables::Publisher;
use lambda_io::Lake;
use shared_logic::window::HourKey;

use crate::error::BatchError;
use crate::hour::compute_hour;
use crate::options::now_text;
use crate::publish;

pub use crate::options::{new_run_id, BatchOptions, Progress};

/// Which hours a run computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HourSelection {
    /// One hour; no data in it is an error.
    One(HourKey),
    /// Every hour with data in `[from, to)`.
    Range { from: HourKey, to: HourKey },
    /// Every hour before `before` whose input files differ from those its published view
    /// was computed from, or that was never computed. `before` keeps open hours out: a
    /// batch view of an hour still receiving events would hide the newer events from the
    /// serving layer until the next run, so only settled hours are selected (the CLI uses
    /// the hour whose end is `--settle-secs` in the past). Hours never computed come
    /// first, then hours whose own files changed, then hours dirty only through their
    /// neighbours' files or pending sessions, each group oldest first.
    Dirty { before: Option<HourKey> },
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub hours: BTreeMap<String, HourView>,
    pub empty_hours: Vec<String>,
    pub published: Option<Published>,
    /// Hours a later run had published already (their views stand; this run's are unused).
    pub superseded: Vec<String>,
    /// The `orders` pass over the change log.
    pub orders: crate::orders::OrdersReport,
    pub elapsed: Duration,
}

impl RunReport {
    /// Rows read across hours.
    pub fn rows_read(&self) -> u64 {
        self.hours.values().map(|h| h.rows_read).sum()
    }
}

/// Resolves a selection into hours, oldest first.
pub async fn select_hours(
    lake: &Lake,
    views: &Lake,
    selection: &HourSelection,
) -> Result<Vec<HourKey>, BatchError> {
    match selection {
        HourSelection::One(h) => Ok(vec![*h]),
        HourSelection::Range { from, to } => {
            if from >= to {
                return Err(BatchError::Usage(format!(
                    "--from {from} must be before --to {to}"
                )));
            }
            Ok(lake
                .hours()
                .await?
                .into_iter()
                .filter(|h| h >= from && h < to)
                .collect())
        }
        HourSelection::Dirty { before } => {
            let published = Published::load(views).await?;
            let mut listed: HashMap<HourKey, Vec<(String, u64)>> = HashMap::new();
            // Hours never computed first, then hours whose own files changed, then hours
            // dirty only through their neighbours' files or pending sessions: a schedule
            // that computes a few hours a run does not starve new hours behind an hour
            // whose sessions go on all day (a user active every few minutes keeps one
            // session open until midnight, reading up to the live hour, whose files change
            // at every flush).
            let (mut new, mut changed, mut around) = (Vec::new(), Vec::new(), Vec::new());
            let dead_letters = crate::rejects::files_by_hour(lake).await?;
            for hour in lake.hours().await? {
                if before.is_some_and(|b| hour >= b) {
                    continue;
                }
                let Some(view) = published.hours.get(&hour.to_string()) else {
                    new.push(hour);
                    continue;
                };
                if !unchanged(lake, &mut listed, hour, &view.inputs).await?
                    || !dead_letters_unchanged(lake, &dead_letters, hour, &view.dead_letters)
                {
                    changed.push(hour);
                    continue;
                }
                // Clean when the files of every neighbouring hour its views read are the
                // ones the view was computed from, and no view waits for its sessions.
                let mut clean = view.pending.is_empty();
                for (neighbour, inputs) in &view.neighbours {
                    if !clean {
                        break;
                    }
                    let Some(neighbour) = HourKey::parse(neighbour) else {
                        clean = false;
                        break;
                    };
                    clean = unchanged(lake, &mut listed, neighbour, inputs).await?;
                }
                if !clean {
                    around.push(hour);
                }
            }
            new.append(&mut changed);
            new.append(&mut around);
            Ok(new)
        }
    }
}

/// Whether `hour`'s files in the lake are exactly `seen` (paths and sizes); listings are
/// cached in `listed` for the selection.
async fn unchanged(
    lake: &Lake,
    listed: &mut HashMap<HourKey, Vec<(String, u64)>>,
    hour: HourKey,
    seen: &[InputFile],
) -> Result<bool, BatchError> {
    if !listed.contains_key(&hour) {
        let files = lake.hour_files(hour).await?;
        let current = files
            .iter()
            .map(|f| (lake.object_url(&f.location), f.size))
            .collect();
        listed.insert(hour, current);
    }
    let seen: Vec<(String, u64)> = seen.iter().map(|i| (i.path.clone(), i.bytes)).collect();
    Ok(listed[&hour] == seen)
}

/// Whether `hour`'s dead-letter files (of `files`, from [`crate::rejects::files_by_hour`])
/// are exactly `seen` (paths and sizes).
fn dead_letters_unchanged(
    lake: &Lake,
    files: &BTreeMap<HourKey, Vec<object_store::ObjectMeta>>,
    hour: HourKey,
    seen: &[InputFile],
) -> bool {
    let current: Vec<(String, u64)> = files
        .get(&hour)
        .into_iter()
        .flatten()
        .map(|f| (lake.object_url(&f.location), f.size))
        .collect();
    let seen: Vec<(String, u64)> = seen.iter().map(|i| (i.path.clone(), i.bytes)).collect();
    current == seen
}

/// Runs the batch job over the selected hours: each hour is computed, written and
/// published in turn; the run's record is written at the end.
pub async fn run(
    lake: &Lake,
    views: &Lake,
    selection: &HourSelection,
    opts: &BatchOptions,
) -> Result<RunReport, BatchError> {
    let started = Instant::now();
    let started_at = now_text();
    let run_id = new_run_id();
    let hours = select_hours(lake, views, selection).await?;
    let logic = opts.ctx.fingerprint();
    let publisher = Publisher::new(&run_id, chrono::Utc::now().timestamp_millis(), &logic);
    let mut report = RunReport {
        run_id: run_id.clone(),
        hours: BTreeMap::new(),
        empty_hours: vec![],
        published: None,
        superseded: vec![],
        orders: Default::default(),
        elapsed: Duration::ZERO,
    };
    tracing::info!(run_id = %run_id, hours = hours.len(), lake = %lake.display(), "batch run starts");
    let selected = hours.len();
    for (done, hour) in hours.into_iter().enumerate() {
        let files = lake.hour_files(hour).await?;
        if files.is_empty() {
            if matches!(selection, HourSelection::One(_)) {
                return Err(BatchError::NoData {
                    hour: hour.to_string(),
                    lake: lake.display(),
                });
            }
            report.empty_hours.push(hour.to_string());
            continue;
        }
        let (view, written) = compute_hour(lake, views, hour, files, &run_id, opts).await?;
        let superseded = publish::publish_hour(views, &publisher, hour, &view, &written).await?;
        if !superseded.is_empty() {
            report.superseded.push(hour.to_string());
        }
        report.hours.insert(hour.to_string(), view);
        if let Some(progress) = &opts.progress {
            progress(
                done + 1,
                selected,
                hour,
                report
                    .hours
                    .get(&hour.to_string())
                    .map_or(0, |h| h.rows_read),
            );
        }
    }
    let through = match selection {
        HourSelection::One(h) => Some(HourKey(h.0 + 1)),
        HourSelection::Range { to, .. } => Some(*to),
        HourSelection::Dirty { before } => *before,
    };
    report.orders = crate::orders::run(
        lake,
        views,
        &publisher,
        through,
        &opts.ctx,
        opts.skip_corrupt,
    )
    .await?;
    report.published = Some(Published::load(views).await?);
    report.elapsed = started.elapsed();
    let record = RunRecord {
        run_id: run_id.clone(),
        logic_version: shared_logic::LOGIC_VERSION.to_string(),
        logic,
        started_at,
        finished_at: now_text(),
        hours: report.hours.clone(),
        empty_hours: report.empty_hours.clone(),
        status: "succeeded".into(),
    };
    publish::write_run_record(views, &record).await?;
    tracing::info!(run_id = %run_id, hours = report.hours.len(), rows = report.rows_read(), secs = report.elapsed.as_secs_f64(), "batch run done");
    Ok(report)
}
