//! One Debezium change event checked into a [`Change`]: its table, operation, key, row
//! images, source time and log position; plausible times only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::reject::{reject, CdcReason, CdcRejection};
use super::rows::{integer, invalid, order_row, product_row, user_row, Row};

/// The tables the platform reads change events of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdcTable {
    Orders,
    Products,
    Users,
}

impl CdcTable {
    /// Every table, the fact table first.
    pub const ALL: [CdcTable; 3] = [CdcTable::Orders, CdcTable::Products, CdcTable::Users];

    /// The dimension tables (read whole by every speed instance).
    pub const DIMENSIONS: [CdcTable; 2] = [CdcTable::Products, CdcTable::Users];

    /// The table's name (and, after `cdc.`, its default topic).
    pub fn name(self) -> &'static str {
        match self {
            CdcTable::Orders => "orders",
            CdcTable::Products => "products",
            CdcTable::Users => "users",
        }
    }

    /// The default topic of the table's change stream.
    pub fn default_topic(self) -> &'static str {
        match self {
            CdcTable::Orders => "cdc.orders",
            CdcTable::Products => "cdc.products",
            CdcTable::Users => "cdc.users",
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

/// Where a change sits in the source database's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub lsn: Option<i64>,
    pub tx_id: Option<i64>,
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

/// 2000-01-01T00:00:00Z: source times and order times before it are taken for a unit
/// mistake (seconds instead of milliseconds) or a placeholder, not for data.
pub const EARLIEST_TIME_MS: i64 = 946_684_800_000;

/// How far after its change an order may say it was created (clock skew), ms.
pub const MAX_CREATED_AHEAD_MS: i64 = 86_400_000;

/// How long before its change an order may have been created (400 days: a year's refund
/// window and a margin), ms. It bounds the span of hours one change can touch.
pub const MAX_ORDER_AGE_MS: i64 = 400 * 86_400_000;

/// How far a change's `source.ts_ms` may be ahead of its record's Kafka timestamp (clock
/// skew between the source database and the connector), ms. See [`Change::parse_at`].
pub const MAX_SOURCE_AHEAD_MS: i64 = 86_400_000;

/// Latest accepted source or order time: 9999-12-31T23:59:59.999Z (as for events).
const LATEST_TIME_MS: i64 = 253_402_300_799_999;

/// Source and order times must be plausible, and one change may touch only a bounded span
/// of hours (`time_out_of_range` otherwise): a source time from 2000 to 9999, and an
/// order's `created_at` from [`MAX_ORDER_AGE_MS`] before the change to
/// [`MAX_CREATED_AHEAD_MS`] after it. Otherwise one bad record would place deltas decades
/// away, and the batch layer would publish every hour in between (issue 16).
fn check_times(op: Op, ts_ms: i64, rows: [&Option<Row>; 2]) -> Result<(), CdcRejection> {
    if !(EARLIEST_TIME_MS..=LATEST_TIME_MS).contains(&ts_ms) {
        return Err(reject(
            CdcReason::TimeOutOfRange,
            format!(
                "source.ts_ms {ts_ms} is not between 2000-01-01 and 9999-12-31 (seconds instead of milliseconds?)"
            ),
        ));
    }
    // Snapshot reads load state only: an old order's snapshot is fine.
    if op == Op::Read {
        return Ok(());
    }
    let span = (ts_ms - MAX_ORDER_AGE_MS).max(EARLIEST_TIME_MS)..=ts_ms + MAX_CREATED_AHEAD_MS;
    for row in rows.into_iter().flatten() {
        if let Row::Order(o) = row {
            if !span.contains(&o.created_at) {
                return Err(reject(
                    CdcReason::TimeOutOfRange,
                    format!(
                        "created_at {} of order `{}` is not between {} days before and a day after the change (source.ts_ms {ts_ms}), nor before 2000-01-01",
                        o.created_at,
                        o.order_id,
                        MAX_ORDER_AGE_MS / 86_400_000
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
                    CdcTable::Users => Row::User(user_row(row, name)?),
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

    /// [`Change::parse`], measured against a clock too: the record's Kafka timestamp
    /// (`i64::MAX` when it has none: the rule does not apply), the one clock both layers
    /// read a change topic with. A `source.ts_ms` more than [`MAX_SOURCE_AHEAD_MS`] ahead
    /// of it is `time_out_of_range`: otherwise one change stamped in 9999 would stretch the
    /// batch orders pass (and the lake's hours) to 9999.
    pub fn parse_at(
        table: CdcTable,
        bytes: &[u8],
        clock_ms: i64,
    ) -> Result<Option<Change>, CdcRejection> {
        let change = Change::parse(table, bytes)?;
        if let Some(c) = &change {
            if c.ts_ms > clock_ms.saturating_add(MAX_SOURCE_AHEAD_MS) {
                return Err(reject(
                    CdcReason::TimeOutOfRange,
                    format!(
                        "source.ts_ms {} is more than a day ahead of the record's timestamp {clock_ms}",
                        c.ts_ms
                    ),
                ));
            }
        }
        Ok(change)
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
