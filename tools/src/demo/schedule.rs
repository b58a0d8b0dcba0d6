//! The demo's batch schedule: every period, the oldest settled dirty hours are computed
//! and published, and the change log is replayed when new change files landed.

use std::time::Duration;

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::Lake;
use shared_logic::window::{HourKey, HOUR_MS};

/// Once `history_in` fires (or its sender is gone), every `period`: the oldest settled
/// dirty hours (at most `per_run`) are computed and published.
pub(super) async fn batch_schedule(
    history_in: tokio::sync::oneshot::Receiver<()>,
    lake: Lake,
    views: Lake,
    period: Duration,
    per_run: usize,
    settle_secs: i64,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    tokio::select! {
        _ = &mut stopped => return,
        _ = history_in => {}
    }
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let settled = chrono::Utc::now().timestamp_millis() - settle_secs.max(0) * 1000;
        let selection = HourSelection::Dirty {
            before: Some(HourKey(settled.div_euclid(HOUR_MS))),
        };
        let hours = match job::select_hours(&lake, &views, &selection).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "batch: cannot select hours");
                continue;
            }
        };
        if hours.is_empty() {
            // No events hour to compute: the run still replays the change log when new
            // change files landed (the orders pass), and does nothing otherwise.
            let opts = BatchOptions::default();
            let run_id = job::new_run_id();
            let publisher = lambda_io::view_tables::Publisher::new(
                &run_id,
                chrono::Utc::now().timestamp_millis(),
                &opts.ctx.fingerprint(),
            );
            let replayed = batch::orders::run(
                &lake,
                &views,
                &publisher,
                Some(HourKey(settled.div_euclid(HOUR_MS))),
                &opts.ctx,
                opts.skip_corrupt,
            )
            .await;
            match replayed {
                Ok(report) if report.replayed => println!(
                    "[batch] change log replayed: {} order changes, {} hour(s) of orders published",
                    report.order_changes,
                    report.published_hours.len()
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "batch: change log replay failed"),
            }
        }
        for hour in hours.into_iter().take(per_run) {
            let opts = BatchOptions {
                complete_before_ms: Some(settled),
                ..BatchOptions::default()
            };
            match job::run(&lake, &views, &HourSelection::One(hour), &opts).await {
                Ok(report) => println!(
                    "[batch] run {} computed {hour} ({} rows) in {:.1} s",
                    report.run_id,
                    report.rows_read(),
                    report.elapsed.as_secs_f64()
                ),
                Err(e) => tracing::warn!(error = %e, %hour, "batch run failed"),
            }
        }
    }
}
