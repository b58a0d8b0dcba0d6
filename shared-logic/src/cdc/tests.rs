//! Tests of the change-event contract, the products table and the order deltas.

use super::*;
use crate::event::UNKNOWN;
use crate::money::Rates;

const T: i64 = 1_767_225_600_000;

fn order_json(op: &str, lsn: i64, before: Option<&str>, after: Option<&str>, ts: i64) -> String {
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

fn product_json(op: &str, lsn: i64, id: &str, category: &str, ts: i64, wrapped: bool) -> String {
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
        Some(CdcReason::TimeOutOfRange)
    );
    assert_eq!(
        reason(order("c", T / 1000, T)),
        Some(CdcReason::TimeOutOfRange)
    );
    // Created two days after the change that reports it.
    assert_eq!(
        reason(order("c", T + 2 * 86_400_000, T)),
        Some(CdcReason::TimeOutOfRange)
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
        let sum = |f: fn(&OrderDelta) -> i128| deltas.iter().map(f).sum::<i128>();
        let gross = sum(|d| d.gross_minor);
        proptest::prop_assert_eq!(sum(|d| d.orders as i128), 1);
        proptest::prop_assert_eq!(sum(|d| d.cancellations as i128), (!last_live) as i128);
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

fn order_at(op: &str, created: i64, ts: i64, price: &str, quantity: i64) -> String {
    format!(
        r#"{{"before":null,"after":{{"id":"o{created}","user_id":"u1","product_id":"p1","quantity":{quantity},"price":"{price}","currency":"GBP","country":"GB","status":"placed","created_at":{created}}},"source":{{"ts_ms":{ts},"lsn":{created}}},"op":"{op}"}}"#
    )
}

#[test]
fn a_change_may_not_reach_further_back_than_the_order_age_limit() {
    // Issue 16: an order created in 2000, reported by a change of today, made the batch
    // orders pass write one view per hour since 2000.
    const Y2000: i64 = 946_771_200_000; // 2000-01-02T00:00:00Z
    let err = Change::parse(
        CdcTable::Orders,
        order_at("c", Y2000, T, "1.00", 1).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.reason, CdcReason::TimeOutOfRange, "{}", err.message);
    assert_eq!(err.reason.code(), "time_out_of_range");
    // At the limit it is accepted, a millisecond beyond it is not; snapshots only load.
    let oldest = T - MAX_ORDER_AGE_MS;
    assert!(Change::parse(
        CdcTable::Orders,
        order_at("c", oldest, T, "1", 1).as_bytes()
    )
    .is_ok());
    let err = Change::parse(
        CdcTable::Orders,
        order_at("u", oldest - 1, T, "1", 1)
            .replace(r#""before":null"#, &format!(
                r#""before":{{"id":"o{}","user_id":"u1","product_id":"p1","quantity":1,"price":"1","currency":"GBP","country":"GB","status":"placed","created_at":{}}}"#,
                oldest - 1,
                oldest - 1
            ))
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.reason, CdcReason::TimeOutOfRange);
    assert!(Change::parse(CdcTable::Orders, order_at("r", Y2000, T, "1", 1).as_bytes()).is_ok());
    // The direct computation (what the batch pass replays) holds only the recent hour.
    let product = product_json("c", 1, "p1", "books", T - MAX_ORDER_AGE_MS, false);
    let (old, recent) = (
        order_at("c", Y2000, T, "5", 1),
        order_at("c", T - 1, T, "5", 1),
    );
    let views = crate::orders::replay_in_order(
        [
            (CdcTable::Products, product.as_bytes()),
            (CdcTable::Orders, old.as_bytes()),
            (CdcTable::Orders, recent.as_bytes()),
        ],
        &crate::MetricContext::default(),
    )
    .orders;
    let hours: std::collections::BTreeSet<i64> =
        views.iter().map(|(k, _)| k.window.0 / 3_600_000).collect();
    assert_eq!(hours.len(), 1, "{hours:?}");
}

#[test]
fn a_source_time_beyond_year_9999_is_rejected() {
    let far = 253_402_300_800_000; // 10000-01-01
    let err =
        Change::parse(CdcTable::Orders, order_at("c", far, far, "1", 1).as_bytes()).unwrap_err();
    assert_eq!(err.reason, CdcReason::TimeOutOfRange, "{}", err.message);
}

#[test]
fn an_order_line_above_the_amount_limit_is_rejected() {
    // Issue 16: 90 000 000 000 GBP × 1 000 000 is beyond what a metric sum is sized for.
    let err = Change::parse(
        CdcTable::Orders,
        order_at("c", T, T, "90000000000", 1_000_000).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.reason, CdcReason::AmountOutOfRange, "{}", err.message);
    assert_eq!(err.reason.code(), "amount_out_of_range");
    // 10^13 pence exactly is accepted.
    assert!(Change::parse(
        CdcTable::Orders,
        order_at("c", T, T, "100000", 1_000_000).as_bytes()
    )
    .is_ok());
}

#[test]
fn a_source_time_ahead_of_the_record_clock_is_rejected() {
    // A change stamped in 9999 (with an order of 9999) passes every bound relative to its
    // own source time; against its record's timestamp it is out of range.
    let far = 253_402_000_000_000; // 9999-12-28
    let json = order_at("c", far, far, "1", 1);
    assert!(Change::parse(CdcTable::Orders, json.as_bytes()).is_ok());
    let err = Change::parse_at(CdcTable::Orders, json.as_bytes(), T).unwrap_err();
    assert_eq!(err.reason, CdcReason::TimeOutOfRange, "{}", err.message);
    // Up to a day ahead of the record is clock skew; without a record timestamp (the
    // clock is i64::MAX) the rule does not apply.
    let skewed = order_at("c", T, T + MAX_SOURCE_AHEAD_MS, "1", 1);
    assert!(Change::parse_at(CdcTable::Orders, skewed.as_bytes(), T).is_ok());
    let beyond = order_at("c", T, T + MAX_SOURCE_AHEAD_MS + 1, "1", 1);
    assert_eq!(
        Change::parse_at(CdcTable::Orders, beyond.as_bytes(), T)
            .unwrap_err()
            .reason,
        CdcReason::TimeOutOfRange
    );
    assert!(Change::parse_at(CdcTable::Orders, json.as_bytes(), i64::MAX).is_ok());
    assert_eq!(
        Change::parse_at(CdcTable::Orders, b"", T).unwrap(),
        None,
        "a tombstone carries nothing"
    );
}
