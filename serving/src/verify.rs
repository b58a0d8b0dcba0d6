//! `lambda verify`: batch views against speed views, window by window.
//!
//! For every hour in the range that the batch layer covers and the speed layer still holds,
//! each `(window, dimensions)` state of one layer must equal the other's exactly (both run
//! the same shared-logic code over the same events). Hours the speed layer holds nothing of
//! while the batch layer does (evicted behind the boundary, or never consumed) are listed as
//! skipped, not compared.
//! Differences are data: a list the CLI prints as a table, exiting non-zero when it is not
//! empty. A comparison that compared no `(window, dimensions)` key says why
//! ([`NotCompared`]): an empty check must never read as a passed one.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use shared_logic::metric::BuiltFrom;
use shared_logic::window::HourKey;
use shared_logic::GroupKey;
use shared_logic::{Metric, MetricId, MetricViews, MetricVisitor, Registered};

use crate::batch_views::BatchViews;
use crate::error::ServingError;
use crate::speed_views::SpeedViews;

/// One `(window, dimensions)` whose states differ; `None` where a layer has no state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub metric: &'static str,
    pub window_start: i64,
    pub dimensions: Vec<String>,
    /// `name=value` of each value the batch state evaluates to.
    pub batch: Option<Vec<String>>,
    pub speed: Option<Vec<String>>,
}

/// Why a comparison compared no `(window, dimensions)` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotCompared {
    /// No batch manifest is published under the views location.
    NoManifest,
    /// The manifest covers no hour of the range for the metric.
    NoCoveredHour,
    /// The speed layer holds none of the covered hours.
    SpeedHoldsNone,
    /// Neither layer holds a state of the covered hours.
    NoState,
}

impl std::fmt::Display for NotCompared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotCompared::NoManifest => {
                "no batch manifest is published under the views location (nothing to compare with)"
            }
            NotCompared::NoCoveredHour => "the batch layer covers no hour of the range",
            NotCompared::SpeedHoldsNone => {
                "the speed layer holds none of the covered hours (evicted behind the boundary, \
                 or never consumed)"
            }
            NotCompared::NoState => "neither layer holds a state of the covered hours",
        })
    }
}

/// What one metric's comparison covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub hours_compared: Vec<String>,
    /// Compared hour → the events the batch layer read for it (duplicates dropped), as its
    /// manifest says; absent for metrics built from change streams (`orders`), whose
    /// input is not the hour's events.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub events_by_hour: BTreeMap<String, u64>,
    /// Covered hours the speed layer holds no state for.
    pub hours_skipped: Vec<String>,
    pub keys_compared: usize,
    pub differences: Vec<Difference>,
    /// Set when no key was compared, with the reason.
    pub not_compared: Option<NotCompared>,
}

impl Comparison {
    /// Nothing compared, for `reason`.
    fn nothing(reason: NotCompared) -> Comparison {
        Comparison {
            not_compared: Some(reason),
            ..Comparison::default()
        }
    }
}

fn evaluated<M: Metric>(state: &M::State) -> Vec<String> {
    M::VALUES
        .iter()
        .zip(M::values(state))
        .map(|((n, _), v)| {
            format!(
                "{n}={}",
                serde_json::to_string(&v).unwrap_or_else(|_| "?".into())
            )
        })
        .collect()
}

/// Compares two views of the same hours key by key.
pub fn compare_views<M: Metric>(
    batch: &MetricViews<M>,
    speed: &MetricViews<M>,
) -> (usize, Vec<Difference>) {
    let keys: BTreeSet<&GroupKey> = batch
        .iter()
        .map(|(k, _)| k)
        .chain(speed.iter().map(|(k, _)| k))
        .collect();
    let mut differences = Vec::new();
    for key in &keys {
        let (b, s) = (batch.get(key), speed.get(key));
        if b != s {
            differences.push(Difference {
                metric: M::NAME,
                window_start: key.window.0,
                dimensions: key.dims().map(str::to_string).collect(),
                batch: b.map(evaluated::<M>),
                speed: s.map(evaluated::<M>),
            });
        }
    }
    (keys.len(), differences)
}

/// Compares metric `M` over the covered hours overlapping `[from_ms, to_ms)`.
pub async fn verify<M: Registered>(
    batch: &BatchViews,
    speed: &SpeedViews,
    from_ms: i64,
    to_ms: i64,
) -> Result<Comparison, ServingError> {
    // `Published::load` reads a missing manifest as version 0 with nothing covered.
    let Some(published) = batch.published().filter(|p| p.version > 0) else {
        return Ok(Comparison::nothing(NotCompared::NoManifest));
    };
    let read = batch.read::<M>(&published, from_ms, to_ms).await?;
    let Some((first, last)) = read.covered.first().zip(read.covered.last()) else {
        return Ok(Comparison::nothing(NotCompared::NoCoveredHour));
    };
    let (start, end) = (
        first.start_ms(),
        last.start_ms() + shared_logic::window::HOUR_MS,
    );
    let mut batch_views = MetricViews::<M>::default();
    for hour in &read.views {
        hour.for_each_key(|k, s| batch_views.merge_group(k, s));
    }
    let mut speed_views = MetricViews::<M>::default();
    speed
        .read::<M>(start, end, |k, s| {
            if read.covered.contains(&HourKey::of_window(k.window)) {
                speed_views.merge_group(k, s);
            }
        })
        .await?;
    let held: BTreeSet<HourKey> = speed_views
        .iter()
        .map(|(k, _)| HourKey::of_window(k.window))
        .collect();
    let mut out = Comparison::default();
    let from_events =
        MetricId::of(M::NAME).is_some_and(|m| m.built_from() != BuiltFrom::OrderChanges);
    let by_hour = |views: &MetricViews<M>, hour: HourKey| {
        let mut part = MetricViews::<M>::default();
        for (k, s) in views
            .iter()
            .filter(|(k, _)| HourKey::of_window(k.window) == hour)
        {
            part.merge_group(k, s);
        }
        part
    };
    let in_batch: BTreeSet<HourKey> = batch_views
        .iter()
        .map(|(k, _)| HourKey::of_window(k.window))
        .collect();
    for hour in &read.covered {
        // Batch states the speed layer has nothing of: evicted (or never consumed), not
        // comparable. An hour neither layer has a state of is compared (and equal).
        if !held.contains(hour) && in_batch.contains(hour) {
            out.hours_skipped.push(hour.to_string());
            continue;
        }
        let (keys, mut diffs) =
            compare_views(&by_hour(&batch_views, *hour), &by_hour(&speed_views, *hour));
        if from_events {
            let events = published
                .hours
                .get(&hour.to_string())
                .map_or(0, |h| h.rows_read.saturating_sub(h.duplicates));
            out.events_by_hour.insert(hour.to_string(), events);
        }
        out.hours_compared.push(hour.to_string());
        out.keys_compared += keys;
        out.differences.append(&mut diffs);
    }
    out.differences
        .sort_by(|a, b| (a.window_start, &a.dimensions).cmp(&(b.window_start, &b.dimensions)));
    if out.keys_compared == 0 {
        out.not_compared = Some(if out.hours_skipped.is_empty() {
            NotCompared::NoState
        } else {
            NotCompared::SpeedHoldsNone
        });
    }
    Ok(out)
}

/// The differences as an aligned text table (at most `max_rows` rows, then a count).
pub fn table(differences: &[Difference], max_rows: usize) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "metric".into(),
        "window".into(),
        "dimensions".into(),
        "batch".into(),
        "speed".into(),
    ]];
    for d in differences.iter().take(max_rows) {
        rows.push([
            d.metric.to_string(),
            shared_logic::instant::format_instant(d.window_start),
            d.dimensions.join(","),
            d.batch.as_ref().map_or("-".into(), |v| v.join(" ")),
            d.speed.as_ref().map_or("-".into(), |v| v.join(" ")),
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if differences.len() > max_rows {
        out.push_str(&format!("… and {} more\n", differences.len() - max_rows));
    }
    out
}

/// Per-metric comparisons keyed by metric name.
pub type Report = BTreeMap<&'static str, Comparison>;

/// The events the compared hours held, each hour counted once over every metric.
pub fn events_compared(report: &Report) -> u64 {
    let hours: BTreeMap<&String, u64> = report
        .values()
        .flat_map(|c| c.events_by_hour.iter().map(|(h, n)| (h, *n)))
        .collect();
    hours.values().sum()
}

type Verifying<'a> = Pin<Box<dyn Future<Output = Result<Comparison, ServingError>> + Send + 'a>>;

/// [`verify`] for a metric chosen at run time.
#[derive(Clone)]
struct VerifyMetric<'a> {
    batch: &'a BatchViews,
    speed: &'a SpeedViews,
    from_ms: i64,
    to_ms: i64,
}

impl<'a> MetricVisitor for VerifyMetric<'a> {
    type Output = Verifying<'a>;

    fn visit<M: Registered>(self) -> Verifying<'a> {
        Box::pin(verify::<M>(
            self.batch,
            self.speed,
            self.from_ms,
            self.to_ms,
        ))
    }
}

/// Compares the layers' views of `metric` over `[from_ms, to_ms)`.
pub async fn verify_metric(
    metric: MetricId,
    batch: &BatchViews,
    speed: &SpeedViews,
    from_ms: i64,
    to_ms: i64,
) -> Result<Comparison, ServingError> {
    metric
        .visit(VerifyMetric {
            batch,
            speed,
            from_ms,
            to_ms,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::generate::{Generator, GeneratorConfig};
    use shared_logic::metrics::PageViews;
    use shared_logic::{Aggregates, MetricContext, Origin, Validator};

    fn views(take: usize) -> MetricViews<PageViews> {
        let v = Validator::default();
        let events: Vec<_> = Generator::new(GeneratorConfig::default())
            .take(take)
            .enumerate()
            .filter_map(|(i, r)| {
                v.validate(&r.json, Origin::import_line(i as i64), i64::MAX / 2)
                    .ok()
            })
            .collect();
        Aggregates::fold(&events, &MetricContext::default()).page_views
    }

    #[test]
    fn equal_views_have_no_difference_and_a_changed_one_is_listed() {
        let a = views(3_000);
        let (keys, diffs) = compare_views(&a, &a.clone());
        assert!(keys > 100 && diffs.is_empty());
        let gone = a.sorted()[0].0.clone();
        let mut b = a.clone();
        b.retain(|k| *k != gone);
        let (_, diffs) = compare_views(&a, &b);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        let text = table(&diffs, 10);
        assert!(
            text.starts_with("metric") && text.contains("page_views") && text.contains("views="),
            "{text}"
        );
        assert_eq!(diffs[0].speed, None);
    }
}
