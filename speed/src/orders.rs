//! The speed layer's views built from the change streams (`orders` and `daily_sales`),
//! kept incrementally.
//!
//! - Dimensions: every instance reads every partition of the products and users topics
//!   into one [`Dimensions`] (the tables are small next to the orders, and each order
//!   needs both).
//! - Orders: the orders topic's partitions are split by a consumer group; each held
//!   partition keeps its own views (so a revoked partition's state simply goes), the dedup
//!   keys of the changes it applied, and those changes with the deltas they added, indexed
//!   by product and by user.
//!
//! The topics arrive in no particular order relative to each other. When a product or
//! user version arrives, every held change of that product or user is re-derived: if its
//! deltas differ (the order's category, or its buyer's country or age group, as of its
//! time changed), the old ones are retracted and the new ones added (the states are
//! groups). So the views are always `shared_logic::orders::change_log_views` of the
//! changes held, with the dimensions read so far, whatever the arrival order; the property
//! test below checks it. Everything here is pure; the consumer does the I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use lambda_io::speed_api::ChangeCounters;
use shared_logic::cdc::{
    order_deltas, sale_deltas, CdcRejection, CdcTable, Change, Op, OrderDelta, Row, SaleDelta,
};
use shared_logic::orders::Dimensions;
use shared_logic::{Aggregates, MetricContext};

/// One applied order change and the deltas it currently contributes.
#[derive(Debug, Clone)]
struct Applied {
    change: Change,
    deltas: Vec<OrderDelta>,
    sales: Vec<SaleDelta>,
    /// The latest `created_at` of its row images: a dimension version valid from after it
    /// cannot change what the change adds.
    latest_created: i64,
}

impl Applied {
    /// The latest time any of its deltas, or the change itself, falls at.
    fn newest(&self) -> i64 {
        self.deltas
            .iter()
            .map(|d| d.time)
            .chain(self.sales.iter().map(|s| s.time))
            .fold(self.change.ts_ms, i64::max)
    }

    /// The products and the users its row images name.
    fn keys(&self, table: CdcTable) -> Vec<String> {
        let mut keys: Vec<String> = [&self.change.before, &self.change.after]
            .into_iter()
            .filter_map(|row| match (row, table) {
                (Some(Row::Order(o)), CdcTable::Products) => Some(o.product_id.clone()),
                (Some(Row::Order(o)), CdcTable::Users) => Some(o.user_id.clone()),
                _ => None,
            })
            .collect();
        keys.dedup();
        keys
    }
}

/// What one orders partition holds.
#[derive(Debug, Clone, Default)]
pub struct OrderPartition {
    /// The next offset to apply; everything below is in the state.
    pub next_offset: i64,
    /// Only the views built from the change streams are populated.
    pub aggregates: Aggregates,
    /// Dedup key → the newest time the change touches (expires with the horizon).
    seen: HashMap<u128, i64>,
    /// The changes held for re-derivation, by a number of their own.
    held: HashMap<u64, Applied>,
    next_held: u64,
    /// Product id → held changes of orders of that product.
    by_product: HashMap<String, Vec<u64>>,
    /// User id → held changes of orders of that user.
    by_user: HashMap<String, Vec<u64>>,
}

impl OrderPartition {
    fn index(&mut self, table: CdcTable) -> &mut HashMap<String, Vec<u64>> {
        match table {
            CdcTable::Users => &mut self.by_user,
            _ => &mut self.by_product,
        }
    }
}

/// What a change record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Below the partition's next offset (already applied).
    Replayed,
    /// Applied (orders: its deltas added; products and users: a version recorded).
    Applied,
    /// A repeated delivery of a change already applied.
    Duplicate,
    /// Every delta falls before the horizon (windows the speed layer no longer holds).
    Late,
    /// Cannot be applied (an update of a product or user never created).
    Rejected(CdcRejection),
}

/// The change-stream state of one speed instance.
#[derive(Debug, Clone, Default)]
pub struct OrderStreams {
    pub dimensions: Dimensions,
    /// Dedup keys of the dimension changes applied (they name their table).
    dimension_seen: HashSet<u128>,
    pub partitions: BTreeMap<i32, OrderPartition>,
    /// Deltas before this time are not kept (their windows are evicted).
    horizon: i64,
    pub counters: ChangeCounters,
}

/// Adds (`sign` = 1) or retracts (`sign` = -1) what an applied change contributes, in the
/// windows the speed layer still holds.
fn apply(
    aggregates: &mut Aggregates,
    applied: &Applied,
    sign: i64,
    horizon: i64,
    ctx: &MetricContext,
) {
    for d in applied.deltas.iter().filter(|d| d.time >= horizon) {
        aggregates.orders.apply_delta(d, sign, ctx);
    }
    for s in applied.sales.iter().filter(|s| s.time >= horizon) {
        aggregates.daily_sales.apply_sale(s, sign, ctx);
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
        self.apply_dimension(CdcTable::Products, change, ctx)
    }

    /// Applies one users change (any partition of the users topic), re-deriving the held
    /// orders of that user.
    pub fn apply_user(&mut self, change: &Change, ctx: &MetricContext) -> ChangeOutcome {
        self.apply_dimension(CdcTable::Users, change, ctx)
    }

    fn apply_dimension(
        &mut self,
        table: CdcTable,
        change: &Change,
        ctx: &MetricContext,
    ) -> ChangeOutcome {
        if !self.dimension_seen.insert(change.dedup_key()) {
            self.counters.duplicates += 1;
            return ChangeOutcome::Duplicate;
        }
        let dims = &mut self.dimensions;
        let known = match table {
            CdcTable::Users => dims.users.knows(&change.key),
            _ => dims.products.knows(&change.key),
        };
        // The version this change adds is valid from its time, or for all earlier time
        // when a snapshot first loads the row.
        let valid_from = match change.op {
            Op::Read if !known => i64::MIN,
            _ => change.ts_ms,
        };
        let applied = match table {
            CdcTable::Users => dims.users.apply(change),
            _ => dims.products.apply(change),
        };
        if let Err(rejection) = applied {
            self.counters.rejected += 1;
            return ChangeOutcome::Rejected(rejection);
        }
        match table {
            CdcTable::Users => self.counters.user_changes += 1,
            _ => self.counters.product_changes += 1,
        }
        let horizon = self.horizon;
        for partition in self.partitions.values_mut() {
            let Some(ids) = partition.index(table).get(&change.key).cloned() else {
                continue;
            };
            for id in ids {
                let Some(applied) = partition.held.get_mut(&id) else {
                    continue;
                };
                if applied.latest_created < valid_from {
                    continue;
                }
                let deltas = order_deltas(
                    &applied.change,
                    &self.dimensions.products,
                    &ctx.rates,
                    ctx.reversal,
                );
                let sales = sale_deltas(
                    &applied.change,
                    &self.dimensions.products,
                    &self.dimensions.users,
                    &ctx.rates,
                );
                if deltas != applied.deltas || sales != applied.sales {
                    apply(&mut partition.aggregates, applied, -1, horizon, ctx);
                    applied.deltas = deltas;
                    applied.sales = sales;
                    apply(&mut partition.aggregates, applied, 1, horizon, ctx);
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
        let dims = &self.dimensions;
        let deltas = order_deltas(&change, &dims.products, &ctx.rates, ctx.reversal);
        let sales = sale_deltas(&change, &dims.products, &dims.users, &ctx.rates);
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
            sales,
            latest_created,
        };
        let newest = applied.newest();
        state.seen.insert(key, newest);
        if newest < horizon {
            self.counters.late += 1;
            return ChangeOutcome::Late;
        }
        apply(&mut state.aggregates, &applied, 1, horizon, ctx);
        let id = state.next_held;
        state.next_held += 1;
        for table in CdcTable::DIMENSIONS {
            // A restatement that moved the order to another product (or user) is held
            // under both.
            for k in applied.keys(table) {
                state.index(table).entry(k).or_default().push(id);
            }
        }
        state.held.insert(id, applied);
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
            state
                .aggregates
                .retain_windows_of(shared_logic::metric::BuiltFrom::OrderChanges, |w| {
                    w.0 >= horizon
                });
            state.seen.retain(|_, newest| *newest >= horizon);
            state.held.retain(|_, a| a.newest() >= horizon);
            let held = &state.held;
            for index in [&mut state.by_product, &mut state.by_user] {
                for ids in index.values_mut() {
                    ids.retain(|id| held.contains_key(id));
                }
                index.retain(|_, ids| !ids.is_empty());
            }
        }
    }

    /// Order changes held for re-derivation.
    pub fn held_changes(&self) -> usize {
        self.partitions.values().map(|p| p.held.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared_logic::cdc::ReversalWindow;
    use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
    use shared_logic::orders::{change_log_views, dedup_log, dimensions, LoggedChange};

    /// Generated streams of the three tables (products, users, orders), each in partition
    /// order by key hash.
    fn streams(seed: u64) -> [Vec<LoggedChange>; 3] {
        let cfg = CdcConfig {
            seed,
            duplicate_fraction: 0.05,
            category_change_every_ms: 30_000,
            user_move_every_ms: 20_000,
            users: 60,
            ..CdcConfig::default()
        };
        let mut logs: [Vec<LoggedChange>; 3] = Default::default();
        let mut next = [[0i64; 3]; 3];
        for record in CdcGenerator::new(cfg).take(600) {
            let table = record.table;
            let Ok(Some(change)) = Change::parse(table, &record.json) else {
                continue;
            };
            let partition = (record.key.bytes().map(u64::from).sum::<u64>() % 3) as i32;
            let t = match table {
                CdcTable::Products => 0,
                CdcTable::Users => 1,
                CdcTable::Orders => 2,
            };
            let offset = next[t][partition as usize];
            next[t][partition as usize] += 1;
            logs[t].push(LoggedChange {
                partition,
                offset,
                change,
            });
        }
        logs
    }

    #[test]
    fn changes_behind_the_horizon_are_not_held() {
        let ctx = MetricContext::default();
        let [_, _, orders] = streams(3);
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
            .flat_map(|p| p.held.values())
            .filter(|a| a.newest() < middle)
            .count();
        assert_eq!(held_before, 0);
        for part in state.partitions.values() {
            assert!(part
                .aggregates
                .orders
                .iter()
                .all(|(k, _)| k.window.0 >= middle - 60_000));
            assert!(part
                .aggregates
                .daily_sales
                .iter()
                .all(|(k, _)| k.window.0 >= middle - 60_000));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the interleaving of the three topics (each partition in order), the
        /// incremental views equal the replay of the deduplicated logs.
        #[test]
        fn any_arrival_order_gives_the_replayed_views(seed in 0u64..1_000, original in any::<bool>(), picks in proptest::collection::vec(0u8..3, 0..1_200)) {
            let ctx = MetricContext {
                reversal: if original { ReversalWindow::Original } else { ReversalWindow::Change },
                ..MetricContext::default()
            };
            let logs = streams(seed);
            let mut state = OrderStreams::new(i64::MIN);
            let mut cursors = [0usize; 3];
            let mut picks = picks.into_iter();
            loop {
                let open: Vec<usize> = (0..3).filter(|t| cursors[*t] < logs[*t].len()).collect();
                if open.is_empty() {
                    break;
                }
                let t = open[picks.next().map_or(0, |p| p as usize % open.len())];
                let c = &logs[t][cursors[t]];
                cursors[t] += 1;
                match t {
                    0 => state.apply_product(&c.change, &ctx),
                    1 => state.apply_user(&c.change, &ctx),
                    _ => state.apply_order(c.partition, c.offset, c.change.clone(), &ctx),
                };
            }
            let [mut products, mut users, mut orders] = logs;
            dedup_log(&mut products);
            dedup_log(&mut users);
            dedup_log(&mut orders);
            let (dims, _) = dimensions(&products, &users);
            let expected = change_log_views(&orders, &dims, &ctx);
            let mut actual = Aggregates::default();
            for part in state.partitions.values() {
                actual.merge_owned(part.aggregates.clone());
            }
            prop_assert!(!expected.orders.is_empty() && !expected.daily_sales.is_empty());
            prop_assert!(expected.daily_sales.iter().any(|(k, _)| k.dim(0) != Some(shared_logic::event::UNKNOWN)));
            prop_assert_eq!(actual.orders, expected.orders);
            prop_assert_eq!(actual.daily_sales, expected.daily_sales);
        }
    }
}
