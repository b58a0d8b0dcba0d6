//! Text targets: query strings of the metrics API, the TOML configuration file, decimal
//! prices and timestamps.

use std::path::Path;

use clap::{Args, Command};
use serving::query::{MetricQuery, QueryLimits};
use shared_logic::instant::{format_instant, parse_instant, MAX_MS};
use shared_logic::money::{format_minor, parse_decimal_minor, MAX_MINOR};
use shared_logic::Currency;

use super::{Outcome, Target, NOW_MS};

/// `GET /v1/metrics/{metric}?{query}`: the input is `metric?query`.
pub const QUERY: Target = Target {
    name: "query",
    about: "metric query strings (`metric?from=..&to=..`)",
    json: false,
    words: &[
        "from=",
        "to=",
        "granularity=",
        "group_by=",
        "filter=",
        "limit=",
        "&",
        "=",
        "?",
        "minute",
        "hour",
        "day",
        "page_views",
        "revenue",
        "funnel",
        "sessions",
        "orders",
        "daily_sales",
        "age_group",
        "country",
        "device",
        "category",
        "url",
        "country:GB",
        ",",
        "%2C",
        "%3A",
        "%26",
        "+",
        "%",
        "%zz",
        "2026-01-01T00:00:00Z",
    ],
    values: &[],
    max_len: 64 << 10,
    run: query,
};

fn query(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let (metric, raw) = match text.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (text.as_ref(), None),
    };
    let limits = QueryLimits::default();
    match MetricQuery::parse(metric, raw, NOW_MS, &limits) {
        Ok(q) => {
            let (from, to, size) = (q.query.from_ms, q.query.to_ms, q.query.granularity_ms);
            assert!(from < to, "from {from} >= to {to}");
            assert!(to - from <= limits.max_range_ms, "range {}", to - from);
            assert!(from % size == 0 && to % size == 0, "unaligned {from}..{to}");
            assert!(
                q.limit >= 1 && q.limit <= limits.max_rows,
                "limit {}",
                q.limit
            );
            "ok".into()
        }
        Err(e) => e.code().to_string(),
    }
}

/// The TOML configuration file, checked against a command tree of real subcommands.
pub const CONFIG: Target = Target {
    name: "config",
    about: "the TOML configuration file, parsed and applied to real subcommands' options",
    json: false,
    words: &[
        "[common]",
        "[demo]",
        "[bench]",
        "[bench.ingest]",
        "[bench.query]",
        "[[demo]]",
        "log-format",
        "listen",
        "rate",
        "data-dir",
        "=",
        "\"",
        "'''",
        "\"\"\"",
        "[",
        "]",
        "{",
        "}",
        "true",
        "1979-05-27T07:32:00Z",
        "1979-05-27",
        "07:32:00",
        "0x7fffffffffffffff",
        "1e1000",
        "nan",
        "inf",
        "a.b.c.d",
        "#",
        "\\U0010FFFF",
        "\\uD800",
    ],
    values: &[],
    max_len: 256 << 10,
    run: config,
};

/// `lambda`'s global options and subcommands whose argument structs live in libraries
/// (the binary's own are private to it), in the binary's shape.
fn command() -> Command {
    let cmd = Command::new("lambda")
        .arg(
            clap::Arg::new("log_format")
                .long("log-format")
                .global(true)
                .value_parser(["text", "json"])
                .default_value("text"),
        )
        .arg(clap::Arg::new("config").long("config").global(true));
    let bench = Command::new("bench")
        .subcommand(lambda_tools::load::IngestArgs::augment_args(Command::new(
            "ingest",
        )))
        .subcommand(lambda_tools::load::QueryArgs::augment_args(Command::new(
            "query",
        )));
    cmd.subcommand(lambda_tools::demo::DemoArgs::augment_args(Command::new(
        "demo",
    )))
    .subcommand(bench)
}

fn config(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let file = match lambda_tools::config::ConfigFile::parse(Path::new("fuzz.toml"), &text) {
        Ok(f) => f,
        Err(_) => return "not_toml".into(),
    };
    match lambda_tools::config::configure(command(), Some(&file), &|_| None) {
        Ok(_) => "ok".into(),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            "invalid".into()
        }
    }
}

/// Decimal amounts as `parse_decimal_minor` reads prices.
pub const DECIMAL: Target = Target {
    name: "decimal",
    about: "decimal prices into minor units (exponents 0 and 2)",
    json: false,
    words: &["e", "E", ".", "-", "+", "e-", "e+", "0", "00", "9"],
    values: &[],
    max_len: 2 << 20,
    run: decimal,
};

fn decimal(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let mut outcome = String::new();
    for currency in [Currency::JPY, Currency::USD] {
        match parse_decimal_minor(&text, currency.exponent()) {
            Ok(minor) => {
                assert!(minor.abs() <= MAX_MINOR, "{minor} is past the bound");
                let back = format_minor(minor, currency);
                assert_eq!(
                    parse_decimal_minor(&back, currency.exponent()),
                    Ok(minor),
                    "`{back}` does not read back"
                );
                outcome.push_str("ok;");
            }
            Err(e) => outcome.push_str(&format!("{e:?};")),
        }
    }
    outcome
}

/// Instants as the API and the tools read them.
pub const INSTANT: Target = Target {
    name: "instant",
    about: "timestamps: epoch milliseconds or RFC 3339",
    json: false,
    words: &[
        "T", "Z", ":", "-", "+", ".", "+00:00", "-23:59", "2026", "01", "9999", "10000",
    ],
    values: &[],
    max_len: 64 << 10,
    run: instant,
};

fn instant(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match parse_instant(&text) {
        Ok(ms) => {
            assert!((0..=MAX_MS).contains(&ms), "{ms} is out of range");
            let back = format_instant(ms);
            assert_eq!(parse_instant(&back), Ok(ms), "`{back}` does not read back");
            "ok".into()
        }
        Err(e) => format!("{e:?}"),
    }
}
