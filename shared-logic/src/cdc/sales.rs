//! What an order change adds to `daily_sales`: the order joined, as of its `created_at`,
//! with the `users` dimension (the buyer's country and age group) and the `products`
//! dimension (the category). A sale belongs to the window of its `created_at` and counts
//! while the order is live: a cancellation, refund or delete retracts it there (the day
//! is restated; `daily_sales` answers "what was sold that day, as known now"), and an
//! update that changes what the sale is (amount, product, time, buyer) retracts the old
//! sale and adds the new one. Snapshot reads load state only.

use super::change::{Change, Op};
use super::deltas::revenue;
use super::products::ProductTable;
use super::rows::{OrderRow, Row};
use super::users::UserTable;
use crate::money::Rates;

/// One sale added (`orders` = 1) or retracted (`orders` = -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleDelta {
    /// The order's `created_at` (epoch ms).
    pub time: i64,
    /// The buyer's country as of `time` (`unknown` for a user the table does not know).
    pub country: String,
    /// The product's category as of `time`.
    pub category: String,
    /// The buyer's age group as of `time` (see [`super::age_group`]).
    pub age_group: &'static str,
    /// The buyer, as a 64-bit hash of the user id (distinct buyers).
    pub buyer: u64,
    pub orders: i64,
    /// Minor units of the reporting currency.
    pub revenue_minor: i128,
}

/// The buyer's identity in `daily_sales` states.
pub fn buyer_hash(user_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_id.as_bytes())
}

/// The `daily_sales` deltas of one (deduplicated) orders change; see the module docs.
pub fn sale_deltas(
    change: &Change,
    products: &ProductTable,
    users: &UserTable,
    rates: &Rates,
) -> Vec<SaleDelta> {
    fn live(row: &Option<Row>) -> Option<&OrderRow> {
        match row {
            Some(Row::Order(o)) if o.status.is_live() => Some(o),
            _ => None,
        }
    }
    let sale = |o: &OrderRow, sign: i64| SaleDelta {
        time: o.created_at,
        country: users.country_at(&o.user_id, o.created_at).to_string(),
        category: products
            .category_at(&o.product_id, o.created_at)
            .to_string(),
        age_group: users.age_group_at(&o.user_id, o.created_at),
        buyer: buyer_hash(&o.user_id),
        orders: sign,
        revenue_minor: sign as i128 * revenue(o, rates),
    };
    let (retract, add) = match change.op {
        Op::Read => return vec![],
        Op::Create => (None, live(&change.after)),
        Op::Delete => (live(&change.before), None),
        Op::Update => (live(&change.before), live(&change.after)),
    };
    match (retract.map(|o| sale(o, -1)), add.map(|o| sale(o, 1))) {
        // The same sale before and after (a change between live statuses): nothing.
        (Some(old), Some(new)) if cancel_out(&old, &new) => vec![],
        (old, new) => old.into_iter().chain(new).collect(),
    }
}

/// Whether two deltas are the same sale with opposite signs.
fn cancel_out(a: &SaleDelta, b: &SaleDelta) -> bool {
    (a.time, &a.country, &a.category, a.age_group, a.buyer)
        == (b.time, &b.country, &b.category, b.age_group, b.buyer)
        && a.orders == -b.orders
        && a.revenue_minor == -b.revenue_minor
}
