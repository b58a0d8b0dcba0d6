//! The views built from the change logs (`orders` and `daily_sales`) as one function of
//! the three logs: the products and users logs build the [`Dimensions`], every distinct
//! order change adds its [`order_deltas`] and [`sale_deltas`]. The batch layer computes
//! exactly this over the lake; the speed layer reaches the same views incrementally, in
//! whatever order the topics deliver (see `speed::orders`); tests use it as the direct
//! computation.
//!
//! Log order is (partition, offset) of each table's topic. Every topic is keyed by the
//! row's primary key, so one row's changes are in one partition, in source order: a
//! dimension table, which depends on the order of one row's changes, is the same for any
//! interleaving of partitions.

use std::collections::HashSet;

use crate::cdc::{
    order_deltas, sale_deltas, CdcRejection, CdcTable, Change, ProductTable, UserTable,
};
use crate::metric::MetricContext;
use crate::metric_views::MetricViews;
use crate::metrics::{DailySales, Orders};
use crate::registry::Aggregates;

/// The dimension tables an order is joined with, as of its time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dimensions {
    pub products: ProductTable,
    pub users: UserTable,
}

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

/// A dimension table built from a deduplicated log (in log order) with `apply`, and the
/// changes it rejected (updates or deletes of rows never created).
fn dimension_table<T: Default>(
    log: &[LoggedChange],
    apply: impl Fn(&mut T, &Change) -> Result<(), CdcRejection>,
) -> (T, Vec<Unapplied>) {
    let mut table = T::default();
    let mut rejected = Vec::new();
    for c in log {
        if let Err(rejection) = apply(&mut table, &c.change) {
            rejected.push(Unapplied {
                partition: c.partition,
                offset: c.offset,
                rejection,
            });
        }
    }
    (table, rejected)
}

/// The product table of a deduplicated products log, and the changes it rejected.
pub fn product_table(log: &[LoggedChange]) -> (ProductTable, Vec<Unapplied>) {
    dimension_table(log, ProductTable::apply)
}

/// The user table of a deduplicated users log, and the changes it rejected.
pub fn user_table(log: &[LoggedChange]) -> (UserTable, Vec<Unapplied>) {
    dimension_table(log, UserTable::apply)
}

/// Both dimensions of deduplicated products and users logs, and the changes they rejected.
pub fn dimensions(
    products: &[LoggedChange],
    users: &[LoggedChange],
) -> (Dimensions, Vec<Unapplied>) {
    let (products, mut rejected) = product_table(products);
    let (users, rejected_users) = user_table(users);
    rejected.extend(rejected_users);
    (Dimensions { products, users }, rejected)
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

/// The `daily_sales` views of a deduplicated orders log with both dimensions.
pub fn sales_views(
    log: &[LoggedChange],
    dims: &Dimensions,
    ctx: &MetricContext,
) -> MetricViews<DailySales> {
    let mut views = MetricViews::default();
    for c in log {
        for delta in sale_deltas(&c.change, &dims.products, &dims.users, &ctx.rates) {
            views.apply_sale(&delta, 1, ctx);
        }
    }
    views
}

/// Every view built from the change logs (`orders` and `daily_sales`; the other metrics
/// empty) of a deduplicated orders log with both dimensions.
pub fn change_log_views(
    log: &[LoggedChange],
    dims: &Dimensions,
    ctx: &MetricContext,
) -> Aggregates {
    Aggregates {
        orders: orders_views(log, &dims.products, ctx),
        daily_sales: sales_views(log, dims, ctx),
        ..Aggregates::default()
    }
}

/// The views built from change records ([`change_log_views`]) in the order they were
/// produced (each table's records as one log): records that do not parse are left out, as
/// the layers dead-letter them. The direct computation of tests and benchmarks.
pub fn replay_in_order<'a>(
    records: impl IntoIterator<Item = (CdcTable, &'a [u8])>,
    ctx: &MetricContext,
) -> Aggregates {
    let (mut products, mut orders, mut users) = (Vec::new(), Vec::new(), Vec::new());
    for (offset, (table, bytes)) in records.into_iter().enumerate() {
        let Ok(Some(change)) = Change::parse(table, bytes) else {
            continue;
        };
        let log = match table {
            CdcTable::Products => &mut products,
            CdcTable::Orders => &mut orders,
            CdcTable::Users => &mut users,
        };
        log.push(LoggedChange {
            partition: 0,
            offset: offset as i64,
            change,
        });
    }
    dedup_log(&mut products);
    dedup_log(&mut orders);
    dedup_log(&mut users);
    change_log_views(&orders, &dimensions(&products, &users).0, ctx)
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

    fn user(op: &str, lsn: i64, country: &str, ts: i64) -> String {
        let row = |c: &str| format!(r#"{{"id":"u1","country":"{c}","birth_year":1990}}"#);
        let before = if op == "u" { row("DE") } else { "null".into() };
        format!(
            r#"{{"before":{before},"after":{},"source":{{"ts_ms":{ts},"lsn":{lsn}}},"op":"{op}"}}"#,
            row(country)
        )
    }

    fn placed(
        id: &str,
        lsn: i64,
        created: i64,
        status_before: Option<&str>,
        status: &str,
    ) -> String {
        let row = |s: &str| {
            format!(
                r#"{{"id":"{id}","user_id":"u1","product_id":"p1","quantity":2,"price":"10.00","currency":"USD","country":"DE","status":"{s}","created_at":{created}}}"#
            )
        };
        let (op, before) = match status_before {
            Some(b) => ("u", row(b)),
            None => ("c", "null".to_string()),
        };
        format!(
            r#"{{"before":{before},"after":{},"source":{{"ts_ms":{created},"lsn":{lsn}}},"op":"{op}"}}"#,
            row(status)
        )
    }

    #[test]
    fn a_user_moving_country_mid_day_splits_the_day_between_the_countries() {
        let ctx = MetricContext::default();
        let product = r#"{"before":null,"after":{"id":"p1","category":"books"},"source":{"ts_ms":1767225000000,"lsn":1},"op":"r"}"#;
        let hour = 3_600_000;
        // u1 (born 1990: 35-44 in 2026) lives in DE, orders at 08:00, moves to FR at
        // 12:00, orders at 15:00 and at 16:00; the 16:00 order is cancelled.
        let records = [
            (CdcTable::Products, product.to_string()),
            (CdcTable::Users, user("c", 2, "DE", T)),
            (
                CdcTable::Orders,
                placed("o1", 3, T + 8 * hour, None, "paid"),
            ),
            (CdcTable::Users, user("u", 4, "FR", T + 12 * hour)),
            (
                CdcTable::Orders,
                placed("o2", 5, T + 15 * hour, None, "paid"),
            ),
            (
                CdcTable::Orders,
                placed("o3", 6, T + 16 * hour, None, "paid"),
            ),
            (
                CdcTable::Orders,
                placed("o3", 7, T + 16 * hour, Some("paid"), "cancelled"),
            ),
        ];
        let views = replay_in_order(records.iter().map(|(t, j)| (*t, j.as_bytes())), &ctx);
        let day = views.daily_sales.roll_up(crate::window::DAY_MS);
        let mut rows: Vec<(Vec<String>, Vec<crate::metric::Value>)> = day
            .iter()
            .map(|(k, s)| {
                (
                    k.dims().map(str::to_string).collect(),
                    DailySales::values(s),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        use crate::metric::{Metric, Value};
        let row = |country: &str| {
            (
                vec![
                    country.to_string(),
                    "books".to_string(),
                    "35-44".to_string(),
                ],
                vec![
                    Value::Count(1),
                    Value::Money(2000),
                    Value::Money(2000),
                    Value::Count(1),
                ],
            )
        };
        assert_eq!(rows, vec![row("DE"), row("FR")]);
        // Over the day the buyer counts once; the cancelled order is not a sale.
        let mut total = crate::metrics::DailySalesState::default();
        for (_, s) in day.iter() {
            total.merge(s);
        }
        assert_eq!(
            DailySales::values(&total),
            vec![
                Value::Count(2),
                Value::Money(4000),
                Value::Money(2000),
                Value::Count(1)
            ]
        );
        // The `orders` metric keeps the order's own country (where it ships).
        assert!(views.orders.iter().all(|(k, _)| k.dim(1) == Some("DE")));
    }
}
