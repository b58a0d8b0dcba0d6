//! How a batch run is configured ([`BatchOptions`]) and how it stamps what it writes (run
//! ids, times).

use std::sync::Arc;

use shared_logic::window::HourKey;
use shared_logic::MetricContext;

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
            progress: None,
            complete_before_ms: None,
        }
    }
}

/// A new run's id: its start time and a random suffix.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let entropy = xxhash_rust::xxh3::xxh3_64(
        format!("{}{:?}", std::process::id(), now.timestamp_nanos_opt()).as_bytes(),
    );
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), entropy as u32)
}

/// Now, as the manifest records times (RFC 3339, milliseconds).
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
