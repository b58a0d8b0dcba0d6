//! The batch layer's published views, as the serving layer reads them.
//!
//! [`BatchViews`] holds the views' Delta tables at their latest versions (moved forward by
//! [`BatchViews::refresh`], which the server calls periodically) and the published state
//! they hold, and reads the per-hour view files it names through DataFusion into a
//! [`Cube`] each (dictionary-encoded and rolled up, so a query reads the rows it answers).
//! A query whose output windows hold whole days reads each whole covered day inside its
//! range from one day cube, rolled up from the day's 24 hour cubes ([`Cube::roll_up`]).
//! View files are immutable (named by the run that wrote them), so decoded hours and days
//! are cached by their files' paths: a new version reuses every hour and day it did not
//! recompute, and a recomputed hour (and its day) is read afresh.
//! Each query works on one snapshot ([`Arc<Published>`]) from start to end, so an answer
//! never mixes two publications. Earlier versions are read on demand
//! ([`BatchViews::published_as_of`]: time travel), a few kept in memory.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use lambda_io::manifest::Published;
use lambda_io::view_tables::{AsOf, ViewTables};
use lambda_io::Lake;
use shared_logic::cube::Cube;
use shared_logic::window::{HourKey, WindowSpec, DAY_MS, HOUR_MS};
use shared_logic::{Metric, MetricId, MetricViews, MetricVisitor, Registered};

use crate::error::ServingError;

type Decoded = Arc<dyn Any + Send + Sync>;

/// Decoded hour views (and day roll-ups) by file path, the least recently used evicted
/// first. A lookup is one hash probe (a query over a month makes hundreds); eviction scans
/// for the oldest entry, only when a new one overflows.
struct HourCache {
    capacity: usize,
    entries: HashMap<String, (Decoded, u64)>,
    /// Ticks once per use: an entry's last use.
    clock: u64,
}

impl HourCache {
    fn new(capacity: usize) -> Self {
        HourCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            clock: 0,
        }
    }

    fn get(&mut self, path: &str) -> Option<Decoded> {
        self.clock += 1;
        let (decoded, used) = self.entries.get_mut(path)?;
        *used = self.clock;
        Some(decoded.clone())
    }

    fn put(&mut self, path: String, decoded: Decoded) {
        self.clock += 1;
        self.entries.insert(path, (decoded, self.clock));
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| p.clone());
            match oldest {
                Some(p) => self.entries.remove(&p),
                None => break,
            };
        }
    }
}

/// Earlier published states kept for time-travel queries.
const KEPT_AS_OF: usize = 16;

/// The batch views and the tables that publish them.
pub struct BatchViews {
    lake: Lake,
    session: SessionContext,
    tables: tokio::sync::Mutex<Option<ViewTables>>,
    current: RwLock<Option<Arc<Published>>>,
    as_of: Mutex<VecDeque<(AsOf, Arc<Published>)>>,
    cache: Mutex<HourCache>,
    windows: WindowSpec,
}

/// One metric's batch views over a range, with the hours they cover.
pub struct BatchRead<M: Metric> {
    pub views: Vec<Arc<Cube<M>>>,
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
            tables: tokio::sync::Mutex::new(None),
            current: RwLock::new(None),
            as_of: Mutex::new(VecDeque::new()),
            cache: Mutex::new(HourCache::new(cache_hours)),
            windows: WindowSpec::default(),
        }
    }

    /// The window spec the batch job wrote the views under (the metric context's; one-minute
    /// tumbling windows unless configured), which decides the rollups built.
    pub fn with_windows(mut self, windows: WindowSpec) -> Self {
        self.windows = windows;
        self
    }

    /// Where the views live.
    pub fn location(&self) -> String {
        self.lake.display()
    }

    /// Moves the views' tables to their latest versions; returns the version now served
    /// when it changed.
    pub async fn refresh(&self) -> Result<Option<u64>, ServingError> {
        let mut tables = self.tables.lock().await;
        let changed = match tables.as_mut() {
            Some(t) => t.refresh().await?,
            None => {
                *tables = Some(ViewTables::open(&self.lake, AsOf::Latest).await?);
                true
            }
        };
        let first = self.published().is_none();
        if !changed && !first {
            return Ok(None);
        }
        let Some(t) = tables.as_ref() else {
            return Ok(None);
        };
        let published = t.published().await?;
        let version = published.version;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(published));
        Ok(Some(version))
    }

    /// The published state as of an earlier point (time travel): every table at a time,
    /// or one metric's table at a version.
    pub async fn published_as_of(&self, as_of: AsOf) -> Result<Arc<Published>, ServingError> {
        if as_of == AsOf::Latest {
            return self.published().ok_or_else(|| {
                ServingError::unavailable(
                    "batch_views_unavailable",
                    "the batch views are not loaded yet",
                )
            });
        }
        let kept = self
            .as_of
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(a, _)| *a == as_of)
            .map(|(_, p)| p.clone());
        if let Some(hit) = kept {
            return Ok(hit);
        }
        let tables = ViewTables::open(&self.lake, as_of)
            .await
            .map_err(|e| match as_of {
                AsOf::Version(metric, v) => ServingError::bad(
                    "unknown_version",
                    format!("the {metric} views have no version {v}: {e}"),
                ),
                _ => ServingError::from(e),
            })?;
        let published = Arc::new(tables.published().await?);
        let mut kept = self.as_of.lock().unwrap_or_else(|p| p.into_inner());
        kept.push_back((as_of, published.clone()));
        while kept.len() > KEPT_AS_OF {
            kept.pop_front();
        }
        Ok(published)
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

    /// Reads metric `M`'s views for a query of windows starting in `[from_ms, to_ms)` in
    /// output windows of `granularity_ms` (`None`: one window over the range): as
    /// [`BatchViews::read`], except that when the output windows hold whole days, each
    /// whole day inside the range whose 24 hours are covered is one day cube, which
    /// answers such a query exactly (its only windows are that day's).
    pub async fn read_rolled<M: Metric>(
        &self,
        published: &Published,
        from_ms: i64,
        to_ms: i64,
        granularity_ms: Option<i64>,
    ) -> Result<BatchRead<M>, ServingError> {
        let covered = Self::covered::<M>(published, from_ms, to_ms);
        let whole_days = granularity_ms.is_none_or(|g| g % DAY_MS == 0);
        let mut days: Vec<(i64, Vec<&str>)> = Vec::new();
        for hour in &covered {
            let Some(relative) = published.view_of(M::NAME, *hour) else {
                continue;
            };
            let day = hour.start_ms().div_euclid(DAY_MS);
            match days.last_mut() {
                Some((d, files)) if *d == day => files.push(relative),
                _ => days.push((day, vec![relative])),
            }
        }
        let mut views = Vec::with_capacity(covered.len());
        for (day, files) in days {
            let start = day * DAY_MS;
            let inside = start >= from_ms && start + DAY_MS <= to_ms;
            if whole_days && inside && files.len() == (DAY_MS / HOUR_MS) as usize {
                if let Some(cube) = self.day::<M>(&files).await? {
                    views.push(cube);
                    continue;
                }
            }
            for relative in files {
                views.push(self.hour::<M>(relative).await?);
            }
        }
        Ok(BatchRead { views, covered })
    }

    /// The day cube rolled up from the hour files `files` (a day's, in order), from the
    /// cache or built; `None` when the views' windows do not roll up into days.
    async fn day<M: Metric>(&self, files: &[&str]) -> Result<Option<Arc<Cube<M>>>, ServingError> {
        let key = format!("day\n{}", files.join("\n"));
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key);
        if let Some(hit) = cached.and_then(|d| d.downcast::<Cube<M>>().ok()) {
            return Ok(Some(hit));
        }
        let mut hours = Vec::with_capacity(files.len());
        for relative in files {
            hours.push(self.hour::<M>(relative).await?);
        }
        let rolled = tokio::task::spawn_blocking(move || {
            let parts: Vec<&Cube<M>> = hours.iter().map(|h| h.as_ref()).collect();
            Cube::roll_up(&parts, DAY_MS)
        })
        .await
        .map_err(|e| ServingError::Internal(format!("day roll-up task: {e}")))?;
        let Some(rolled) = rolled else {
            return Ok(None);
        };
        tracing::debug!(
            first = files.first().copied().unwrap_or_default(),
            rows = rolled.rows(),
            approx_bytes = rolled.approx_bytes(),
            "batch day rolled up into a cube"
        );
        let rolled = Arc::new(rolled);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, rolled.clone());
        Ok(Some(rolled))
    }

    /// Decodes the newest `hours` covered hours of every metric under the served version
    /// into the cache (at most the cache's capacity over all metrics), so that the first
    /// queries after a publication do not pay for them. Returns the hours warmed.
    pub async fn warm(&self, hours: usize) -> Result<usize, ServingError> {
        let Some(published) = self.published() else {
            return Ok(0);
        };
        let capacity = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity;
        let per_metric = hours.min(capacity / MetricId::ALL.len().max(1));
        let mut warmed = 0;
        for metric in MetricId::ALL {
            warmed += metric
                .visit(Warming {
                    views: self,
                    published: &published,
                    hours: per_metric,
                })
                .await?;
        }
        Ok(warmed)
    }

    /// One hour's view file, from the cache or decoded through DataFusion and built into a
    /// cube.
    async fn hour<M: Metric>(&self, relative: &str) -> Result<Arc<Cube<M>>, ServingError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(relative);
        if let Some(hit) = cached.and_then(|d| d.downcast::<Cube<M>>().ok()) {
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
        let windows = self.windows;
        let decoded = tokio::task::spawn_blocking(move || {
            let mut views = MetricViews::<M>::default();
            for batch in &batches {
                shared_logic::views::merge_record_batch(&mut views, batch)
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(Cube::build(views, &windows))
        })
        .await
        .map_err(|e| ServingError::Internal(format!("view decoder task: {e}")))?
        .map_err(unreadable)?;
        tracing::debug!(
            file = relative,
            keys = decoded.keys(),
            rows = decoded.rows(),
            approx_bytes = decoded.approx_bytes(),
            "batch hour decoded into a cube"
        );
        let decoded = Arc::new(decoded);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(relative.to_string(), decoded.clone());
        Ok(decoded)
    }
}

type WarmFuture<'a> = Pin<Box<dyn Future<Output = Result<usize, ServingError>> + Send + 'a>>;

/// [`BatchViews::warm`] for one metric: its newest covered hours.
struct Warming<'a> {
    views: &'a BatchViews,
    published: &'a Published,
    hours: usize,
}

impl<'a> MetricVisitor for Warming<'a> {
    type Output = WarmFuture<'a>;

    fn visit<M: Registered>(self) -> WarmFuture<'a> {
        Box::pin(async move {
            let mut hours: Vec<HourKey> = self
                .published
                .coverage
                .get(M::NAME)
                .into_iter()
                .flat_map(|hours| hours.keys())
                .filter_map(|h| HourKey::parse(h))
                .collect();
            hours.sort_unstable_by(|a, b| b.cmp(a));
            let mut warmed = 0;
            for hour in hours.into_iter().take(self.hours) {
                if let Some(relative) = self.published.view_of(M::NAME, hour) {
                    self.views.hour::<M>(relative).await?;
                    warmed += 1;
                }
            }
            Ok(warmed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_the_most_recently_used_files() {
        let mut cache = HourCache::new(2);
        cache.put("a".into(), Arc::new(1u8));
        cache.put("b".into(), Arc::new(2u8));
        assert!(cache.get("a").is_some());
        cache.put("c".into(), Arc::new(3u8));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
    }
}
