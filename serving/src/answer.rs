//! Answering `GET /v1/metrics/{metric}`: batch views for covered hours, speed views for
//! the others, merged ([`crate::merge`]), evaluated and shaped into the JSON answer.
//! The speed layer is asked only for the span of hours the batch layer does not cover
//! ([`speed_span`]), and not at all when batch covers the whole range: covered history
//! answers while speed instances are down. A time-travel query (`as_of_version`,
//! `as_of_time`) answers from the batch views as published then, and from nothing else:
//! the real-time views keep no history.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use lambda_io::manifest::Published;
use serde_json::{json, Map, Value};
use shared_logic::cube::Selection;
use shared_logic::instant::format_instant;
use shared_logic::sliding::SlidingWindow;
use shared_logic::{Grouping, Metric, MetricVisitor, Registered};

use crate::answer_cache::Answer;
use crate::answer_json::write_rows;
use crate::batch_views::BatchRead;
use crate::error::ServingError;
use crate::merge::{speed_span, Merger, Query, Row, SpeedClock};
use crate::query::{AsOfQuery, Granularity, MetricQuery};
use crate::speed_views::SpeedTime;
use crate::state::AppState;

type AnswerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(Vec<u8>, Option<i64>), ServingError>> + Send + 'a>>;

/// [`answer`] for the metric a query names.
#[derive(Clone)]
struct Answering<'a> {
    state: &'a AppState,
    query: &'a MetricQuery,
}

impl<'a> MetricVisitor for Answering<'a> {
    type Output = AnswerFuture<'a>;

    fn visit<M: Registered>(self) -> AnswerFuture<'a> {
        Box::pin(answer::<M>(self.state, self.query))
    }
}

/// [`compute`] on a blocking thread: merging hundreds of thousands of states takes the
/// CPU for a while, and the runtime's workers must stay free to serve cached answers (on
/// one core the OS then interleaves the two).
pub async fn compute_off_runtime(
    state: Arc<AppState>,
    query: MetricQuery,
) -> Result<Answer, ServingError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(compute(&state, &query)))
        .await
        .map_err(|e| ServingError::Internal(format!("answer task: {e}")))?
}

/// Computes one query's answer.
async fn compute(state: &AppState, query: &MetricQuery) -> Result<Answer, ServingError> {
    let computed_at = Instant::now();
    let (body, newest_event_ms) = query.metric.visit(Answering { state, query }).await?;
    Ok(Answer {
        body: body.into(),
        computed_at,
        newest_event_ms,
    })
}

/// The merged rows of one query, handed to `answer` while the batch cubes they borrow
/// from are alive: batch for covered hours, speed for the others (the speed layer asked
/// only for the span batch does not cover, and not at all for time travel), merged into
/// the query's windows and grouping. The one merge behind the REST API and the SQL tables.
pub struct Merged<'a, M: Metric> {
    pub rows: &'a [Row<'a, M::State>],
    /// What the speed layer said about time (nothing when it was not asked).
    pub time: SpeedTime,
    /// The batch publication read, if any.
    pub published: Option<&'a Published>,
    /// The hours the batch layer answered.
    pub covered: &'a std::collections::BTreeSet<shared_logic::window::HourKey>,
}

/// Runs the merge of `q` (as of `as_of`, if given) and hands the rows to `answer`.
pub async fn with_merged_rows<M: Registered, R>(
    state: &AppState,
    q: &Query,
    as_of: Option<AsOfQuery>,
    answer: impl FnOnce(Merged<'_, M>) -> R,
) -> Result<R, ServingError> {
    let published = match as_of {
        Some(as_of) => Some(state.batch.published_as_of(as_of.tables(M::ID)).await?),
        None => state.batch.published(),
    };
    let batch = match &published {
        Some(p) => {
            state
                .batch
                .read_rolled::<M>(p, q.from_ms, q.to_ms, q.output_granularity())
                .await?
        }
        None => BatchRead {
            views: Vec::new(),
            covered: Default::default(),
        },
    };
    // Without a span, no real-time view is read: the answer claims no speed watermark
    // and no freshness.
    let (speed_rows, time) = match speed_span(q.from_ms, q.to_ms, &batch.covered) {
        Some((from, to)) if as_of.is_none() => {
            let grouping = Grouping {
                group_by: q.group_by.clone(),
                filters: q.filters.clone(),
                sketches: q.sketches,
            };
            state
                .speed
                .current()
                .select::<M>(from, to, &grouping)
                .await?
        }
        _ => (Vec::new(), SpeedTime::default()),
    };
    let mut merger = Merger::<M>::new(q, &batch.covered, state.opts.ctx.windows);
    let selection = Selection {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        granularity_ms: q.output_granularity(),
        group_by: &q.group_by,
        filters: &q.filters,
    };
    for cube in &batch.views {
        cube.select(&selection, |window, grouped, s| {
            merger.add_batch_row(window, grouped, s)
        })
        .ok_or_else(|| {
            ServingError::Internal("a rolled-up batch cube read out of its range".into())
        })?;
    }
    for rows in &speed_rows {
        merger.add_speed_rows(rows);
    }
    let rows = merger.finish(SpeedClock {
        watermark: time.watermark,
        allowed_lateness_ms: time.allowed_lateness_ms,
    });
    Ok(answer(Merged {
        rows: &rows,
        time,
        published: published.as_deref(),
        covered: &batch.covered,
    }))
}

/// Answers one query: batch for covered hours, speed for the others, merged, derived.
/// Returns the answer object's JSON (without `freshness_ms`, which depends on when it is served)
/// and the newest event time of the real-time views it read.
pub async fn answer<M: Registered>(
    state: &AppState,
    query: &MetricQuery,
) -> Result<(Vec<u8>, Option<i64>), ServingError> {
    with_merged_rows::<M, _>(state, &query.query, query.as_of, |merged| {
        let Granularity::Sliding(window) = query.granularity else {
            return answer_json::<M>(state, query, merged);
        };
        let rows = sliding_rows(&merged, window, query.query.from_ms, query.windows_to_ms);
        answer_json::<M>(
            state,
            query,
            Merged {
                rows: &rows,
                ..merged
            },
        )
    })
    .await?
}

/// The sliding windows of `window` starting in `[from_ms, to_ms)` from the merged pane
/// rows (a merge at the slide's granularity up to `to_ms + size - slide`); the REST API's
/// and the SQL tables' one assembly. A pane without a row is settled when the batch layer
/// covers its hour, or the speed watermark has passed its end plus the allowed lateness.
pub fn sliding_rows<M: Registered>(
    merged: &Merged<'_, M>,
    window: SlidingWindow,
    from_ms: i64,
    to_ms: i64,
) -> Vec<Row<'static, M::State>> {
    let (covered, time) = (merged.covered, merged.time);
    let settled = |pane: i64| {
        covered.contains(&shared_logic::window::HourKey(
            pane.div_euclid(shared_logic::window::HOUR_MS),
        )) || (M::SETTLES_WITH_WATERMARK
            && time.watermark.is_some_and(|wm| {
                wm >= (pane + window.slide_ms).saturating_add(time.allowed_lateness_ms)
            }))
    };
    crate::sliding::assemble(merged.rows, window, from_ms, to_ms, settled)
}

/// The JSON answer of `query` from its merged rows.
fn answer_json<M: Registered>(
    state: &AppState,
    query: &MetricQuery,
    merged: Merged<'_, M>,
) -> Result<(Vec<u8>, Option<i64>), ServingError> {
    let Merged {
        rows,
        time,
        published,
        ..
    } = merged;
    let group_names = query.group_by_names();
    let truncated = rows.len() > query.limit;
    let filters: Map<String, Value> = query
        .filter_pairs()
        .into_iter()
        .map(|(n, v)| (n.to_string(), Value::from(v)))
        .collect();
    let head = json!({
        "metric": M::NAME,
        "from": format_instant(query.query.from_ms),
        "to": format_instant(query.windows_to_ms),
        "granularity": query.granularity.name(),
        "sliding_window": match query.granularity {
            Granularity::Sliding(w) => Some(w.text()),
            _ => None,
        },
        "group_by": group_names,
        "filters": filters,
        "currency": state.opts.ctx.rates.reporting().code(),
        "time_boundary": published.and_then(|p| p.time_boundary.get(M::NAME).cloned().flatten()),
        "manifest_version": published.map(|p| p.version),
        "table_version": published.and_then(|p| p.versions.get(M::NAME)),
        "as_of": query.as_of.map(|a| match a {
            crate::query::AsOfQuery::Version(v) => json!({"version": v}),
            crate::query::AsOfQuery::Time(t) => json!({"time": format_instant(t)}),
        }),
        "watermark": time.watermark.map(format_instant),
        "newest_event_time": time.newest_event_ms.map(format_instant),
        "truncated": truncated,
    });
    // The head's object, reopened for the rows, which are written straight from the merge.
    let encoding = |e: serde_json::Error| ServingError::Internal(format!("answer encoding: {e}"));
    let mut body = serde_json::to_vec(&head).map_err(encoding)?;
    body.pop();
    body.extend_from_slice(b",\"rows\":");
    let shown = &rows[..rows.len().min(query.limit)];
    write_rows::<M>(&mut body, shown, &group_names).map_err(encoding)?;
    body.push(b'}');
    Ok((body, time.newest_event_ms))
}
