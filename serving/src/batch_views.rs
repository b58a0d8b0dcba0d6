//! The batch layer's published views, as the serving layer reads them.
//!
//! [`BatchViews`] holds the latest `_current.json` (reloaded by [`BatchViews::refresh`],
//! which the server calls periodically) and reads the per-hour view files it names through
//! DataFusion. View files are immutable (named by the run that wrote them), so decoded
//! hours are cached by path: a new manifest reuses every hour it did not recompute, and a
//! recomputed hour is read afresh. Each query works on one manifest snapshot
//! ([`Arc<Published>`]) from start to end, so an answer never mixes two publications.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use lambda_io::manifest::Published;
use lambda_io::Lake;
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Metric, MetricViews};

use crate::error::ServingError;

type Decoded = Arc<dyn Any + Send + Sync>;

/// Decoded hour views by file path, least recently used first out.
struct HourCache {
    capacity: usize,
    entries: HashMap<String, Decoded>,
    order: VecDeque<String>,
}

impl HourCache {
    fn get(&mut self, path: &str) -> Option<Decoded> {
        let hit = self.entries.get(path).cloned()?;
        if let Some(i) = self.order.iter().position(|p| p == path) {
            self.order.remove(i);
        }
        self.order.push_back(path.to_string());
        Some(hit)
    }

    fn put(&mut self, path: String, decoded: Decoded) {
        if self.entries.insert(path.clone(), decoded).is_none() {
            self.order.push_back(path);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

/// The batch views and the manifest that names them.
pub struct BatchViews {
    lake: Lake,
    session: SessionContext,
    current: RwLock<Option<Arc<Published>>>,
    cache: Mutex<HourCache>,
}

/// One metric's batch views over a range, with the hours they cover.
pub struct BatchRead<M: Metric> {
    pub views: Vec<Arc<MetricViews<M>>>,
    pub covered: BTreeSet<HourKey>,
}

impl BatchViews {
    /// Batch views under `lake` (the batch job's `--views` location), caching up to
    /// `cache_hours` decoded hour files.
    pub fn new(lake: Lake, cache_hours: usize) -> Self {
        let session =
            SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        session.register_object_store(lake.store_url(), lake.store().clone());
        BatchViews {
            lake,
            session,
            current: RwLock::new(None),
            cache: Mutex::new(HourCache {
                capacity: cache_hours.max(1),
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Where the views live.
    pub fn location(&self) -> String {
        self.lake.display()
    }

    /// Reloads `_current.json`; returns the version now served when it changed.
    pub async fn refresh(&self) -> Result<Option<u64>, ServingError> {
        let published = Published::load(&self.lake).await?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let changed = current
            .as_ref()
            .is_none_or(|c| c.version != published.version || c.updated_at != published.updated_at);
        if changed {
            let version = published.version;
            *current = Some(Arc::new(published));
            return Ok(Some(version));
        }
        Ok(None)
    }

    /// The manifest served now; `None` before the first successful [`BatchViews::refresh`].
    pub fn published(&self) -> Option<Arc<Published>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Covered hours of metric `M` that overlap windows starting in `[from_ms, to_ms)`.
    pub fn covered<M: Metric>(
        published: &Published,
        from_ms: i64,
        to_ms: i64,
    ) -> BTreeSet<HourKey> {
        let first = HourKey(from_ms.div_euclid(HOUR_MS));
        let last = HourKey((to_ms - 1).div_euclid(HOUR_MS));
        published
            .coverage
            .get(M::NAME)
            .into_iter()
            .flat_map(|hours| hours.keys())
            .filter_map(|h| HourKey::parse(h))
            .filter(|h| *h >= first && *h <= last)
            .collect()
    }

    /// Reads metric `M`'s views of the covered hours overlapping `[from_ms, to_ms)` under
    /// `published`.
    pub async fn read<M: Metric>(
        &self,
        published: &Published,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<BatchRead<M>, ServingError> {
        let covered = Self::covered::<M>(published, from_ms, to_ms);
        let mut views = Vec::with_capacity(covered.len());
        for hour in &covered {
            let Some(relative) = published.view_of(M::NAME, *hour) else {
                continue;
            };
            views.push(self.hour::<M>(relative).await?);
        }
        Ok(BatchRead { views, covered })
    }

    /// One hour's view file, from the cache or decoded through DataFusion.
    async fn hour<M: Metric>(&self, relative: &str) -> Result<Arc<MetricViews<M>>, ServingError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(relative);
        if let Some(hit) = cached.and_then(|d| d.downcast::<MetricViews<M>>().ok()) {
            return Ok(hit);
        }
        let url = self.lake.object_url(&self.lake.path(relative));
        let unreadable = |reason: String| {
            ServingError::unavailable(
                "batch_views_unavailable",
                format!("batch view file {url}: {reason}"),
            )
        };
        let batches = self
            .session
            .read_parquet(url.as_str(), ParquetReadOptions::default())
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .collect()
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let decoded = tokio::task::spawn_blocking(move || {
            let mut views = MetricViews::<M>::default();
            for batch in &batches {
                shared_logic::views::merge_record_batch(&mut views, batch)
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(views)
        })
        .await
        .map_err(|e| ServingError::Internal(format!("view decoder task: {e}")))?
        .map_err(unreadable)?;
        let decoded = Arc::new(decoded);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(relative.to_string(), decoded.clone());
        Ok(decoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_the_most_recently_used_files() {
        let mut cache = HourCache {
            capacity: 2,
            entries: HashMap::new(),
            order: VecDeque::new(),
        };
        cache.put("a".into(), Arc::new(1u8));
        cache.put("b".into(), Arc::new(2u8));
        assert!(cache.get("a").is_some());
        cache.put("c".into(), Arc::new(3u8));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
    }
}
