//! Why a change event is rejected: a stable reason code for the dead-letter topic and a
//! message naming the field.

use serde::{Deserialize, Serialize};

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
    /// A time outside the span one change may touch: `source.ts_ms` before 2000 or after
    /// 9999, or an order's `created_at` more than [`super::MAX_ORDER_AGE_MS`] before or
    /// [`super::MAX_CREATED_AHEAD_MS`] after the change.
    TimeOutOfRange,
    /// An order's `price × quantity` above [`crate::money::MAX_AMOUNT_MINOR`] minor units.
    AmountOutOfRange,
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
            CdcReason::TimeOutOfRange => "time_out_of_range",
            CdcReason::AmountOutOfRange => "amount_out_of_range",
        }
    }
}

/// A rejected change event: the reason and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcRejection {
    pub reason: CdcReason,
    pub message: String,
}

pub(crate) fn reject(reason: CdcReason, message: impl Into<String>) -> CdcRejection {
    CdcRejection {
        reason,
        message: message.into(),
    }
}
