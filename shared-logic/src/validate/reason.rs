//! Why a record was rejected ([`Reason`], a stable code) and the dead letter that carries
//! the record with it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::Origin;

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
    /// `price × quantity` is larger than the per-event amount limit
    /// ([`crate::money::MAX_AMOUNT_MINOR`] minor units of the event's currency by default).
    AmountOutOfRange,
}

impl Reason {
    /// Every reason, for metrics and documentation.
    pub const ALL: [Reason; 15] = [
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
        Reason::AmountOutOfRange,
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
            Reason::AmountOutOfRange => "amount_out_of_range",
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
    /// The record's source when it could be read (its header, or the JSON field of a record
    /// that parsed), else `unknown`: see [`crate::source`].
    pub source: String,
    /// The Kafka record timestamp, epoch ms, when the record had one.
    pub record_ms: Option<i64>,
}
