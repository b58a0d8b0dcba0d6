//! Change data capture input: Debezium JSON change events of the `orders` and `products`
//! tables (a topic per table, e.g. `cdc.orders` and `cdc.products`), checked and turned
//! into what both layers compute from them. Pure: bytes in, values out.
//!
//! - [`Change::parse`]: one Debezium record (with or without the `schema`/`payload`
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
//!   re-snapshot is idempotent.
//! - [`order_deltas`]: what an order change adds to the `orders` metric. A created order
//!   counts (orders, gross revenue) in the window of its `created_at`; a cancellation or
//!   refund (an update to `cancelled`/`refunded`), and a delete, reverse it: one
//!   cancellation and its revenue, in the window of the change (default) or of the original
//!   order ([`ReversalWindow`]); an update that changes a live order's amount restates it.
//!   Snapshot reads load state only: no delta, so a re-snapshot never double counts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::UNKNOWN;
use crate::money::{parse_decimal_minor, Currency, Rates};

/// The tables the platform reads change events of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdcTable {
    Orders,
    Products,
}

impl CdcTable {
    /// The table's name (and, after `cdc.`, its default topic).
    pub fn name(self) -> &'static str {
        match self {
            CdcTable::Orders => "orders",
            CdcTable::Products => "products",
        }
    }

    /// The default topic of the table's change stream.
    pub fn default_topic(self) -> &'static str {
        match self {
            CdcTable::Orders => "cdc.orders",
            CdcTable::Products => "cdc.products",
        }
    }
}

/// Debezium's operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `c`: a row was inserted.
    Create,
    /// `u`: a row was updated.
    Update,
    /// `d`: a row was deleted.
    Delete,
    /// `r`: a row was read by a snapshot.
    Read,
}

impl Op {
    fn parse(code: &str) -> Option<Op> {
        match code {
            "c" => Some(Op::Create),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            "r" => Some(Op::Read),
            _ => None,
        }
    }

    /// The Debezium code.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }
}

/// Why a change event was rejected; the `snake_case` name is the dead-letter reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdcReason {
    /// Not valid JSON.
    MalformedJson,
    /// Not a Debezium envelope (not an object, or a `payload` that is not one).
    MalformedEnvelope,
    /// `op` is not one of `c`, `u`, `d`, `r`.
    UnknownOp,
    /// `source`, `source.ts_ms` or a source position (`lsn`, `txId`) is missing.
    MissingSource,
    /// The row image the op needs (`after`, `before`) or one of its columns is missing.
    MissingField,
    /// A column has a value outside its domain.
    InvalidValue,
    /// An update or delete of a key the table has never seen.
    UnknownKey,
}

impl CdcReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            CdcReason::MalformedJson => "malformed_json",
            CdcReason::MalformedEnvelope => "malformed_envelope",
            CdcReason::UnknownOp => "unknown_op",
            CdcReason::MissingSource => "missing_source",
            CdcReason::MissingField => "missing_field",
            CdcReason::InvalidValue => "invalid_value",
            CdcReason::UnknownKey => "unknown_key",
        }
    }
}

/// A rejected change event: the reason and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcRejection {
    pub reason: CdcReason,
    pub message: String,
}

fn reject(reason: CdcReason, message: impl Into<String>) -> CdcRejection {
    CdcRejection {
        reason,
        message: message.into(),
    }
}

/// Where a change sits in the source database's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub lsn: Option<i64>,
    pub tx_id: Option<i64>,
}

/// An order's status; cancelled and refunded orders no longer count as revenue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "created" | "pending" | "placed" => OrderStatus::Created,
            "paid" => OrderStatus::Paid,
            "shipped" => OrderStatus::Shipped,
            "delivered" | "completed" => OrderStatus::Delivered,
            "cancelled" | "canceled" => OrderStatus::Cancelled,
            "refunded" => OrderStatus::Refunded,
            _ => return None,
        })
    }

    /// Whether an order in this status counts as revenue.
    pub fn is_live(self) -> bool {
        !matches!(self, OrderStatus::Cancelled | OrderStatus::Refunded)
    }
}

/// One row of `orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub user_id: String,
    pub product_id: String,
    pub quantity: i64,
    /// Unit price in minor units of `currency`.
    pub price_minor: i64,
    pub currency: Currency,
    pub country: String,
    pub status: OrderStatus,
    /// When the order was placed (epoch ms): its event time.
    pub created_at: i64,
}

/// One row of `products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRow {
    pub product_id: String,
    pub category: String,
}

/// A row image of either table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    Order(OrderRow),
    Product(ProductRow),
}

impl Row {
    fn key(&self) -> &str {
        match self {
            Row::Order(o) => &o.order_id,
            Row::Product(p) => &p.product_id,
        }
    }
}

/// One checked change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub table: CdcTable,
    pub op: Op,
    /// The row's primary key.
    pub key: String,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// When the change happened in the source database (`source.ts_ms`).
    pub ts_ms: i64,
    pub position: Position,
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A timestamp column: epoch milliseconds, or RFC 3339 text.
fn timestamp(v: &Value) -> Option<i64> {
    integer(v).or_else(|| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
            .map(|t| t.timestamp_millis())
    })
}

fn column<'a>(
    row: &'a Map<String, Value>,
    image: &str,
    name: &str,
) -> Result<&'a Value, CdcRejection> {
    row.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
        reject(
            CdcReason::MissingField,
            format!("{image}.{name} is missing"),
        )
    })
}

fn invalid(image: &str, name: &str, v: &Value) -> CdcRejection {
    reject(
        CdcReason::InvalidValue,
        format!("{image}.{name} has an invalid value {v}"),
    )
}

fn order_row(row: &Map<String, Value>, image: &str) -> Result<OrderRow, CdcRejection> {
    let get = |name: &str| column(row, image, name);
    let string =
        |name: &str| get(name).and_then(|v| text(v).ok_or_else(|| invalid(image, name, v)));
    let currency_text = string("currency")?;
    let currency = Currency::parse(&currency_text)
        .ok_or_else(|| invalid(image, "currency", &Value::String(currency_text.clone())))?;
    let price = get("price")?;
    let price_text = match price {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(invalid(image, "price", other)),
    };
    let price_minor = parse_decimal_minor(&price_text, currency.exponent())
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(|| invalid(image, "price", price))?;
    let quantity = get("quantity")?;
    let quantity = integer(quantity)
        .filter(|q| (1..=1_000_000).contains(q))
        .ok_or_else(|| invalid(image, "quantity", quantity))?;
    let status = get("status")?;
    let status = status
        .as_str()
        .and_then(OrderStatus::parse)
        .ok_or_else(|| invalid(image, "status", status))?;
    let created = get("created_at")?;
    let created_at = timestamp(created).ok_or_else(|| invalid(image, "created_at", created))?;
    let country = string("country")?.to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(image, "country", &Value::String(country)));
    }
    Ok(OrderRow {
        order_id: string("id")?,
        user_id: string("user_id")?,
        product_id: string("product_id")?,
        quantity,
        price_minor,
        currency,
        country,
        status,
        created_at,
    })
}

fn product_row(row: &Map<String, Value>, image: &str) -> Result<ProductRow, CdcRejection> {
    let string = |name: &str| {
        column(row, image, name).and_then(|v| text(v).ok_or_else(|| invalid(image, name, v)))
    };
    Ok(ProductRow {
        product_id: string("id")?,
        category: string("category")?.to_ascii_lowercase(),
    })
}

/// 2000-01-01T00:00:00Z: source times and order times before it are taken for a unit
/// mistake (seconds instead of milliseconds) or a placeholder, not for data.
pub const EARLIEST_TIME_MS: i64 = 946_684_800_000;

/// How far after its change an order may say it was created (clock skew), ms.
pub const MAX_CREATED_AHEAD_MS: i64 = 86_400_000;

/// Source and order times must be plausible: otherwise one bad record would place deltas
/// decades away (and the batch layer would publish every hour in between).
fn check_times(op: Op, ts_ms: i64, rows: [&Option<Row>; 2]) -> Result<(), CdcRejection> {
    if ts_ms < EARLIEST_TIME_MS {
        return Err(reject(
            CdcReason::InvalidValue,
            format!("source.ts_ms {ts_ms} is before 2000-01-01 (seconds instead of milliseconds?)"),
        ));
    }
    // Snapshot reads load state only: an old order's snapshot is fine.
    if op == Op::Read {
        return Ok(());
    }
    for row in rows.into_iter().flatten() {
        if let Row::Order(o) = row {
            if o.created_at < EARLIEST_TIME_MS || o.created_at > ts_ms + MAX_CREATED_AHEAD_MS {
                return Err(reject(
                    CdcReason::InvalidValue,
                    format!(
                        "created_at {} of order `{}` is not between 2000-01-01 and a day after the change (source.ts_ms {ts_ms})",
                        o.created_at, o.order_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Change {
    /// Parses one record of `table`'s change topic; `Ok(None)` for a tombstone.
    pub fn parse(table: CdcTable, bytes: &[u8]) -> Result<Option<Change>, CdcRejection> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| reject(CdcReason::MalformedJson, format!("not JSON: {e}")))?;
        let envelope = match &value {
            Value::Null => return Ok(None),
            Value::Object(o) if o.contains_key("payload") && o.contains_key("schema") => {
                match &o["payload"] {
                    Value::Null => return Ok(None),
                    Value::Object(p) => p,
                    _ => {
                        return Err(reject(
                            CdcReason::MalformedEnvelope,
                            "payload is not an object",
                        ))
                    }
                }
            }
            Value::Object(o) => o,
            _ => return Err(reject(CdcReason::MalformedEnvelope, "not a JSON object")),
        };
        let op_value = envelope.get("op").unwrap_or(&Value::Null);
        let op = op_value.as_str().and_then(Op::parse).ok_or_else(|| {
            reject(
                CdcReason::UnknownOp,
                format!("op {op_value} is not c, u, d or r"),
            )
        })?;
        let source = envelope
            .get("source")
            .and_then(Value::as_object)
            .ok_or_else(|| reject(CdcReason::MissingSource, "source is missing"))?;
        let ts_ms = source
            .get("ts_ms")
            .and_then(integer)
            .ok_or_else(|| reject(CdcReason::MissingSource, "source.ts_ms is missing"))?;
        let position = Position {
            lsn: source.get("lsn").and_then(integer),
            tx_id: source.get("txId").and_then(integer),
        };
        if position.lsn.is_none() && position.tx_id.is_none() {
            return Err(reject(
                CdcReason::MissingSource,
                "source has neither lsn nor txId",
            ));
        }
        let image = |name: &str| -> Result<Option<Row>, CdcRejection> {
            match envelope.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(row)) => Ok(Some(match table {
                    CdcTable::Orders => Row::Order(order_row(row, name)?),
                    CdcTable::Products => Row::Product(product_row(row, name)?),
                })),
                Some(other) => Err(invalid("envelope", name, other)),
            }
        };
        let (before, after) = (image("before")?, image("after")?);
        let needs = |row: &Option<Row>, name: &str| {
            row.as_ref().map(|_| ()).ok_or_else(|| {
                reject(
                    CdcReason::MissingField,
                    format!("op {} needs `{name}`", op.code()),
                )
            })
        };
        match op {
            Op::Create | Op::Read => needs(&after, "after")?,
            Op::Update => {
                needs(&before, "before (REPLICA IDENTITY FULL)")?;
                needs(&after, "after")?;
            }
            Op::Delete => needs(&before, "before")?,
        }
        let key = after
            .as_ref()
            .or(before.as_ref())
            .map(|r| r.key().to_string())
            .unwrap_or_default();
        check_times(op, ts_ms, [&before, &after])?;
        if let (Some(b), Some(a)) = (&before, &after) {
            if b.key() != a.key() {
                return Err(reject(
                    CdcReason::InvalidValue,
                    format!("before.id `{}` and after.id `{}` differ", b.key(), a.key()),
                ));
            }
        }
        Ok(Some(Change {
            table,
            op,
            key,
            before,
            after,
            ts_ms,
            position,
        }))
    }

    /// Identifies the change: a redelivery (same source position, table, key and op) has
    /// the same key and is applied once.
    pub fn dedup_key(&self) -> u128 {
        let text = format!(
            "{}|{}|{}|{:?}|{:?}",
            self.table.name(),
            self.key,
            self.op.code(),
            self.position.lsn,
            self.position.tx_id
        );
        xxhash_rust::xxh3::xxh3_128(text.as_bytes())
    }
}

/// Every version of every product: the category valid from a change's time to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductTable {
    /// Product → (valid from, category; `None` once deleted), ordered by time.
    versions: HashMap<String, Vec<(i64, Option<String>)>>,
}

/// One version of a product, as the lake keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductVersion {
    pub product_id: String,
    /// Epoch ms; `i64::MIN` for a row first seen by a snapshot (valid for all earlier time).
    pub valid_from: i64,
    /// The next version's `valid_from`; `None` for the current version.
    pub valid_to: Option<i64>,
    /// `None` after the product was deleted.
    pub category: Option<String>,
}

impl ProductTable {
    /// Applies one products change (already deduplicated). Updates and deletes of a
    /// product never seen are rejected.
    pub fn apply(&mut self, change: &Change) -> Result<(), CdcRejection> {
        let category = match &change.after {
            Some(Row::Product(p)) => Some(p.category.clone()),
            _ => None,
        };
        let known = self.versions.contains_key(&change.key);
        match change.op {
            Op::Update | Op::Delete if !known => {
                return Err(reject(
                    CdcReason::UnknownKey,
                    format!(
                        "{} of product `{}`, which was never created",
                        change.op.code(),
                        change.key
                    ),
                ))
            }
            Op::Read => {
                let list = self.versions.entry(change.key.clone()).or_default();
                match list.last() {
                    None => list.push((i64::MIN, category)),
                    // A re-snapshot of an unchanged row adds nothing.
                    Some((_, current)) if *current == category => {}
                    Some(_) => insert_version(list, change.ts_ms, category),
                }
            }
            _ => insert_version(
                self.versions.entry(change.key.clone()).or_default(),
                change.ts_ms,
                category,
            ),
        }
        Ok(())
    }

    /// Whether any change of the product was applied.
    pub fn knows(&self, product_id: &str) -> bool {
        self.versions.contains_key(product_id)
    }

    /// The product's category at `time_ms` ([`UNKNOWN`] for a product unknown then).
    pub fn category_at(&self, product_id: &str, time_ms: i64) -> &str {
        let Some(list) = self.versions.get(product_id) else {
            return UNKNOWN;
        };
        let at = list.partition_point(|(from, _)| *from <= time_ms);
        match at.checked_sub(1).and_then(|i| list[i].1.as_deref()) {
            Some(category) => category,
            None => UNKNOWN,
        }
    }

    /// Every version, ordered by product and time.
    pub fn versions(&self) -> Vec<ProductVersion> {
        let mut out = Vec::new();
        for (product, list) in &self.versions {
            for (i, (from, category)) in list.iter().enumerate() {
                out.push(ProductVersion {
                    product_id: product.clone(),
                    valid_from: *from,
                    valid_to: list.get(i + 1).map(|(t, _)| *t),
                    category: category.clone(),
                });
            }
        }
        out.sort_by(|a, b| (&a.product_id, a.valid_from).cmp(&(&b.product_id, b.valid_from)));
        out
    }

    /// Rebuilds a table from versions (as the lake keeps them).
    pub fn from_versions(versions: impl IntoIterator<Item = ProductVersion>) -> Self {
        let mut table = ProductTable::default();
        for v in versions {
            insert_version(
                table.versions.entry(v.product_id).or_default(),
                v.valid_from,
                v.category,
            );
        }
        table
    }
}

/// Inserts a version in time order; a version at an existing time replaces it (the later
/// change of the same instant wins, as in the source).
fn insert_version(list: &mut Vec<(i64, Option<String>)>, from: i64, category: Option<String>) {
    let at = list.partition_point(|(t, _)| *t < from);
    match list.get_mut(at) {
        Some((t, c)) if *t == from => *c = category,
        _ => list.insert(at, (from, category)),
    }
}

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
    pub gross_minor: i64,
    pub cancellations: i64,
    pub reversed_minor: i64,
}

/// An order's revenue in the reporting currency (converted at its `created_at` day).
fn revenue(order: &OrderRow, rates: &Rates) -> i64 {
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
        gross_minor: sign * revenue(o, rates),
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
        reversed_minor: sign * revenue(o, rates),
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_767_225_600_000;

    fn order_json(
        op: &str,
        lsn: i64,
        before: Option<&str>,
        after: Option<&str>,
        ts: i64,
    ) -> String {
        let row = |status: &str| {
            format!(
                r#"{{"id":"o1","user_id":"u1","product_id":"p1","quantity":2,"price":"10.50","currency":"EUR","country":"de","status":"{status}","created_at":{T}}}"#
            )
        };
        let image = |s: Option<&str>| s.map_or("null".to_string(), row);
        format!(
            r#"{{"before":{},"after":{},"source":{{"ts_ms":{ts},"lsn":{lsn},"txId":7}},"op":"{op}"}}"#,
            image(before),
            image(after)
        )
    }

    fn product_json(
        op: &str,
        lsn: i64,
        id: &str,
        category: &str,
        ts: i64,
        wrapped: bool,
    ) -> String {
        let row = format!(r#"{{"id":"{id}","category":"{category}","name":"x"}}"#);
        let (before, after) = match op {
            "d" => (row.as_str(), "null"),
            "u" => (row.as_str(), row.as_str()),
            _ => ("null", row.as_str()),
        };
        let payload = format!(
            r#"{{"before":{before},"after":{after},"source":{{"ts_ms":{ts},"lsn":{lsn}}},"op":"{op}"}}"#
        );
        if wrapped {
            format!(r#"{{"schema":{{"type":"struct"}},"payload":{payload}}}"#)
        } else {
            payload
        }
    }

    fn parse(table: CdcTable, json: &str) -> Change {
        Change::parse(table, json.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn implausible_times_are_rejected_but_old_snapshots_load() {
        let order = |op: &str, created: i64, ts: i64| {
            format!(
                r#"{{"before":null,"after":{{"id":"o1","user_id":"u1","product_id":"p1","quantity":1,"price":"1.00","currency":"USD","country":"DE","status":"placed","created_at":{created}}},"source":{{"ts_ms":{ts},"lsn":1}},"op":"{op}"}}"#
            )
        };
        let reason = |json: String| {
            Change::parse(CdcTable::Orders, json.as_bytes())
                .err()
                .map(|r| r.reason)
        };
        // Seconds instead of milliseconds, in the source or in the row.
        assert_eq!(
            reason(order("c", T, T / 1000)),
            Some(CdcReason::InvalidValue)
        );
        assert_eq!(
            reason(order("c", T / 1000, T)),
            Some(CdcReason::InvalidValue)
        );
        // Created two days after the change that reports it.
        assert_eq!(
            reason(order("c", T + 2 * 86_400_000, T)),
            Some(CdcReason::InvalidValue)
        );
        // A snapshot of a 1999 order loads (it adds no delta); a fresh order is fine.
        assert_eq!(reason(order("r", 915_148_800_000, T)), None);
        assert_eq!(reason(order("c", T - 1, T)), None);
    }

    #[test]
    fn envelopes_with_and_without_the_schema_wrapper_parse_alike() {
        let bare = parse(
            CdcTable::Products,
            &product_json("c", 5, "p1", "Books", T, false),
        );
        let wrapped = parse(
            CdcTable::Products,
            &product_json("c", 5, "p1", "Books", T, true),
        );
        assert_eq!(bare, wrapped);
        assert_eq!(bare.key, "p1");
        assert_eq!(bare.dedup_key(), wrapped.dedup_key());
        assert_eq!(Change::parse(CdcTable::Orders, b"").unwrap(), None);
        assert_eq!(Change::parse(CdcTable::Orders, b"null").unwrap(), None);
    }

    #[test]
    fn malformed_changes_are_rejected_with_their_reason() {
        let cases: Vec<(String, CdcReason)> = vec![
            ("{not json".into(), CdcReason::MalformedJson),
            ("[1]".into(), CdcReason::MalformedEnvelope),
            (
                order_json("x", 1, None, Some("created"), T),
                CdcReason::UnknownOp,
            ),
            (
                order_json("c", 1, None, Some("created"), T)
                    .replace(r#""lsn":1,"txId":7"#, r#""db":"shop""#),
                CdcReason::MissingSource,
            ),
            (
                order_json("u", 1, None, Some("paid"), T),
                CdcReason::MissingField,
            ),
            (order_json("d", 1, None, None, T), CdcReason::MissingField),
            (
                order_json("c", 1, None, Some("lost"), T),
                CdcReason::InvalidValue,
            ),
            (
                order_json("c", 1, None, Some("created"), T).replace(r#""EUR""#, r#""XXX""#),
                CdcReason::InvalidValue,
            ),
        ];
        for (json, reason) in cases {
            let err = Change::parse(CdcTable::Orders, json.as_bytes()).unwrap_err();
            assert_eq!(err.reason, reason, "{json}: {}", err.message);
        }
    }

    #[test]
    fn the_category_is_the_one_valid_at_the_order_time() {
        let mut table = ProductTable::default();
        table
            .apply(&parse(
                CdcTable::Products,
                &product_json("r", 1, "p1", "books", T, false),
            ))
            .unwrap();
        let change_at = T + 30 * 60_000;
        table
            .apply(&parse(
                CdcTable::Products,
                &product_json("u", 2, "p1", "toys", change_at, false),
            ))
            .unwrap();
        assert_eq!(table.category_at("p1", T + 60_000), "books");
        assert_eq!(table.category_at("p1", change_at), "toys");
        assert_eq!(
            table.category_at("p1", T - 1),
            "books",
            "snapshot rows hold for earlier time"
        );
        assert_eq!(table.category_at("p2", T), UNKNOWN);
        // A re-snapshot of the same row adds no version.
        let before = table.versions();
        table
            .apply(&parse(
                CdcTable::Products,
                &product_json("r", 9, "p1", "toys", T + 99, false),
            ))
            .unwrap();
        assert_eq!(table.versions(), before);
        assert_eq!(
            ProductTable::from_versions(before.clone()).versions(),
            before
        );
        // Updates of a product never created are rejected.
        let err = table
            .apply(&parse(
                CdcTable::Products,
                &product_json("u", 3, "p9", "toys", T, false),
            ))
            .unwrap_err();
        assert_eq!(err.reason, CdcReason::UnknownKey);
    }

    #[test]
    fn a_cancelled_order_reverses_its_revenue_in_the_window_of_the_change_or_the_original() {
        let mut products = ProductTable::default();
        products
            .apply(&parse(
                CdcTable::Products,
                &product_json("r", 1, "p1", "books", T, false),
            ))
            .unwrap();
        let rates = Rates::default_usd();
        let created = parse(
            CdcTable::Orders,
            &order_json("c", 10, None, Some("created"), T),
        );
        let placed = order_deltas(&created, &products, &rates, ReversalWindow::Change);
        assert_eq!(placed.len(), 1);
        assert_eq!(
            (
                placed[0].orders,
                placed[0].category.as_str(),
                placed[0].country.as_str()
            ),
            (1, "books", "DE")
        );
        let gross = placed[0].gross_minor;
        assert!(gross > 0);
        let later = T + 2 * 3_600_000;
        let cancel = parse(
            CdcTable::Orders,
            &order_json("u", 11, Some("paid"), Some("cancelled"), later),
        );
        let change = order_deltas(&cancel, &products, &rates, ReversalWindow::Change);
        assert_eq!(
            (
                change[0].time,
                change[0].cancellations,
                change[0].reversed_minor
            ),
            (later, 1, gross)
        );
        let original = order_deltas(&cancel, &products, &rates, ReversalWindow::Original);
        assert_eq!(original[0].time, T);
        // A delete of a live order follows the same rule; snapshot reads add nothing.
        let delete = parse(
            CdcTable::Orders,
            &order_json("d", 12, Some("paid"), None, later),
        );
        assert_eq!(
            order_deltas(&delete, &products, &rates, ReversalWindow::Change),
            change
        );
        let read = parse(
            CdcTable::Orders,
            &order_json("r", 13, None, Some("paid"), later),
        );
        assert!(order_deltas(&read, &products, &rates, ReversalWindow::Change).is_empty());
        // Status moves between live states change nothing.
        let paid = parse(
            CdcTable::Orders,
            &order_json("u", 14, Some("created"), Some("paid"), later),
        );
        assert!(order_deltas(&paid, &products, &rates, ReversalWindow::Change).is_empty());
    }

    proptest::proptest! {
        /// Over any life of an order (created, then any status updates), the deltas add up
        /// to its final state: one order, its revenue net of a reversal when it ends
        /// cancelled or refunded, whichever window policy.
        #[test]
        fn an_orders_deltas_add_up_to_its_final_state(
            statuses in proptest::collection::vec(0usize..6, 1..8),
            original in proptest::bool::ANY,
        ) {
            let names = ["created", "paid", "shipped", "delivered", "cancelled", "refunded"];
            let mut products = ProductTable::default();
            products.apply(&parse(CdcTable::Products, &product_json("r", 1, "p1", "books", T, false))).unwrap();
            let rates = Rates::default_usd();
            let policy = if original { ReversalWindow::Original } else { ReversalWindow::Change };
            let mut deltas = order_deltas(
                &parse(CdcTable::Orders, &order_json("c", 10, None, Some(names[statuses[0]]), T)),
                &products,
                &rates,
                policy,
            );
            for (i, pair) in statuses.windows(2).enumerate() {
                let json = order_json("u", 11 + i as i64, Some(names[pair[0]]), Some(names[pair[1]]), T + i as i64);
                deltas.extend(order_deltas(&parse(CdcTable::Orders, &json), &products, &rates, policy));
            }
            let last_live = OrderStatus::parse(names[*statuses.last().unwrap()]).unwrap().is_live();
            let sum = |f: fn(&OrderDelta) -> i64| deltas.iter().map(f).sum::<i64>();
            let gross = sum(|d| d.gross_minor);
            proptest::prop_assert_eq!(sum(|d| d.orders), 1);
            proptest::prop_assert_eq!(sum(|d| d.cancellations), (!last_live) as i64);
            proptest::prop_assert_eq!(gross - sum(|d| d.reversed_minor), if last_live { gross } else { 0 });
        }
    }

    #[test]
    fn the_same_change_delivered_twice_has_one_key_and_another_position_another() {
        let a = parse(
            CdcTable::Orders,
            &order_json("c", 10, None, Some("created"), T),
        );
        let b = parse(
            CdcTable::Orders,
            &order_json("c", 10, None, Some("created"), T),
        );
        let c = parse(
            CdcTable::Orders,
            &order_json("c", 11, None, Some("created"), T),
        );
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_ne!(a.dedup_key(), c.dedup_key());
    }
}
