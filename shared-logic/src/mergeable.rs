//! The contract every aggregate state keeps: [`Mergeable`], a commutative monoid (the shape
//! of DataFusion's `Accumulator`: a state is updated, merged, stored and evaluated), and
//! [`Signed`], a commutative group whose deltas can be retracted.
//!
//! No sum in a state can overflow into a panic or a wrong sign (issue 16). Two kinds of
//! sums, each with the one addition that keeps the laws exact at the extremes:
//! - counts (`u64`, only ever added) use [`add_count`], saturating at `u64::MAX`: for
//!   non-negative terms `min(a + b, MAX)` is associative and commutative, and a count of
//!   `u64::MAX` is an unmistakable sign that a state was corrupt (one event adds at most
//!   1,000,000, so no real fold gets near it);
//! - signed sums (money in minor units, and the retractable counts of the group states)
//!   are `i128` and use [`add_sum`]. They are wide enough: validation bounds every
//!   event's amount to [`crate::money::MAX_AMOUNT_MINOR`], so even the most extreme rates
//!   table allowed gives at most 10^28 minor units per event and 10^10 such events in one
//!   key stay exact. Only a state decoded from a corrupt file can reach the edge; it wraps
//!   there (two's complement: still a group, so merges stay associative) instead of
//!   panicking. Evaluated values are clamped into their view columns ([`crate::metric::money`]).

use std::fmt;

/// A commutative monoid: `Default` is the identity and `merge` is associative and
/// commutative. Proven for every state by the property tests in this crate.
///
/// Laws, for all states `a`, `b`, `c`:
/// - identity: `a ⊕ 0 = a`
/// - associativity: `(a ⊕ b) ⊕ c = a ⊕ (b ⊕ c)`
/// - commutativity: `a ⊕ b = b ⊕ a`
pub trait Mergeable: Default + Clone + PartialEq + fmt::Debug {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: &Self);
}

/// Adds two counts, saturating at `u64::MAX` (see the module docs).
pub fn add_count(a: u64, b: u64) -> u64 {
    a.saturating_add(b)
}

/// Adds two signed sums, wrapping at the edge of `i128` (see the module docs).
pub fn add_sum(a: i128, b: i128) -> i128 {
    a.wrapping_add(b)
}

impl Mergeable for u64 {
    fn merge(&mut self, other: &Self) {
        *self = add_count(*self, *other);
    }
}

impl Mergeable for i128 {
    fn merge(&mut self, other: &Self) {
        *self = add_sum(*self, *other);
    }
}

/// A state that is a group (signed sums): deltas can be retracted, and a key whose sums
/// return to zero holds nothing.
pub trait Signed: Mergeable {
    /// True when every sum is zero.
    fn is_zero(&self) -> bool;
}
