//! The shop the generators simulate: categories with their price ranges, countries with
//! their weights and currencies, devices, and the product catalogue. The event generator
//! and the change-stream generator sell the same products.

use crate::money::Currency;

pub(crate) const CATEGORIES: [(&str, i64, i64); 8] = [
    // (name, min and max price in US cents)
    ("electronics", 2_000, 150_000),
    ("books", 500, 6_000),
    ("clothing", 1_000, 20_000),
    ("home", 1_500, 50_000),
    ("toys", 800, 12_000),
    ("sports", 1_200, 40_000),
    ("beauty", 600, 9_000),
    ("grocery", 200, 3_000),
];

/// Product `n` of the catalogue: its id, its category and its price in US cents (the same
/// products the event stream and the change streams of [`crate::generate_cdc`] use).
pub fn catalogue_product(n: usize) -> (String, &'static str, i64) {
    let (category, lo, hi) = CATEGORIES[n % CATEGORIES.len()];
    let h = xxhash_rust::xxh3::xxh3_64(&(n as u64).to_le_bytes());
    // Round to 99 cents, as shops do.
    let cents = lo + (h % (hi - lo) as u64) as i64;
    (format!("p{n:05}"), category, (cents / 100) * 100 + 99)
}

/// The catalogue's category names.
pub fn category_names() -> impl Iterator<Item = &'static str> {
    CATEGORIES.iter().map(|c| c.0)
}

/// The countries the generator's users live in.
pub fn country_codes() -> impl Iterator<Item = &'static str> {
    COUNTRIES.iter().map(|c| c.0)
}

pub(crate) const COUNTRIES: [(&str, f64, Currency); 12] = [
    ("US", 0.34, Currency::USD),
    ("GB", 0.10, Currency::GBP),
    ("DE", 0.10, Currency::EUR),
    ("FR", 0.08, Currency::EUR),
    ("JP", 0.07, Currency::JPY),
    ("CN", 0.06, Currency::CNY),
    ("IN", 0.06, Currency::USD),
    ("BR", 0.05, Currency::USD),
    ("CA", 0.05, Currency::USD),
    ("ES", 0.04, Currency::EUR),
    ("AU", 0.03, Currency::USD),
    ("NL", 0.02, Currency::EUR),
];

pub(crate) const DEVICES: [(&str, f64); 4] = [
    ("mobile", 0.56),
    ("desktop", 0.36),
    ("tablet", 0.07),
    ("other", 0.01),
];

/// Products in the catalogue.
pub const PRODUCTS: usize = 2_000;
