//! The `revenue` metric.

use serde::{Deserialize, Serialize};

use crate::event::{EventRef, EventType};
use crate::hll::Hll;
use crate::mergeable::Mergeable;
use crate::metric::{Metric, MetricContext, Value, ValueKind};

/// `revenue`: orders, items, revenue (reporting currency, minor units) and distinct buyers,
/// by category and country; derived: average order value.
pub struct Revenue;

/// State of [`Revenue`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevenueState {
    pub orders: u64,
    pub items: u64,
    /// Minor units of the reporting currency; each event converted and rounded once.
    pub revenue_minor: i64,
    pub buyers: Hll,
}

impl Mergeable for RevenueState {
    fn merge(&mut self, other: &Self) {
        self.orders += other.orders;
        self.items += other.items;
        self.revenue_minor += other.revenue_minor;
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
        state.orders += 1;
        state.items += quantity as u64;
        let amount = price.0 as i128 * quantity as i128;
        state.revenue_minor += ctx
            .rates
            .to_reporting(amount, currency, event.event_time().0);
        state.buyers.add(event.user_id());
    }

    fn values(state: &Self::State) -> Vec<Value> {
        let aov = if state.orders == 0 {
            Value::Ratio(None)
        } else {
            Value::Ratio(Some(state.revenue_minor as f64 / state.orders as f64))
        };
        vec![
            Value::Count(state.orders),
            Value::Count(state.items),
            Value::Money(state.revenue_minor),
            Value::Count(state.buyers.estimate()),
            aov,
        ]
    }
}
