//! Money: currencies, integer minor units, exact decimal parsing, and conversion into the
//! reporting currency through a dated rates table.
//!
//! Money is never a float. Prices are parsed from their decimal text into integer minor
//! units; conversion multiplies integers (rates are fixed-point with 9 decimals) in `i128`
//! and rounds once, half to even, per event. Sums of minor units are then exact in any order,
//! which is what lets batch and speed agree to the unit.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::LogicError;

/// An amount in integer minor units (cents for USD, yen for JPY) of some currency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct Minor(pub i64);

/// The currencies the platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    USD,
    EUR,
    GBP,
    JPY,
    CNY,
}

impl Currency {
    /// Every accepted currency.
    pub const ALL: [Currency; 5] = [
        Currency::USD,
        Currency::EUR,
        Currency::GBP,
        Currency::JPY,
        Currency::CNY,
    ];

    /// ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::USD => "USD",
            Currency::EUR => "EUR",
            Currency::GBP => "GBP",
            Currency::JPY => "JPY",
            Currency::CNY => "CNY",
        }
    }

    /// Number of decimal places of the minor unit (ISO 4217 exponent).
    pub fn exponent(self) -> u32 {
        match self {
            Currency::JPY => 0,
            _ => 2,
        }
    }

    /// Parses an ISO code, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a decimal amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a plain decimal number (`12`, `12.5`, `-0.25`).
    Syntax,
    /// More significant decimal places than the currency's minor unit holds.
    TooPrecise,
    /// Larger than the platform accepts.
    TooLarge,
}

/// Largest accepted absolute amount in minor units (10^13, a hundred billion dollars in cents).
pub const MAX_MINOR: i64 = 10_000_000_000_000;

/// Largest accepted amount of one event, `price × quantity` in minor units of its currency
/// (validation's `amount_out_of_range`, and the same bound on CDC order rows). It is what
/// makes every sum in a metric state safe (see [`crate::mergeable`]).
pub const MAX_AMOUNT_MINOR: i64 = MAX_MINOR;

/// Exponents are read saturating at this magnitude: it dwarfs the length of any text, so a
/// saturated exponent gives the same answer as the exact one (zero, too large or too precise).
const EXPONENT_CAP: i64 = 1 << 40;

/// Digits of [`MAX_MINOR`]: a value with more significant digits is too large.
const MAX_MINOR_DIGITS: i64 = 14;

/// Parses decimal text (optionally signed, optional fraction, optional exponent as written
/// by JSON number formatting) into minor units of a currency with `exponent` decimals.
/// Trailing zeros beyond the exponent are accepted; other extra digits are `TooPrecise`.
///
/// Linear in the length of the text whatever the exponent: the answer is decided from the
/// count of significant digits and the exponent (`0e2147483647` is zero at once, `1e99` too
/// large at once), and at most [`MAX_MINOR_DIGITS`] digits are ever multiplied out.
pub fn parse_decimal_minor(text: &str, exponent: u32) -> Result<i64, DecimalError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // Split off a scientific exponent (`1e-2`), which `f64` display never emits but JSON allows.
    let (mantissa, sci) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], parse_exponent(&rest[i + 1..])?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err(DecimalError::Syntax);
    }
    // value = digits × 10^(sci - frac_len); minor = value × 10^exponent.
    let digits = int_part
        .bytes()
        .chain(frac_part.bytes())
        .skip_while(|b| *b == b'0');
    let significant = digits.clone().count() as i64;
    if significant == 0 {
        return Ok(0);
    }
    let scale = sci - frac_part.len() as i64 + exponent as i64;
    // The digits that stay left of the minor unit's point; the rest must be zeros.
    let kept = if scale >= 0 {
        significant
    } else {
        significant + scale
    };
    if digits.clone().skip(kept.max(0) as usize).any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise);
    }
    // The first digit is not zero: the value is at least 10^(kept - 1 + scale).
    if kept + scale.max(0) > MAX_MINOR_DIGITS {
        return Err(DecimalError::TooLarge);
    }
    let mut value: i64 = 0;
    for b in digits.take(kept as usize) {
        value = value * 10 + (b - b'0') as i64;
    }
    value *= 10i64.pow(scale.max(0) as u32);
    if value > MAX_MINOR {
        return Err(DecimalError::TooLarge);
    }
    Ok(if negative { -value } else { value })
}

/// A scientific exponent (`-2`, `+7`, `12`), saturating at ±[`EXPONENT_CAP`].
fn parse_exponent(text: &str) -> Result<i64, DecimalError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::Syntax);
    }
    let magnitude = digits
        .bytes()
        .fold(0i64, |v, b| (v * 10 + (b - b'0') as i64).min(EXPONENT_CAP));
    Ok(if negative { -magnitude } else { magnitude })
}

/// Formats minor units of a currency as decimal text (`1234` USD → `12.34`).
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let exp = currency.exponent();
    if exp == 0 {
        return minor.to_string();
    }
    let unit = 10i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / unit as u64,
        abs % unit as u64,
        width = exp as usize
    )
}

/// The rates table shipped with the platform (`shared-logic/rates.csv`).
pub const DEFAULT_RATES_CSV: &str = include_str!("../rates.csv");

/// A dated table of exchange rates: for each currency, the USD value of one unit, valid from
/// a date (UTC) until the next entry of that currency.
///
/// Dates before a currency's first entry use that first entry. The table is part of the
/// metric definition: batch and speed must load the same table (see [`Rates::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    /// Per currency (indexed as [`Currency::ALL`]): `(days since epoch valid from, usd per unit × 10^9)`, sorted.
    table: [Vec<(i64, i128)>; 5],
    reporting: Currency,
    fingerprint: u64,
}

impl Rates {
    /// Parses a CSV table with the header `valid_from,currency,usd_per_unit`, one rate per
    /// line (`2026-01-01,EUR,1.085`). Every accepted currency needs at least one line.
    pub fn parse_csv(text: &str, reporting: Currency) -> Result<Self, LogicError> {
        let mut table: [Vec<(i64, i128)>; 5] = Default::default();
        let mut seen_header = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !seen_header {
                if line.replace(' ', "") != "valid_from,currency,usd_per_unit" {
                    return Err(LogicError::Rates {
                        line: line_no,
                        reason: format!(
                            "expected header `valid_from,currency,usd_per_unit`, found `{line}`"
                        ),
                    });
                }
                seen_header = true;
                continue;
            }
            let err = |reason: String| LogicError::Rates {
                line: line_no,
                reason,
            };
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [date, code, rate] = cols.as_slice() else {
                return Err(err(format!("expected 3 columns, found {}", cols.len())));
            };
            let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|e| err(format!("bad date `{date}`: {e}")))?;
            let days = date
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days();
            let currency =
                Currency::parse(code).ok_or_else(|| err(format!("unknown currency `{code}`")))?;
            let nanos = parse_decimal_minor(rate, 9)
                .map_err(|e| err(format!("bad rate `{rate}`: {e:?}")))?;
            if nanos <= 0 {
                return Err(err(format!("rate must be positive, found `{rate}`")));
            }
            let slot = &mut table[currency as usize];
            if slot.iter().any(|(d, _)| *d == days) {
                return Err(err(format!("second rate for {currency} on {date}")));
            }
            slot.push((days, nanos as i128));
        }
        for c in Currency::ALL {
            if table[c as usize].is_empty() {
                return Err(LogicError::Rates {
                    line: 0,
                    reason: format!("no rate for {c}"),
                });
            }
            table[c as usize].sort_unstable();
        }
        let fingerprint = xxhash_rust::xxh3::xxh3_64(format!("{table:?}{reporting}").as_bytes());
        Ok(Rates {
            table,
            reporting,
            fingerprint,
        })
    }

    /// The shipped table, reporting in USD.
    pub fn default_usd() -> Self {
        Self::shipped(Currency::USD)
    }

    /// The shipped table, reporting in `reporting`.
    pub fn shipped(reporting: Currency) -> Self {
        Self::parse_csv(DEFAULT_RATES_CSV, reporting).expect("the shipped rates table parses")
    }

    /// The currency revenue is reported in.
    pub fn reporting(&self) -> Currency {
        self.reporting
    }

    /// A hash of the table and reporting currency: views under different tables never merge.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn usd_per_unit(&self, currency: Currency, day: i64) -> i128 {
        let entries = &self.table[currency as usize];
        let idx = entries.partition_point(|(d, _)| *d <= day);
        entries[idx.saturating_sub(1)].1
    }

    /// Converts `amount` minor units of `currency` on the UTC day of `time_ms` into minor
    /// units of the reporting currency, rounding half to even. Exact for every amount
    /// validation accepts (at most [`MAX_AMOUNT_MINOR`]; rates are at most [`MAX_MINOR`]
    /// nanodollars, so the product stays below 10^31, far inside `i128`).
    pub fn to_reporting(&self, amount: i128, currency: Currency, time_ms: i64) -> i128 {
        if currency == self.reporting {
            return amount;
        }
        let day = time_ms.div_euclid(86_400_000);
        // Saturating: only a validator configured beyond the documented bounds gets there.
        let num = amount
            .saturating_mul(self.usd_per_unit(currency, day))
            .saturating_mul(10i128.pow(self.reporting.exponent()));
        let den = self.usd_per_unit(self.reporting, day) * 10i128.pow(currency.exponent());
        div_round_half_even(num, den)
    }
}

/// `num / den` rounded half to even (`den > 0`).
fn div_round_half_even(num: i128, den: i128) -> i128 {
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_becomes_exact_minor_units() {
        assert_eq!(parse_decimal_minor("19.99", 2), Ok(1999));
        assert_eq!(parse_decimal_minor("19.9", 2), Ok(1990));
        assert_eq!(parse_decimal_minor("19", 2), Ok(1900));
        assert_eq!(parse_decimal_minor("0.5", 2), Ok(50));
        assert_eq!(parse_decimal_minor(".5", 2), Ok(50));
        assert_eq!(parse_decimal_minor("19.990", 2), Ok(1999));
        assert_eq!(parse_decimal_minor("1500", 0), Ok(1500));
        assert_eq!(parse_decimal_minor("-2.25", 2), Ok(-225));
        assert_eq!(parse_decimal_minor("1.5e1", 2), Ok(1500));
        assert_eq!(parse_decimal_minor("1999e-2", 2), Ok(1999));
    }

    #[test]
    fn decimal_with_excess_precision_or_junk_is_rejected() {
        assert_eq!(
            parse_decimal_minor("19.999", 2),
            Err(DecimalError::TooPrecise)
        );
        assert_eq!(parse_decimal_minor("1.5", 0), Err(DecimalError::TooPrecise));
        assert_eq!(parse_decimal_minor("abc", 2), Err(DecimalError::Syntax));
        assert_eq!(parse_decimal_minor("", 2), Err(DecimalError::Syntax));
        assert_eq!(parse_decimal_minor("1.2.3", 2), Err(DecimalError::Syntax));
        assert_eq!(parse_decimal_minor("1e", 2), Err(DecimalError::Syntax));
        assert_eq!(
            parse_decimal_minor("99999999999999999999", 2),
            Err(DecimalError::TooLarge)
        );
    }

    #[test]
    fn hostile_exponents_and_digit_strings_parse_in_linear_time() {
        // Issue 16: `0e2147483647` took ~12 s of CPU (one multiplication per unit of the
        // exponent). Every case below must be answered from the text alone, and the whole
        // loop runs a hundred times in far less than a second.
        let zeros = "0".repeat(10_000);
        let cases: Vec<(String, Result<i64, DecimalError>)> = vec![
            ("0e2147483647".into(), Ok(0)),
            ("0E+2147483647".into(), Ok(0)),
            ("-0e2147483647".into(), Ok(0)),
            ("0.000000e999999999".into(), Ok(0)),
            (format!("0.{zeros}e999999999"), Ok(0)),
            ("0e99999999999999999999999999".into(), Ok(0)),
            ("0e-2147483648".into(), Ok(0)),
            ("1e-2147483648".into(), Err(DecimalError::TooPrecise)),
            ("1e2147483647".into(), Err(DecimalError::TooLarge)),
            (
                "1e99999999999999999999999999".into(),
                Err(DecimalError::TooLarge),
            ),
            (
                "1e-99999999999999999999999999".into(),
                Err(DecimalError::TooPrecise),
            ),
            ("1e11".into(), Ok(10_000_000_000_000)),
            ("1e12".into(), Err(DecimalError::TooLarge)),
            (format!("{zeros}1"), Ok(100)),
            (format!("1{zeros}"), Err(DecimalError::TooLarge)),
            (format!("1{zeros}e-10000"), Ok(100)),
            (format!("1{zeros}e-10002"), Ok(1)),
            (format!("0.{zeros}1"), Err(DecimalError::TooPrecise)),
            (format!("1.{zeros}"), Ok(100)),
            ("1e".into(), Err(DecimalError::Syntax)),
            ("1e+".into(), Err(DecimalError::Syntax)),
            ("1e--1".into(), Err(DecimalError::Syntax)),
            ("e5".into(), Err(DecimalError::Syntax)),
        ];
        for _ in 0..100 {
            for (text, expected) in &cases {
                let shown = &text[..text.len().min(40)];
                assert_eq!(&parse_decimal_minor(text, 2), expected, "{shown}");
            }
        }
    }

    #[test]
    fn minor_units_format_with_the_currency_exponent() {
        assert_eq!(format_minor(1999, Currency::USD), "19.99");
        assert_eq!(format_minor(-5, Currency::EUR), "-0.05");
        assert_eq!(format_minor(1500, Currency::JPY), "1500");
    }

    #[test]
    fn conversion_uses_the_rate_valid_on_the_event_day() {
        let csv = "valid_from,currency,usd_per_unit\n2026-01-01,USD,1\n2026-01-01,EUR,1.10\n2026-06-01,EUR,1.20\n\
                   2026-01-01,GBP,1.25\n2026-01-01,JPY,0.0065\n2026-01-01,CNY,0.14\n";
        let rates = Rates::parse_csv(csv, Currency::USD).unwrap();
        let jan = 1_768_000_000_000; // 2026-01-09
        let july = 1_783_000_000_000; // 2026-07-02
        assert_eq!(rates.to_reporting(1000, Currency::EUR, jan), 1100);
        assert_eq!(rates.to_reporting(1000, Currency::EUR, july), 1200);
        // before the first entry: the first entry applies
        assert_eq!(rates.to_reporting(1000, Currency::EUR, 0), 1100);
        // JPY has no minor unit: 1000 yen × 0.0065 = 6.50 USD
        assert_eq!(rates.to_reporting(1000, Currency::JPY, jan), 650);
        // half to even: 1 yen = 0.65 cents -> 1 cent; 3 cents of 0.5 stay even
        assert_eq!(rates.to_reporting(1, Currency::JPY, jan), 1);
        assert_eq!(rates.to_reporting(1234, Currency::USD, jan), 1234);
        let eur = Rates::parse_csv(csv, Currency::EUR).unwrap();
        assert_eq!(eur.to_reporting(1100, Currency::USD, jan), 1000);
    }

    #[test]
    fn half_even_rounding_is_exact() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(10, 3), 3);
        assert_eq!(div_round_half_even(11, 3), 4);
    }

    #[test]
    fn rates_table_errors_name_the_line() {
        let err = Rates::parse_csv(
            "valid_from,currency,usd_per_unit\n2026-01-01,XXX,1\n",
            Currency::USD,
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Rates::parse_csv(
            "valid_from,currency,usd_per_unit\n2026-01-01,USD,1\n",
            Currency::USD,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no rate for EUR"), "{err}");
        let err = Rates::parse_csv("date,code\n", Currency::USD).unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn shipped_rates_table_parses() {
        let rates = Rates::default_usd();
        assert_eq!(rates.reporting(), Currency::USD);
    }
}
