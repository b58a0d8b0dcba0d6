//! The `daily_sales` metric: live orders by the buyer's country, the product's category
//! and the buyer's age group, each as of the order's time (the users and products
//! dimensions joined in [`crate::cdc::sale_deltas`]): orders, revenue, average order value
//! and distinct buyers. Kept in the same windows as every metric and read per day.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cdc::SaleDelta;
use crate::event::EventRef;
use crate::mergeable::{add_sum, Mergeable, Signed};
use crate::metric::{count, money, BuiltFrom, Metric, MetricContext, Value, ValueKind};
use crate::metric_views::MetricViews;

/// `daily_sales`: see the module docs. Built from [`crate::cdc::sale_deltas`], never by
/// the per-event fold.
pub struct DailySales;

/// State of [`DailySales`]: signed sums and, for distinct buyers, each buyer's net number
/// of live orders (a buyer whose count returns to zero is removed), so a sale can be
/// retracted exactly — by a cancellation, or when a newer dimension version changes its
/// key — and merged states count a buyer of several windows once. A buyer is a 64-bit
/// hash of the user id (see [`crate::cdc::buyer_hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DailySalesState {
    pub orders: i128,
    pub revenue_minor: i128,
    pub buyers: BTreeMap<u64, i64>,
}

impl DailySalesState {
    /// The state of one delta.
    pub fn of(delta: &SaleDelta, sign: i64) -> Self {
        DailySalesState {
            orders: (sign * delta.orders) as i128,
            revenue_minor: (sign as i128).wrapping_mul(delta.revenue_minor),
            buyers: BTreeMap::from([(delta.buyer, sign * delta.orders)]),
        }
    }

    /// Buyers with at least one live order.
    pub fn distinct_buyers(&self) -> u64 {
        self.buyers.values().filter(|n| **n > 0).count() as u64
    }
}

impl Mergeable for DailySalesState {
    fn merge(&mut self, other: &Self) {
        self.orders = add_sum(self.orders, other.orders);
        self.revenue_minor = add_sum(self.revenue_minor, other.revenue_minor);
        for (buyer, n) in &other.buyers {
            let entry = self.buyers.entry(*buyer).or_insert(0);
            *entry = entry.saturating_add(*n);
            if *entry == 0 {
                self.buyers.remove(buyer);
            }
        }
    }
}

impl Signed for DailySalesState {
    fn is_zero(&self) -> bool {
        self.orders == 0 && self.revenue_minor == 0 && self.buyers.is_empty()
    }
}

/// `revenue / orders` rounded half away from zero; 0 without orders.
fn average(revenue_minor: i128, orders: i128) -> i128 {
    if orders <= 0 {
        return 0;
    }
    let (q, r) = (revenue_minor / orders, revenue_minor % orders);
    if 2 * r.abs() >= orders {
        q + revenue_minor.signum()
    } else {
        q
    }
}

impl Metric for DailySales {
    const NAME: &'static str = "daily_sales";
    const DIMENSIONS: &'static [&'static str] = &["country", "category", "age_group"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("orders", ValueKind::Count),
        ("revenue_minor", ValueKind::Money),
        ("average_order_value_minor", ValueKind::Money),
        ("distinct_buyers", ValueKind::Count),
    ];
    type State = DailySalesState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        false
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.country();
        out[1] = event.category();
        out[2] = crate::event::UNKNOWN;
    }

    fn update(_state: &mut Self::State, _event: &EventRef<'_>, _ctx: &MetricContext) {}

    /// A cancellation, or a dimension version, can arrive long after the window closed.
    const SETTLES_WITH_WATERMARK: bool = false;

    const BUILT_FROM: BuiltFrom = BuiltFrom::OrderChanges;

    fn values(state: &Self::State) -> Vec<Value> {
        vec![
            Value::Count(count(state.orders)),
            money(state.revenue_minor),
            money(average(state.revenue_minor, state.orders)),
            Value::Count(state.distinct_buyers()),
        ]
    }
}

impl MetricViews<DailySales> {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one sale delta in the windows of its
    /// time; a key whose state returns to zero is removed.
    pub fn apply_sale(&mut self, delta: &SaleDelta, sign: i64, ctx: &MetricContext) {
        let dims = [
            delta.country.as_str(),
            delta.category.as_str(),
            delta.age_group,
        ];
        self.add_signed(delta.time, &dims, &DailySalesState::of(delta, sign), ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_average_rounds_half_away_from_zero() {
        assert_eq!(average(10, 4), 3);
        assert_eq!(average(9, 4), 2);
        assert_eq!(average(-10, 4), -3);
        assert_eq!(average(7, 0), 0);
    }

    fn state() -> impl Strategy<Value = DailySalesState> {
        (
            -5i128..5,
            -500i128..500,
            proptest::collection::btree_map(0u64..6, -3i64..4, 0..4),
        )
            .prop_map(|(orders, revenue_minor, mut buyers)| {
                buyers.retain(|_, n| *n != 0);
                DailySalesState {
                    orders,
                    revenue_minor,
                    buyers,
                }
            })
    }

    proptest! {
        /// The state is a commutative group: merge is associative and commutative, the
        /// empty state is neutral, and a retraction undoes an addition.
        #[test]
        fn the_state_is_a_commutative_group(a in state(), b in state(), c in state()) {
            let merged = |x: &DailySalesState, y: &DailySalesState| {
                let mut m = x.clone();
                m.merge(y);
                m
            };
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&a, &DailySalesState::default()), a.clone());
            let inverse = DailySalesState {
                orders: -a.orders,
                revenue_minor: -a.revenue_minor,
                buyers: a.buyers.iter().map(|(k, n)| (*k, -n)).collect(),
            };
            prop_assert!(merged(&a, &inverse).is_zero());
        }
    }
}
