//! The rules, applied in order (first failure wins): see the module docs of
//! [`crate::validate`].

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::raw::{RawEvent, RawSource, Scalar};
use super::reason::{DeadLetter, Reason};
use crate::event::{Device, Event, EventId, EventTime, EventType, Origin, RecordMeta, UNKNOWN};
use crate::money::{parse_decimal_minor, Currency, DecimalError, Minor};

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
    /// Largest accepted `price × quantity` of one event, in minor units of its currency
    /// (`amount_out_of_range`). Together with the state sums' width this is what keeps
    /// every metric sum exact (see [`crate::mergeable`]).
    pub max_amount_minor: i64,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            max_future_skew_ms: 5 * 60_000,
            max_field_bytes: 2048,
            max_event_bytes: 64 * 1024,
            max_quantity: 1_000_000,
            max_amount_minor: crate::money::MAX_AMOUNT_MINOR,
        }
    }
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
        self.validate_record(raw, RecordMeta::at(origin), now_ms)
    }

    /// Validates one record with what its transport says of it: the source header (which
    /// wins over the JSON field `source`, see [`crate::source`]) and the record timestamp
    /// the event keeps for the delay figures.
    pub fn validate_record(
        &self,
        raw: &[u8],
        meta: RecordMeta<'_>,
        now_ms: i64,
    ) -> Result<Event, DeadLetter> {
        self.check(raw, meta, now_ms).map_err(|r| DeadLetter {
            raw: raw.to_vec(),
            reason: r.reason,
            message: r.message,
            origin: meta.origin,
            source: self.rejected_source(raw, meta),
            record_ms: meta.record_ms,
        })
    }

    /// A rejected record's source: its header when that is a name, else its JSON field when
    /// the record is an object small enough to read and the field a name, else `unknown`.
    fn rejected_source(&self, raw: &[u8], meta: RecordMeta<'_>) -> String {
        if let Some(Ok(Some(name))) = meta.source_header.map(crate::source::from_header) {
            return name;
        }
        let object = raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if raw.len() > self.max_event_bytes || !object {
            return crate::source::unknown();
        }
        let field = serde_json::from_slice::<RawSource>(raw)
            .ok()
            .and_then(|r| r.source);
        match field {
            Some(Scalar::Str(text)) => crate::source::normalise(&text)
                .ok()
                .flatten()
                .unwrap_or_else(crate::source::unknown),
            _ => crate::source::unknown(),
        }
    }

    fn check(&self, raw: &[u8], meta: RecordMeta<'_>, now_ms: i64) -> Checked<Event> {
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
        // The whole record's UTF-8 checked at once (word at a time over ASCII), rather than
        // string by string inside the parser: a tenth of the per-record path.
        let text = std::str::from_utf8(raw).map_err(|e| {
            reject(
                Reason::MalformedJson,
                format!("not valid JSON: not UTF-8 ({e})"),
            )
        })?;
        let ev: RawEvent = serde_json::from_str(text)
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
        self.amount(price, quantity, currency)?;
        let country = self.country(ev.country)?;
        let device = self.device(ev.device)?;
        let source = self.source(meta.source_header, ev.source)?;

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
            origin: meta.origin,
            source,
            record_ms: meta.record_ms,
        })
    }

    /// The header's source name, else the field's, else `unknown`; a header or field that
    /// is not a name rejects the event (`invalid_value`).
    fn source(&self, header: Option<&[u8]>, field: Option<Scalar<'_>>) -> Checked<String> {
        if let Some(bytes) = header {
            if let Some(name) = crate::source::from_header(bytes)
                .map_err(|why| reject(Reason::InvalidValue, why))?
            {
                return Ok(name);
            }
        }
        match self.optional_str("source", field, false)? {
            None => Ok(crate::source::unknown()),
            Some(text) => Ok(crate::source::normalise(&text)
                .map_err(|why| reject(Reason::InvalidValue, why))?
                .unwrap_or_else(crate::source::unknown)),
        }
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

    /// `price × quantity` within [`Validator::max_amount_minor`] (computed in `i128`: both
    /// factors are already bounded, so the product cannot overflow).
    fn amount(
        &self,
        price: Option<Minor>,
        quantity: Option<i64>,
        currency: Option<Currency>,
    ) -> Checked<()> {
        let (Some(price), Some(quantity)) = (price, quantity) else {
            return Ok(());
        };
        let amount = price.0 as i128 * quantity as i128;
        if amount > self.max_amount_minor as i128 {
            let currency = currency.unwrap_or(Currency::USD);
            return Err(reject(
                Reason::AmountOutOfRange,
                format!(
                    "price {} × quantity {quantity} is more than the limit of {} {currency} per event",
                    crate::money::format_minor(price.0, currency),
                    crate::money::format_minor(self.max_amount_minor, currency)
                ),
            ));
        }
        Ok(())
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
