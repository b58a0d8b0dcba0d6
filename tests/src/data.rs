//! Test data shared by the cross-layer tests: generated records cut at an event time,
//! NDJSON lines imported into a lake, and views compared key by key.

use batch::import::{import_ndjson, ImportOptions, ImportReport};
use lambda_io::Lake;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::{Metric, MetricViews, Origin, Validator};

/// The generator's records (`cfg` with `seed` and `start_ms`) up to the first valid event
/// at or after `end_ms`, validated against the clock `now_ms`.
pub fn records_until(
    seed: u64,
    start_ms: i64,
    end_ms: i64,
    now_ms: i64,
    cfg: GeneratorConfig,
) -> Vec<Vec<u8>> {
    let v = Validator::default();
    let mut out = Vec::new();
    for r in Generator::new(GeneratorConfig {
        seed,
        start_ms,
        ..cfg
    }) {
        if let Ok(e) = v.validate(&r.json, Origin::import_line(0), now_ms) {
            if e.event_time().0 >= end_ms {
                break;
            }
        }
        out.push(r.json);
    }
    out
}

/// Imports `lines` into `lake` as `lambda lake import` does (source name `source`, flushes
/// of `chunk_lines`, validation clock `now_ms`).
pub async fn import_lines(
    lake: &Lake,
    lines: &[Vec<u8>],
    source: &str,
    chunk_lines: usize,
    now_ms: i64,
) -> ImportReport {
    let mut text = Vec::new();
    for l in lines {
        text.extend_from_slice(l);
        text.push(b'\n');
    }
    let opts = ImportOptions {
        source: source.into(),
        chunk_lines,
        validator: Validator::default(),
        now_ms,
    };
    import_ndjson(lake, Box::new(std::io::Cursor::new(text)), source, opts)
        .await
        .expect("import")
}

/// Keys whose state differs between two views, counting keys only one side has.
pub fn keys_differing<M: Metric>(actual: &MetricViews<M>, expected: &MetricViews<M>) -> usize {
    expected
        .iter()
        .filter(|(k, s)| actual.get(k) != Some(*s))
        .count()
        + actual
            .iter()
            .filter(|(k, _)| expected.get(k).is_none())
            .count()
}
