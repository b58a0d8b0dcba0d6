//! The `orders` metric: order deltas of the change stream (see [`crate::cdc`]) added to
//! (and retracted from) the windows of their time.

use serde::{Deserialize, Serialize};

use crate::cdc::OrderDelta;
use crate::event::EventRef;
use crate::mergeable::{add_sum, Mergeable, Signed};
use crate::metric::{count, money, ratio, BuiltFrom, Metric, MetricContext, Value, ValueKind};
use crate::metric_views::MetricViews;

/// `orders`: from the `orders` table's change stream (see [`crate::cdc`]), by the product's
/// category as of the order's `created_at` and the order's country: orders placed, gross
/// revenue, cancellations (cancelled, refunded or deleted orders) and the revenue they
/// reversed (reporting currency, minor units); derived: net revenue and cancellation rate.
/// Built from [`crate::cdc::order_deltas`], never by the per-event fold.
pub struct Orders;

/// State of [`Orders`]: signed sums (a commutative group), so that a delta computed with
/// an older product version can be retracted when a newer one arrives. The sums are
/// `i128`, wide enough for any fold (see [`crate::mergeable`]); money columns are `i64`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrdersState {
    pub orders: i128,
    pub gross_minor: i128,
    pub cancellations: i128,
    pub reversed_minor: i128,
}

impl OrdersState {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one delta.
    pub fn add(&mut self, delta: &OrderDelta, sign: i64) {
        let sign = sign as i128;
        self.orders = add_sum(self.orders, sign * delta.orders as i128);
        self.gross_minor = add_sum(self.gross_minor, sign.wrapping_mul(delta.gross_minor));
        self.cancellations = add_sum(self.cancellations, sign * delta.cancellations as i128);
        self.reversed_minor = add_sum(self.reversed_minor, sign.wrapping_mul(delta.reversed_minor));
    }
}

impl Mergeable for OrdersState {
    fn merge(&mut self, other: &Self) {
        self.orders = add_sum(self.orders, other.orders);
        self.gross_minor = add_sum(self.gross_minor, other.gross_minor);
        self.cancellations = add_sum(self.cancellations, other.cancellations);
        self.reversed_minor = add_sum(self.reversed_minor, other.reversed_minor);
    }
}

impl Metric for Orders {
    const NAME: &'static str = "orders";
    const DIMENSIONS: &'static [&'static str] = &["category", "country"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("orders", ValueKind::Count),
        ("gross_revenue_minor", ValueKind::Money),
        ("cancellations", ValueKind::Count),
        ("reversed_revenue_minor", ValueKind::Money),
        ("net_revenue_minor", ValueKind::Money),
        ("cancellation_rate", ValueKind::Ratio),
    ];
    type State = OrdersState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        false
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.category();
        out[1] = event.country();
    }

    fn update(_state: &mut Self::State, _event: &EventRef<'_>, _ctx: &MetricContext) {}

    /// A cancellation can arrive long after the order's window closed.
    const SETTLES_WITH_WATERMARK: bool = false;

    const BUILT_FROM: BuiltFrom = BuiltFrom::OrderChanges;

    fn values(state: &Self::State) -> Vec<Value> {
        let (orders, cancellations) = (count(state.orders), count(state.cancellations));
        vec![
            Value::Count(orders),
            money(state.gross_minor),
            Value::Count(cancellations),
            money(state.reversed_minor),
            money(state.gross_minor.wrapping_sub(state.reversed_minor)),
            ratio(cancellations, orders),
        ]
    }
}

impl Signed for OrdersState {
    fn is_zero(&self) -> bool {
        *self == OrdersState::default()
    }
}

impl MetricViews<Orders> {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one order delta in the windows of its
    /// time; a key whose sums return to zero is removed, so that views built in different
    /// orders hold the same keys.
    pub fn apply_delta(&mut self, delta: &OrderDelta, sign: i64, ctx: &MetricContext) {
        let dims = [delta.category.as_str(), delta.country.as_str()];
        let mut change = OrdersState::default();
        change.add(delta, sign);
        self.add_signed(delta.time, &dims, &change, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::CdcTable;
    use crate::metrics::tests::{n, r, T0};
    use crate::window::DAY_MS;

    fn order(id: &str, quantity: i64, price: &str, currency: &str, status: &str) -> String {
        format!(
            r#"{{"id":"{id}","user_id":"u1","product_id":"p1","quantity":{quantity},"price":"{price}","currency":"{currency}","country":"DE","status":"{status}","created_at":{T0}}}"#
        )
    }

    fn change(op: &str, lsn: i64, before: &str, after: &str, ts: i64) -> Vec<u8> {
        format!(
            r#"{{"before":{before},"after":{after},"source":{{"ts_ms":{ts},"lsn":{lsn}}},"op":"{op}"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn orders_count_gross_cancellations_and_net_in_the_reporting_currency() {
        let product = r#"{"id":"p1","category":"Books"}"#;
        let records = [
            (
                CdcTable::Products,
                change("c", 1, "null", product, T0 - 3_600_000),
            ),
            // 2 × 10.50 EUR at 1.085 = 22.785 USD: 2278.5 cents, half to even: 2278.
            (
                CdcTable::Orders,
                change(
                    "c",
                    2,
                    "null",
                    &order("o1", 2, "10.50", "EUR", "placed"),
                    T0,
                ),
            ),
            // 1 × 5.00 USD, cancelled two hours later.
            (
                CdcTable::Orders,
                change("c", 3, "null", &order("o2", 1, "5.00", "USD", "paid"), T0),
            ),
            (
                CdcTable::Orders,
                change(
                    "u",
                    4,
                    &order("o2", 1, "5.00", "USD", "paid"),
                    &order("o2", 1, "5.00", "USD", "cancelled"),
                    T0 + 7_200_000,
                ),
            ),
        ];
        let views = crate::orders::replay_in_order(
            records.iter().map(|(t, b)| (*t, b.as_slice())),
            &MetricContext::default(),
        )
        .orders
        .roll_up(DAY_MS);
        let rows: Vec<_> = views.iter().collect();
        assert_eq!(rows.len(), 1);
        let (key, state) = rows[0];
        assert_eq!(key.dims().collect::<Vec<_>>(), ["books", "DE"]);
        // orders 2, gross 2278 + 500, one cancellation reversing 500: net 2278, rate 1/2.
        assert_eq!(
            Orders::values(state),
            vec![
                n(2),
                Value::Money(2778),
                n(1),
                Value::Money(500),
                Value::Money(2278),
                r(0.5)
            ]
        );
    }
}
