//! Validation and normalisation: raw JSON bytes in, a validated [`Event`] or a
//! [`DeadLetter`] out. Never a panic, never silent loss.
//!
//! Rules (first failure wins, in this order): size of the record; JSON syntax; an object;
//! `event_id`, `event_type`, `event_time`, `user_id` present; per type, `url` (page view),
//! `product_id` and `quantity` (cart, purchase), `price` and `currency` (purchase); types of
//! every present field; quantity > 0; price ≥ 0 with no more decimals than its currency;
//! known currency; event time parseable and not more than the allowed skew in the future;
//! no field longer than the limit. Unknown fields are ignored. Strings are trimmed, country
//! and currency upper-cased, device and event type lower-cased; a missing optional dimension
//! becomes [`crate::event::UNKNOWN`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::event::{Device, Event, EventId, EventTime, EventType, Origin, UNKNOWN};
use crate::money::{parse_decimal_minor, Currency, DecimalError, Minor};

/// Why an event was rejected. The `snake_case` name is the stable code carried by
/// dead-letter records and API responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The record is larger than the maximum event size.
    OversizedEvent,
    /// Not valid JSON (or a key given twice).
    MalformedJson,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// A required field is absent, null or empty.
    MissingField,
    /// A field has the wrong JSON type (a number where a string is expected, say).
    BadType,
    /// `event_type` is not one of the known types.
    UnknownEventType,
    /// A field has a value outside its domain (a country that is not two letters, a device
    /// that is not desktop/mobile/tablet/other).
    InvalidValue,
    /// `quantity` is zero, negative or absurdly large on a cart or purchase.
    BadQuantity,
    /// `price` is negative.
    NegativePrice,
    /// `price` is not representable in its currency (too many decimals, too large).
    BadPrice,
    /// `currency` is not one of the accepted currencies.
    UnknownCurrency,
    /// `event_time` is neither RFC 3339 nor epoch milliseconds, or out of range.
    BadEventTime,
    /// `event_time` is further in the future than the allowed clock skew.
    FutureEventTime,
    /// A string field is longer than the maximum field length.
    OversizedField,
}

impl Reason {
    /// Every reason, for metrics and documentation.
    pub const ALL: [Reason; 14] = [
        Reason::OversizedEvent,
        Reason::MalformedJson,
        Reason::NotAnObject,
        Reason::MissingField,
        Reason::BadType,
        Reason::UnknownEventType,
        Reason::InvalidValue,
        Reason::BadQuantity,
        Reason::NegativePrice,
        Reason::BadPrice,
        Reason::UnknownCurrency,
        Reason::BadEventTime,
        Reason::FutureEventTime,
        Reason::OversizedField,
    ];

    /// The stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::OversizedEvent => "oversized_event",
            Reason::MalformedJson => "malformed_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::BadType => "bad_type",
            Reason::UnknownEventType => "unknown_event_type",
            Reason::InvalidValue => "invalid_value",
            Reason::BadQuantity => "bad_quantity",
            Reason::NegativePrice => "negative_price",
            Reason::BadPrice => "bad_price",
            Reason::UnknownCurrency => "unknown_currency",
            Reason::BadEventTime => "bad_event_time",
            Reason::FutureEventTime => "future_event_time",
            Reason::OversizedField => "oversized_field",
        }
    }

    /// Parses a reason code.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected record: its bytes as received, why, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The record exactly as received.
    pub raw: Vec<u8>,
    pub reason: Reason,
    /// A human explanation naming the field and value.
    pub message: String,
    pub origin: Origin,
}

/// Limits that validation enforces; defaults suit the e-commerce stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    /// Events more than this far ahead of `now` are rejected (`future_event_time`).
    pub max_future_skew_ms: i64,
    /// Longest accepted string field, in bytes after trimming.
    pub max_field_bytes: usize,
    /// Longest accepted record, in bytes.
    pub max_event_bytes: usize,
    /// Largest accepted quantity.
    pub max_quantity: i64,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            max_future_skew_ms: 5 * 60_000,
            max_field_bytes: 2048,
            max_event_bytes: 64 * 1024,
            max_quantity: 1_000_000,
        }
    }
}

/// A JSON value as the raw event carries it, before its field's rule is applied.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    BigUInt(u64),
    Float(f64),
    Bool,
    Nested,
}

impl Scalar<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Int(_) | Scalar::BigUInt(_) => "an integer",
            Scalar::Float(_) => "a number",
            Scalar::Bool => "a boolean",
            Scalar::Nested => "an object or array",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v)
                    .map(Scalar::Int)
                    .unwrap_or(Scalar::BigUInt(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
        }
        d.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

/// The event as sent: every field optional and untyped. Null counts as absent.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    event_type: Option<Scalar<'a>>,
    #[serde(borrow)]
    event_time: Option<Scalar<'a>>,
    #[serde(borrow)]
    user_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    session_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    url: Option<Scalar<'a>>,
    #[serde(borrow)]
    product_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    category: Option<Scalar<'a>>,
    #[serde(borrow)]
    country: Option<Scalar<'a>>,
    #[serde(borrow)]
    device: Option<Scalar<'a>>,
    #[serde(borrow)]
    quantity: Option<Scalar<'a>>,
    #[serde(borrow)]
    price: Option<Scalar<'a>>,
    #[serde(borrow)]
    currency: Option<Scalar<'a>>,
}

/// A rule failure before the raw bytes are attached.
struct Rejection {
    reason: Reason,
    message: String,
}

fn reject(reason: Reason, message: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        message: message.into(),
    }
}

type Checked<T> = Result<T, Rejection>;

impl Validator {
    /// Validates one record. `now_ms` is the wall clock used for the future-skew rule (an
    /// argument, so that the rule is deterministic in tests and replays).
    pub fn validate(&self, raw: &[u8], origin: Origin, now_ms: i64) -> Result<Event, DeadLetter> {
        self.check(raw, origin, now_ms).map_err(|r| DeadLetter {
            raw: raw.to_vec(),
            reason: r.reason,
            message: r.message,
            origin,
        })
    }

    fn check(&self, raw: &[u8], origin: Origin, now_ms: i64) -> Checked<Event> {
        if raw.len() > self.max_event_bytes {
            return Err(reject(
                Reason::OversizedEvent,
                format!(
                    "event is {} bytes, more than the limit of {}",
                    raw.len(),
                    self.max_event_bytes
                ),
            ));
        }
        // Checked before decoding: serde would read a JSON array as a struct, field by field.
        let first = raw.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some() && first != Some(&b'{') {
            return Err(match serde_json::from_slice::<IgnoredAny>(raw) {
                Ok(_) => reject(Reason::NotAnObject, "expected a JSON object"),
                Err(e) => reject(Reason::MalformedJson, format!("not valid JSON: {e}")),
            });
        }
        let ev: RawEvent = serde_json::from_slice(raw)
            .map_err(|e| reject(Reason::MalformedJson, format!("not valid JSON: {e}")))?;

        let event_id = self.required_str("event_id", ev.event_id)?;
        let type_text = self.required_str("event_type", ev.event_type)?;
        let event_type = EventType::parse(&type_text).ok_or_else(|| {
            reject(
                Reason::UnknownEventType,
                format!("event_type `{type_text}` is not one of page_view, add_to_cart, purchase"),
            )
        })?;
        let event_time = self.event_time(ev.event_time, now_ms)?;
        let user_id = self.required_str("user_id", ev.user_id)?;

        let needs_product = event_type != EventType::PageView;
        let url = self.optional_str("url", ev.url, event_type == EventType::PageView)?;
        let product_id = self.optional_str("product_id", ev.product_id, needs_product)?;
        let session_id = self.optional_str("session_id", ev.session_id, false)?;
        let category = self.optional_str("category", ev.category, false)?;
        let quantity = self.quantity(ev.quantity, needs_product)?;
        let currency = self.currency(ev.currency, event_type == EventType::Purchase)?;
        let price = self.price(ev.price, currency, event_type == EventType::Purchase)?;
        let country = self.country(ev.country)?;
        let device = self.device(ev.device)?;

        Ok(Event {
            event_id: EventId(event_id.into_owned()),
            event_type,
            event_time,
            user_id: user_id.into_owned(),
            session_id: session_id.map(Cow::into_owned),
            url: url.map_or_else(|| UNKNOWN.to_string(), Cow::into_owned),
            product_id: product_id.map(Cow::into_owned),
            category: category.map_or_else(|| UNKNOWN.to_string(), Cow::into_owned),
            country,
            device,
            quantity: if needs_product {
                quantity
            } else {
                quantity.filter(|q| *q > 0)
            },
            price,
            currency,
            origin,
        })
    }

    /// A string field: trimmed, within the length limit; empty counts as absent.
    fn optional_str<'a>(
        &self,
        name: &str,
        value: Option<Scalar<'a>>,
        required: bool,
    ) -> Checked<Option<Cow<'a, str>>> {
        let text = match value {
            None => None,
            Some(Scalar::Str(s)) => {
                let trimmed = s.trim();
                if trimmed.len() > self.max_field_bytes {
                    return Err(reject(
                        Reason::OversizedField,
                        format!(
                            "{name} is {} bytes, more than the limit of {}",
                            trimmed.len(),
                            self.max_field_bytes
                        ),
                    ));
                }
                match s {
                    _ if trimmed.is_empty() => None,
                    Cow::Borrowed(b) => Some(Cow::Borrowed(b.trim())),
                    Cow::Owned(o) => Some(Cow::Owned(o.trim().to_string())),
                }
            }
            Some(other) => {
                return Err(reject(
                    Reason::BadType,
                    format!("{name} must be a string, found {}", other.type_name()),
                ))
            }
        };
        if required && text.is_none() {
            return Err(reject(Reason::MissingField, format!("{name} is required")));
        }
        Ok(text)
    }

    fn required_str<'a>(&self, name: &str, value: Option<Scalar<'a>>) -> Checked<Cow<'a, str>> {
        Ok(self.optional_str(name, value, true)?.unwrap_or_default())
    }

    fn event_time(&self, value: Option<Scalar<'_>>, now_ms: i64) -> Checked<EventTime> {
        // Years 1970 to 9999: anything else is a unit mistake (seconds or microseconds).
        const MAX_MS: i64 = 253_402_300_799_999;
        let ms = match value {
            None => return Err(reject(Reason::MissingField, "event_time is required")),
            Some(Scalar::Int(ms)) => ms,
            Some(Scalar::Str(text)) => {
                let text = text.trim();
                if text.len() > 64 {
                    return Err(reject(
                        Reason::BadEventTime,
                        "event_time text is too long to be a time",
                    ));
                }
                if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    text.parse::<i64>().map_err(|_| {
                        reject(
                            Reason::BadEventTime,
                            format!("event_time `{text}` is out of range"),
                        )
                    })?
                } else {
                    chrono::DateTime::parse_from_rfc3339(text)
                        .map_err(|e| {
                            reject(Reason::BadEventTime, format!("event_time `{text}` is not RFC 3339 or epoch milliseconds: {e}"))
                        })?
                        .timestamp_millis()
                }
            }
            Some(Scalar::BigUInt(v)) => {
                return Err(reject(
                    Reason::BadEventTime,
                    format!("event_time {v} is out of range"),
                ))
            }
            Some(other) => {
                return Err(reject(
                    Reason::BadType,
                    format!(
                    "event_time must be an RFC 3339 string or integer epoch milliseconds, found {}",
                    other.type_name()
                ),
                ))
            }
        };
        if !(0..=MAX_MS).contains(&ms) {
            return Err(reject(
                Reason::BadEventTime,
                format!("event_time {ms} ms is outside 1970..9999"),
            ));
        }
        if ms > now_ms.saturating_add(self.max_future_skew_ms) {
            return Err(reject(
                Reason::FutureEventTime,
                format!(
                    "event_time {} is more than {} ms in the future",
                    EventTime(ms),
                    self.max_future_skew_ms
                ),
            ));
        }
        Ok(EventTime(ms))
    }

    fn quantity(&self, value: Option<Scalar<'_>>, required: bool) -> Checked<Option<i64>> {
        let q = match value {
            None if required => {
                return Err(reject(
                    Reason::MissingField,
                    "quantity is required on add_to_cart and purchase",
                ))
            }
            None => return Ok(None),
            Some(Scalar::Int(q)) => q,
            Some(Scalar::BigUInt(q)) => {
                return Err(reject(
                    Reason::BadQuantity,
                    format!("quantity {q} is larger than {}", self.max_quantity),
                ))
            }
            Some(other) => {
                return Err(reject(
                    Reason::BadType,
                    format!("quantity must be an integer, found {}", other.type_name()),
                ))
            }
        };
        if required && q <= 0 {
            return Err(reject(
                Reason::BadQuantity,
                format!("quantity must be positive, found {q}"),
            ));
        }
        if q > self.max_quantity {
            return Err(reject(
                Reason::BadQuantity,
                format!("quantity {q} is larger than {}", self.max_quantity),
            ));
        }
        Ok(Some(q))
    }

    fn currency(&self, value: Option<Scalar<'_>>, required: bool) -> Checked<Option<Currency>> {
        let Some(text) = self.optional_str("currency", value, required)? else {
            return Ok(None);
        };
        Currency::parse(&text).map(Some).ok_or_else(|| {
            reject(
                Reason::UnknownCurrency,
                format!("currency `{text}` is not one of USD, EUR, GBP, JPY, CNY"),
            )
        })
    }

    fn price(
        &self,
        value: Option<Scalar<'_>>,
        currency: Option<Currency>,
        required: bool,
    ) -> Checked<Option<Minor>> {
        let text: Cow<str> = match value {
            None if required => {
                return Err(reject(
                    Reason::MissingField,
                    "price is required on purchase",
                ))
            }
            None => return Ok(None),
            Some(Scalar::Str(s)) => Cow::Owned(s.trim().to_string()),
            Some(Scalar::Int(v)) => Cow::Owned(v.to_string()),
            Some(Scalar::BigUInt(v)) => Cow::Owned(v.to_string()),
            // Display of f64 is the shortest text that reads back to the same number, which
            // is the literal the client wrote for any price with up to 15 significant digits.
            Some(Scalar::Float(v)) => Cow::Owned(v.to_string()),
            Some(other) => {
                return Err(reject(
                    Reason::BadType,
                    format!(
                        "price must be a decimal number or string, found {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let Some(currency) = currency else {
            return Err(reject(Reason::MissingField, "price needs a currency"));
        };
        match parse_decimal_minor(&text, currency.exponent()) {
            Ok(minor) if minor < 0 => Err(reject(
                Reason::NegativePrice,
                format!("price {text} is negative"),
            )),
            Ok(minor) => Ok(Some(Minor(minor))),
            Err(DecimalError::Syntax) => Err(reject(
                Reason::BadType,
                format!("price `{text}` is not a decimal number"),
            )),
            Err(DecimalError::TooPrecise) => Err(reject(
                Reason::BadPrice,
                format!(
                    "price {text} has more decimal places than {currency} allows ({})",
                    currency.exponent()
                ),
            )),
            Err(DecimalError::TooLarge) => Err(reject(
                Reason::BadPrice,
                format!("price {text} is too large"),
            )),
        }
    }

    fn country(&self, value: Option<Scalar<'_>>) -> Checked<String> {
        match self.optional_str("country", value, false)? {
            None => Ok(UNKNOWN.to_string()),
            Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Ok(c.to_ascii_uppercase())
            }
            Some(c) => Err(reject(
                Reason::InvalidValue,
                format!("country `{c}` is not an ISO 3166-1 alpha-2 code"),
            )),
        }
    }

    fn device(&self, value: Option<Scalar<'_>>) -> Checked<Device> {
        match self.optional_str("device", value, false)? {
            None => Ok(Device::Unknown),
            Some(d) => Device::parse(&d).ok_or_else(|| {
                reject(
                    Reason::InvalidValue,
                    format!("device `{d}` is not one of desktop, mobile, tablet, other"),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
