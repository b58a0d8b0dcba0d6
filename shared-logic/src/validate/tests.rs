//! Tests of validation: every rule, its reason and message, and normalisation.

use super::*;
use crate::event::{Device, Event, EventTime, EventType, Origin, UNKNOWN};
use crate::money::{Currency, Minor};

const NOW: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z

fn check(json: &str) -> Result<Event, DeadLetter> {
    Validator::default().validate(
        json.as_bytes(),
        Origin {
            partition: 0,
            offset: 7,
        },
        NOW,
    )
}

fn reason(json: &str) -> Reason {
    match check(json) {
        Ok(e) => panic!("expected a rejection, got {e:?}"),
        Err(d) => {
            assert_eq!(d.raw, json.as_bytes());
            assert!(!d.message.is_empty());
            d.reason
        }
    }
}

const VIEW: &str = r#"{"event_id":"e1","event_type":"page_view","event_time":"2025-11-24T15:00:00Z","user_id":"u1","url":"/home"}"#;

#[test]
fn minimal_page_view_is_valid_with_unknown_dimensions() {
    let e = check(VIEW).unwrap();
    assert_eq!(e.event_id().0, "e1");
    assert_eq!(e.event_type(), EventType::PageView);
    assert_eq!(e.event_time(), EventTime(1_763_996_400_000));
    assert_eq!(e.url(), "/home");
    assert_eq!(e.country(), UNKNOWN);
    assert_eq!(e.category(), UNKNOWN);
    assert_eq!(e.device(), Device::Unknown);
    assert_eq!(
        e.origin(),
        Origin {
            partition: 0,
            offset: 7
        }
    );
}

#[test]
fn purchase_is_normalised() {
    let e = check(
        r#"{"event_id":" p1 ","event_type":"PURCHASE","event_time":1763996400000,"user_id":"u1","product_id":"sku-1",
            "quantity":3,"price":"19.99","currency":"eur","country":" de ","device":"Mobile","category":" shoes ",
            "extra":{"ignored":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(e.event_id().0, "p1");
    assert_eq!(e.event_type(), EventType::Purchase);
    assert_eq!(e.price(), Some(Minor(1999)));
    assert_eq!(e.currency(), Some(Currency::EUR));
    assert_eq!(e.country(), "DE");
    assert_eq!(e.device(), Device::Mobile);
    assert_eq!(e.category(), "shoes");
    assert_eq!(e.quantity(), Some(3));
}

#[test]
fn numeric_price_is_read_exactly() {
    let e = check(r#"{"event_id":"p","event_type":"purchase","event_time":1763996400000,"user_id":"u","product_id":"x","quantity":1,"price":0.1,"currency":"USD"}"#).unwrap();
    assert_eq!(e.price(), Some(Minor(10)));
    let e = check(r#"{"event_id":"p","event_type":"purchase","event_time":1763996400000,"user_id":"u","product_id":"x","quantity":1,"price":1500,"currency":"JPY"}"#).unwrap();
    assert_eq!(e.price(), Some(Minor(1500)));
}

#[test]
fn timezone_offsets_are_normalised_to_utc() {
    let e = check(r#"{"event_id":"e","event_type":"page_view","event_time":"2025-11-24T16:00:00+01:00","user_id":"u","url":"/"}"#).unwrap();
    assert_eq!(e.event_time(), EventTime(1_763_996_400_000));
}

#[test]
fn each_rule_has_its_reason_code() {
    let cases: &[(&str, Reason)] = &[
        ("{not json", Reason::MalformedJson),
        ("", Reason::MalformedJson),
        ("[1,2]", Reason::NotAnObject),
        ("\"text\"", Reason::NotAnObject),
        (
            r#"{"event_type":"page_view","event_time":1,"user_id":"u","url":"/"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":"  ","event_type":"page_view","event_time":1,"user_id":"u","url":"/"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":1,"user_id":null,"url":"/"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":1,"user_id":"u"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":7,"event_type":"page_view","event_time":1,"user_id":"u","url":"/"}"#,
            Reason::BadType,
        ),
        (
            r#"{"event_id":"e","event_type":"click","event_time":1,"user_id":"u","url":"/"}"#,
            Reason::UnknownEventType,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":"yesterday","user_id":"u","url":"/"}"#,
            Reason::BadEventTime,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":-5,"user_id":"u","url":"/"}"#,
            Reason::BadEventTime,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":1.5,"user_id":"u","url":"/"}"#,
            Reason::BadType,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":99999999999999,"user_id":"u","url":"/"}"#,
            Reason::FutureEventTime,
        ),
        (
            r#"{"event_id":"e","event_type":"add_to_cart","event_time":1,"user_id":"u","product_id":"x"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":"e","event_type":"add_to_cart","event_time":1,"user_id":"u","product_id":"x","quantity":0}"#,
            Reason::BadQuantity,
        ),
        (
            r#"{"event_id":"e","event_type":"add_to_cart","event_time":1,"user_id":"u","product_id":"x","quantity":-2}"#,
            Reason::BadQuantity,
        ),
        (
            r#"{"event_id":"e","event_type":"add_to_cart","event_time":1,"user_id":"u","product_id":"x","quantity":"2"}"#,
            Reason::BadType,
        ),
        (
            r#"{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":1,"currency":"USD"}"#,
            Reason::MissingField,
        ),
        (
            r#"{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":1,"price":"-1.00","currency":"USD"}"#,
            Reason::NegativePrice,
        ),
        (
            r#"{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":1,"price":"1.001","currency":"USD"}"#,
            Reason::BadPrice,
        ),
        (
            r#"{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":1,"price":"abc","currency":"USD"}"#,
            Reason::BadType,
        ),
        (
            r#"{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":1,"price":"1","currency":"XYZ"}"#,
            Reason::UnknownCurrency,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":1,"user_id":"u","url":"/","country":"USA"}"#,
            Reason::InvalidValue,
        ),
        (
            r#"{"event_id":"e","event_type":"page_view","event_time":1,"user_id":"u","url":"/","device":"watch"}"#,
            Reason::InvalidValue,
        ),
        (
            r#"{"event_id":"e","event_id":"f","event_type":"page_view","event_time":1,"user_id":"u","url":"/"}"#,
            Reason::MalformedJson,
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(reason(json), *expected, "{json}");
    }
}

#[test]
fn oversized_inputs_are_rejected() {
    let long = "x".repeat(3000);
    let json = format!(
        r#"{{"event_id":"e","event_type":"page_view","event_time":1,"user_id":"u","url":"/{long}"}}"#
    );
    assert_eq!(reason(&json), Reason::OversizedField);
    let huge = format!(r#"{{"event_id":"e","pad":"{}"}}"#, "y".repeat(70_000));
    assert_eq!(reason(&huge), Reason::OversizedEvent);
}

#[test]
fn reason_codes_round_trip() {
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.code()), Some(r));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.code())
        );
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x1234_5678_u64;
    for len in 0..2_000usize {
        let bytes: Vec<u8> = (0..len % 97)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"{}[]\":,0123456789.e-tfnul \\abcxyz_";
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        let _ = Validator::default().validate(&bytes, Origin::import_line(len as i64), NOW);
    }
    let mut json = VIEW.as_bytes().to_vec();
    for cut in 0..json.len() {
        let _ = Validator::default().validate(&json[..cut], Origin::import_line(0), NOW);
    }
    json.push(0xff);
    assert_eq!(
        Validator::default()
            .validate(&json, Origin::import_line(0), NOW)
            .unwrap_err()
            .reason,
        Reason::MalformedJson
    );
}

fn purchase(price: &str, quantity: i64, currency: &str) -> String {
    format!(
        r#"{{"event_id":"e","event_type":"purchase","event_time":1,"user_id":"u","product_id":"x","quantity":{quantity},"price":"{price}","currency":"{currency}"}}"#
    )
}

#[test]
fn purchase_with_an_amount_out_of_range_is_rejected() {
    // Issue 16: three of these overflowed the revenue fold of the speed layer.
    let huge = purchase("90000000000", 1_000_000, "GBP");
    let dead = check(&huge).unwrap_err();
    assert_eq!(dead.reason, Reason::AmountOutOfRange);
    assert!(dead.message.contains("90000000000"), "{}", dead.message);
    // The limit is price × quantity in minor units: 10^13 cents is accepted, a cent more
    // is not; a cart line is bounded the same way when it carries a price.
    assert!(check(&purchase("100000000000", 1, "USD")).is_ok());
    assert!(check(&purchase("100000", 1_000_000, "USD")).is_ok());
    assert_eq!(
        reason(&purchase("100000.01", 1_000_000, "USD")),
        Reason::AmountOutOfRange
    );
    assert_eq!(
        reason(&purchase("10000000000000", 2, "JPY")),
        Reason::AmountOutOfRange
    );
    let cart = r#"{"event_id":"e","event_type":"add_to_cart","event_time":1,"user_id":"u","product_id":"x","quantity":1000000,"price":"90000000","currency":"EUR"}"#;
    assert_eq!(reason(cart), Reason::AmountOutOfRange);
    let strict = Validator {
        max_amount_minor: 10_000,
        ..Validator::default()
    };
    let dead = strict
        .validate(
            purchase("50.00", 3, "USD").as_bytes(),
            Origin::import_line(0),
            NOW,
        )
        .unwrap_err();
    assert_eq!(dead.reason, Reason::AmountOutOfRange);
}

fn with_meta(json: &str, header: Option<&[u8]>) -> Result<Event, DeadLetter> {
    let meta = crate::event::RecordMeta {
        origin: Origin::import_line(0),
        record_ms: Some(NOW - 1_000),
        source_header: header,
    };
    Validator::default().validate_record(json.as_bytes(), meta, NOW)
}

const SOURCED: &str = r#"{"event_id":"e1","event_type":"page_view","event_time":"2025-11-24T15:00:00Z","user_id":"u1","url":"/home","source":" iOS "}"#;

#[test]
fn the_source_header_wins_over_the_field_which_wins_over_unknown() {
    let e = with_meta(SOURCED, Some(b"Web")).unwrap();
    assert_eq!((e.source(), e.record_ms()), ("web", Some(NOW - 1_000)));
    assert_eq!(with_meta(SOURCED, None).unwrap().source(), "ios");
    assert_eq!(with_meta(SOURCED, Some(b"  ")).unwrap().source(), "ios");
    assert_eq!(with_meta(VIEW, None).unwrap().source(), UNKNOWN);
    assert_eq!(check(VIEW).unwrap().record_ms(), None);
}

#[test]
fn a_source_that_is_not_a_name_rejects_the_event_and_says_why() {
    let bad_field = SOURCED.replace(" iOS ", "web shop");
    let d = with_meta(&bad_field, None).unwrap_err();
    assert_eq!(d.reason, Reason::InvalidValue);
    assert!(d.message.contains("web shop"), "{}", d.message);
    let d = with_meta(SOURCED, Some(&[0xc3, 0x28])).unwrap_err();
    assert_eq!(d.reason, Reason::InvalidValue);
    assert!(d.message.contains("not UTF-8"), "{}", d.message);
    assert_eq!(reason(&SOURCED.replace(r#"" iOS ""#, "7")), Reason::BadType);
}

#[test]
fn a_rejected_record_keeps_the_source_it_names_and_its_record_time() {
    let missing_user =
        r#"{"event_id":"e1","event_type":"page_view","event_time":1,"source":"Android"}"#;
    let d = with_meta(missing_user, None).unwrap_err();
    assert_eq!(d.reason, Reason::MissingField);
    assert_eq!(
        (d.source.as_str(), d.record_ms),
        ("android", Some(NOW - 1_000))
    );
    assert_eq!(
        with_meta(missing_user, Some(b"web")).unwrap_err().source,
        "web"
    );
    // Unreadable records: the header when it is a name, else unknown.
    assert_eq!(
        with_meta("{not json", Some(b"web")).unwrap_err().source,
        "web"
    );
    assert_eq!(with_meta("{not json", None).unwrap_err().source, UNKNOWN);
    assert_eq!(with_meta(r#"["web"]"#, None).unwrap_err().source, UNKNOWN);
    let bad_field = SOURCED.replace(" iOS ", "web shop");
    assert_eq!(with_meta(&bad_field, None).unwrap_err().source, UNKNOWN);
}
