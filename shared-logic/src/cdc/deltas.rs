//! What an order change adds to the `orders` metric: order deltas in the windows of the
//! order's creation and of its reversal.

use serde::{Deserialize, Serialize};

use super::change::{Change, Op};
use super::products::ProductTable;
use super::rows::{OrderRow, Row};
use crate::money::Rates;

/// In which window a cancelled, refunded or deleted order's revenue is reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReversalWindow {
    /// The window of the change (`source.ts_ms`): past windows stay as reported.
    #[default]
    Change,
    /// The window of the original order (`created_at`): past windows are restated.
    Original,
}

/// What one order change adds to the `orders` metric in one window and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDelta {
    /// The time whose windows the delta belongs to (epoch ms).
    pub time: i64,
    /// The product's category as of the order's `created_at`.
    pub category: String,
    pub country: String,
    pub orders: i64,
    /// Minor units of the reporting currency (exact; see [`crate::mergeable`]).
    pub gross_minor: i128,
    pub cancellations: i64,
    pub reversed_minor: i128,
}

/// An order's revenue in the reporting currency (converted at its `created_at` day).
pub(super) fn revenue(order: &OrderRow, rates: &Rates) -> i128 {
    rates.to_reporting(
        order.price_minor as i128 * order.quantity as i128,
        order.currency,
        order.created_at,
    )
}

/// The `orders` metric's deltas for one (deduplicated) orders change; see the module docs.
pub fn order_deltas(
    change: &Change,
    products: &ProductTable,
    rates: &Rates,
    reversal: ReversalWindow,
) -> Vec<OrderDelta> {
    let order = |row: &Option<Row>| match row {
        Some(Row::Order(o)) => Some(o.clone()),
        _ => None,
    };
    let (before, after) = (order(&change.before), order(&change.after));
    let placed = |o: &OrderRow, sign: i64| OrderDelta {
        time: o.created_at,
        category: products
            .category_at(&o.product_id, o.created_at)
            .to_string(),
        country: o.country.clone(),
        orders: sign,
        gross_minor: sign as i128 * revenue(o, rates),
        cancellations: 0,
        reversed_minor: 0,
    };
    let reversed = |o: &OrderRow, sign: i64| OrderDelta {
        time: match reversal {
            ReversalWindow::Change => change.ts_ms,
            ReversalWindow::Original => o.created_at,
        },
        category: products
            .category_at(&o.product_id, o.created_at)
            .to_string(),
        country: o.country.clone(),
        orders: 0,
        gross_minor: 0,
        cancellations: sign,
        reversed_minor: sign as i128 * revenue(o, rates),
    };
    match (change.op, before, after) {
        (Op::Read, _, _) => vec![],
        (Op::Create, _, Some(a)) => {
            let mut out = vec![placed(&a, 1)];
            if !a.status.is_live() {
                out.push(reversed(&a, 1));
            }
            out
        }
        (Op::Delete, Some(b), _) if b.status.is_live() => vec![reversed(&b, 1)],
        (Op::Update, Some(b), Some(a)) => match (b.status.is_live(), a.status.is_live()) {
            (true, false) => vec![reversed(&b, 1)],
            (false, true) => vec![reversed(&b, -1)],
            (true, true)
                if (b.created_at, &b.product_id, &b.country, revenue(&b, rates))
                    != (a.created_at, &a.product_id, &a.country, revenue(&a, rates)) =>
            {
                vec![placed(&b, -1), placed(&a, 1)]
            }
            _ => vec![],
        },
        _ => vec![],
    }
}
