//! `GET /v1/lineage`: where the served number of one window comes from.
//!
//! For a window of a metric: the layer that answers its hour (by the coverage map), and
//! for batch the run id, the view file, the input files with the Kafka offset range each
//! holds (decoded from the lake's file names), and the logic fingerprint; for speed each
//! instance's consumed offsets, watermark and logic fingerprint.

use std::collections::BTreeMap;

use lambda_io::manifest::Published;
use lambda_io::speed_api::Status;
use serde::Serialize;
use shared_logic::window::HourKey;

/// A Kafka offset range held by one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetRange {
    pub source: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

/// One input file of a batch-answered hour.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// `None` for files not named by the lake writer or importer.
    pub offsets: Option<OffsetRange>,
}

/// The batch side of a lineage answer.
#[derive(Debug, Clone, Serialize)]
pub struct BatchLineage {
    pub run_id: String,
    pub computed_at: String,
    pub manifest_version: u64,
    /// The version of the metric's views table read (a Delta table version; time travel
    /// with `as_of_version`).
    pub table_version: Option<u64>,
    pub view_file: Option<String>,
    pub rows_read: u64,
    pub duplicates: u64,
    pub skipped_files: Vec<String>,
    pub inputs: Vec<Input>,
}

/// One speed instance's side of a lineage answer.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedLineage {
    pub logic: String,
    /// Partition → next offset: the views include every record before it.
    pub offsets: BTreeMap<i32, i64>,
    pub watermark: Option<i64>,
}

/// The answer to `GET /v1/lineage`.
#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub metric: &'static str,
    pub window_start: String,
    pub hour: String,
    /// `batch` or `speed`.
    pub layer: &'static str,
    pub logic: String,
    pub batch: Option<BatchLineage>,
    pub speed: Option<BTreeMap<String, SpeedLineage>>,
}

fn hour_of(window_ms: i64) -> String {
    HourKey(window_ms.div_euclid(shared_logic::window::HOUR_MS)).to_string()
}

/// Whether the batch layer answers the hour of `window_ms` for `metric`.
pub fn batch_covers(published: Option<&Published>, metric: &str, window_ms: i64) -> bool {
    published
        .and_then(|p| p.coverage.get(metric))
        .is_some_and(|c| c.contains_key(&hour_of(window_ms)))
}

/// Lineage of the window starting at `window_ms` of `metric`; `speed` is each speed
/// instance's status (only read when speed answers the hour).
pub fn lineage(
    metric: &'static str,
    window_ms: i64,
    published: Option<&Published>,
    speed: BTreeMap<String, Status>,
) -> Lineage {
    let hour = hour_of(window_ms);
    let covered = published.and_then(|p| {
        let run = p.coverage.get(metric).and_then(|c| c.get(&hour))?;
        p.hours.get(&hour).map(|h| (p, h, run))
    });
    let window_start = shared_logic::instant::format_instant(window_ms);
    match covered {
        Some((p, h, run)) => Lineage {
            metric,
            window_start,
            hour,
            layer: "batch",
            logic: p.logic.clone(),
            batch: Some(BatchLineage {
                run_id: run.clone(),
                computed_at: h.computed_at.clone(),
                manifest_version: p.version,
                table_version: p.versions.get(metric).copied(),
                view_file: h.views.get(metric).cloned(),
                rows_read: h.rows_read,
                duplicates: h.duplicates,
                skipped_files: h.skipped_files.clone(),
                inputs: h
                    .inputs
                    .iter()
                    .map(|f| Input {
                        path: f.path.clone(),
                        rows: f.rows,
                        bytes: f.bytes,
                        offsets: f
                            .path
                            .rsplit('/')
                            .next()
                            .and_then(lambda_io::lake_names::parse_flush_file_name)
                            .map(|(source, partition, first, last)| OffsetRange {
                                source,
                                partition,
                                first,
                                last,
                            }),
                    })
                    .collect(),
            }),
            speed: None,
        },
        None => {
            let instances: BTreeMap<String, SpeedLineage> = speed
                .into_iter()
                .map(|(name, s)| {
                    (
                        name,
                        SpeedLineage {
                            logic: s.logic,
                            offsets: s.progress.offsets,
                            watermark: s.progress.watermark,
                        },
                    )
                })
                .collect();
            Lineage {
                metric,
                window_start,
                hour,
                layer: "speed",
                logic: instances
                    .values()
                    .next()
                    .map(|s| s.logic.clone())
                    .unwrap_or_default(),
                batch: None,
                speed: Some(instances),
            }
        }
    }
}
