//! The `products` dimension: every version of every product, so both layers find a
//! product's category as of an order's time.

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::reject::CdcRejection;
use super::rows::Row;
use super::versions::{Version, Versions};
use crate::event::UNKNOWN;

/// Every version of every product: the category valid from a change's time to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductTable(Versions<String>);

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
        self.0.apply(change, category, "product")
    }

    /// Whether any change of the product was applied.
    pub fn knows(&self, product_id: &str) -> bool {
        self.0.knows(product_id)
    }

    /// The product's category at `time_ms` ([`UNKNOWN`] for a product unknown then).
    pub fn category_at(&self, product_id: &str, time_ms: i64) -> &str {
        self.0
            .at(product_id, time_ms)
            .map_or(UNKNOWN, String::as_str)
    }

    /// Every version, ordered by product and time.
    pub fn versions(&self) -> Vec<ProductVersion> {
        self.0
            .versions()
            .into_iter()
            .map(|v| ProductVersion {
                product_id: v.key,
                valid_from: v.valid_from,
                valid_to: v.valid_to,
                category: v.attributes,
            })
            .collect()
    }

    /// Rebuilds a table from versions (as the lake keeps them).
    pub fn from_versions(versions: impl IntoIterator<Item = ProductVersion>) -> Self {
        ProductTable(Versions::from_versions(versions.into_iter().map(|v| {
            Version {
                key: v.product_id,
                valid_from: v.valid_from,
                valid_to: v.valid_to,
                attributes: v.category,
            }
        })))
    }
}
