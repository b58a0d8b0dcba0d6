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

/// Checks the monoid laws on three states, as the property tests of every state do:
/// associativity, commutativity and identity (on both sides). Returns `a ⊕ b ⊕ c`, which
/// every grouping and order of merges must give, or the law broken.
pub fn check_laws<T: Mergeable>(a: &T, b: &T, c: &T) -> Result<T, String> {
    let merged = |x: &T, y: &T| {
        let mut out = x.clone();
        out.merge(y);
        out
    };
    let ab_c = merged(&merged(a, b), c);
    let a_bc = merged(a, &merged(b, c));
    if ab_c != a_bc {
        return Err(format!("not associative: {ab_c:?} != {a_bc:?}"));
    }
    if merged(a, b) != merged(b, a) {
        return Err(format!("not commutative for {a:?} and {b:?}"));
    }
    if merged(a, &T::default()) != *a || merged(&T::default(), a) != *a {
        return Err(format!("the default is not the identity for {a:?}"));
    }
    Ok(ab_c)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the left operand: associative, not commutative.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct First(Option<u8>);
    impl Mergeable for First {
        fn merge(&mut self, other: &Self) {
            self.0 = self.0.or(other.0);
        }
    }

    /// Subtracts: neither associative nor commutative.
    #[derive(Debug, Clone, Default, PartialEq)]
    struct Minus(i64);
    impl Mergeable for Minus {
        fn merge(&mut self, other: &Self) {
            self.0 -= other.0;
        }
    }

    #[test]
    fn the_law_check_names_the_law_a_merge_breaks() {
        assert_eq!(check_laws(&3u64, &4, &u64::MAX), Ok(u64::MAX));
        let first = check_laws(&First(Some(1)), &First(Some(2)), &First(None));
        assert!(first.unwrap_err().starts_with("not commutative"));
        let minus = check_laws(&Minus(1), &Minus(2), &Minus(3));
        assert!(minus.unwrap_err().starts_with("not associative"));
    }
}
