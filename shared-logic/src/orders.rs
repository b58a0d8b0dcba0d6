//! The `orders` views as one function of the two change logs: the products log builds the
//! [`ProductTable`], every distinct order change adds its [`order_deltas`]. The batch layer
//! computes exactly this over the lake; the speed layer reaches the same views
//! incrementally, in whatever order the two topics deliver (see `speed::orders`); tests
//! use it as the direct computation.
//!
//! Log order is (partition, offset) of each table's topic. Both topics are keyed by the
//! row's primary key, so one row's changes are in one partition, in source order: the
//! product table, which depends on the order of one product's changes, is the same for
//! any interleaving of partitions.

use std::collections::HashSet;

use crate::cdc::{order_deltas, CdcRejection, CdcTable, Change, ProductTable};
use crate::metric::MetricContext;
use crate::metric_views::MetricViews;
use crate::metrics::Orders;

/// A checked change and where its topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    pub partition: i32,
    pub offset: i64,
    pub change: Change,
}

/// A change the layers could not apply: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unapplied {
    pub partition: i32,
    pub offset: i64,
    pub rejection: CdcRejection,
}

/// Sorts a log into (partition, offset) order and drops repeated deliveries (the same
/// [`Change::dedup_key`]; the first wins). Returns how many were dropped.
pub fn dedup_log(log: &mut Vec<LoggedChange>) -> usize {
    log.sort_by_key(|c| (c.partition, c.offset));
    log.dedup_by_key(|c| (c.partition, c.offset));
    let before = log.len();
    let mut seen = HashSet::new();
    log.retain(|c| seen.insert(c.change.dedup_key()));
    before - log.len()
}

/// The product table of a deduplicated products log (in log order), and the changes it
/// rejected (updates or deletes of products never created).
pub fn product_table(log: &[LoggedChange]) -> (ProductTable, Vec<Unapplied>) {
    let mut table = ProductTable::default();
    let mut rejected = Vec::new();
    for c in log {
        if let Err(rejection) = table.apply(&c.change) {
            rejected.push(Unapplied {
                partition: c.partition,
                offset: c.offset,
                rejection,
            });
        }
    }
    (table, rejected)
}

/// The `orders` views of a deduplicated orders log with the product table.
pub fn orders_views(
    log: &[LoggedChange],
    products: &ProductTable,
    ctx: &MetricContext,
) -> MetricViews<Orders> {
    let mut views = MetricViews::default();
    for c in log {
        for delta in order_deltas(&c.change, products, &ctx.rates, ctx.reversal) {
            views.apply_delta(&delta, 1, ctx);
        }
    }
    views
}

/// The `orders` views of change records in the order they were produced (each table's
/// records as one log): records that do not parse are left out, as the layers dead-letter
/// them. The direct computation of tests and benchmarks.
pub fn replay_in_order<'a>(
    records: impl IntoIterator<Item = (CdcTable, &'a [u8])>,
    ctx: &MetricContext,
) -> MetricViews<Orders> {
    let (mut products, mut orders) = (Vec::new(), Vec::new());
    for (offset, (table, bytes)) in records.into_iter().enumerate() {
        let Ok(Some(change)) = Change::parse(table, bytes) else {
            continue;
        };
        let log = match table {
            CdcTable::Products => &mut products,
            CdcTable::Orders => &mut orders,
        };
        log.push(LoggedChange {
            partition: 0,
            offset: offset as i64,
            change,
        });
    }
    dedup_log(&mut products);
    dedup_log(&mut orders);
    orders_views(&orders, &product_table(&products).0, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mergeable::Mergeable;
    use crate::metric::Metric;

    const T: i64 = 1_767_225_600_000;

    fn product(op: &str, lsn: i64, category: &str, ts: i64) -> LoggedChange {
        let row = format!(r#"{{"id":"p1","category":"{category}"}}"#);
        let (before, after) = if op == "u" {
            (row.as_str(), row.as_str())
        } else {
            ("null", row.as_str())
        };
        let json = format!(
            r#"{{"before":{before},"after":{after},"source":{{"ts_ms":{ts},"lsn":{lsn}}},"op":"{op}"}}"#
        );
        LoggedChange {
            partition: 0,
            offset: lsn,
            change: Change::parse(CdcTable::Products, json.as_bytes())
                .unwrap()
                .unwrap(),
        }
    }

    fn order(offset: i64, lsn: i64, before: Option<&str>, after: &str, ts: i64) -> LoggedChange {
        let row = |status: &str| {
            format!(
                r#"{{"id":"o1","user_id":"u1","product_id":"p1","quantity":1,"price":"10.00","currency":"USD","country":"DE","status":"{status}","created_at":{T}}}"#
            )
        };
        let (op, before) = match before {
            Some(b) => ("u", row(b)),
            None => ("c", "null".to_string()),
        };
        let json = format!(
            r#"{{"before":{before},"after":{},"source":{{"ts_ms":{ts},"lsn":{lsn}}},"op":"{op}"}}"#,
            row(after)
        );
        LoggedChange {
            partition: 1,
            offset,
            change: Change::parse(CdcTable::Orders, json.as_bytes())
                .unwrap()
                .unwrap(),
        }
    }

    #[test]
    fn a_cancelled_order_nets_to_zero_and_redeliveries_count_once() {
        let ctx = MetricContext::default();
        let mut products = vec![product("r", 1, "books", T - 1)];
        let mut log = vec![
            order(0, 10, None, "placed", T),
            order(1, 10, None, "placed", T), // redelivered
            order(2, 11, Some("placed"), "cancelled", T + 120_000),
        ];
        assert_eq!(dedup_log(&mut log), 1);
        assert_eq!(dedup_log(&mut products), 0);
        let (table, rejected) = product_table(&products);
        assert!(rejected.is_empty());
        let views = orders_views(&log, &table, &ctx);
        let mut total = crate::metrics::OrdersState::default();
        for (key, state) in views.iter() {
            assert_eq!(key.dim(0), Some("books"));
            total.merge(state);
        }
        assert_eq!((total.orders, total.cancellations), (1, 1));
        assert_eq!(total.gross_minor, total.reversed_minor);
        let values = Orders::values(&total);
        assert_eq!(values[4], crate::metric::Value::Money(0));
    }

    #[test]
    fn the_category_is_the_one_valid_at_the_order_time() {
        let ctx = MetricContext::default();
        let products = vec![
            product("r", 1, "books", T - 10),
            product("u", 2, "music", T + 1),
        ];
        let (table, _) = product_table(&products);
        let views = orders_views(&[order(0, 10, None, "placed", T)], &table, &ctx);
        let dims: Vec<_> = views
            .iter()
            .map(|(k, _)| k.dim(0).unwrap().to_string())
            .collect();
        assert_eq!(dims, vec!["books"]);
    }

    #[test]
    fn an_update_of_an_unknown_product_is_rejected_with_its_position() {
        let (_, rejected) = product_table(&[product("u", 5, "books", T)]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].offset, 5);
        assert_eq!(rejected[0].rejection.reason.code(), "unknown_key");
    }
}
