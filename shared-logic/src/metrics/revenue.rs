//! The `revenue` metric.

use serde::{Deserialize, Serialize};

use crate::event::{EventRef, EventType};
use crate::hll::Hll;
use crate::mergeable::{add_count, add_sum, Mergeable};
use crate::metric::{money, Metric, MetricContext, Value, ValueKind};

/// `revenue`: orders, items, revenue (reporting currency, minor units) and distinct buyers,
/// by category and country; derived: average order value.
pub struct Revenue;

/// State of [`Revenue`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevenueState {
    pub orders: u64,
    pub items: u64,
    /// Minor units of the reporting currency; each event converted and rounded once. An
    /// exact `i128` sum (see [`crate::mergeable`]); the view column is `i64`.
    pub revenue_minor: i128,
    pub buyers: Hll,
}

impl Mergeable for RevenueState {
    fn merge(&mut self, other: &Self) {
        self.orders = add_count(self.orders, other.orders);
        self.items = add_count(self.items, other.items);
        self.revenue_minor = add_sum(self.revenue_minor, other.revenue_minor);
        self.buyers.merge(&other.buyers);
    }
}

impl Metric for Revenue {
    const NAME: &'static str = "revenue";
    const DIMENSIONS: &'static [&'static str] = &["category", "country"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("orders", ValueKind::Count),
        ("items", ValueKind::Count),
        ("revenue_minor", ValueKind::Money),
        ("distinct_buyers", ValueKind::Count),
        ("average_order_value_minor", ValueKind::Ratio),
    ];
    type State = RevenueState;

    fn applies_to(event: &EventRef<'_>) -> bool {
        event.event_type() == EventType::Purchase
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.category();
        out[1] = event.country();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, ctx: &MetricContext) {
        // Validation guarantees quantity, price and currency on every purchase.
        let (Some(quantity), Some(price), Some(currency)) =
            (event.quantity(), event.price(), event.currency())
        else {
            return;
        };
        state.orders = add_count(state.orders, 1);
        state.items = add_count(state.items, quantity.max(0) as u64);
        let amount = price.0 as i128 * quantity as i128;
        let converted = ctx
            .rates
            .to_reporting(amount, currency, event.event_time().0);
        state.revenue_minor = add_sum(state.revenue_minor, converted);
        state.buyers.add(event.user_id());
    }

    const SKETCHES: &'static [(&'static str, &'static str)] = &[("buyers", "distinct_buyers")];
    fn sketches(state: &Self::State) -> Vec<&Hll> {
        vec![&state.buyers]
    }
    fn sketches_mut(state: &mut Self::State) -> Vec<&mut Hll> {
        vec![&mut state.buyers]
    }
    const SKETCHED_VALUES: &'static [&'static str] = &["distinct_buyers"];
    fn values(state: &Self::State) -> Vec<Value> {
        let aov = if state.orders == 0 {
            Value::Ratio(None)
        } else {
            Value::Ratio(Some(state.revenue_minor as f64 / state.orders as f64))
        };
        vec![
            Value::Count(state.orders),
            Value::Count(state.items),
            money(state.revenue_minor),
            Value::Count(state.buyers.estimate()),
            aov,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::registry::Aggregates;
    use crate::validate::Validator;

    const T: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

    fn purchase(id: &str, price: &str, quantity: i64, currency: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","event_type":"purchase","event_time":{T},"user_id":"u-{id}","product_id":"p1","category":"toys","country":"GB","quantity":{quantity},"price":"{price}","currency":"{currency}"}}"#
        )
    }

    #[test]
    fn three_huge_purchases_fold_without_overflow() {
        // Issue 16: three purchases of 90 000 000 000 GBP × 1 000 000 made the speed
        // layer's revenue fold panic with `attempt to add with overflow`. Validation now
        // rejects them (`amount_out_of_range`); with the limit lifted, the fold still sums
        // them exactly and the view column saturates instead of wrapping negative.
        let validator = Validator {
            max_amount_minor: i64::MAX,
            ..Validator::default()
        };
        let ctx = MetricContext::default();
        let mut agg = Aggregates::default();
        for id in ["h1", "h2", "h3"] {
            let json = purchase(id, "90000000000", 1_000_000, "GBP");
            let event = validator
                .validate(json.as_bytes(), Origin::import_line(0), T)
                .unwrap();
            agg.update(&event.view(), &ctx);
        }
        let (_, state) = agg.revenue.iter().next().unwrap();
        // 9e18 pence at 1.265 USD per GBP, three times.
        assert_eq!(state.revenue_minor, 3 * 11_385_000_000_000_000_000);
        assert_eq!(Revenue::values(state)[2], Value::Money(i64::MAX));
        assert_eq!(state.items, 3_000_000);
        let dead = Validator::default()
            .validate(
                purchase("h4", "90000000000", 1_000_000, "GBP").as_bytes(),
                Origin::import_line(0),
                T,
            )
            .unwrap_err();
        assert_eq!(dead.reason, crate::Reason::AmountOutOfRange);
    }
}

#[cfg(test)]
mod definition_tests {
    use super::*;
    use crate::metrics::tests::{event, fold_day, key, n, r, values};

    fn bought(category: &str, quantity: i64, price: &str, currency: &str) -> String {
        format!(
            r#","category":"{category}","product_id":"p","quantity":{quantity},"price":"{price}","currency":"{currency}""#
        )
    }

    #[test]
    fn revenue_converts_each_purchase_into_the_reporting_currency() {
        let events = [
            // 2 × 10.00 EUR at 1.085 = 21.70 USD.
            event(
                "p1",
                "purchase",
                0,
                "u1",
                &bought("toys", 2, "10.00", "EUR"),
            ),
            // 1 × 5.00 USD.
            event(
                "p2",
                "purchase",
                60_000,
                "u2",
                &bought("toys", 1, "5.00", "USD"),
            ),
            // 1 × 333 JPY at 0.0066 = 2.1978 USD: 219.78 cents, rounded to 220.
            event(
                "p3",
                "purchase",
                120_000,
                "u1",
                &bought("toys", 1, "333", "JPY"),
            ),
            // 3 × 1.00 GBP at 1.265 = 3.795 USD: 379.5 cents, half to even: 380.
            event(
                "p4",
                "purchase",
                180_000,
                "u3",
                &bought("books", 3, "1.00", "GBP"),
            ),
            // Carts are not revenue.
            event(
                "c1",
                "add_to_cart",
                0,
                "u4",
                &bought("toys", 9, "99.00", "USD"),
            ),
        ];
        // toys: orders 3, items 4, 2170 + 500 + 220 = 2890 cents, buyers u1 and u2,
        // average order value 2890 / 3.
        assert_eq!(
            values::<Revenue>(&fold_day(&events)),
            vec![
                (
                    key(&["books", "US"]),
                    vec![n(1), n(3), Value::Money(380), n(1), r(380.0)]
                ),
                (
                    key(&["toys", "US"]),
                    vec![n(3), n(4), Value::Money(2890), n(2), r(2890.0 / 3.0)]
                ),
            ]
        );
    }
}
