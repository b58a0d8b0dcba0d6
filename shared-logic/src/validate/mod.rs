//! Validation and normalisation: raw JSON bytes in, a validated [`Event`] or a
//! [`DeadLetter`] out. Never a panic, never silent loss.
//!
//! Rules (first failure wins, in this order): size of the record; JSON syntax; an object;
//! `event_id`, `event_type`, `event_time`, `user_id` present; per type, `url` (page view),
//! `product_id` and `quantity` (cart, purchase), `price` and `currency` (purchase); types of
//! every present field; quantity > 0; price ≥ 0 with no more decimals than its currency;
//! `price × quantity` within the per-event amount limit (`amount_out_of_range`); known
//! currency; event time parseable and not more than the allowed skew in the future;
//! no field longer than the limit; a source (header `lambda-source`, else field `source`)
//! that is a source name ([`crate::source`]). Unknown fields are ignored. Strings are trimmed, country
//! and currency upper-cased, device and event type lower-cased; a missing optional dimension
//! becomes [`crate::event::UNKNOWN`].

mod raw;
mod reason;
mod rules;
#[cfg(test)]
mod tests;

pub use reason::{DeadLetter, Reason};
pub use rules::Validator;
