//! Change data capture input: Debezium JSON change events of the `orders`, `products` and
//! `users` tables (a topic per table, e.g. `cdc.orders`, `cdc.products`, `cdc.users`),
//! checked and turned into what both layers compute from them. Pure: bytes in, values out.
//!
//! - [`Change::parse`] ([`Change::parse_at`] with the record's timestamp as the clock, as
//!   the layers read a topic): one Debezium record (with or without the `schema`/`payload`
//!   wrapper) into a [`Change`], or a [`CdcRejection`] with a stable reason code for the
//!   dead-letter topic. An empty or `null` record is a tombstone (Kafka compaction after a
//!   delete) and carries nothing. `c` and `r` need `after`; `u` needs `before` and `after`
//!   (the table's full before image, `REPLICA IDENTITY FULL`); `d` needs `before`.
//! - [`Change::dedup_key`]: the source position (`lsn`, `txId`), table, key and op: the same
//!   change delivered twice has one effect.
//! - [`ProductTable`]: every version of every product (valid from the change's `ts_ms` to
//!   the next version), so both layers find a product's category **as of** an order's time;
//!   an update or delete of a product the table has never seen is rejected (`unknown_key`).
//!   Snapshot reads (`r`) load rows without adding a version when nothing changed, so a
//!   re-snapshot is idempotent. [`UserTable`] does the same for users (country and birth
//!   year, so the buyer's country and age group as of an order's time); both are
//!   [`Versions`].
//! - [`order_deltas`]: what an order change adds to the `orders` metric. A created order
//!   counts (orders, gross revenue) in the window of its `created_at`; a cancellation or
//!   refund (an update to `cancelled`/`refunded`), and a delete, reverse it: one
//!   cancellation and its revenue, in the window of the change (default) or of the original
//!   order ([`ReversalWindow`]); an update that changes a live order's amount restates it.
//!   Snapshot reads load state only: no delta, so a re-snapshot never double counts.
//! - [`sale_deltas`]: what an order change adds to `daily_sales` (the order joined with
//!   both dimensions as of its time; a live order's sale in the window of its creation).

mod change;
mod deltas;
mod products;
mod reject;
mod rows;
mod sales;
#[cfg(test)]
mod tests;
mod users;
mod versions;

pub use change::{
    CdcTable, Change, Op, Position, EARLIEST_TIME_MS, MAX_CREATED_AHEAD_MS, MAX_ORDER_AGE_MS,
    MAX_SOURCE_AHEAD_MS,
};
pub use deltas::{order_deltas, OrderDelta, ReversalWindow};
pub use products::{ProductTable, ProductVersion};
pub use reject::{CdcReason, CdcRejection};
pub use rows::{OrderRow, OrderStatus, ProductRow, Row, UserRow};
pub use sales::{buyer_hash, sale_deltas, SaleDelta};
pub use users::{age_group, UserAttributes, UserTable, UserVersion, AGE_GROUPS};
pub use versions::{Version, Versions};
