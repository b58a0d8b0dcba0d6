//! A deterministic generator of a realistic e-commerce event stream, for demos, tests and
//! benchmarks. Pure: it produces records; writing them to a file or Kafka is the caller's.
//!
//! The stream interleaves many concurrent user sessions. Each session belongs to a user (with
//! a stable country), uses one device, views pages (home, category and product pages, with
//! Zipf-skewed popularity), may add a viewed product to the cart and may then buy it. Prices
//! depend on the product's category and are quoted in the currency of the user's country.
//! Fractions of out-of-order, late, duplicated and invalid records are configurable. The
//! same configuration and seed always give the same bytes.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::catalogue::{catalogue_product, CATEGORIES, COUNTRIES, DEVICES, PRODUCTS};
use crate::money::{format_minor, Currency};

/// Generator settings. `Default` gives a clean stream (no disorder, duplicates or invalid
/// records) of 1,000 events per second of event time from 2026-01-01T00:00:00Z.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Event time of the first record, epoch milliseconds.
    pub start_ms: i64,
    /// Events per second of event time (the spacing of event times, not a pacing rate).
    pub events_per_second: f64,
    /// Number of distinct users.
    pub users: u32,
    /// Number of sessions open at once (interleaving).
    pub concurrent_sessions: usize,
    /// Fraction of events whose time is moved back by up to `out_of_order_ms`.
    pub out_of_order_fraction: f64,
    pub out_of_order_ms: i64,
    /// Fraction of events moved back by more than `lateness_ms` (late beyond the lateness).
    pub late_fraction: f64,
    pub lateness_ms: i64,
    /// Fraction of records that repeat an earlier record byte for byte.
    pub duplicate_fraction: f64,
    /// Fraction of records that fail validation (each with a known defect).
    pub invalid_fraction: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 1,
            start_ms: 1_767_225_600_000,
            events_per_second: 1_000.0,
            users: 50_000,
            concurrent_sessions: 2_000,
            out_of_order_fraction: 0.0,
            out_of_order_ms: 5_000,
            late_fraction: 0.0,
            lateness_ms: 60_000,
            duplicate_fraction: 0.0,
            invalid_fraction: 0.0,
        }
    }
}

impl GeneratorConfig {
    /// Checks that fractions are in `[0, 1]` and sizes positive.
    pub fn check(&self) -> Result<(), String> {
        for (name, f) in [
            ("out-of-order fraction", self.out_of_order_fraction),
            ("late fraction", self.late_fraction),
            ("duplicate fraction", self.duplicate_fraction),
            ("invalid fraction", self.invalid_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return Err(format!("{name} must be between 0 and 1, found {f}"));
            }
        }
        if self.out_of_order_fraction
            + self.late_fraction
            + self.duplicate_fraction
            + self.invalid_fraction
            > 1.0
        {
            return Err("the fractions of out-of-order, late, duplicate and invalid records add up to more than 1".into());
        }
        let rate_ok = self.events_per_second.is_finite() && self.events_per_second > 0.0;
        if !rate_ok || self.users == 0 || self.concurrent_sessions == 0 {
            return Err("events per second, users and concurrent sessions must be positive".into());
        }
        if self.out_of_order_ms <= 0 || self.lateness_ms < 0 {
            return Err("out-of-order bound must be positive and lateness non-negative".into());
        }
        Ok(())
    }
}

/// What kind of record the generator emitted (for counting; consumers see only bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Valid,
    OutOfOrder,
    Late,
    Duplicate,
    Invalid,
}

/// One generated record: a JSON object (no trailing newline) and its Kafka key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub json: Vec<u8>,
    pub key: String,
    pub kind: RecordKind,
}

/// Probability that a product page view is followed by an add-to-cart.
const P_CART: f64 = 0.15;
/// Probability that a cart is followed by a purchase.
const P_PURCHASE: f64 = 0.45;

/// Cumulative distribution for sampling by weight.
struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut total = 0.0;
        let mut cumulative: Vec<f64> = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        for c in &mut cumulative {
            *c /= total;
        }
        Weighted { cumulative }
    }

    fn zipf(n: usize, s: f64) -> Self {
        Self::new((1..=n).map(|k| 1.0 / (k as f64).powf(s)))
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let x: f64 = rng.random();
        self.cumulative
            .partition_point(|&c| c < x)
            .min(self.cumulative.len() - 1)
    }
}

#[derive(Clone, Copy)]
enum Next {
    View,
    Cart { product: usize },
    Purchase { product: usize, quantity: i64 },
}

struct Session {
    user: u32,
    id: u64,
    device: usize,
    views_left: u32,
    next: Next,
}

/// The generator. Create with [`Generator::new`], then call [`Generator::next_record`].
pub struct Generator {
    cfg: GeneratorConfig,
    rng: ChaCha8Rng,
    seq: u64,
    next_session_id: u64,
    sessions: Vec<Session>,
    products: Weighted,
    countries: Weighted,
    devices: Weighted,
    users: Weighted,
    recent: VecDeque<Record>,
}

#[derive(Serialize)]
struct Out<'a> {
    event_id: String,
    event_type: &'a str,
    event_time: serde_json::Value,
    user_id: String,
    session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'a str>,
    country: &'a str,
    device: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
}

impl Generator {
    /// A generator; `cfg` must pass [`GeneratorConfig::check`].
    pub fn new(cfg: GeneratorConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut generator = Generator {
            products: Weighted::zipf(PRODUCTS, 1.1),
            countries: Weighted::new(COUNTRIES.iter().map(|c| c.1)),
            devices: Weighted::new(DEVICES.iter().map(|d| d.1)),
            users: Weighted::zipf(cfg.users as usize, 0.6),
            sessions: Vec::with_capacity(cfg.concurrent_sessions),
            recent: VecDeque::with_capacity(1024),
            next_session_id: 0,
            seq: 0,
            rng,
            cfg,
        };
        // Open the whole session pool up front, so the stream interleaves from the first record.
        while generator.sessions.len() < generator.cfg.concurrent_sessions {
            let session = generator.new_session();
            generator.sessions.push(session);
        }
        generator
    }

    /// Event time of the next record before any disorder is applied.
    pub fn nominal_time_ms(&self) -> i64 {
        self.cfg.start_ms + (self.seq as f64 * 1000.0 / self.cfg.events_per_second) as i64
    }

    fn user_country(&self, user: u32) -> usize {
        // Stable per user, independent of the stream position: a hash of seed and user.
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(&user.to_le_bytes(), self.cfg.seed);
        let x = (h >> 11) as f64 / (1u64 << 53) as f64;
        self.countries
            .cumulative
            .partition_point(|&c| c < x)
            .min(COUNTRIES.len() - 1)
    }

    fn product_price_usd_cents(&self, product: usize) -> i64 {
        catalogue_product(product).2
    }

    fn new_session(&mut self) -> Session {
        let user = self.users.sample(&mut self.rng) as u32;
        let device = self.devices.sample(&mut self.rng);
        let views_left = 1 + (self.rng.random::<f64>().ln() / 0.8f64.ln()) as u32; // geometric, mean 5
        self.next_session_id += 1;
        Session {
            user,
            id: self.next_session_id,
            device,
            views_left: views_left.min(60),
            next: Next::View,
        }
    }

    /// The next record.
    pub fn next_record(&mut self) -> Record {
        let roll: f64 = self.rng.random();
        let c = &self.cfg;
        let (dup, inv, late, ooo) = (
            c.duplicate_fraction,
            c.invalid_fraction,
            c.late_fraction,
            c.out_of_order_fraction,
        );
        if roll < dup && !self.recent.is_empty() {
            let i = self.rng.random_range(0..self.recent.len());
            let mut record = self.recent[i].clone();
            record.kind = RecordKind::Duplicate;
            return record;
        }
        let kind = if roll < dup + inv {
            RecordKind::Invalid
        } else if roll < dup + inv + late {
            RecordKind::Late
        } else if roll < dup + inv + late + ooo {
            RecordKind::OutOfOrder
        } else {
            RecordKind::Valid
        };
        let mut record = self.next_event(kind);
        if kind == RecordKind::Invalid {
            self.corrupt(&mut record);
        } else {
            if self.recent.len() == self.recent.capacity() {
                self.recent.pop_front();
            }
            self.recent.push_back(record.clone());
        }
        record
    }

    fn next_event(&mut self, kind: RecordKind) -> Record {
        let mut time = self.nominal_time_ms();
        match kind {
            RecordKind::OutOfOrder => time -= self.rng.random_range(1..=self.cfg.out_of_order_ms),
            RecordKind::Late => {
                time -=
                    self.cfg.lateness_ms + self.rng.random_range(1..=self.cfg.lateness_ms.max(1000))
            }
            _ => {}
        }
        self.seq += 1;
        if self.sessions.len() < self.cfg.concurrent_sessions {
            let s = self.new_session();
            self.sessions.push(s);
        }
        let slot = self.rng.random_range(0..self.sessions.len());
        let (user, session_id, device, next) = {
            let s = &self.sessions[slot];
            (s.user, s.id, s.device, s.next)
        };
        let country_idx = self.user_country(user);
        let (country, _, currency) = COUNTRIES[country_idx];
        let mut out = Out {
            event_id: format!("{:x}-{:010}", self.cfg.seed, self.seq),
            event_type: "page_view",
            event_time: if self.rng.random::<f64>() < 0.1 {
                serde_json::Value::from(time)
            } else {
                match chrono::DateTime::from_timestamp_millis(time) {
                    Some(t) => {
                        serde_json::Value::from(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                    }
                    None => serde_json::Value::from(time),
                }
            },
            user_id: format!("u{user:06}"),
            session_id: format!("s{:x}-{session_id}", self.cfg.seed),
            url: None,
            product_id: None,
            category: None,
            country,
            device: DEVICES[device].0,
            quantity: None,
            price: None,
            currency: None,
        };
        let mut next_state = Next::View;
        let mut end = false;
        match next {
            Next::View => {
                let page: f64 = self.rng.random();
                if page < 0.15 {
                    out.url = Some("/".to_string());
                } else if page < 0.35 {
                    let cat = self.rng.random_range(0..CATEGORIES.len());
                    out.url = Some(format!("/c/{}", CATEGORIES[cat].0));
                    out.category = Some(CATEGORIES[cat].0);
                } else {
                    let product = self.products.sample(&mut self.rng);
                    out.url = Some(format!("/p/{product:05}"));
                    out.product_id = Some(format!("p{product:05}"));
                    out.category = Some(CATEGORIES[product % CATEGORIES.len()].0);
                    if self.rng.random::<f64>() < P_CART {
                        next_state = Next::Cart { product };
                    }
                }
                let s = &mut self.sessions[slot];
                s.views_left = s.views_left.saturating_sub(1);
                end = s.views_left == 0 && matches!(next_state, Next::View);
            }
            Next::Cart { product } => {
                let quantity = if self.rng.random::<f64>() < 0.8 {
                    1
                } else {
                    self.rng.random_range(2..=4)
                };
                out.event_type = "add_to_cart";
                out.product_id = Some(format!("p{product:05}"));
                out.category = Some(CATEGORIES[product % CATEGORIES.len()].0);
                out.quantity = Some(quantity);
                if self.rng.random::<f64>() < P_PURCHASE {
                    next_state = Next::Purchase { product, quantity };
                } else {
                    end = self.sessions[slot].views_left == 0;
                }
            }
            Next::Purchase { product, quantity } => {
                out.event_type = "purchase";
                out.product_id = Some(format!("p{product:05}"));
                out.category = Some(CATEGORIES[product % CATEGORIES.len()].0);
                out.quantity = Some(quantity);
                let minor = self.local_price(product, currency);
                let text = format_minor(minor, currency);
                out.price = Some(if self.rng.random::<f64>() < 0.8 {
                    serde_json::Value::from(text)
                } else {
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::from(text))
                });
                out.currency = Some(currency.code());
                end = true;
            }
        }
        self.sessions[slot].next = next_state;
        if end {
            self.sessions.swap_remove(slot);
        }
        let key = out.user_id.clone();
        let json = serde_json::to_vec(&out).unwrap_or_default();
        Record { json, key, kind }
    }

    fn local_price(&self, product: usize, currency: Currency) -> i64 {
        // Approximate list prices per currency, rounded to the currency's minor unit.
        let usd = self.product_price_usd_cents(product);
        match currency {
            Currency::USD => usd,
            Currency::EUR => usd * 92 / 100,
            Currency::GBP => usd * 79 / 100,
            Currency::JPY => (usd * 150 / 100 / 10) * 10,
            Currency::CNY => usd * 72 / 10,
        }
    }

    fn corrupt(&mut self, record: &mut Record) {
        let text = String::from_utf8_lossy(&record.json).into_owned();
        let defect = self.rng.random_range(0..8);
        let corrupted = match defect {
            0 => text[..text.len() / 2].to_string(),
            1 => text.replacen("\"event_id\"", "\"event_key\"", 1),
            2 => text.replacen("\"event_type\":\"", "\"event_type\":\"x_", 1),
            3 => text.replacen(
                "\"event_time\":",
                "\"event_time\":\"not a time\",\"was\":",
                1,
            ),
            4 => text.replacen("\"country\":\"", "\"country\":\"XX", 1),
            5 => text.replacen("\"user_id\":", "\"user_id\":null,\"uid\":", 1),
            6 => format!("[{text}]"),
            _ => text.replacen(
                "\"event_time\":",
                "\"event_time\":99999999999999,\"original_time\":",
                1,
            ),
        };
        record.json = corrupted.into_bytes();
    }
}

impl Iterator for Generator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        Some(self.next_record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::validate::Validator;

    const FAR_FUTURE: i64 = 4_000_000_000_000;

    #[test]
    fn same_seed_same_bytes() {
        let a: Vec<Record> = Generator::new(GeneratorConfig::default())
            .take(2_000)
            .collect();
        let b: Vec<Record> = Generator::new(GeneratorConfig::default())
            .take(2_000)
            .collect();
        assert_eq!(a, b);
        let c: Vec<Record> = Generator::new(GeneratorConfig {
            seed: 2,
            ..Default::default()
        })
        .take(2_000)
        .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn clean_stream_is_all_valid_with_a_realistic_funnel() {
        let v = Validator::default();
        let mut counts = [0usize; 3];
        for (i, r) in Generator::new(GeneratorConfig::default())
            .take(50_000)
            .enumerate()
        {
            let e = v
                .validate(&r.json, Origin::import_line(i as i64), FAR_FUTURE)
                .unwrap_or_else(|d| panic!("{d:?}"));
            counts[e.event_type() as usize] += 1;
        }
        let [views, carts, purchases] = counts;
        assert!(
            views > carts && carts > purchases && purchases > 0,
            "{counts:?}"
        );
    }

    #[test]
    fn configured_fractions_of_bad_records_appear() {
        let cfg = GeneratorConfig {
            invalid_fraction: 0.05,
            duplicate_fraction: 0.05,
            late_fraction: 0.02,
            ..Default::default()
        };
        let v = Validator::default();
        let (mut invalid, mut dups, mut rejected) = (0, 0, 0);
        for (i, r) in Generator::new(cfg).take(20_000).enumerate() {
            match r.kind {
                RecordKind::Invalid => invalid += 1,
                RecordKind::Duplicate => dups += 1,
                _ => {}
            }
            let ok = v
                .validate(&r.json, Origin::import_line(i as i64), FAR_FUTURE)
                .is_ok();
            assert_eq!(
                ok,
                r.kind != RecordKind::Invalid,
                "{}",
                String::from_utf8_lossy(&r.json)
            );
            rejected += usize::from(!ok);
        }
        assert_eq!(invalid, rejected);
        assert!((800..1200).contains(&invalid), "{invalid}");
        assert!((800..1200).contains(&dups), "{dups}");
    }

    #[test]
    fn bad_fractions_are_refused() {
        assert!(GeneratorConfig {
            late_fraction: 1.5,
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(GeneratorConfig {
            late_fraction: 0.6,
            invalid_fraction: 0.6,
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(GeneratorConfig::default().check().is_ok());
    }
}
