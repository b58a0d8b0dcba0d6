//! The raw event as it arrives: one pass over the JSON that borrows every string field and
//! keeps each value's JSON type, so that the rules can name a mistyped field.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON value as the raw event carries it, before its field's rule is applied.
pub(super) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    BigUInt(u64),
    Float(f64),
    Bool,
    Nested,
}

impl Scalar<'_> {
    pub(super) fn type_name(&self) -> &'static str {
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
pub(super) struct RawEvent<'a> {
    #[serde(borrow)]
    pub(super) event_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) event_type: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) event_time: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) user_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) session_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) url: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) product_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) category: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) country: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) device: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) quantity: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) price: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) currency: Option<Scalar<'a>>,
    #[serde(borrow)]
    pub(super) source: Option<Scalar<'a>>,
}

/// Only the `source` field of a record: what a rejected record's source is read from.
#[derive(Deserialize)]
pub(super) struct RawSource<'a> {
    #[serde(borrow)]
    pub(super) source: Option<Scalar<'a>>,
}
