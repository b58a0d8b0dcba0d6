//! Seed inputs made from the platform's own inputs: generated events and change records,
//! query strings and configuration files as the docs write them, views files and a
//! checkpoint written by the code that writes them in production. `lambda-fuzz seed-corpus`
//! writes them to `fuzz/corpus/`; runs also add them fresh, so that a format change (a new
//! checkpoint field, other metric logic) never leaves a target with only stale seeds.

use std::path::Path;

use lambda_io::views_file::encode_views;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
use shared_logic::{Aggregates, Event, MetricContext, Origin, Validator};

use crate::targets::NOW_MS;
use crate::FuzzError;

/// Named seed inputs of `target` (empty for an unknown target).
pub fn generate(target: &str) -> Vec<(String, Vec<u8>)> {
    let named = |items: Vec<Vec<u8>>| -> Vec<(String, Vec<u8>)> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, b)| (format!("seed-{i:03}"), b))
            .collect()
    };
    match target {
        "event" => named(event_bodies()),
        "cdc" => named(
            cdc_records(16, false)
                .into_iter()
                .chain(cdc_records(4, true))
                .collect(),
        ),
        "query" => named(texts(QUERIES)),
        "config" => named(texts(CONFIGS)),
        "views" => views_files(),
        "checkpoint" => named(vec![checkpoint_file()]),
        "decimal" => named(texts(DECIMALS)),
        "instant" => named(texts(INSTANTS)),
        _ => Vec::new(),
    }
}

/// Writes every target's seeds to `<dir>/<target>/`.
pub fn write_all(dir: &Path) -> Result<usize, FuzzError> {
    let mut n = 0;
    for target in crate::TARGETS {
        let sub = dir.join(target.name);
        let io = |source| FuzzError::Io {
            path: sub.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&sub).map_err(io)?;
        for (name, bytes) in generate(target.name) {
            std::fs::write(sub.join(name), bytes).map_err(io)?;
            n += 1;
        }
    }
    Ok(n)
}

fn texts(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

const QUERIES: &[&str] = &[
    "page_views",
    "page_views?granularity=hour",
    "revenue?from=2026-01-01T00:00:00Z&to=2026-01-01T06:00:00Z&granularity=hour&group_by=country,currency",
    "funnel?from=1767225600000&to=1767229200000&granularity=minute&filter=device:mobile&limit=100",
    "sessions?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&granularity=day&group_by=country",
    "orders?from=2026-01-01T00:00:00%2B00:00&to=2026-01-01T01:00:00Z&filter=country:GB,category:books",
    "page_views?group_by=url,device&filter=country%3AFR&limit=10",
];

const CONFIGS: &[&str] = &[
    "[common]\nlog-format = \"json\"\n\n[demo]\ndata-dir = \"./data\"\nrate = 200\n",
    "[bench.ingest]\nurl = \"http://127.0.0.1:8080\"\n\n[bench.query]\nurl = \"http://127.0.0.1:8080\"\n",
    "# comment\n[demo]\nbroker-port = 9092\nlisten = \"127.0.0.1:8080\"\nhistory-hours = 2\n",
    "[common]\nlog-format = 'text'\n[demo]\nbrokers = \"a:9092,b:9092\"\n",
];

const DECIMALS: &[&str] = &[
    "12.50",
    "0.99",
    "1999",
    "-0.25",
    "1e2",
    "1.5E-1",
    "0.10",
    "100000000000",
    "3.000",
];

const INSTANTS: &[&str] = &[
    "2026-01-01T00:00:00Z",
    "2026-01-01T01:00:00+01:00",
    "2026-01-01T00:00:00.123Z",
    "1767225600000",
    "0",
    "9999-12-31T23:59:59.999Z",
];

fn generated(count: usize, invalid: f64) -> Vec<Vec<u8>> {
    let cfg = GeneratorConfig {
        seed: 7,
        invalid_fraction: invalid,
        events_per_second: 5.0,
        ..GeneratorConfig::default()
    };
    Generator::new(cfg).take(count).map(|r| r.json).collect()
}

fn event_bodies() -> Vec<Vec<u8>> {
    let mut out = generated(24, 0.25);
    let five = generated(5, 0.0);
    out.push([b"[".as_slice(), &five.join(&b","[..]), b"]"].concat());
    out.push(five.join(&b"\n"[..]));
    out
}

fn cdc_records(count: usize, with_schema: bool) -> Vec<Vec<u8>> {
    let cfg = CdcConfig {
        seed: 11,
        products: 5,
        cancel_fraction: 0.5,
        with_schema,
        ..CdcConfig::default()
    };
    CdcGenerator::new(cfg).take(count).map(|r| r.json).collect()
}

fn events(count: usize) -> Vec<Event> {
    let v = Validator::default();
    generated(count, 0.0)
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| v.validate(raw, Origin::import_line(i as i64), NOW_MS).ok())
        .collect()
}

fn views_files() -> Vec<(String, Vec<u8>)> {
    let ctx = MetricContext::default();
    let agg = Aggregates::fold(&events(300), &ctx);
    let records: Vec<(shared_logic::cdc::CdcTable, Vec<u8>)> = CdcGenerator::new(CdcConfig {
        products: 5,
        ..CdcConfig::default()
    })
    .take(60)
    .map(|r| (r.table, r.json))
    .collect();
    let changed = shared_logic::orders::replay_in_order(
        records.iter().map(|(t, b)| (*t, b.as_slice())),
        &ctx,
    );
    let w = &ctx.windows;
    let files = [
        ("page_views", encode_views(&agg.page_views, w, "page_views")),
        ("revenue", encode_views(&agg.revenue, w, "revenue")),
        ("funnel", encode_views(&agg.funnel, w, "funnel")),
        ("sessions", encode_views(&agg.sessions, w, "sessions")),
        ("orders", encode_views(&changed.orders, w, "orders")),
        (
            "daily_sales",
            encode_views(&changed.daily_sales, w, "daily_sales"),
        ),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| (format!("{name}.parquet"), bytes.expect("views encode")))
        .collect()
}

/// The base of a checkpoint of a partition that has folded some events, as `CheckpointStore`
/// writes it.
fn checkpoint_file() -> Vec<u8> {
    let ctx = MetricContext::default();
    let events = events(200);
    let mut state = speed::partition::PartitionState::default();
    state.aggregates = Aggregates::fold(&events, &ctx);
    state.add_topic("t");
    state.max_event_time = events.iter().map(|e| e.event_time().0).max();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lake = lambda_io::Lake::open(dir.path().to_str().expect("UTF-8"), true).expect("lake");
    let store = speed::checkpoint::CheckpointStore::new(lake.clone(), "g", "t");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        store.save(0, &state, &ctx).await.expect("checkpoint saved");
        let base = crate::targets::files::checkpoint_base(dir.path(), 0).expect("a base");
        lake.get(&lake.path(&format!("g/t/p0/{base}")))
            .await
            .expect("checkpoint read")
            .expect("checkpoint exists")
            .to_vec()
    })
}
