//! A versioned dimension: every version of every row of a dimension table (`products`,
//! `users`), valid from its change's time to the next version's, so both layers look a
//! row up **as of** an order's time. The one implementation behind
//! [`super::ProductTable`] and [`super::UserTable`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::change::{Change, Op};
use super::reject::{reject, CdcReason, CdcRejection};

/// Every version of every row: the attributes `A` valid from a change's time to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
pub struct Versions<A> {
    /// Key → (valid from, attributes; `None` once deleted), ordered by time.
    versions: HashMap<String, Vec<(i64, Option<A>)>>,
}

impl<A> Default for Versions<A> {
    fn default() -> Self {
        Versions {
            versions: HashMap::new(),
        }
    }
}

/// One version of one row, as the lake keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version<A> {
    pub key: String,
    /// Epoch ms; `i64::MIN` for a row first seen by a snapshot (valid for all earlier time).
    pub valid_from: i64,
    /// The next version's `valid_from`; `None` for the current version.
    pub valid_to: Option<i64>,
    /// `None` after the row was deleted.
    pub attributes: Option<A>,
}

impl<A: Clone + PartialEq> Versions<A> {
    /// Applies one change of the table (already deduplicated) whose after image carries
    /// `attributes` (`None` for a delete). Updates and deletes of a row never seen are
    /// rejected (`unknown_key`; `noun` names the row in the message).
    pub fn apply(
        &mut self,
        change: &Change,
        attributes: Option<A>,
        noun: &str,
    ) -> Result<(), CdcRejection> {
        let known = self.versions.contains_key(&change.key);
        match change.op {
            Op::Update | Op::Delete if !known => {
                return Err(reject(
                    CdcReason::UnknownKey,
                    format!(
                        "{} of {noun} `{}`, which was never created",
                        change.op.code(),
                        change.key
                    ),
                ))
            }
            Op::Read => {
                let list = self.versions.entry(change.key.clone()).or_default();
                match list.last() {
                    None => list.push((i64::MIN, attributes)),
                    // A re-snapshot of an unchanged row adds nothing.
                    Some((_, current)) if *current == attributes => {}
                    Some(_) => insert_version(list, change.ts_ms, attributes),
                }
            }
            _ => insert_version(
                self.versions.entry(change.key.clone()).or_default(),
                change.ts_ms,
                attributes,
            ),
        }
        Ok(())
    }

    /// Whether any change of the row was applied.
    pub fn knows(&self, key: &str) -> bool {
        self.versions.contains_key(key)
    }

    /// The row's attributes at `time_ms`: `None` for a row unknown or deleted then.
    pub fn at(&self, key: &str, time_ms: i64) -> Option<&A> {
        let list = self.versions.get(key)?;
        let at = list.partition_point(|(from, _)| *from <= time_ms);
        at.checked_sub(1).and_then(|i| list[i].1.as_ref())
    }

    /// Every version, ordered by key and time.
    pub fn versions(&self) -> Vec<Version<A>> {
        let mut out = Vec::new();
        for (key, list) in &self.versions {
            for (i, (from, attributes)) in list.iter().enumerate() {
                out.push(Version {
                    key: key.clone(),
                    valid_from: *from,
                    valid_to: list.get(i + 1).map(|(t, _)| *t),
                    attributes: attributes.clone(),
                });
            }
        }
        out.sort_by(|a, b| (&a.key, a.valid_from).cmp(&(&b.key, b.valid_from)));
        out
    }

    /// Rebuilds a table from versions (as the lake keeps them).
    pub fn from_versions(versions: impl IntoIterator<Item = Version<A>>) -> Self {
        let mut table = Versions::default();
        for v in versions {
            insert_version(
                table.versions.entry(v.key).or_default(),
                v.valid_from,
                v.attributes,
            );
        }
        table
    }

    /// Number of rows (keys) ever seen.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// True when no change was applied.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

/// Inserts a version in time order; a version at an existing time replaces it (the later
/// change of the same instant wins, as in the source).
fn insert_version<A>(list: &mut Vec<(i64, Option<A>)>, from: i64, attributes: Option<A>) {
    let at = list.partition_point(|(t, _)| *t < from);
    match list.get_mut(at) {
        Some((t, a)) if *t == from => *a = attributes,
        _ => list.insert(at, (from, attributes)),
    }
}
