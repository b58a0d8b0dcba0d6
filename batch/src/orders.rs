//! The batch layer's `orders` views, replayed from the lake's change log.
//!
//! An order change's deltas can fall in other hours than the change (a cancellation under
//! `ReversalWindow::Original` restates the order's hour; a restated amount retracts the
//! old one), and a product version changes the category of every later order of that
//! product. So each pass replays the whole log — the product table from every products
//! change, then every distinct order change — with `shared_logic::orders`, exactly the
//! computation the tests call direct. Order changes are a small fraction of the events,
//! and a pass whose inputs (the change files, the hours to cover) are unchanged since the
//! last one is skipped.
//!
//! Hours are published from the first hour with data (events or order deltas) up to the
//! run's settle horizon, an hour without orders as an empty view, so the `orders` time
//! boundary is contiguous. Only hours whose view changed (by content digest) are written
//! and published, in one commit to the `orders` table that also records the change log
//! read ([`lambda_io::view_tables::CHANGE_LOG_KEY`]). An hour's `orders` view survives a
//! recomputation of its events (see [`lambda_io::manifest::HourView::digests`]). Each replay
//! also writes the products dimension, every version with its validity
//! (`dimensions/products/<run id>.parquet`, named in the change log read).

use std::collections::BTreeMap;

use lambda_io::manifest::{ChangeLogRead, InputFile, Published};
use lambda_io::view_tables::Publisher;
use lambda_io::Lake;
use shared_logic::cdc::CdcTable;
use shared_logic::metrics::Orders;
use shared_logic::orders::{dedup_log, orders_views, product_table, Unapplied};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{MetricContext, MetricViews};

use crate::cdc_files;
use crate::error::BatchError;
use crate::publish;

/// What an `orders` pass did.
#[derive(Debug, Clone, Default)]
pub struct OrdersReport {
    /// False when the inputs were unchanged and nothing was recomputed.
    pub replayed: bool,
    pub order_changes: usize,
    pub product_changes: usize,
    /// Repeated deliveries dropped (same source position).
    pub duplicates: usize,
    /// Changes that cannot be applied (product updates of unknown keys, unreadable rows).
    pub rejected: Vec<Unapplied>,
    /// Hours whose `orders` view was (re)published.
    pub published_hours: Vec<String>,
    /// Change files skipped as corrupt (`--skip-corrupt`).
    pub skipped_files: Vec<String>,
}

/// Replays the change log and publishes the `orders` hours that changed, up to `through`
/// (exclusive; `None`: the last hour with data).
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
    let (orders_files, products_files) = (
        cdc_files::list(lake, CdcTable::Orders).await?,
        cdc_files::list(lake, CdcTable::Products).await?,
    );
    let listed: Vec<InputFile> = orders_files
        .iter()
        .chain(&products_files)
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
            .all(|(_, v)| v.views.contains_key(<Orders as shared_logic::Metric>::NAME))
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
    let mut products =
        cdc_files::read(lake, CdcTable::Products, &products_files, skip_corrupt).await?;
    let mut orders = cdc_files::read(lake, CdcTable::Orders, &orders_files, skip_corrupt).await?;
    report.skipped_files = [products.skipped_files.clone(), orders.skipped_files.clone()].concat();
    report.duplicates = dedup_log(&mut products.changes) + dedup_log(&mut orders.changes);
    let (table, rejected) = product_table(&products.changes);
    report.rejected = [products.unreadable, orders.unreadable, rejected].concat();
    for r in &report.rejected {
        tracing::warn!(partition = r.partition, offset = r.offset, reason = r.rejection.reason.code(), message = %r.rejection.message, "change not applied");
    }
    report.product_changes = products.changes.len();
    report.order_changes = orders.changes.len();
    let all = orders_views(&orders.changes, &table, ctx);
    // The products dimension, for people and other engines (DuckDB, Spark).
    let products_file = format!("dimensions/products/{run_id}.parquet");
    let path = views.path(&products_file);
    let bytes = cdc_files::encode_products(&table.versions(), &views.object_url(&path))?;
    views.put(&path, bytes).await?;

    // The hours to cover: from the first with data to `through` (or the last with data).
    let mut by_hour: BTreeMap<HourKey, MetricViews<Orders>> = BTreeMap::new();
    for (key, state) in all.iter() {
        let hour = HourKey::of(shared_logic::EventTime(key.window.0));
        by_hour.entry(hour).or_default().merge_group(key, state);
    }
    let event_hours = published.hours.keys().filter_map(|h| HourKey::parse(h));
    let known: Vec<HourKey> = by_hour.keys().copied().chain(event_hours).collect();
    let (Some(first), Some(last)) = (known.iter().min(), known.iter().max()) else {
        return Ok(report);
    };
    let end = through.unwrap_or(HourKey(last.0 + 1));
    let mut changed = BTreeMap::new();
    for h in first.0..end.0 {
        let hour = HourKey(h);
        let view = by_hour.remove(&hour).unwrap_or_default();
        let digest = format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(
                &serde_json::to_vec(&view).map_err(|e| BatchError::Usage(e.to_string()))?
            )
        );
        let name = hour.to_string();
        let current = published.hours.get(&name);
        if current.and_then(|v| v.digests.get(<Orders as shared_logic::Metric>::NAME))
            == Some(&digest)
        {
            continue;
        }
        let written =
            crate::view_files::write_view::<Orders>(views, hour, run_id, view, ctx).await?;
        changed.insert(hour, (written, digest));
    }
    debug_assert!(end.start_ms() % HOUR_MS == 0);
    let read = ChangeLogRead {
        files: listed,
        through: through_text,
        products: Some(products_file),
    };
    report.published_hours = publish::publish_change_log_views(views, publisher, &changed, &read)
        .await?
        .iter()
        .map(HourKey::to_string)
        .collect();
    tracing::info!(
        order_changes = report.order_changes,
        product_changes = report.product_changes,
        duplicates = report.duplicates,
        rejected = report.rejected.len(),
        hours = report.published_hours.len(),
        "orders replayed from the change log"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc_files::RawChange;
    use shared_logic::cdc::Change;
    use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
    use shared_logic::orders::LoggedChange;

    /// Writes generated change streams into the lake as the lake writer would (one flush
    /// per table, partition 0); the logs as written.
    async fn lake_with_changes(lake: &Lake) -> (Vec<LoggedChange>, Vec<LoggedChange>) {
        let records: Vec<_> = CdcGenerator::new(CdcConfig {
            duplicate_fraction: 0.05,
            orders_per_second: 0.4,
            category_change_every_ms: 120_000,
            ..CdcConfig::default()
        })
        .take(3_000)
        .collect();
        let mut logs = (Vec::new(), Vec::new());
        for table in [CdcTable::Products, CdcTable::Orders] {
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
                let log = if table == CdcTable::Orders {
                    &mut logs.1
                } else {
                    &mut logs.0
                };
                log.push(LoggedChange {
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
        let (mut products, mut orders) = lake_with_changes(&lake).await;
        let publisher = |run: &str| Publisher::new(run, 0, &ctx.fingerprint());

        let report = run(&lake, &views, &publisher("r1"), None, &ctx, false)
            .await
            .unwrap();
        assert!(report.replayed && report.duplicates > 0);
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
        dedup_log(&mut products);
        dedup_log(&mut orders);
        let expected = orders_views(&orders, &product_table(&products).0, &ctx);
        let batch = crate::view_files::read_views::<Orders>(&views, &published, &hours)
            .await
            .unwrap();
        assert_eq!(batch, expected);

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
