//! The `funnel` metric.

use serde::{Deserialize, Serialize};

use crate::event::{EventRef, EventType};
use crate::hll::Hll;
use crate::mergeable::{add_count, Mergeable};
use crate::metric::{ratio, Metric, MetricContext, Value, ValueKind};

/// `funnel`: views, carts, purchases and distinct users at each stage, by country, device
/// and category; derived: view→cart, cart→purchase and view→purchase conversion (by users).
pub struct Funnel;

/// State of [`Funnel`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunnelState {
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
    pub view_users: Hll,
    pub cart_users: Hll,
    pub purchase_users: Hll,
}

impl Mergeable for FunnelState {
    fn merge(&mut self, other: &Self) {
        self.views = add_count(self.views, other.views);
        self.carts = add_count(self.carts, other.carts);
        self.purchases = add_count(self.purchases, other.purchases);
        self.view_users.merge(&other.view_users);
        self.cart_users.merge(&other.cart_users);
        self.purchase_users.merge(&other.purchase_users);
    }
}

impl Metric for Funnel {
    const NAME: &'static str = "funnel";
    const DIMENSIONS: &'static [&'static str] = &["country", "device", "category"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("views", ValueKind::Count),
        ("carts", ValueKind::Count),
        ("purchases", ValueKind::Count),
        ("view_users", ValueKind::Count),
        ("cart_users", ValueKind::Count),
        ("purchase_users", ValueKind::Count),
        ("view_to_cart_rate", ValueKind::Ratio),
        ("cart_to_purchase_rate", ValueKind::Ratio),
        ("view_to_purchase_rate", ValueKind::Ratio),
    ];
    type State = FunnelState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        true
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.country();
        out[1] = event.device().as_str();
        out[2] = event.category();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, _ctx: &MetricContext) {
        let (count, users) = match event.event_type() {
            EventType::PageView => (&mut state.views, &mut state.view_users),
            EventType::AddToCart => (&mut state.carts, &mut state.cart_users),
            EventType::Purchase => (&mut state.purchases, &mut state.purchase_users),
        };
        *count = add_count(*count, 1);
        users.add(event.user_id());
    }

    const SKETCHES: &'static [(&'static str, &'static str)] = &[
        ("view_users", "view_users"),
        ("cart_users", "cart_users"),
        ("purchase_users", "purchase_users"),
    ];
    fn sketches(state: &Self::State) -> Vec<&Hll> {
        vec![&state.view_users, &state.cart_users, &state.purchase_users]
    }
    fn sketches_mut(state: &mut Self::State) -> Vec<&mut Hll> {
        vec![
            &mut state.view_users,
            &mut state.cart_users,
            &mut state.purchase_users,
        ]
    }
    const SKETCHED_VALUES: &'static [&'static str] = &[
        "view_users",
        "cart_users",
        "purchase_users",
        "view_to_cart_rate",
        "cart_to_purchase_rate",
        "view_to_purchase_rate",
    ];
    fn values(state: &Self::State) -> Vec<Value> {
        let (v, c, p) = (
            state.view_users.estimate(),
            state.cart_users.estimate(),
            state.purchase_users.estimate(),
        );
        vec![
            Value::Count(state.views),
            Value::Count(state.carts),
            Value::Count(state.purchases),
            Value::Count(v),
            Value::Count(c),
            Value::Count(p),
            ratio(c, v),
            ratio(p, c),
            ratio(p, v),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{event, fold_day, key, n, r, values};

    #[test]
    fn funnel_counts_each_stage_and_converts_by_users() {
        let toys = r#","category":"toys","url":"/p""#;
        let item = r#","category":"toys","product_id":"p","quantity":1"#;
        let bought =
            r#","category":"toys","product_id":"p","quantity":2,"price":"3.00","currency":"USD""#;
        let events = [
            // Four users view, u1 twice.
            event("v1", "page_view", 0, "u1", toys),
            event("v2", "page_view", 1_000, "u1", toys),
            event("v3", "page_view", 2_000, "u2", toys),
            event("v4", "page_view", 3_000, "u3", toys),
            event("v5", "page_view", 4_000, "u4", toys),
            // Three of them add to the cart, u2 twice.
            event("c1", "add_to_cart", 5_000, "u1", item),
            event("c2", "add_to_cart", 6_000, "u2", item),
            event("c3", "add_to_cart", 7_000, "u2", item),
            event("c4", "add_to_cart", 7_500, "u3", item),
            // One buys.
            event("p1", "purchase", 8_000, "u1", bought),
        ];
        // views 5, carts 4, purchases 1; users 4 → 3 → 1: view→cart 3/4, cart→purchase
        // 1/3, view→purchase 1/4.
        assert_eq!(
            values::<Funnel>(&fold_day(&events)),
            vec![(
                key(&["US", "desktop", "toys"]),
                vec![
                    n(5),
                    n(4),
                    n(1),
                    n(4),
                    n(3),
                    n(1),
                    r(0.75),
                    r(1.0 / 3.0),
                    r(0.25)
                ]
            )]
        );
    }

    #[test]
    fn funnel_rates_are_absent_without_a_denominator() {
        let events = [event(
            "c1",
            "add_to_cart",
            0,
            "u1",
            r#","product_id":"p","quantity":1"#,
        )];
        let rows = values::<Funnel>(&fold_day(&events));
        assert_eq!(
            rows[0].1[6..],
            [Value::Ratio(None), r(0.0), Value::Ratio(None)]
        );
    }
}
