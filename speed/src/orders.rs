//! The speed layer's `orders` views, kept incrementally from the two change streams.
//!
//! - Products: every instance reads every partition of the products topic into one
//!   [`ProductTable`] (the table is small and each order needs it).
//! - Orders: the orders topic's partitions are split by a consumer group; each held
//!   partition keeps its own views (so a revoked partition's state simply goes), the dedup
//!   keys of the changes it applied, and those changes with the deltas they added, indexed
//!   by product.
//!
//! The two topics arrive in no particular order relative to each other. When a product
//! version arrives, every held change of that product is re-derived: if its deltas differ
//! (the order's category as of its time changed), the old ones are retracted and the new
//! ones added (the state is a group). So the views are always
//! `shared_logic::orders::orders_views` of the changes held, with the product table read so
//! far, whatever the arrival order; the property test below checks it. Everything here is
//! pure; the consumer does the I/O.

use std::collections::{BTreeMap, HashMap};

use lambda_io::speed_api::ChangeCounters;
use shared_logic::cdc::{order_deltas, CdcRejection, Change, OrderDelta, ProductTable, Row};
use shared_logic::{Aggregates, MetricContext};

/// One applied order change and the deltas it currently contributes.
#[derive(Debug, Clone)]
struct Applied {
    change: Change,
    deltas: Vec<OrderDelta>,
    /// The latest `created_at` of its row images: a product version valid from after it
    /// cannot change its category.
    latest_created: i64,
}

impl Applied {
    /// The latest time any of its deltas, or the change itself, falls at.
    fn newest(&self) -> i64 {
        self.deltas
            .iter()
            .map(|d| d.time)
            .fold(self.change.ts_ms, i64::max)
    }
}

/// What one orders partition holds.
#[derive(Debug, Clone, Default)]
pub struct OrderPartition {
    /// The next offset to apply; everything below is in the state.
    pub next_offset: i64,
    /// Only `orders` is populated.
    pub aggregates: Aggregates,
    /// Dedup key → the newest time the change touches (expires with the horizon).
    seen: HashMap<u128, i64>,
    /// Product id → changes of orders of that product.
    by_product: HashMap<String, Vec<Applied>>,
}

/// What a change record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Below the partition's next offset (already applied).
    Replayed,
    /// Applied (orders: its deltas added; products: a version recorded).
    Applied,
    /// A repeated delivery of a change already applied.
    Duplicate,
    /// Every delta falls before the horizon (windows the speed layer no longer holds).
    Late,
    /// Cannot be applied (an update of a product never created).
    Rejected(CdcRejection),
}

/// The `orders` state of one speed instance.
#[derive(Debug, Clone, Default)]
pub struct OrderStreams {
    pub products: ProductTable,
    product_seen: std::collections::HashSet<u128>,
    pub partitions: BTreeMap<i32, OrderPartition>,
    /// Deltas before this time are not kept (their windows are evicted).
    horizon: i64,
    pub counters: ChangeCounters,
}

fn product_ids(change: &Change) -> Vec<String> {
    let mut ids: Vec<String> = [&change.before, &change.after]
        .into_iter()
        .filter_map(|row| match row {
            Some(Row::Order(o)) => Some(o.product_id.clone()),
            _ => None,
        })
        .collect();
    ids.dedup();
    ids
}

fn apply(
    aggregates: &mut Aggregates,
    deltas: &[OrderDelta],
    sign: i64,
    horizon: i64,
    ctx: &MetricContext,
) {
    for d in deltas.iter().filter(|d| d.time >= horizon) {
        aggregates.orders.apply_delta(d, sign, ctx);
    }
}

impl OrderStreams {
    /// Empty state; nothing before `horizon` is kept.
    pub fn new(horizon: i64) -> Self {
        OrderStreams {
            horizon,
            ..OrderStreams::default()
        }
    }

    /// Applies one products change (any partition of the products topic), re-deriving the
    /// held orders of that product.
    pub fn apply_product(&mut self, change: &Change, ctx: &MetricContext) -> ChangeOutcome {
        if !self.product_seen.insert(change.dedup_key()) {
            self.counters.duplicates += 1;
            return ChangeOutcome::Duplicate;
        }
        // The version this change adds is valid from its time, or for all earlier time
        // when a snapshot first loads the product.
        let valid_from = match change.op {
            shared_logic::cdc::Op::Read if !self.products.knows(&change.key) => i64::MIN,
            _ => change.ts_ms,
        };
        if let Err(rejection) = self.products.apply(change) {
            self.counters.rejected += 1;
            return ChangeOutcome::Rejected(rejection);
        }
        self.counters.product_changes += 1;
        let horizon = self.horizon;
        for partition in self.partitions.values_mut() {
            let Some(held) = partition.by_product.get_mut(&change.key) else {
                continue;
            };
            for applied in held.iter_mut().filter(|a| a.latest_created >= valid_from) {
                let deltas =
                    order_deltas(&applied.change, &self.products, &ctx.rates, ctx.reversal);
                if deltas != applied.deltas {
                    apply(&mut partition.aggregates, &applied.deltas, -1, horizon, ctx);
                    apply(&mut partition.aggregates, &deltas, 1, horizon, ctx);
                    applied.deltas = deltas;
                    self.counters.rederived += 1;
                }
            }
        }
        ChangeOutcome::Applied
    }

    /// Applies one orders change read at `offset` of `partition`.
    pub fn apply_order(
        &mut self,
        partition: i32,
        offset: i64,
        change: Change,
        ctx: &MetricContext,
    ) -> ChangeOutcome {
        let horizon = self.horizon;
        let state = self.partitions.entry(partition).or_default();
        if offset < state.next_offset {
            return ChangeOutcome::Replayed;
        }
        state.next_offset = offset + 1;
        let key = change.dedup_key();
        if state.seen.contains_key(&key) {
            self.counters.duplicates += 1;
            return ChangeOutcome::Duplicate;
        }
        let deltas = order_deltas(&change, &self.products, &ctx.rates, ctx.reversal);
        let latest_created = [&change.before, &change.after]
            .into_iter()
            .filter_map(|row| match row {
                Some(Row::Order(o)) => Some(o.created_at),
                _ => None,
            })
            .max()
            .unwrap_or(i64::MAX);
        let applied = Applied {
            change,
            deltas,
            latest_created,
        };
        let newest = applied.newest();
        state.seen.insert(key, newest);
        if newest < horizon {
            self.counters.late += 1;
            return ChangeOutcome::Late;
        }
        apply(&mut state.aggregates, &applied.deltas, 1, horizon, ctx);
        let mut products = product_ids(&applied.change);
        if let Some(last) = products.pop() {
            // A restatement that moved the order to another product is held under both.
            for product in products {
                state
                    .by_product
                    .entry(product)
                    .or_default()
                    .push(applied.clone());
            }
            state.by_product.entry(last).or_default().push(applied);
        }
        self.counters.order_changes += 1;
        ChangeOutcome::Applied
    }

    /// Forgets a partition (revoked by a rebalance; its new owner rebuilds it).
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Drops windows, changes and dedup keys before `horizon` (which only moves forward).
    pub fn evict_before(&mut self, horizon: i64) {
        if horizon <= self.horizon {
            return;
        }
        self.horizon = horizon;
        for state in self.partitions.values_mut() {
            state.aggregates.orders.retain(|k| k.window.0 >= horizon);
            state.seen.retain(|_, newest| *newest >= horizon);
            for held in state.by_product.values_mut() {
                held.retain(|a| a.newest() >= horizon);
            }
            state.by_product.retain(|_, held| !held.is_empty());
        }
    }

    /// Order changes held for re-derivation.
    pub fn held_changes(&self) -> usize {
        self.partitions
            .values()
            .flat_map(|p| p.by_product.values())
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared_logic::cdc::{CdcTable, ReversalWindow};
    use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
    use shared_logic::orders::{dedup_log, orders_views, product_table, LoggedChange};

    /// Generated streams: (table, partition, offset, change), each table's records in
    /// partition order by key hash.
    fn streams(seed: u64) -> (Vec<LoggedChange>, Vec<LoggedChange>) {
        let cfg = CdcConfig {
            seed,
            duplicate_fraction: 0.05,
            category_change_every_ms: 30_000,
            ..CdcConfig::default()
        };
        let mut products = Vec::new();
        let mut orders = Vec::new();
        let mut next = [[0i64; 3]; 2];
        for record in CdcGenerator::new(cfg).take(400) {
            let table = record.table;
            let Ok(Some(change)) = Change::parse(table, &record.json) else {
                continue;
            };
            let partition = (record.key.bytes().map(u64::from).sum::<u64>() % 3) as i32;
            let t = (table == CdcTable::Orders) as usize;
            let offset = next[t][partition as usize];
            next[t][partition as usize] += 1;
            let logged = LoggedChange {
                partition,
                offset,
                change,
            };
            if t == 1 {
                orders.push(logged);
            } else {
                products.push(logged);
            }
        }
        (products, orders)
    }

    #[test]
    fn changes_behind_the_horizon_are_not_held() {
        let ctx = MetricContext::default();
        let (_, orders) = streams(3);
        let middle = orders[orders.len() / 2].change.ts_ms;
        let mut state = OrderStreams::new(i64::MIN);
        state.evict_before(middle);
        for c in &orders {
            state.apply_order(c.partition, c.offset, c.change.clone(), &ctx);
        }
        assert!(state.counters.late > 0 && state.counters.order_changes > 0);
        let held_before = state
            .partitions
            .values()
            .flat_map(|p| p.by_product.values().flatten())
            .filter(|a| a.newest() < middle)
            .count();
        assert_eq!(held_before, 0);
        for part in state.partitions.values() {
            assert!(part
                .aggregates
                .orders
                .iter()
                .all(|(k, _)| k.window.0 >= middle - 60_000));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the interleaving of the two topics (each partition in order), the
        /// incremental views equal the replay of the deduplicated logs.
        #[test]
        fn any_arrival_order_gives_the_replayed_views(seed in 0u64..1_000, original in any::<bool>(), picks in proptest::collection::vec(any::<bool>(), 0..800)) {
            let ctx = MetricContext {
                reversal: if original { ReversalWindow::Original } else { ReversalWindow::Change },
                ..MetricContext::default()
            };
            let (products, orders) = streams(seed);
            let mut state = OrderStreams::new(i64::MIN);
            let (mut p, mut o) = (products.iter().peekable(), orders.iter().peekable());
            let mut picks = picks.into_iter();
            loop {
                let take_product = match (p.peek(), o.peek()) {
                    (None, None) => break,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    _ => picks.next().unwrap_or(true),
                };
                if take_product {
                    let c = p.next().unwrap();
                    state.apply_product(&c.change, &ctx);
                } else {
                    let c = o.next().unwrap();
                    state.apply_order(c.partition, c.offset, c.change.clone(), &ctx);
                }
            }
            let (mut products, mut orders) = (products.clone(), orders.clone());
            dedup_log(&mut products);
            dedup_log(&mut orders);
            let (table, _) = product_table(&products);
            let expected = orders_views(&orders, &table, &ctx);
            let mut actual = Aggregates::default();
            for part in state.partitions.values() {
                actual.merge_owned(part.aggregates.clone());
            }
            prop_assert!(!expected.is_empty());
            prop_assert_eq!(actual.orders, expected);
        }
    }
}
