//! A deterministic generator of Debezium change streams for the `products`, `users` and
//! `orders` tables of the same shop the event generator simulates (its catalogue and
//! countries), for demos and tests: a snapshot of the products (`r`), then orders placed
//! (`c`), each by a user who signs up (`users` `c`, with a country and a birth year) just
//! before their first order, paid (`u`), some cancelled or refunded later (`u` with before
//! and after images), category changes of products (`u`), users moving to another country
//! (`u`: their later orders ship there), and re-deliveries of earlier changes byte for byte
//! (same source position). Records come in source-log order (`lsn` increasing), each with its topic's
//! table and key (the primary key). The same configuration gives the same bytes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalogue::{catalogue_product, category_names, country_codes, PRODUCTS};
use crate::cdc::CdcTable;

/// Change-stream settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CdcConfig {
    pub seed: u64,
    /// Time of the snapshot and of the first order, epoch ms.
    pub start_ms: i64,
    /// Orders placed per second of source time.
    pub orders_per_second: f64,
    /// Products in the snapshot (the first ones of the catalogue).
    pub products: usize,
    /// Fraction of orders cancelled or refunded later (within half an hour).
    pub cancel_fraction: f64,
    /// One product changes category every this many ms (0: never).
    pub category_change_every_ms: i64,
    /// Orders are placed by users drawn from this many.
    pub users: u32,
    /// One user who has ordered moves to another country every this many ms (0: never).
    pub user_move_every_ms: i64,
    /// Fraction of changes delivered twice.
    pub duplicate_fraction: f64,
    /// Wrap each change in Debezium's `{"schema":…,"payload":…}` envelope.
    pub with_schema: bool,
    /// Order ids are this followed by a sequence number (`o00000001`); a stream started
    /// again later needs another prefix, or its orders reuse the first stream's ids.
    pub order_prefix: String,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            seed: 1,
            start_ms: 1_767_225_600_000,
            orders_per_second: 2.0,
            products: 200,
            cancel_fraction: 0.1,
            category_change_every_ms: 10 * 60_000,
            users: 50_000,
            user_move_every_ms: 5 * 60_000,
            duplicate_fraction: 0.0,
            with_schema: false,
            order_prefix: "o".into(),
        }
    }
}

/// One change record: its table (topic), key and Debezium JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcRecord {
    pub table: CdcTable,
    pub key: String,
    pub json: Vec<u8>,
    /// Source time of the change, epoch ms.
    pub ts_ms: i64,
}

/// A pending later change of an order.
struct Later {
    at: i64,
    order: usize,
    from: &'static str,
    to: &'static str,
}

/// The change streams, as an iterator in source-log order.
pub struct CdcGenerator {
    cfg: CdcConfig,
    rng: ChaCha8Rng,
    lsn: i64,
    now: i64,
    snapshot_left: usize,
    next_category_change: i64,
    /// Current category of each product of the snapshot.
    categories: Vec<&'static str>,
    orders: Vec<OrderState>,
    later: Vec<Later>,
    redeliver: Option<CdcRecord>,
    next_user_move: i64,
    /// Users who signed up: id → (country, birth year), and their ids in sign-up order.
    users: std::collections::HashMap<u32, (&'static str, i32)>,
    signed_up: Vec<u32>,
    /// An order placed right after its user signed up.
    after_sign_up: Option<CdcRecord>,
}

struct OrderState {
    product: usize,
    user: u32,
    country: &'static str,
    quantity: i64,
    created_at: i64,
}

impl CdcGenerator {
    pub fn new(cfg: CdcConfig) -> Self {
        let categories = (0..cfg.products.min(PRODUCTS))
            .map(|n| catalogue_product(n).1)
            .collect();
        CdcGenerator {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            // Source positions grow with time, as a database's log does: a stream started
            // later never reuses an earlier one's positions.
            lsn: cfg.start_ms.max(0),
            now: cfg.start_ms,
            snapshot_left: cfg.products.min(PRODUCTS),
            next_category_change: cfg.start_ms + cfg.category_change_every_ms,
            categories,
            orders: Vec::new(),
            later: Vec::new(),
            redeliver: None,
            next_user_move: cfg.start_ms + cfg.user_move_every_ms,
            users: std::collections::HashMap::new(),
            signed_up: Vec::new(),
            after_sign_up: None,
            cfg,
        }
    }

    fn envelope(&mut self, before: Option<String>, after: Option<String>, op: &str) -> Vec<u8> {
        self.lsn += 1;
        let payload = format!(
            r#"{{"before":{},"after":{},"source":{{"version":"2.7.0","connector":"postgresql","name":"shop","ts_ms":{},"db":"shop","lsn":{},"txId":{}}},"op":"{op}","ts_ms":{}}}"#,
            before.unwrap_or_else(|| "null".into()),
            after.unwrap_or_else(|| "null".into()),
            self.now,
            self.lsn,
            self.lsn / 2,
            self.now + 5
        );
        if self.cfg.with_schema {
            format!(
                r#"{{"schema":{{"type":"struct","name":"shop.Envelope"}},"payload":{payload}}}"#
            )
            .into_bytes()
        } else {
            payload.into_bytes()
        }
    }

    fn product_row(&self, n: usize) -> String {
        let (id, _, _) = catalogue_product(n);
        format!(
            r#"{{"id":"{id}","name":"Product {n}","category":"{}"}}"#,
            self.categories[n]
        )
    }

    fn user_row(&self, user: u32) -> String {
        let (country, born) = self.users[&user];
        format!(
            r#"{{"id":"u{user:06}","name":"User {user}","country":"{country}","birth_year":{born}}}"#
        )
    }

    fn order_row(&self, n: usize, status: &str) -> String {
        let o = &self.orders[n];
        let (product, _, cents) = catalogue_product(o.product);
        format!(
            r#"{{"id":"{}{n:08}","user_id":"u{:06}","product_id":"{product}","quantity":{},"price":"{}.{:02}","currency":"USD","country":"{}","status":"{status}","created_at":{}}}"#,
            self.cfg.order_prefix,
            o.user,
            o.quantity,
            cents / 100,
            cents % 100,
            o.country,
            o.created_at
        )
    }

    fn record(&mut self, table: CdcTable, key: String, json: Vec<u8>) -> CdcRecord {
        let record = CdcRecord {
            table,
            key,
            json,
            ts_ms: self.now,
        };
        if self
            .rng
            .random_bool(self.cfg.duplicate_fraction.clamp(0.0, 1.0))
        {
            self.redeliver = Some(record.clone());
        }
        record
    }
}

impl Iterator for CdcGenerator {
    type Item = CdcRecord;

    fn next(&mut self) -> Option<CdcRecord> {
        if let Some(again) = self.redeliver.take() {
            return Some(again);
        }
        if let Some(order) = self.after_sign_up.take() {
            return Some(order);
        }
        if self.snapshot_left > 0 {
            let n = self.categories.len() - self.snapshot_left;
            self.snapshot_left -= 1;
            let row = self.product_row(n);
            let json = self.envelope(None, Some(row), "r");
            return Some(self.record(CdcTable::Products, catalogue_product(n).0, json));
        }
        // The next thing to happen: a later order change, a category change or a new order.
        let gap = (1000.0 / self.cfg.orders_per_second.max(1e-3)) as i64;
        let next_order = self.now + gap.max(1);
        let due = self
            .later
            .iter()
            .enumerate()
            .min_by_key(|(_, l)| l.at)
            .map(|(i, l)| (i, l.at));
        let category_due = self.cfg.category_change_every_ms > 0 && !self.categories.is_empty();
        if let Some((i, at)) = due.filter(|(_, at)| *at <= next_order) {
            if !(category_due && self.next_category_change < at) {
                let l = self.later.swap_remove(i);
                self.now = at;
                let (before, after) = (
                    self.order_row(l.order, l.from),
                    self.order_row(l.order, l.to),
                );
                let json = self.envelope(Some(before), Some(after), "u");
                let key = format!("{}{:08}", self.cfg.order_prefix, l.order);
                return Some(self.record(CdcTable::Orders, key, json));
            }
        }
        let move_due = self.cfg.user_move_every_ms > 0 && !self.signed_up.is_empty();
        if move_due
            && self.next_user_move <= next_order
            && !(category_due && self.next_category_change < self.next_user_move)
        {
            self.now = self.next_user_move;
            self.next_user_move += self.cfg.user_move_every_ms;
            let user = self.signed_up[self.rng.random_range(0..self.signed_up.len())];
            let before = self.user_row(user);
            let countries: Vec<&'static str> = country_codes().collect();
            let from = self.users[&user].0;
            let mut to = countries[self.rng.random_range(0..countries.len())];
            if to == from {
                to = countries
                    [(countries.iter().position(|c| *c == to).unwrap_or(0) + 1) % countries.len()];
            }
            self.users.get_mut(&user).expect("signed up").0 = to;
            let after = self.user_row(user);
            let json = self.envelope(Some(before), Some(after), "u");
            return Some(self.record(CdcTable::Users, format!("u{user:06}"), json));
        }
        if category_due && self.next_category_change <= next_order {
            self.now = self.next_category_change;
            self.next_category_change += self.cfg.category_change_every_ms;
            let n = self.rng.random_range(0..self.categories.len());
            let before = self.product_row(n);
            let names: Vec<&'static str> = category_names().collect();
            let mut to = names[self.rng.random_range(0..names.len())];
            if to == self.categories[n] {
                to = names[(names.iter().position(|c| *c == to).unwrap_or(0) + 1) % names.len()];
            }
            self.categories[n] = to;
            let after = self.product_row(n);
            let json = self.envelope(Some(before), Some(after), "u");
            return Some(self.record(CdcTable::Products, catalogue_product(n).0, json));
        }
        self.now = next_order;
        let countries: Vec<&'static str> = country_codes().collect();
        let n = self.orders.len();
        let products = self.categories.len().max(1);
        let user = self.rng.random_range(0..self.cfg.users.max(1));
        let sign_up = !self.users.contains_key(&user);
        if sign_up {
            let country = countries[self.rng.random_range(0..countries.len())];
            self.users
                .insert(user, (country, self.rng.random_range(1950..2009)));
            self.signed_up.push(user);
        }
        self.orders.push(OrderState {
            product: self.rng.random_range(0..products),
            user,
            country: self.users[&user].0,
            quantity: self.rng.random_range(1..4),
            created_at: self.now,
        });
        let after = self.order_row(n, "created");
        if self.rng.random_bool(0.5) {
            let at = self.now + self.rng.random_range(1_000..120_000);
            self.later.push(Later {
                at,
                order: n,
                from: "created",
                to: "paid",
            });
        }
        if self
            .rng
            .random_bool(self.cfg.cancel_fraction.clamp(0.0, 1.0))
        {
            let at = self.now + self.rng.random_range(120_000..1_800_000);
            let to = if self.rng.random_bool(0.5) {
                "cancelled"
            } else {
                "refunded"
            };
            self.later.push(Later {
                at,
                order: n,
                from: "created",
                to,
            });
        }
        if sign_up {
            let row = self.user_row(user);
            let json = self.envelope(None, Some(row), "c");
            let signed = self.record(CdcTable::Users, format!("u{user:06}"), json);
            let json = self.envelope(None, Some(after), "c");
            let key = format!("{}{n:08}", self.cfg.order_prefix);
            let order = CdcRecord {
                table: CdcTable::Orders,
                key,
                json,
                ts_ms: self.now,
            };
            // The order is produced after the sign-up (and its redelivery, if any).
            self.after_sign_up = Some(order);
            return Some(signed);
        }
        let json = self.envelope(None, Some(after), "c");
        let key = format!("{}{n:08}", self.cfg.order_prefix);
        Some(self.record(CdcTable::Orders, key, json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{order_deltas, Change, Op, ProductTable, ReversalWindow};
    use crate::money::Rates;

    #[test]
    fn the_streams_parse_and_replay_into_products_and_orders() {
        let cfg = CdcConfig {
            duplicate_fraction: 0.05,
            category_change_every_ms: 60_000,
            user_move_every_ms: 60_000,
            with_schema: true,
            ..CdcConfig::default()
        };
        let records: Vec<CdcRecord> = CdcGenerator::new(cfg.clone()).take(3_000).collect();
        assert_eq!(
            records,
            CdcGenerator::new(cfg).take(3_000).collect::<Vec<_>>()
        );
        let mut seen = std::collections::HashSet::new();
        let mut products = ProductTable::default();
        let mut users = crate::cdc::UserTable::default();
        let (mut ops, mut cancels, mut duplicates) = (std::collections::HashMap::new(), 0, 0);
        for r in &records {
            let change = Change::parse(r.table, &r.json).unwrap().unwrap();
            assert_eq!(change.key, r.key);
            if !seen.insert(change.dedup_key()) {
                duplicates += 1;
                continue;
            }
            *ops.entry((r.table, change.op)).or_insert(0) += 1;
            match r.table {
                CdcTable::Products => products.apply(&change).unwrap(),
                CdcTable::Users => users.apply(&change).unwrap(),
                CdcTable::Orders => {
                    let d = order_deltas(
                        &change,
                        &products,
                        &Rates::default_usd(),
                        ReversalWindow::Change,
                    );
                    cancels += d.iter().map(|d| d.cancellations).sum::<i64>();
                    assert!(d.iter().all(|d| d.category != crate::event::UNKNOWN));
                    // Every buyer signed up before ordering, with a country and a birth year.
                    let sales =
                        crate::cdc::sale_deltas(&change, &products, &users, &Rates::default_usd());
                    assert!(sales.iter().all(|s| s.country != crate::event::UNKNOWN
                        && s.age_group != crate::event::UNKNOWN));
                }
            }
        }
        assert_eq!(ops[&(CdcTable::Products, Op::Read)], 200);
        assert!(ops[&(CdcTable::Products, Op::Update)] > 5, "{ops:?}");
        assert!(ops[&(CdcTable::Orders, Op::Create)] > 1_000, "{ops:?}");
        assert!(ops[&(CdcTable::Users, Op::Create)] > 900, "{ops:?}");
        assert!(ops[&(CdcTable::Users, Op::Update)] > 3, "{ops:?}");
        assert!(cancels > 10 && duplicates > 50, "{cancels} {duplicates}");
    }
}
