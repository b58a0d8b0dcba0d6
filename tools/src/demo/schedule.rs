//! The demo's batch schedule: every period, the oldest settled dirty hours are computed
//! and published, and the change log is replayed when new change files landed.

use std::time::Duration;

use batch::job::{self, BatchOptions, HourSelection};
use lambda_io::kafka::KafkaSettings;
use lambda_io::Lake;
use shared_logic::window::{HourKey, HOUR_MS};

/// How long the schedule waits for the lake writer to catch up with the history.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(900);

/// Returns once the lake's events table holds every record the events topic held when
/// called (the lake writer's Delta transaction of each partition reached its end offset),
/// or after [`CATCH_UP_LIMIT`] with a warning. The batch's settle horizon is wall-clock
/// time: a history posted faster than real time can still be in the writer's buffers when
/// its hours look settled, and a batch run then would publish them short (the next run
/// corrects them, but the dashboard shows a dip until then).
async fn lake_caught_up(kafka: &KafkaSettings, lake: &Lake) {
    let started = std::time::Instant::now();
    let topic = shared_logic::topics::EVENTS;
    let settings = kafka.clone();
    let ends = match tokio::task::spawn_blocking(move || {
        lambda_io::kafka::end_offsets(&settings, topic, Duration::from_secs(30))
    })
    .await
    {
        Ok(Ok(ends)) => ends,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "batch: cannot read the events topic's end offsets; not waiting for the lake writer");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "batch: end offsets task failed");
            return;
        }
    };
    let group = batch::lake_writer::WriterOptions::default().group_id;
    use batch::lake_tables::LakeTable;
    while started.elapsed() < CATCH_UP_LIMIT {
        // A flush commits to each table it has records for: the newest of the two.
        let mut tables = Vec::new();
        for t in [LakeTable::Events, LakeTable::DeadLetter] {
            if let Ok(Some(table)) = t.open(lake).await {
                tables.push(table);
            }
        }
        if !tables.is_empty() {
            let mut behind = false;
            for (p, end) in ends.iter().filter(|(_, end)| **end > 0) {
                let app = batch::flush_commit::app_id(topic, *p, &group);
                let mut written = None;
                for table in &tables {
                    let v = table.transaction_version(&app).await.ok().flatten();
                    written = written.max(v);
                }
                behind |= written.is_none_or(|w| w < end - 1);
            }
            if !behind {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "batch: the lake holds the history"
                );
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!("batch: the lake writer has not caught up with the history after 15 minutes; the schedule starts anyway");
}

/// Once `history_in` fires (or its sender is gone) and the lake writer has written every
/// event the events topic held then ([`lake_caught_up`]), every `period`: the oldest
/// settled dirty hours (at most `per_run`) are computed and published.
#[allow(clippy::too_many_arguments)]
pub(super) async fn batch_schedule(
    history_in: tokio::sync::oneshot::Receiver<()>,
    kafka: KafkaSettings,
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
    tokio::select! {
        _ = &mut stopped => return,
        _ = lake_caught_up(&kafka, &lake) => {}
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
