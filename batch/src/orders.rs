//! The batch layer's views built from the change logs (`orders` and `daily_sales`),
//! replayed from the lake's change tables.
//!
//! An order change's deltas can fall in other hours than the change (a cancellation under
//! `ReversalWindow::Original` restates the order's hour; a restated amount retracts the
//! old one; `daily_sales` always restates the order's hour), and a product or user version
//! changes the category, country or age group of every later order of that product or
//! user. So each pass replays the whole log — the dimensions from every products and users
//! change, then every distinct order change — with `shared_logic::orders`, exactly the
//! computation the tests call direct. Order changes are a small fraction of the events,
//! and a pass whose inputs (the change files, the hours to cover) are unchanged since the
//! last one is skipped.
//!
//! Hours are published from the first hour with data (events or deltas) up to the run's
//! settle horizon, an hour without orders as an empty view, so each metric's time boundary
//! is contiguous. Only hours whose view changed (by content digest) are written and
//! published: `daily_sales` first, then `orders` in one commit that also records the
//! change log read ([`lambda_io::view_tables::CHANGE_LOG_KEY`]), so a pass cut short
//! between them is replayed. An hour's views survive a recomputation of its events (see
//! [`lambda_io::manifest::HourView::digests`]). Each replay also writes both dimensions,
//! every version with its validity (`dimensions/products/<run id>.parquet`,
//! `dimensions/users/<run id>.parquet`, named in the change log read).

use std::collections::BTreeMap;

use lambda_io::manifest::{ChangeLogRead, InputFile, Published};
use lambda_io::view_tables::Publisher;
use lambda_io::Lake;
use shared_logic::cdc::CdcTable;
use shared_logic::metric::BuiltFrom;
use shared_logic::metrics::{DailySales, Orders};
use shared_logic::orders::{change_log_views, dedup_log, dimensions, Unapplied};
use shared_logic::registry::Registered;
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext, MetricId, MetricViews};

use crate::cdc_files;
use crate::error::BatchError;
use crate::publish;
use crate::view_files::WrittenView;

/// What an `orders` pass did.
#[derive(Debug, Clone, Default)]
pub struct OrdersReport {
    /// False when the inputs were unchanged and nothing was recomputed.
    pub replayed: bool,
    pub order_changes: usize,
    pub product_changes: usize,
    pub user_changes: usize,
    /// Repeated deliveries dropped (same source position).
    pub duplicates: usize,
    /// Changes that cannot be applied (dimension updates of unknown keys, unreadable rows).
    pub rejected: Vec<Unapplied>,
    /// Hours whose `orders` or `daily_sales` view was (re)published.
    pub published_hours: Vec<String>,
    /// Change files skipped as corrupt (`--skip-corrupt`).
    pub skipped_files: Vec<String>,
}

/// Replays the change log and publishes the `orders` and `daily_sales` hours that changed,
/// up to `through` (exclusive; `None`: the last hour with data).
pub async fn run(
    lake: &Lake,
    views: &Lake,
    publisher: &Publisher,
    through: Option<HourKey>,
    ctx: &MetricContext,
    skip_corrupt: bool,
) -> Result<OrdersReport, BatchError> {
    let run_id = publisher.run_id.as_str();
    let mut report = OrdersReport::default();
    let mut files = BTreeMap::new();
    for table in CdcTable::ALL {
        files.insert(table, cdc_files::list(lake, table).await?);
    }
    let listed: Vec<InputFile> = CdcTable::ALL
        .iter()
        .flat_map(|t| &files[t])
        .map(|m| InputFile {
            path: lake.object_url(&m.location),
            bytes: m.size,
            rows: 0,
        })
        .collect();
    if listed.is_empty() {
        return Ok(report);
    }
    let published = Published::load(views).await?;
    let through_text = through.map(|h| h.to_string());
    let covered = |p: &Published| {
        p.hours
            .iter()
            .filter(|(h, _)| through_text.as_ref().is_none_or(|t| *h < t))
            .all(|(_, v)| {
                MetricId::ALL
                    .iter()
                    .filter(|m| m.built_from() == BuiltFrom::OrderChanges)
                    .all(|m| v.views.contains_key(m.name()))
            })
    };
    if let Some(read) = &published.change_log {
        let same_files = read
            .files
            .iter()
            .map(|f| (&f.path, f.bytes))
            .eq(listed.iter().map(|f| (&f.path, f.bytes)));
        if same_files && read.through == through_text && covered(&published) {
            return Ok(report);
        }
    }

    report.replayed = true;
    let mut logs = BTreeMap::new();
    for table in CdcTable::ALL {
        let mut log = cdc_files::read(lake, table, &files[&table], skip_corrupt).await?;
        report.duplicates += dedup_log(&mut log.changes);
        report.skipped_files.append(&mut log.skipped_files);
        report.rejected.append(&mut log.unreadable);
        logs.insert(table, log.changes);
    }
    let (dims, rejected) = dimensions(&logs[&CdcTable::Products], &logs[&CdcTable::Users]);
    report.rejected.extend(rejected);
    for r in &report.rejected {
        tracing::warn!(partition = r.partition, offset = r.offset, reason = r.rejection.reason.code(), message = %r.rejection.message, "change not applied");
    }
    report.product_changes = logs[&CdcTable::Products].len();
    report.user_changes = logs[&CdcTable::Users].len();
    report.order_changes = logs[&CdcTable::Orders].len();
    let mut all = change_log_views(&logs[&CdcTable::Orders], &dims, ctx);
    // The dimensions, for people and other engines (DuckDB, Spark).
    let products_file = format!("dimensions/products/{run_id}.parquet");
    let path = views.path(&products_file);
    let bytes = cdc_files::encode_products(&dims.products.versions(), &views.object_url(&path))?;
    views.put(&path, bytes).await?;
    let users_file = format!("dimensions/users/{run_id}.parquet");
    let path = views.path(&users_file);
    let bytes = cdc_files::encode_users(&dims.users.versions(), &views.object_url(&path))?;
    views.put(&path, bytes).await?;

    // The hours to cover: from the first with data to `through` (or the last with data).
    let data_hours = all
        .orders
        .iter()
        .map(|(k, _)| k.window.0)
        .chain(all.daily_sales.iter().map(|(k, _)| k.window.0))
        .map(|t| HourKey::of(shared_logic::EventTime(t)));
    let event_hours = published.hours.keys().filter_map(|h| HourKey::parse(h));
    let known: Vec<HourKey> = data_hours.chain(event_hours).collect();
    let (Some(first), Some(last)) = (known.iter().min(), known.iter().max()) else {
        return Ok(report);
    };
    let hours = *first..through.unwrap_or(HourKey(last.0 + 1));
    let read = ChangeLogRead {
        files: listed,
        through: through_text,
        products: Some(products_file),
        users: Some(users_file),
    };
    let mut published_hours = std::collections::BTreeSet::new();
    // `orders` last: its commit records the change log read.
    let sales =
        changed_hours::<DailySales>(views, &published, &mut all, hours.clone(), run_id, ctx)
            .await?;
    published_hours.extend(
        publish::publish_change_log_views::<DailySales>(views, publisher, &sales, None).await?,
    );
    let orders = changed_hours::<Orders>(views, &published, &mut all, hours, run_id, ctx).await?;
    published_hours.extend(
        publish::publish_change_log_views::<Orders>(views, publisher, &orders, Some(&read)).await?,
    );
    report.published_hours = published_hours.iter().map(HourKey::to_string).collect();
    tracing::info!(
        order_changes = report.order_changes,
        product_changes = report.product_changes,
        user_changes = report.user_changes,
        duplicates = report.duplicates,
        rejected = report.rejected.len(),
        hours = report.published_hours.len(),
        "orders and daily sales replayed from the change log"
    );
    Ok(report)
}

/// Writes metric `M`'s view of every hour of `hours` whose content differs from the
/// published one (an hour without data as an empty view); the written files and digests.
async fn changed_hours<M: Registered>(
    views: &Lake,
    published: &Published,
    all: &mut Aggregates,
    hours: std::ops::Range<HourKey>,
    run_id: &str,
    ctx: &MetricContext,
) -> Result<BTreeMap<HourKey, (WrittenView, String)>, BatchError> {
    let mut by_hour: BTreeMap<HourKey, MetricViews<M>> = BTreeMap::new();
    for (key, state) in std::mem::take(M::views_in_mut(all)).iter() {
        let hour = HourKey::of(shared_logic::EventTime(key.window.0));
        by_hour.entry(hour).or_default().merge_group(key, state);
    }
    let mut changed = BTreeMap::new();
    for h in hours.start.0..hours.end.0 {
        let hour = HourKey(h);
        let view = by_hour.remove(&hour).unwrap_or_default();
        let digest = format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(
                &serde_json::to_vec(&view).map_err(|e| BatchError::Usage(e.to_string()))?
            )
        );
        let current = published.hours.get(&hour.to_string());
        if current.and_then(|v| v.digests.get(M::NAME)) == Some(&digest) {
            continue;
        }
        let written = crate::view_files::write_view::<M>(views, hour, run_id, view, ctx).await?;
        changed.insert(hour, (written, digest));
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc_files::RawChange;
    use shared_logic::cdc::Change;
    use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
    use shared_logic::orders::LoggedChange;

    /// Writes generated change streams into the lake as the lake writer would (one flush
    /// per table, partition 0); the logs as written (products, users, orders).
    async fn lake_with_changes(lake: &Lake) -> BTreeMap<CdcTable, Vec<LoggedChange>> {
        let records: Vec<_> = CdcGenerator::new(CdcConfig {
            duplicate_fraction: 0.05,
            orders_per_second: 0.4,
            category_change_every_ms: 120_000,
            user_move_every_ms: 60_000,
            users: 300,
            ..CdcConfig::default()
        })
        .take(3_000)
        .collect();
        let mut logs = BTreeMap::new();
        for table in CdcTable::ALL {
            let mut raw = Vec::new();
            for (offset, r) in records.iter().filter(|r| r.table == table).enumerate() {
                let change = Change::parse(table, &r.json).unwrap().unwrap();
                raw.push(RawChange {
                    table,
                    partition: 0,
                    offset: offset as i64,
                    key: change.key.clone(),
                    op: change.op.code(),
                    ts_ms: change.ts_ms,
                    payload: r.json.clone(),
                });
                logs.entry(table)
                    .or_insert_with(Vec::new)
                    .push(LoggedChange {
                        partition: 0,
                        offset: offset as i64,
                        change,
                    });
            }
            let flush = crate::writer::Flush {
                source: table.default_topic().to_string(),
                partition: 0,
                first: 0,
                last: raw.len() as i64,
                events: vec![],
                changes: raw,
                dead_letters: vec![],
                received_ms: 0,
            };
            let mut tables = crate::lake_tables::LakeTables::new(lake.clone());
            let app = crate::flush_commit::app_id(table.default_topic(), 0, "test");
            crate::flush_commit::commit_flush(&mut tables, flush, &app)
                .await
                .unwrap();
        }
        logs
    }

    #[tokio::test]
    async fn the_pass_publishes_the_replay_skips_unchanged_inputs_and_reports_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
        let views = lake.child("views");
        let ctx = MetricContext::default();
        let mut logs = lake_with_changes(&lake).await;
        let publisher = |run: &str| Publisher::new(run, 0, &ctx.fingerprint());

        let report = run(&lake, &views, &publisher("r1"), None, &ctx, false)
            .await
            .unwrap();
        assert!(report.replayed && report.duplicates > 0);
        assert!(report.user_changes > 100, "{report:?}");
        let published = Published::load(&views).await.unwrap();
        assert_eq!(
            published.change_log.as_ref().map(|c| !c.files.is_empty()),
            Some(true)
        );
        let hours: Vec<HourKey> = published
            .hours
            .keys()
            .filter_map(|h| HourKey::parse(h))
            .collect();
        assert!(hours.len() >= 2, "{hours:?}");
        assert!(published.time_boundary["orders"].is_some());
        assert!(published.time_boundary["daily_sales"].is_some());
        for log in logs.values_mut() {
            dedup_log(log);
        }
        let (dims, _) = dimensions(&logs[&CdcTable::Products], &logs[&CdcTable::Users]);
        let expected = change_log_views(&logs[&CdcTable::Orders], &dims, &ctx);
        let batch = crate::view_files::read_views::<Orders>(&views, &published, &hours)
            .await
            .unwrap();
        assert_eq!(batch, expected.orders);
        let sales = crate::view_files::read_views::<DailySales>(&views, &published, &hours)
            .await
            .unwrap();
        assert_eq!(sales, expected.daily_sales);
        assert!(sales.iter().all(|(k, _)| k.dim(0) != Some("unknown")));
        let read = published.change_log.as_ref().unwrap();
        assert!(read.users.is_some() && read.products.is_some());

        // Nothing new: nothing replayed.
        let again = run(&lake, &views, &publisher("r2"), None, &ctx, false)
            .await
            .unwrap();
        assert!(!again.replayed);

        // A corrupt change file in the table fails the pass with its path, or is skipped
        // and reported.
        let bad = b"not parquet at all".to_vec();
        let location = crate::lake_tables::LakeTable::Cdc(CdcTable::Orders).location(&lake);
        location
            .put(
                &location.path("date=2026-01-01/hour=00/bad.parquet"),
                bad.clone(),
            )
            .await
            .unwrap();
        let mut table = crate::lake_tables::LakeTable::Cdc(CdcTable::Orders)
            .open(&lake)
            .await
            .unwrap()
            .unwrap();
        let add = lambda_io::delta::AddFile {
            name: "bad.parquet".into(),
            hour: HourKey::parse("2026-01-01T00").unwrap(),
            event_type: None,
            size: bad.len() as u64,
            rows: 0,
            tags: Default::default(),
        };
        table
            .commit(
                lambda_io::delta::CommitKind::Append,
                &[add],
                &[],
                None,
                Default::default(),
            )
            .await
            .unwrap();
        let err = run(&lake, &views, &publisher("r3"), None, &ctx, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad.parquet"), "{err}");
        let skipped = run(&lake, &views, &publisher("r4"), None, &ctx, true)
            .await
            .unwrap();
        assert_eq!(skipped.skipped_files.len(), 1);
        assert!(
            skipped.published_hours.is_empty(),
            "same views: nothing republished"
        );
    }
}
