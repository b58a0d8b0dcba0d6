//! The parameters of `GET /v1/metrics/{metric}`, parsed and checked into a [`MetricQuery`]
//! before any view is read.
//!
//! User input only selects among the known metrics and dimensions and bounds numbers: it
//! never becomes SQL text, a path or a format string. Every rejection is a
//! [`ServingError::BadRequest`] with a stable code naming the parameter.

use shared_logic::sliding::{SlidingWindow, SlidingWindows};
use shared_logic::window::HOUR_MS;
use shared_logic::{registry, MetricId};

use crate::error::ServingError;
use crate::merge::Query;

/// Looks a metric up by its API name.
pub fn parse_metric(name: &str) -> Result<MetricId, ServingError> {
    MetricId::of(name).ok_or_else(|| {
        ServingError::bad(
            "unknown_metric",
            format!(
                "no metric `{}`; known: {}",
                truncate(name),
                registry::NAMES.join(", ")
            ),
        )
    })
}

/// Output window sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
    /// One window over the whole range (whole hours): totals, such as views per URL over
    /// the last 31 days.
    All,
    /// The metric's configured sliding window: a window of its size starting every slide
    /// (see [`shared_logic::sliding`]).
    Sliding(SlidingWindow),
}

impl Granularity {
    /// The size in milliseconds the range is aligned to (an hour for `all`, whose one
    /// window is the aligned range).
    pub fn ms(self) -> i64 {
        match self {
            Granularity::Minute => 60_000,
            Granularity::Hour | Granularity::All => HOUR_MS,
            Granularity::Day => 24 * HOUR_MS,
            Granularity::Sliding(w) => w.slide_ms,
        }
    }

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::All => "all",
            Granularity::Sliding(_) => "sliding",
        }
    }

    fn parse(
        text: &str,
        metric: MetricId,
        sliding: &SlidingWindows,
    ) -> Result<Granularity, ServingError> {
        match text {
            "minute" => Ok(Granularity::Minute),
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            "all" => Ok(Granularity::All),
            "sliding" => sliding
                .of(metric.name())
                .map(Granularity::Sliding)
                .ok_or_else(|| {
                    ServingError::bad(
                        "bad_granularity",
                        format!(
                            "metric `{}` has no sliding window (configure one with --sliding-window {}=10m/1m)",
                            metric.name(),
                            metric.name()
                        ),
                    )
                }),
            other => Err(ServingError::bad(
                "bad_granularity",
                format!(
                    "granularity `{}` is not one of minute, hour, day, all, sliding",
                    truncate(other)
                ),
            )),
        }
    }
}

/// Bounds on what one query may ask for.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Longest `to - from`.
    pub max_range_ms: i64,
    /// Range when `from` is not given (ending at `to`).
    pub default_range_ms: i64,
    /// Rows returned when `limit` is not given.
    pub default_rows: usize,
    /// Largest accepted `limit`.
    pub max_rows: usize,
}

impl Default for QueryLimits {
    /// 31 days at most, the last hour by default, 10,000 rows (100,000 at most).
    fn default() -> Self {
        QueryLimits {
            max_range_ms: 31 * 24 * HOUR_MS,
            default_range_ms: HOUR_MS,
            default_rows: 10_000,
            max_rows: 100_000,
        }
    }
}

/// A checked query for one metric.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub metric: MetricId,
    pub granularity: Granularity,
    /// Windows starting in `[from, to)`, aligned to the granularity (for sliding windows:
    /// the panes, up to the end of the last window).
    pub query: Query,
    /// The end of the range of window starts asked for: `query.to_ms` but for sliding
    /// windows.
    pub windows_to_ms: i64,
    pub limit: usize,
    /// Time travel: answer from the batch views as they were published at that point.
    pub as_of: Option<AsOfQuery>,
}

/// A point in the batch views' history (`as_of_version` or `as_of_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOfQuery {
    /// A version of the metric's views table.
    Version(u64),
    /// A time (ms since the epoch): every table as it was then.
    Time(i64),
}

impl AsOfQuery {
    /// Parses `as_of_version` / `as_of_time` (at most one of them).
    pub fn parse(
        version: Option<&str>,
        time: Option<&str>,
    ) -> Result<Option<AsOfQuery>, ServingError> {
        match (version, time) {
            (Some(_), Some(_)) => Err(ServingError::bad(
                "conflicting_parameters",
                "give as_of_version or as_of_time, not both",
            )),
            (Some(v), None) => v
                .trim()
                .parse::<u64>()
                .map(|v| Some(AsOfQuery::Version(v)))
                .map_err(|_| {
                    ServingError::bad(
                        "bad_version",
                        format!(
                            "as_of_version `{}` is not a table version (0, 1, 2, ...)",
                            truncate(v)
                        ),
                    )
                }),
            (None, Some(t)) => Ok(Some(AsOfQuery::Time(parse_time("as_of_time", t)?))),
            (None, None) => Ok(None),
        }
    }

    /// The views' tables to read for `metric`.
    pub fn tables(self, metric: MetricId) -> lambda_io::view_tables::AsOf {
        match self {
            AsOfQuery::Version(v) => lambda_io::view_tables::AsOf::Version(metric.name(), v),
            AsOfQuery::Time(ms) => lambda_io::view_tables::AsOf::Time(ms),
        }
    }
}

impl MetricQuery {
    /// Names of the grouped dimensions, in request order.
    pub fn group_by_names(&self) -> Vec<&'static str> {
        let dims = self.metric.dimensions();
        self.query.group_by.iter().map(|i| dims[*i]).collect()
    }

    /// `(dimension name, value)` of each filter.
    pub fn filter_pairs(&self) -> Vec<(&'static str, &str)> {
        let dims = self.metric.dimensions();
        self.query
            .filters
            .iter()
            .map(|(i, v)| (dims[*i], v.as_str()))
            .collect()
    }

    /// Parses the query string of a request for `metric` at wall-clock `now_ms`, for a
    /// deployment without sliding windows.
    pub fn parse(
        metric: &str,
        raw_query: Option<&str>,
        now_ms: i64,
        limits: &QueryLimits,
    ) -> Result<MetricQuery, ServingError> {
        Self::parse_with(
            metric,
            raw_query,
            now_ms,
            limits,
            &SlidingWindows::default(),
        )
    }

    /// [`MetricQuery::parse`] with the sliding windows configured (`granularity=sliding`).
    pub fn parse_with(
        metric: &str,
        raw_query: Option<&str>,
        now_ms: i64,
        limits: &QueryLimits,
        sliding: &SlidingWindows,
    ) -> Result<MetricQuery, ServingError> {
        let metric = parse_metric(metric)?;
        let mut from = None;
        let mut to = None;
        let mut granularity = Granularity::Minute;
        let mut group_by = Vec::new();
        let mut filters = Vec::new();
        let mut limit = limits.default_rows;
        let (mut as_of_version, mut as_of_time) = (None, None);
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
            if !seen.insert(key.to_string()) {
                return Err(ServingError::bad(
                    "repeated_parameter",
                    format!("parameter `{}` is given twice", truncate(&key)),
                ));
            }
            match key.as_ref() {
                "from" => from = Some(parse_time("from", &value)?),
                "to" => to = Some(parse_time("to", &value)?),
                "granularity" => granularity = Granularity::parse(&value, metric, sliding)?,
                "group_by" => group_by = parse_group_by(metric, &value)?,
                "filter" => filters = parse_filters(metric, &value)?,
                "limit" => limit = parse_limit(&value, limits)?,
                "as_of_version" => as_of_version = Some(value.to_string()),
                "as_of_time" => as_of_time = Some(value.to_string()),
                other => {
                    return Err(ServingError::bad(
                        "unknown_parameter",
                        format!(
                            "unknown parameter `{}`; known: from, to, granularity, group_by, filter, limit, as_of_version, as_of_time",
                            truncate(other)
                        ),
                    ))
                }
            }
        }
        let as_of = AsOfQuery::parse(as_of_version.as_deref(), as_of_time.as_deref())?;
        let size = granularity.ms();
        let to = to.unwrap_or(now_ms);
        let from = from.unwrap_or(to.saturating_sub(limits.default_range_ms));
        if from >= to {
            return Err(ServingError::bad(
                "bad_range",
                format!(
                    "from ({}) must be before to ({})",
                    shared_logic::instant::format_instant(from),
                    shared_logic::instant::format_instant(to)
                ),
            ));
        }
        // Whole output windows: from down, to up to the granularity.
        let from_aligned = from.div_euclid(size) * size;
        let to_aligned = to
            .checked_add(size - 1)
            .map(|t| t.div_euclid(size) * size)
            .unwrap_or(i64::MAX / size * size);
        if to_aligned - from_aligned > limits.max_range_ms {
            return Err(ServingError::bad(
                "range_too_large",
                format!(
                    "the range spans {} hours; at most {} hours per query",
                    (to_aligned - from_aligned) / HOUR_MS,
                    limits.max_range_ms / HOUR_MS
                ),
            ));
        }
        // Sliding windows starting in [from, to) reach `size - slide` past `to`: the panes
        // (windows of the slide) are merged up to there.
        let panes_to = match granularity {
            Granularity::Sliding(w) => to_aligned.saturating_add(w.size_ms - w.slide_ms),
            _ => to_aligned,
        };
        Ok(MetricQuery {
            metric,
            granularity,
            query: Query {
                from_ms: from_aligned,
                to_ms: panes_to,
                granularity_ms: match granularity {
                    Granularity::All => to_aligned - from_aligned,
                    _ => size,
                },
                group_by,
                filters,
                sketches: true,
            },
            windows_to_ms: to_aligned,
            limit,
            as_of,
        })
    }
}

/// Epoch milliseconds or RFC 3339, within years 1970..=9999.
pub fn parse_time(name: &str, text: &str) -> Result<i64, ServingError> {
    shared_logic::instant::parse_instant(text)
        .map_err(|e| ServingError::bad("bad_time", format!("`{name}` = `{}` {e}", truncate(text))))
}

fn dimension_index(metric: MetricId, name: &str) -> Result<usize, ServingError> {
    metric
        .dimensions()
        .iter()
        .position(|d| *d == name)
        .ok_or_else(|| {
            ServingError::bad(
                "unknown_dimension",
                format!(
                    "metric `{}` has no dimension `{}`; its dimensions: {}",
                    metric.name(),
                    truncate(name),
                    metric.dimensions().join(", ")
                ),
            )
        })
}

fn parse_group_by(metric: MetricId, text: &str) -> Result<Vec<usize>, ServingError> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let i = dimension_index(metric, name)?;
        if out.contains(&i) {
            return Err(ServingError::bad(
                "bad_group_by",
                format!("dimension `{name}` is grouped twice"),
            ));
        }
        out.push(i);
    }
    Ok(out)
}

fn parse_filters(metric: MetricId, text: &str) -> Result<Vec<(usize, String)>, ServingError> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for part in text.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((name, value)) = part.split_once(':') else {
            return Err(ServingError::bad(
                "bad_filter",
                format!("filter `{}` is not `dimension:value`", truncate(part)),
            ));
        };
        let i = dimension_index(metric, name.trim())?;
        if out.iter().any(|(j, _)| *j == i) {
            return Err(ServingError::bad(
                "bad_filter",
                format!("dimension `{}` is filtered twice", name.trim()),
            ));
        }
        out.push((i, value.trim().to_string()));
    }
    Ok(out)
}

fn parse_limit(text: &str, limits: &QueryLimits) -> Result<usize, ServingError> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 && n <= limits.max_rows => Ok(n),
        _ => Err(ServingError::bad(
            "bad_limit",
            format!(
                "limit `{}` is not a number from 1 to {}",
                truncate(text),
                limits.max_rows
            ),
        )),
    }
}

/// Echoes of user input in error messages stay short.
fn truncate(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_string();
    }
    format!("{}…", &text[..text.floor_char_boundary(MAX)])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000 + 30 * 60_000 + 15_000; // 2026-01-01T00:30:15Z

    fn parse(metric: &str, q: &str) -> Result<MetricQuery, ServingError> {
        MetricQuery::parse(metric, Some(q), NOW, &QueryLimits::default())
    }

    fn code(r: Result<MetricQuery, ServingError>) -> &'static str {
        match r {
            Err(ServingError::BadRequest { code, .. }) => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_last_hour_by_minute() {
        let q = parse("page_views", "").unwrap();
        assert_eq!(q.granularity, Granularity::Minute);
        assert_eq!(q.query.to_ms, NOW - 15_000 + 60_000);
        assert_eq!(q.query.to_ms - q.query.from_ms, HOUR_MS + 60_000);
        assert!(q.query.group_by.is_empty() && q.query.filters.is_empty());
    }

    #[test]
    fn every_parameter_is_parsed_and_aligned() {
        let q = parse(
            "funnel",
            "from=2026-01-01T00:10:00Z&to=1767232800000&granularity=hour&group_by=device,country&filter=category:shoes,country:US&limit=5",
        )
        .unwrap();
        assert_eq!(q.metric, MetricId::Funnel);
        assert_eq!(q.query.from_ms, 1_767_225_600_000);
        assert_eq!(q.query.to_ms, 1_767_232_800_000);
        assert_eq!(q.query.group_by, vec![1, 0]);
        assert_eq!(q.group_by_names(), vec!["device", "country"]);
        assert_eq!(
            q.query.filters,
            vec![(2, "shoes".to_string()), (0, "US".to_string())]
        );
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn all_is_one_window_over_the_range_in_whole_hours() {
        let q = parse(
            "page_views",
            "from=2026-01-01T00:10:00Z&to=2026-01-02T05:30:00Z&granularity=all&group_by=url",
        )
        .unwrap();
        assert_eq!(q.granularity, Granularity::All);
        assert_eq!(q.query.from_ms, 1_767_225_600_000);
        assert_eq!(q.query.to_ms, 1_767_225_600_000 + 30 * HOUR_MS);
        assert_eq!(q.query.granularity_ms, 30 * HOUR_MS);
    }

    #[test]
    fn bad_parameters_get_their_own_codes() {
        assert_eq!(code(parse("nope", "")), "unknown_metric");
        assert_eq!(
            code(parse("page_views", "group_by=category")),
            "unknown_dimension"
        );
        assert_eq!(
            code(parse("page_views", "filter=colour:red")),
            "unknown_dimension"
        );
        assert_eq!(code(parse("page_views", "filter=country")), "bad_filter");
        assert_eq!(code(parse("page_views", "from=yesterday")), "bad_time");
        assert_eq!(code(parse("page_views", "from=-5")), "bad_time");
        assert_eq!(
            code(parse("page_views", "from=99999999999999999999")),
            "bad_time"
        );
        assert_eq!(code(parse("page_views", "from=2000&to=1000")), "bad_range");
        assert_eq!(
            code(parse("page_views", "from=0&to=1767225600000")),
            "range_too_large"
        );
        assert_eq!(
            code(parse("page_views", "granularity=week")),
            "bad_granularity"
        );
        assert_eq!(code(parse("page_views", "limit=0")), "bad_limit");
        assert_eq!(code(parse("page_views", "limit=many")), "bad_limit");
        assert_eq!(code(parse("page_views", "colour=red")), "unknown_parameter");
        assert_eq!(
            code(parse("page_views", "from=1&from=2")),
            "repeated_parameter"
        );
        assert_eq!(
            code(parse("page_views", "group_by=url,url")),
            "bad_group_by"
        );
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        let long = "x".repeat(10_000);
        let err = parse(&long, "").unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
        let err = parse("page_views", &format!("from={}", "é".repeat(100)))
            .unwrap_err()
            .to_string();
        assert!(err.contains('…'), "{err}");
    }
}
