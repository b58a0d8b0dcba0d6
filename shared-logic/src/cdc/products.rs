//! Every version of every product, so both layers find a product's category as of an
//! order's time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::change::{Change, Op};
use super::reject::{reject, CdcReason, CdcRejection};
use super::rows::Row;
use crate::event::UNKNOWN;

/// Every version of every product: the category valid from a change's time to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductTable {
    /// Product → (valid from, category; `None` once deleted), ordered by time.
    versions: HashMap<String, Vec<(i64, Option<String>)>>,
}

/// One version of a product, as the lake keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductVersion {
    pub product_id: String,
    /// Epoch ms; `i64::MIN` for a row first seen by a snapshot (valid for all earlier time).
    pub valid_from: i64,
    /// The next version's `valid_from`; `None` for the current version.
    pub valid_to: Option<i64>,
    /// `None` after the product was deleted.
    pub category: Option<String>,
}

impl ProductTable {
    /// Applies one products change (already deduplicated). Updates and deletes of a
    /// product never seen are rejected.
    pub fn apply(&mut self, change: &Change) -> Result<(), CdcRejection> {
        let category = match &change.after {
            Some(Row::Product(p)) => Some(p.category.clone()),
            _ => None,
        };
        let known = self.versions.contains_key(&change.key);
        match change.op {
            Op::Update | Op::Delete if !known => {
                return Err(reject(
                    CdcReason::UnknownKey,
                    format!(
                        "{} of product `{}`, which was never created",
                        change.op.code(),
                        change.key
                    ),
                ))
            }
            Op::Read => {
                let list = self.versions.entry(change.key.clone()).or_default();
                match list.last() {
                    None => list.push((i64::MIN, category)),
                    // A re-snapshot of an unchanged row adds nothing.
                    Some((_, current)) if *current == category => {}
                    Some(_) => insert_version(list, change.ts_ms, category),
                }
            }
            _ => insert_version(
                self.versions.entry(change.key.clone()).or_default(),
                change.ts_ms,
                category,
            ),
        }
        Ok(())
    }

    /// Whether any change of the product was applied.
    pub fn knows(&self, product_id: &str) -> bool {
        self.versions.contains_key(product_id)
    }

    /// The product's category at `time_ms` ([`UNKNOWN`] for a product unknown then).
    pub fn category_at(&self, product_id: &str, time_ms: i64) -> &str {
        let Some(list) = self.versions.get(product_id) else {
            return UNKNOWN;
        };
        let at = list.partition_point(|(from, _)| *from <= time_ms);
        match at.checked_sub(1).and_then(|i| list[i].1.as_deref()) {
            Some(category) => category,
            None => UNKNOWN,
        }
    }

    /// Every version, ordered by product and time.
    pub fn versions(&self) -> Vec<ProductVersion> {
        let mut out = Vec::new();
        for (product, list) in &self.versions {
            for (i, (from, category)) in list.iter().enumerate() {
                out.push(ProductVersion {
                    product_id: product.clone(),
                    valid_from: *from,
                    valid_to: list.get(i + 1).map(|(t, _)| *t),
                    category: category.clone(),
                });
            }
        }
        out.sort_by(|a, b| (&a.product_id, a.valid_from).cmp(&(&b.product_id, b.valid_from)));
        out
    }

    /// Rebuilds a table from versions (as the lake keeps them).
    pub fn from_versions(versions: impl IntoIterator<Item = ProductVersion>) -> Self {
        let mut table = ProductTable::default();
        for v in versions {
            insert_version(
                table.versions.entry(v.product_id).or_default(),
                v.valid_from,
                v.category,
            );
        }
        table
    }
}

/// Inserts a version in time order; a version at an existing time replaces it (the later
/// change of the same instant wins, as in the source).
fn insert_version(list: &mut Vec<(i64, Option<String>)>, from: i64, category: Option<String>) {
    let at = list.partition_point(|(t, _)| *t < from);
    match list.get_mut(at) {
        Some((t, c)) if *t == from => *c = category,
        _ => list.insert(at, (from, category)),
    }
}
