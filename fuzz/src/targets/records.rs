//! Record targets: a collector request body (split into events and validated, as
//! `POST /v1/events` and both layers do) and a Debezium change record (parsed and turned
//! into order deltas, as both layers do).

use serving::collector::split_records;
use shared_logic::cdc::{order_deltas, CdcTable, Change, ProductTable, ReversalWindow};
use shared_logic::money::MAX_MINOR;
use shared_logic::{Origin, Rates, Validator};

use super::{Outcome, Target, NOW_MS};

/// `POST /v1/events` bodies: JSON arrays or NDJSON of events.
pub const EVENT: Target = Target {
    name: "event",
    about: "collector bodies (JSON array or NDJSON) split and validated",
    json: true,
    words: &[
        "event_id",
        "event_type",
        "event_time",
        "user_id",
        "session_id",
        "url",
        "product_id",
        "category",
        "country",
        "device",
        "quantity",
        "price",
        "currency",
        "page_view",
        "add_to_cart",
        "purchase",
        "GBP",
        "USD",
        "JPY",
        "EUR",
        "CNY",
        "XXX",
        "mobile",
    ],
    values: &[
        "\"page_view\"",
        "\"add_to_cart\"",
        "\"purchase\"",
        "\"GBP\"",
        "\"JPY\"",
        "\"gbp\"",
        "\"XXX\"",
        "\"mobile\"",
        "1000000",
        "1000001",
        "\"90000000000\"",
    ],
    max_len: 2 << 20,
    run: event,
};

fn event(input: &[u8]) -> Outcome {
    let records = match split_records(input) {
        Ok(r) => r,
        Err(e) => return format!("body:{}", e.code()),
    };
    let v = Validator::default();
    let mut outcome = String::from("ok");
    for (line, raw) in records {
        match v.validate(raw, Origin::import_line(line as i64), NOW_MS) {
            Ok(e) => {
                let t = e.event_time().0;
                assert!(
                    t >= 0 && t <= NOW_MS + v.max_future_skew_ms,
                    "event_time {t}"
                );
                assert!(!e.user_id().is_empty() && e.user_id().len() <= v.max_field_bytes);
                assert!(!e.event_id().0.is_empty() && e.event_id().0.len() <= v.max_field_bytes);
                if let Some(q) = e.quantity() {
                    assert!((0..=v.max_quantity).contains(&q), "quantity {q}");
                }
                if let Some(p) = e.price() {
                    assert!(p.0.abs() <= MAX_MINOR, "price {p:?}");
                    assert!(e.currency().is_some(), "a price without a currency");
                    let amount = p.0 as i128 * e.quantity().unwrap_or(1) as i128;
                    assert!(
                        amount.abs() <= v.max_amount_minor as i128,
                        "amount {amount}"
                    );
                }
            }
            Err(dead) => {
                assert!(!dead.message.is_empty(), "a rejection without a message");
                outcome = dead.reason.code().to_string();
            }
        }
    }
    outcome
}

/// Debezium change records of either table.
pub const CDC: Target = Target {
    name: "cdc",
    about: "Debezium change envelopes parsed for both tables, orders turned into deltas",
    json: true,
    words: &[
        "payload",
        "schema",
        "before",
        "after",
        "source",
        "ts_ms",
        "lsn",
        "txId",
        "op",
        "order_id",
        "product_id",
        "user_id",
        "status",
        "quantity",
        "unit_price",
        "currency",
        "created_at",
        "country",
        "category",
        "id",
        "name",
        "cancelled",
        "refunded",
        "placed",
    ],
    values: &[
        "\"c\"",
        "\"u\"",
        "\"d\"",
        "\"r\"",
        "\"cancelled\"",
        "\"refunded\"",
        "\"placed\"",
        "\"GBP\"",
        "946684799999",
        "946684800000",
    ],
    max_len: 1 << 20,
    run: cdc,
};

fn cdc(input: &[u8]) -> Outcome {
    let rates = Rates::default_usd();
    let mut outcome = String::new();
    for table in [CdcTable::Orders, CdcTable::Products] {
        match Change::parse(table, input) {
            Ok(None) => outcome.push_str("tombstone;"),
            Ok(Some(change)) => {
                assert!(change.ts_ms >= shared_logic::cdc::EARLIEST_TIME_MS);
                if table == CdcTable::Orders {
                    let products = ProductTable::default();
                    for reversal in [ReversalWindow::Change, ReversalWindow::Original] {
                        let deltas = order_deltas(&change, &products, &rates, reversal);
                        assert!(deltas.len() <= 4, "{} deltas for one change", deltas.len());
                    }
                } else {
                    let mut products = ProductTable::default();
                    let _ = products.apply(&change);
                }
                outcome.push_str("ok;");
            }
            Err(e) => {
                outcome.push_str(e.reason.code());
                outcome.push(';');
            }
        }
    }
    outcome
}
