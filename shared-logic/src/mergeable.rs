//! The contract every aggregate state keeps: [`Mergeable`], a commutative monoid (the shape
//! of DataFusion's `Accumulator`: a state is updated, merged, stored and evaluated), and
//! [`Signed`], a commutative group whose deltas can be retracted.

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

impl Mergeable for u64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

impl Mergeable for i64 {
    fn merge(&mut self, other: &Self) {
        *self += *other;
    }
}

/// A state that is a group (signed sums): deltas can be retracted, and a key whose sums
/// return to zero holds nothing.
pub trait Signed: Mergeable {
    /// True when every sum is zero.
    fn is_zero(&self) -> bool;
}
