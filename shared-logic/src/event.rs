//! The validated event model: the only form in which an event reaches a metric.
//!
//! An [`Event`] can only be built by [`crate::Validator`] (or decoded from the lake, which
//! only ever holds validated events), so every field here is already normalised: trimmed
//! strings, upper-case country, money in integer minor units, UTC milliseconds.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Minor};

/// Value of a dimension that the event did not carry.
pub const UNKNOWN: &str = "unknown";

/// The producer-assigned identity of an event; the dedup key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Event time in milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventTime(pub i64);

impl EventTime {
    /// The time as a chrono value, or `None` outside chrono's range.
    pub fn to_datetime(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.0)
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// Where an event came from: its Kafka partition and offset, or for an imported file
/// partition [`Origin::IMPORT_PARTITION`] and the line number as offset.
///
/// The order of origins decides which delivery of a duplicated event wins (the first in
/// `(partition, offset)` order), in both layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    pub partition: i32,
    pub offset: i64,
}

impl Origin {
    /// Partition number used for events imported from a file rather than read from Kafka.
    pub const IMPORT_PARTITION: i32 = -1;

    /// The origin of the `line`-th line (0-based) of an imported file.
    pub fn import_line(line: i64) -> Self {
        Origin {
            partition: Self::IMPORT_PARTITION,
            offset: line,
        }
    }
}

/// What the transport says of a record besides its bytes: where it was read, its Kafka
/// record timestamp and its source header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    pub origin: Origin,
    /// The Kafka record timestamp (epoch ms), when the record has one.
    pub record_ms: Option<i64>,
    /// The value of the record's [`crate::source::SOURCE_HEADER`] header, when it has one.
    pub source_header: Option<&'a [u8]>,
}

impl RecordMeta<'_> {
    /// A record known only by where it was read (an imported line, a test).
    pub fn at(origin: Origin) -> RecordMeta<'static> {
        RecordMeta {
            origin,
            record_ms: None,
            source_header: None,
        }
    }
}

/// The kinds of events the platform understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    AddToCart,
    Purchase,
}

impl EventType {
    /// All event types, in funnel order.
    pub const ALL: [EventType; 3] = [
        EventType::PageView,
        EventType::AddToCart,
        EventType::Purchase,
    ];

    /// The wire name (`page_view`, `add_to_cart`, `purchase`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// The device class of the client; `Unknown` when the event did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
    Other,
    Unknown,
}

impl Device {
    /// The values a client may send.
    pub const SENDABLE: [Device; 4] = [
        Device::Desktop,
        Device::Mobile,
        Device::Tablet,
        Device::Other,
    ];

    /// The dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Other => "other",
            Device::Unknown => UNKNOWN,
        }
    }

    /// Parses a dimension value as stored (including `unknown`), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Device::Desktop,
            Device::Mobile,
            Device::Tablet,
            Device::Other,
            Device::Unknown,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(s))
    }
}

/// A validated, normalised event.
///
/// Dimensions an event did not carry hold [`UNKNOWN`]. `price` is the unit price in minor
/// units of `currency`; revenue is `price × quantity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub(crate) event_id: EventId,
    pub(crate) event_type: EventType,
    pub(crate) event_time: EventTime,
    pub(crate) user_id: String,
    pub(crate) session_id: Option<String>,
    pub(crate) url: String,
    pub(crate) product_id: Option<String>,
    pub(crate) category: String,
    pub(crate) country: String,
    pub(crate) device: Device,
    pub(crate) quantity: Option<i64>,
    pub(crate) price: Option<Minor>,
    pub(crate) currency: Option<Currency>,
    pub(crate) origin: Origin,
    /// The producing service (see [`crate::source`]), or `unknown`.
    pub(crate) source: String,
    /// The Kafka record timestamp (when the record was produced), epoch ms; `None` for an
    /// imported line or a record without one.
    pub(crate) record_ms: Option<i64>,
}

impl Event {
    /// The dedup key.
    pub fn event_id(&self) -> &EventId {
        &self.event_id
    }

    /// What happened.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// When it happened (event time, UTC).
    pub fn event_time(&self) -> EventTime {
        self.event_time
    }

    /// Who did it.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The client session, when sent.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The page URL, or `unknown`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The product, when sent.
    pub fn product_id(&self) -> Option<&str> {
        self.product_id.as_deref()
    }

    /// The product category, or `unknown`.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// ISO 3166-1 alpha-2 country code (upper-case), or `unknown`.
    pub fn country(&self) -> &str {
        &self.country
    }

    /// The device class.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Items added or bought (> 0 on carts and purchases).
    pub fn quantity(&self) -> Option<i64> {
        self.quantity
    }

    /// Unit price in minor units of [`Event::currency`].
    pub fn price(&self) -> Option<Minor> {
        self.price
    }

    /// Currency of the price.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// Kafka partition and offset (or import line) it was read from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The same event read from another position (a redelivery).
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// The producing service, or `unknown`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The Kafka record timestamp, epoch ms, when the record had one.
    pub fn record_ms(&self) -> Option<i64> {
        self.record_ms
    }
}

/// A borrowed, validated event: what metrics read. Built from an [`Event`]
/// ([`Event::view`]) or straight from the lake's Arrow columns
/// ([`crate::schema::EventColumns::row`]) without copying strings, so both layers feed the
/// same metric code from their own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) event_type: EventType,
    pub(crate) event_time: EventTime,
    pub(crate) user_id: &'a str,
    pub(crate) url: &'a str,
    pub(crate) category: &'a str,
    pub(crate) country: &'a str,
    pub(crate) device: Device,
    pub(crate) quantity: Option<i64>,
    pub(crate) price: Option<Minor>,
    pub(crate) currency: Option<Currency>,
    pub(crate) origin: Origin,
    pub(crate) source: &'a str,
    pub(crate) record_ms: Option<i64>,
}

impl<'a> EventRef<'a> {
    /// The dedup key.
    pub fn event_id(&self) -> &'a str {
        self.event_id
    }

    /// What happened.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// When it happened (event time, UTC).
    pub fn event_time(&self) -> EventTime {
        self.event_time
    }

    /// Who did it.
    pub fn user_id(&self) -> &'a str {
        self.user_id
    }

    /// The page URL, or `unknown`.
    pub fn url(&self) -> &'a str {
        self.url
    }

    /// The product category, or `unknown`.
    pub fn category(&self) -> &'a str {
        self.category
    }

    /// ISO 3166-1 alpha-2 country code (upper-case), or `unknown`.
    pub fn country(&self) -> &'a str {
        self.country
    }

    /// The device class.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Items added or bought.
    pub fn quantity(&self) -> Option<i64> {
        self.quantity
    }

    /// Unit price in minor units of the currency.
    pub fn price(&self) -> Option<Minor> {
        self.price
    }

    /// Currency of the price.
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// Kafka partition and offset (or import line) it was read from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The producing service, or `unknown`.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// The Kafka record timestamp, epoch ms, when the record had one.
    pub fn record_ms(&self) -> Option<i64> {
        self.record_ms
    }
}

impl Event {
    /// The borrowed view metrics read.
    pub fn view(&self) -> EventRef<'_> {
        EventRef {
            event_id: &self.event_id.0,
            event_type: self.event_type,
            event_time: self.event_time,
            user_id: &self.user_id,
            url: &self.url,
            category: &self.category,
            country: &self.country,
            device: self.device,
            quantity: self.quantity,
            price: self.price,
            currency: self.currency,
            origin: self.origin,
            source: &self.source,
            record_ms: self.record_ms,
        }
    }
}
