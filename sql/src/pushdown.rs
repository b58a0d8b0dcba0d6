//! What of a query's filters the merge can answer: bounds on `window_start` become the
//! merge's time range (DataFusion checks them again: inexact), and `dimension = 'text'`
//! becomes a filter of the merge (exact). Everything else DataFusion evaluates above the
//! scan.

use arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

/// Bounds on window starts and dimension equalities, read from pushed-down filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Window starts at or after (ms).
    pub from_ms: Option<i64>,
    /// Window starts before (ms).
    pub to_ms: Option<i64>,
    /// `(dimension index, value)` a row must match.
    pub filters: Vec<(usize, String)>,
}

/// What one filter is to the merge.
enum Kind {
    TimeBound,
    DimensionEquals,
    Other,
}

/// How far the scan answers each filter.
pub fn support(filters: &[&Expr], dimensions: &[&str]) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| {
            let kinds: Vec<Kind> = conjuncts(f).map(|e| kind(e, dimensions)).collect();
            if kinds.iter().all(|k| matches!(k, Kind::DimensionEquals)) {
                TableProviderFilterPushDown::Exact
            } else if kinds.iter().any(|k| !matches!(k, Kind::Other)) {
                TableProviderFilterPushDown::Inexact
            } else {
                TableProviderFilterPushDown::Unsupported
            }
        })
        .collect()
}

/// The bounds and equalities in `filters` (each a conjunction; other terms are ignored,
/// DataFusion applies them).
pub fn read(filters: &[Expr], dimensions: &[&str]) -> Pushed {
    let mut pushed = Pushed::default();
    for e in filters.iter().flat_map(conjuncts) {
        if let Some((d, value)) = dimension_equals(e, dimensions) {
            pushed.filters.push((d, value));
        } else if let Some((from, to)) = time_bounds(e) {
            if let Some(f) = from {
                pushed.from_ms = Some(pushed.from_ms.map_or(f, |p| p.max(f)));
            }
            if let Some(t) = to {
                pushed.to_ms = Some(pushed.to_ms.map_or(t, |p| p.min(t)));
            }
        }
    }
    pushed
}

fn conjuncts(e: &Expr) -> Box<dyn Iterator<Item = &Expr> + '_> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => Box::new(conjuncts(left).chain(conjuncts(right))),
        other => Box::new(std::iter::once(other)),
    }
}

fn kind(e: &Expr, dimensions: &[&str]) -> Kind {
    if dimension_equals(e, dimensions).is_some() {
        Kind::DimensionEquals
    } else if time_bounds(e).is_some() {
        Kind::TimeBound
    } else {
        Kind::Other
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

/// A literal, under any casts DataFusion or the client put around it.
fn literal(e: &Expr) -> Option<&ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => None,
    }
}

fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

/// `dimension = 'value'` (either side).
fn dimension_equals(e: &Expr, dimensions: &[&str]) -> Option<(usize, String)> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = e
    else {
        return None;
    };
    let (col, lit) = match (column_name(left), column_name(right)) {
        (Some(c), None) => (c, right),
        (None, Some(c)) => (c, left),
        _ => return None,
    };
    let d = dimensions.iter().position(|d| *d == col)?;
    // Only a plain text literal: a cast of the column or a number compares otherwise.
    match lit.as_ref() {
        Expr::Literal(v, _) => text(v).map(|s| (d, s.to_string())),
        _ => None,
    }
}

/// An instant in microseconds from a literal: a timestamp of any unit, or text.
fn instant_us(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(ms), _) => ms.checked_mul(1000),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(*us),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns.div_euclid(1000)),
        // Text as DataFusion casts it to a timestamp (RFC 3339, or `YYYY-MM-DD hh:mm:ss`
        // in UTC), so the range read here is the one the query's own filter keeps.
        other => text(other)
            .and_then(|t| string_to_timestamp_nanos(t).ok())
            .map(|ns| ns.div_euclid(1000)),
    }
}

/// Milliseconds: the first at or after `us`, and the first after it.
fn ms_ceil(us: i64) -> i64 {
    us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
}
fn ms_after(us: i64) -> i64 {
    us.div_euclid(1000) + 1
}

/// `[from, to)` bounds on window starts (ms) that a comparison of `window_start` implies.
fn time_bounds(e: &Expr) -> Option<(Option<i64>, Option<i64>)> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, lit) = match (column_name(left), column_name(right)) {
                (Some("window_start"), None) => (*op, literal(right)?),
                (None, Some("window_start")) => (op.swap()?, literal(left)?),
                _ => return None,
            };
            let us = instant_us(lit)?;
            match op {
                Operator::GtEq => Some((Some(ms_ceil(us)), None)),
                Operator::Gt => Some((Some(ms_after(us)), None)),
                Operator::Lt => Some((None, Some(ms_ceil(us)))),
                Operator::LtEq => Some((None, Some(ms_after(us)))),
                Operator::Eq => Some((Some(ms_ceil(us)), Some(ms_after(us)))),
                _ => None,
            }
        }
        Expr::Between(b) if !b.negated && column_name(&b.expr) == Some("window_start") => {
            let low = instant_us(literal(&b.low)?)?;
            let high = instant_us(literal(&b.high)?)?;
            Some((Some(ms_ceil(low)), Some(ms_after(high))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    const DIMS: &[&str] = &["url", "country", "device"];
    const T: i64 = 1_764_547_200_000; // 2025-12-01T00:00:00Z

    fn ts(ms: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(ms * 1000),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn bounds_on_window_start_give_the_range_in_any_form() {
        let filters = vec![
            col("window_start").gt_eq(ts(T)),
            col("window_start").lt(lit("2025-12-01T01:00:00Z")),
        ];
        let p = read(&filters, DIMS);
        assert_eq!((p.from_ms, p.to_ms), (Some(T), Some(T + 3_600_000)));
        // Grafana's $__timeFilter: BETWEEN, inclusive at both ends.
        let between = col("window_start").between(lit("2025-12-01T00:00:00Z"), ts(T + 60_000));
        let p = read(&[between], DIMS);
        assert_eq!((p.from_ms, p.to_ms), (Some(T), Some(T + 60_001)));
        // Reversed, strict, and sub-millisecond bounds round outwards.
        let p = read(
            &[
                ts(T).lt(col("window_start")),
                lit(ScalarValue::TimestampNanosecond(
                    Some(T * 1_000_000 + 1),
                    None,
                ))
                .gt_eq(col("window_start")),
            ],
            DIMS,
        );
        assert_eq!((p.from_ms, p.to_ms), (Some(T + 1), Some(T + 1)));
        // The tightest of several bounds.
        let p = read(
            &[col("window_start")
                .gt_eq(ts(T))
                .and(col("window_start").gt_eq(ts(T + 5)))],
            DIMS,
        );
        assert_eq!(p.from_ms, Some(T + 5));
    }

    #[test]
    fn dimension_equalities_are_exact_and_the_rest_is_left_to_datafusion() {
        let eq = col("country").eq(lit("US"));
        let time = col("window_start").gt_eq(ts(T));
        let both = eq.clone().and(time.clone());
        let other = col("views").gt(lit(3i64));
        let like = col("url").like(lit("/c/%"));
        let not_a_dim = col("source").eq(lit("batch"));
        let support = support(&[&eq, &time, &both, &other, &like, &not_a_dim], DIMS);
        use TableProviderFilterPushDown::*;
        assert_eq!(
            support,
            vec![
                Exact,
                Inexact,
                Inexact,
                Unsupported,
                Unsupported,
                Unsupported
            ]
        );
        let p = read(&[both, lit("/a").eq(col("url")), other], DIMS);
        assert_eq!(
            p.filters,
            vec![(1, "US".to_string()), (0, "/a".to_string())]
        );
        assert_eq!(p.from_ms, Some(T));
        assert_eq!(p.to_ms, None);
    }

    #[test]
    fn comparisons_that_bound_nothing_are_ignored() {
        let filters = vec![
            col("window_start").not_eq(ts(T)),
            col("window_end").gt_eq(ts(T)),
            col("window_start").gt_eq(lit("not a time")),
            col("country").eq(lit(3i64)),
        ];
        assert_eq!(read(&filters, DIMS), Pushed::default());
    }
}
