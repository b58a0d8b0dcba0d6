//! One hour of the batch job: footers checked, the two dedup and fold passes per id
//! bucket, the hour's rejects noted ([`crate::rejects`]), the per-event views written in
//! parallel, then the sessions pass and its view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_io::manifest::{HourView, InputFile};
use lambda_io::Lake;
use object_store::ObjectMeta;
use shared_logic::window::HourKey;
use shared_logic::{Aggregates, Metric, Sessions};

use crate::dedup::find_duplicates;
use crate::error::BatchError;
use crate::fold::fold;
use crate::options::{now_text, BatchOptions};
use crate::scan::{inspect_inputs, session, table};
use crate::view_files::{write_event_views, write_view, WrittenView};

/// Computes, writes and describes one hour (not yet published): what the run read, and
/// the view files written.
pub(crate) async fn compute_hour(
    lake: &Lake,
    views: &Lake,
    hour: HourKey,
    files: Vec<ObjectMeta>,
    run_id: &str,
    opts: &BatchOptions,
) -> Result<(HourView, Vec<WrittenView>), BatchError> {
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
    // The hour's rejects (by record time), in the metrics that count them.
    let dead_letter_files = crate::rejects::hour_files(lake, hour).await?;
    let dead_letters =
        crate::rejects::note_rejects(lake, &dead_letter_files, hour, &mut agg, &opts.ctx).await?;
    let write = Instant::now();
    let keys = agg.len();
    // The per-event views are written (in parallel) and freed before the sessions pass
    // holds its rows.
    let mut written = write_event_views(&mut agg, views, hour, run_id, &opts.ctx).await?;
    drop(agg);
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
        written.push(write_view::<Sessions>(views, hour, run_id, sessions.views, &opts.ctx).await?);
    }
    tracing::debug!(%hour, write_secs = write.elapsed().as_secs_f64(), keys, "views written");
    tracing::info!(%hour, files = inputs.len(), rows = rows_read, duplicates, buckets, secs = started.elapsed().as_secs_f64(), "hour computed");
    let view_paths: BTreeMap<String, String> = written
        .iter()
        .map(|w| (w.metric.to_string(), w.relative.clone()))
        .collect();
    let view = HourView {
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
        dead_letters,
    };
    Ok((view, written))
}
