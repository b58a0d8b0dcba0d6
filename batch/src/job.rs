//! The hourly batch job: for each selected hour, DataFusion scans the hour's Parquet files,
//! the shared dedup rule drops duplicate deliveries, the shared metrics fold the rest into
//! mergeable states, and the views are written and published with a manifest.
//!
//! Dedup runs in two passes over the hour. Pass one reads only `event_id`, partition and
//! offset and finds, for every id seen more than once, its winning (first) origin. Pass two
//! reads the metric columns and folds every row except losing duplicates. Both passes run
//! on all DataFusion partitions in parallel; partial states merge with the monoid merge.
//! Memory holds one 32-byte entry per distinct id of the hour; hours larger than
//! `max_ids_in_memory` are processed in id-hash buckets, one scan pair per bucket, so
//! memory stays bounded whatever the hour's size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use hashbrown::HashMap;
use object_store::ObjectMeta;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;
use shared_logic::dedup::{id_hash, wins};
use shared_logic::metric::{Funnel, Metric, Orders, PageViews, Revenue, Sessions};
use shared_logic::schema::{col, EventColumns, METRIC_COLUMNS};
use shared_logic::window::HourKey;
use shared_logic::{views, Aggregates, MetricContext, MetricViews, Origin};

use crate::error::BatchError;
use crate::lake::{hour_partition, Lake};
use crate::manifest::{self, HourView, InputFile, Published, RunRecord};
use crate::writer::encode_parquet;

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
    /// the hour whose end is `--settle-secs` in the past).
    Dirty { before: Option<HourKey> },
}

/// Progress of a run, reported after each hour: (hours done, hours selected, hour, rows).
pub type Progress = Arc<dyn Fn(usize, usize, HourKey, u64) + Send + Sync>;

/// How a run behaves.
#[derive(Clone)]
pub struct BatchOptions {
    pub ctx: MetricContext,
    /// Parallel scan partitions (default: the number of cores).
    pub threads: usize,
    /// Skip unreadable input files (recorded in the manifest) instead of failing.
    pub skip_corrupt: bool,
    /// Distinct ids held in memory per scan pair; larger hours are bucketed.
    pub max_ids_in_memory: u64,
    /// Age after which another run's hour lock counts as stale.
    pub lock_ttl: Duration,
    /// Called after each hour (a progress bar on a terminal).
    pub progress: Option<Progress>,
    /// Event times before this are complete in the lake (the settle horizon, epoch ms).
    /// An hour whose sessions may still continue past it leaves `sessions` unpublished
    /// (answered by the speed layer) and stays dirty. `None`: the lake is complete.
    pub complete_before_ms: Option<i64>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            ctx: MetricContext::default(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            skip_corrupt: false,
            max_ids_in_memory: 30_000_000,
            lock_ttl: Duration::from_secs(2 * 3600),
            progress: None,
            complete_before_ms: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub hours: BTreeMap<String, HourView>,
    pub empty_hours: Vec<String>,
    pub published: Option<Published>,
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

/// Every metric's name, for coverage.
pub const METRICS: [&str; 5] = [
    PageViews::NAME,
    Funnel::NAME,
    Revenue::NAME,
    Sessions::NAME,
    Orders::NAME,
];

/// A new run's id: its start time and a random suffix.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let entropy = xxhash_rust::xxh3::xxh3_64(
        format!("{}{:?}", std::process::id(), now.timestamp_nanos_opt()).as_bytes(),
    );
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), entropy as u32)
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
            let mut dirty = Vec::new();
            for hour in lake.hours().await? {
                if before.is_some_and(|b| hour >= b) {
                    continue;
                }
                let Some(view) = published.hours.get(&hour.to_string()) else {
                    dirty.push(hour);
                    continue;
                };
                if !view.pending.is_empty() {
                    dirty.push(hour);
                    continue;
                }
                // Clean when the hour's files, and those of every neighbouring hour its
                // views read, are the ones the view was computed from.
                let mut clean = unchanged(lake, &mut listed, hour, &view.inputs).await?;
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
                    dirty.push(hour);
                }
            }
            Ok(dirty)
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

/// Runs the batch job over the selected hours: each hour is locked, computed, written and
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
    let mut report = RunReport {
        run_id: run_id.clone(),
        hours: BTreeMap::new(),
        empty_hours: vec![],
        published: None,
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
        let lock =
            crate::lock::Lock::acquire(views, &hour.to_string(), &run_id, opts.lock_ttl).await?;
        let computed = compute_hour(lake, views, hour, files, &run_id, opts).await;
        let published = match computed {
            Ok(view) => {
                let one = BTreeMap::from([(hour.to_string(), view.clone())]);
                let published =
                    manifest::publish(views, &run_id, &logic, &METRICS, &one, opts.lock_ttl).await;
                report.hours.insert(hour.to_string(), view);
                published
            }
            Err(e) => Err(e),
        };
        lock.release().await?;
        report.published = Some(published?);
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
    let (orders, published) = crate::orders::run(
        lake,
        views,
        &run_id,
        through,
        &opts.ctx,
        opts.lock_ttl,
        opts.skip_corrupt,
    )
    .await?;
    report.orders = orders;
    if published.is_some() {
        report.published = published;
    }
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
    manifest::write_run_record(views, &record).await?;
    tracing::info!(run_id = %run_id, hours = report.hours.len(), rows = report.rows_read(), secs = report.elapsed.as_secs_f64(), "batch run done");
    Ok(report)
}

/// Reads each file's footer: row counts for the manifest, and corrupt files found before
/// any work is done.
pub(crate) async fn inspect_inputs(
    lake: &Lake,
    files: Vec<ObjectMeta>,
    skip_corrupt: bool,
) -> Result<(Vec<(ObjectMeta, u64)>, Vec<String>), BatchError> {
    let mut good = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        match footer_rows(lake, &file).await {
            Ok(rows) => good.push((file, rows)),
            Err(reason) if skip_corrupt => {
                tracing::warn!(file = %lake.object_url(&file.location), %reason, "skipping a corrupt file");
                skipped.push(lake.object_url(&file.location));
            }
            Err(reason) => {
                return Err(BatchError::Parquet {
                    path: lake.object_url(&file.location),
                    source: Box::new(parquet::errors::ParquetError::General(reason)),
                })
            }
        }
    }
    Ok((good, skipped))
}

/// Rows of a Parquet file, from its footer; the reason when it is not a readable Parquet file.
async fn footer_rows(lake: &Lake, file: &ObjectMeta) -> Result<u64, String> {
    if file.size < 12 {
        return Err(format!(
            "{} bytes is too short for a Parquet file",
            file.size
        ));
    }
    let tail = lake
        .store()
        .get_range(&file.location, file.size - 8..file.size)
        .await
        .map_err(|e| e.to_string())?;
    if &tail[4..] != b"PAR1" {
        return Err("no Parquet magic at the end of the file (truncated or not Parquet)".into());
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if len + 12 > file.size {
        return Err(format!(
            "footer length {len} exceeds the file size {}",
            file.size
        ));
    }
    let footer = lake
        .store()
        .get_range(&file.location, file.size - 8 - len..file.size - 8)
        .await
        .map_err(|e| e.to_string())?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| e.to_string())?;
    Ok(metadata.file_metadata().num_rows().max(0) as u64)
}

/// Winning origins of ids seen more than once, and whether each has been folded already
/// (so that the same record present twice still counts once).
type Winners = HashMap<u128, (Origin, AtomicBool)>;

async fn compute_hour(
    lake: &Lake,
    views: &Lake,
    hour: HourKey,
    files: Vec<ObjectMeta>,
    run_id: &str,
    opts: &BatchOptions,
) -> Result<HourView, BatchError> {
    let started = Instant::now();
    let (inputs, skipped) = inspect_inputs(lake, files, opts.skip_corrupt).await?;
    if inputs.is_empty() {
        return Err(BatchError::NoData {
            hour: hour.to_string(),
            lake: lake.display(),
        });
    }
    let total_rows: u64 = inputs.iter().map(|(_, rows)| rows).sum();
    let buckets = total_rows.div_ceil(opts.max_ids_in_memory.max(1)).max(1);
    let session = session(lake, opts.threads);
    let paths = inputs
        .iter()
        .map(|(f, _)| lake.object_url(&f.location))
        .collect();
    let table = table(&session, paths, hour).await?;

    let mut agg = Aggregates::default();
    let mut rows_read = 0;
    let mut duplicates = 0;
    for bucket in 0..buckets {
        let pass = Instant::now();
        let winners =
            find_duplicates(&session, &table, hour, (bucket, buckets), &mut duplicates).await?;
        let dedup_secs = pass.elapsed().as_secs_f64();
        let pass = Instant::now();
        let (bucket_agg, rows) = fold(
            &session,
            &table,
            hour,
            (bucket, buckets),
            Arc::new(winners),
            &opts.ctx,
        )
        .await?;
        let fold_secs = pass.elapsed().as_secs_f64();
        agg.merge_owned(bucket_agg);
        tracing::debug!(%hour, bucket, dedup_secs, fold_secs, "bucket done");
        rows_read += rows;
    }
    let write = Instant::now();
    let keys = agg.len();
    let Aggregates {
        page_views,
        funnel,
        revenue,
        sessions: _,
        orders: _,
    } = agg;
    // The per-event views encode in parallel (Parquet encoding is the CPU-heavy part) and
    // are freed before the sessions pass holds its rows.
    let (a, b, c) = tokio::join!(
        write_view::<PageViews>(views, hour, run_id, page_views, &opts.ctx),
        write_view::<Funnel>(views, hour, run_id, funnel, &opts.ctx),
        write_view::<Revenue>(views, hour, run_id, revenue, &opts.ctx),
    );
    let mut view_paths: BTreeMap<String, String> = [a?, b?, c?].into_iter().collect();
    let pass = Instant::now();
    // Sessions rows are twice the size of the dedup pass's ids: half as many per bucket.
    let session_buckets = total_rows
        .div_ceil((opts.max_ids_in_memory / 2).max(1))
        .max(1);
    let sessions = crate::sessions::compute(
        lake,
        &session,
        hour,
        session_buckets,
        opts.skip_corrupt,
        &opts.ctx,
        opts.complete_before_ms,
    )
    .await?;
    let pending: Vec<String> = if sessions.complete {
        vec![]
    } else {
        vec![Sessions::NAME.to_string()]
    };
    tracing::debug!(%hour, secs = pass.elapsed().as_secs_f64(), neighbours = sessions.neighbours.len(), "sessions computed");
    if sessions.complete {
        let (name, path) =
            write_view::<Sessions>(views, hour, run_id, sessions.views, &opts.ctx).await?;
        view_paths.insert(name, path);
    }
    tracing::debug!(%hour, write_secs = write.elapsed().as_secs_f64(), keys, "views written");
    tracing::info!(%hour, files = inputs.len(), rows = rows_read, duplicates, buckets, secs = started.elapsed().as_secs_f64(), "hour computed");
    Ok(HourView {
        run_id: run_id.to_string(),
        computed_at: now_text(),
        inputs: inputs
            .iter()
            .map(|(f, rows)| InputFile {
                path: lake.object_url(&f.location),
                bytes: f.size,
                rows: *rows,
            })
            .collect(),
        rows_read,
        duplicates,
        skipped_files: skipped,
        views: view_paths,
        neighbours: sessions.neighbours,
        pending,
        digests: BTreeMap::new(),
    })
}

fn session(lake: &Lake, threads: usize) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(threads.max(1))
        .with_batch_size(16 * 1024);
    let session = SessionContext::new_with_config(config);
    session.register_object_store(lake.store_url(), lake.store().clone());
    session
}

/// A listing table over the given lake files (URLs as `Lake::object_url` gives them).
pub(crate) async fn table(
    session: &SessionContext,
    paths: Vec<String>,
    hour: HourKey,
) -> Result<Arc<ListingTable>, BatchError> {
    let scan_err = |e| BatchError::Scan {
        hour: hour.to_string(),
        source: Box::new(e),
    };
    let urls = paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(scan_err)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&session.state())
        .await
        .map_err(scan_err)?;
    Ok(Arc::new(ListingTable::try_new(config).map_err(scan_err)?))
}

pub(crate) async fn streams(
    session: &SessionContext,
    table: &Arc<ListingTable>,
    hour: HourKey,
    columns: &[&str],
) -> Result<Vec<SendableRecordBatchStream>, BatchError> {
    let scan_err = |e| BatchError::Scan {
        hour: hour.to_string(),
        source: Box::new(e),
    };
    let df = session
        .read_table(table.clone())
        .map_err(scan_err)?
        .select_columns(columns)
        .map_err(scan_err)?;
    df.execute_stream_partitioned().await.map_err(scan_err)
}

pub(crate) fn in_bucket(hash: u128, (bucket, buckets): (u64, u64)) -> bool {
    buckets == 1 || (hash % buckets as u128) as u64 == bucket
}

/// Pass one: the winning origin of every id of the bucket that occurs more than once.
async fn find_duplicates(
    session: &SessionContext,
    table: &Arc<ListingTable>,
    hour: HourKey,
    bucket: (u64, u64),
    duplicates: &mut u64,
) -> Result<Winners, BatchError> {
    const SHARDS: usize = 64;
    let first_seen: Arc<Vec<Mutex<HashMap<u128, Origin>>>> =
        Arc::new((0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
    let repeated: Arc<Mutex<HashMap<u128, Origin>>> = Arc::new(Mutex::new(HashMap::new()));
    let dup_rows = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut stream in streams(
        session,
        table,
        hour,
        &[col::EVENT_ID, col::PARTITION, col::OFFSET],
    )
    .await?
    {
        let (first_seen, repeated, dup_rows) =
            (first_seen.clone(), repeated.clone(), dup_rows.clone());
        tasks.push(tokio::spawn(async move {
            let mut per_shard: Vec<Vec<(u128, Origin)>> = vec![Vec::new(); SHARDS];
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| BatchError::Scan {
                    hour: hour.to_string(),
                    source: Box::new(e),
                })?;
                let cols = IdColumns::new(&batch)
                    .map_err(|e| BatchError::logic(format!("hour {hour}"))(e))?;
                for i in 0..batch.num_rows() {
                    let h = id_hash(cols.id(i));
                    if in_bucket(h, bucket) {
                        per_shard[(h as usize) % SHARDS].push((h, cols.origin(i)));
                    }
                }
                for (shard, rows) in per_shard.iter_mut().enumerate() {
                    if rows.is_empty() {
                        continue;
                    }
                    let mut map = first_seen[shard].lock().expect("shard lock");
                    for (h, origin) in rows.drain(..) {
                        match map.get_mut(&h) {
                            None => {
                                map.insert(h, origin);
                            }
                            Some(kept) => {
                                dup_rows.fetch_add(1, Ordering::Relaxed);
                                let best = if wins(origin, *kept) { origin } else { *kept };
                                *kept = best;
                                let mut rep = repeated.lock().expect("repeated lock");
                                let slot = rep.entry(h).or_insert(best);
                                if wins(best, *slot) {
                                    *slot = best;
                                }
                            }
                        }
                    }
                }
            }
            Ok::<(), BatchError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| BatchError::Usage(format!("scan task failed: {e}")))??;
    }
    *duplicates += dup_rows.load(Ordering::Relaxed);
    let repeated = Arc::try_unwrap(repeated)
        .map(|m| m.into_inner().unwrap_or_default())
        .unwrap_or_default();
    Ok(repeated
        .into_iter()
        .map(|(h, o)| (h, (o, AtomicBool::new(false))))
        .collect())
}

/// Pass two: folds every row of the bucket except losing duplicates.
async fn fold(
    session: &SessionContext,
    table: &Arc<ListingTable>,
    hour: HourKey,
    bucket: (u64, u64),
    winners: Arc<Winners>,
    ctx: &MetricContext,
) -> Result<(Aggregates, u64), BatchError> {
    let mut tasks = Vec::new();
    for mut stream in streams(session, table, hour, &METRIC_COLUMNS).await? {
        let (winners, ctx) = (winners.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut agg = Aggregates::default();
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| BatchError::Scan {
                    hour: hour.to_string(),
                    source: Box::new(e),
                })?;
                let cols = EventColumns::new(&batch)
                    .map_err(|e| BatchError::logic(format!("hour {hour}"))(e))?;
                for i in 0..cols.len() {
                    let h = id_hash(cols.event_id(i));
                    if !in_bucket(h, bucket) {
                        continue;
                    }
                    rows += 1;
                    if let Some((origin, taken)) = winners.get(&h) {
                        if cols.origin(i) != *origin || taken.swap(true, Ordering::Relaxed) {
                            continue;
                        }
                    }
                    let event = cols
                        .row(i)
                        .map_err(|e| BatchError::logic(format!("hour {hour}"))(e))?;
                    if HourKey::of(event.event_time()) != hour {
                        return Err(BatchError::logic(format!("hour {hour}"))(
                            shared_logic::LogicError::Schema(format!(
                                "event {} at {} is filed under another hour",
                                event.event_id(),
                                event.event_time()
                            )),
                        ));
                    }
                    agg.update(&event, &ctx);
                }
            }
            Ok::<(Aggregates, u64), BatchError>((agg, rows))
        }));
    }
    let mut total = Aggregates::default();
    let mut rows = 0;
    for t in tasks {
        let (agg, n) = t
            .await
            .map_err(|e| BatchError::Usage(format!("fold task failed: {e}")))??;
        total.merge_owned(agg);
        rows += n;
    }
    Ok((total, rows))
}

/// `event_id`, partition and offset of a batch (pass one's projection).
struct IdColumns<'a> {
    ids: EventColumnsIds<'a>,
    partitions: &'a arrow::array::Int32Array,
    offsets: &'a arrow::array::Int64Array,
}

enum EventColumnsIds<'a> {
    Utf8(&'a arrow::array::StringArray),
    View(&'a arrow::array::StringViewArray),
}

impl<'a> IdColumns<'a> {
    fn new(batch: &'a arrow::array::RecordBatch) -> Result<Self, shared_logic::LogicError> {
        use arrow::array::AsArray;
        let missing =
            |c: &str| shared_logic::LogicError::Schema(format!("missing or mistyped column `{c}`"));
        let ids = batch
            .column_by_name(col::EVENT_ID)
            .ok_or_else(|| missing(col::EVENT_ID))?;
        let ids = match ids.data_type() {
            arrow::datatypes::DataType::Utf8 => EventColumnsIds::Utf8(ids.as_string::<i32>()),
            arrow::datatypes::DataType::Utf8View => EventColumnsIds::View(ids.as_string_view()),
            _ => return Err(missing(col::EVENT_ID)),
        };
        let partitions = batch
            .column_by_name(col::PARTITION)
            .and_then(|a| a.as_primitive_opt::<arrow::datatypes::Int32Type>())
            .ok_or_else(|| missing(col::PARTITION))?;
        let offsets = batch
            .column_by_name(col::OFFSET)
            .and_then(|a| a.as_primitive_opt::<arrow::datatypes::Int64Type>())
            .ok_or_else(|| missing(col::OFFSET))?;
        Ok(IdColumns {
            ids,
            partitions,
            offsets,
        })
    }

    fn id(&self, i: usize) -> &'a str {
        match &self.ids {
            EventColumnsIds::Utf8(a) => a.value(i),
            EventColumnsIds::View(a) => a.value(i),
        }
    }

    fn origin(&self, i: usize) -> Origin {
        Origin {
            partition: self.partitions.value(i),
            offset: self.offsets.value(i),
        }
    }
}

/// Encodes (on a blocking thread) and writes one metric's view of an hour; returns the
/// metric's name and the file's path relative to the views root.
pub(crate) async fn write_view<M: Metric>(
    views: &Lake,
    hour: HourKey,
    run_id: &str,
    states: MetricViews<M>,
    ctx: &MetricContext,
) -> Result<(String, String), BatchError> {
    let relative = format!("{}/{}/{run_id}.parquet", M::NAME, hour_partition(hour));
    let path = views.path(&relative);
    let (windows, name) = (ctx.windows, views.object_url(&path));
    let bytes = tokio::task::spawn_blocking(move || {
        let batch = views::to_record_batch(&states, &windows)
            .map_err(|e| BatchError::logic(format!("{} view of {hour}", M::NAME))(e))?;
        encode_parquet(views::view_schema::<M>(), &[batch], &name)
    })
    .await
    .map_err(|e| BatchError::Usage(format!("view encoder task failed: {e}")))??;
    views.put(&path, bytes).await?;
    Ok((M::NAME.to_string(), relative))
}

/// Reads one metric's published views for the given hours back into states.
pub async fn read_views<M: Metric>(
    views: &Lake,
    published: &Published,
    hours: &[HourKey],
) -> Result<MetricViews<M>, BatchError> {
    let mut out = MetricViews::<M>::default();
    for hour in hours {
        let Some(relative) = published
            .hours
            .get(&hour.to_string())
            .and_then(|h| h.views.get(M::NAME))
        else {
            continue;
        };
        let path = views.path(relative);
        let bytes = views
            .get(&path)
            .await?
            .ok_or_else(|| BatchError::Manifest {
                path: views.object_url(&path),
                reason: "the manifest names a view file that does not exist".into(),
            })?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(BatchError::parquet(views.object_url(&path)))?
            .build()
            .map_err(BatchError::parquet(views.object_url(&path)))?;
        for batch in reader {
            let batch =
                batch.map_err(|e| BatchError::parquet(views.object_url(&path))(e.into()))?;
            views::merge_record_batch(&mut out, &batch)
                .map_err(BatchError::logic(views.object_url(&path)))?;
        }
    }
    Ok(out)
}
