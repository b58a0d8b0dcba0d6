//! Pass two of an hour: every row of the bucket except losing duplicates, folded by the
//! shared metrics into [`Aggregates`], on every DataFusion partition in parallel; the
//! partial states merge with the monoid merge. A losing duplicate is noted in the metrics
//! that count duplicate deliveries (`quality`), as the speed layer notes the deliveries
//! its dedup drops.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use datafusion::datasource::listing::ListingTable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use shared_logic::dedup::id_hash;
use shared_logic::schema::{EventColumns, METRIC_COLUMNS};
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, MetricContext};

use crate::dedup::Winners;
use crate::error::BatchError;
use crate::scan::{in_bucket, streams};

/// Pass two: folds every row of the bucket except losing duplicates.
pub(crate) async fn fold(
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
                    let mut duplicate = false;
                    if let Some((origin, taken)) = winners.get(&h) {
                        if cols.origin(i) != *origin {
                            duplicate = true;
                        } else if taken.swap(true, Ordering::Relaxed) {
                            // The winning record itself, present twice: one delivery.
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
                    if duplicate {
                        agg.note_duplicate_windows(&event, &ctx, |_| true);
                    } else {
                        agg.update(&event, &ctx);
                    }
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
