//! The JSON of an answer's rows, written straight from the merged rows into one buffer:
//! no `serde_json::Value` per row and field, field names escaped once per answer instead
//! of once per row, and each window's times formatted once (at tens of thousands of rows
//! the encoding, not the merge, was the cost of an answer).

use shared_logic::instant::format_instant;
use shared_logic::Metric;

use crate::merge::{Row, Source};

/// Appends the rows as a JSON array: each with its window, grouped dimension values (by
/// name), evaluated values (by name), source and finality.
pub fn write_rows<M: Metric>(
    out: &mut Vec<u8>,
    rows: &[Row<'_, M::State>],
    group_names: &[&'static str],
) -> Result<(), serde_json::Error> {
    let key = |name: &str| -> Result<Vec<u8>, serde_json::Error> {
        let mut k = serde_json::to_vec(name)?;
        k.push(b':');
        Ok(k)
    };
    let dim_keys = group_names
        .iter()
        .map(|n| key(n))
        .collect::<Result<Vec<_>, _>>()?;
    let value_keys = M::VALUES
        .iter()
        .map(|(n, _)| key(n))
        .collect::<Result<Vec<_>, _>>()?;
    out.reserve(rows.len() * 160);
    out.push(b'[');
    // Rows come ordered by window: each window's times are formatted once.
    let mut times: Option<(i64, String, String)> = None;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (start, end) = match &times {
            Some((at, start, end)) if *at == row.window_start => (start, end),
            _ => {
                let t = times.insert((
                    row.window_start,
                    format_instant(row.window_start),
                    format_instant(row.window_end),
                ));
                (&t.1, &t.2)
            }
        };
        // RFC 3339 times need no escaping.
        out.extend_from_slice(b"{\"window_start\":\"");
        out.extend_from_slice(start.as_bytes());
        out.extend_from_slice(b"\",\"window_end\":\"");
        out.extend_from_slice(end.as_bytes());
        out.extend_from_slice(b"\",\"dimensions\":{");
        for (j, (k, v)) in dim_keys.iter().zip(&row.dims).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k);
            serde_json::to_writer(&mut *out, v.as_ref())?;
        }
        out.extend_from_slice(b"},\"values\":{");
        for (j, (k, v)) in value_keys.iter().zip(M::values(&row.state)).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k);
            serde_json::to_writer(&mut *out, &v)?;
        }
        out.extend_from_slice(match row.source {
            Source::Batch => b"},\"source\":\"batch\"",
            Source::Speed => b"},\"source\":\"speed\"",
            Source::BatchAndSpeed => b"},\"source\":\"batch+speed\"",
        });
        out.extend_from_slice(if row.is_final {
            b",\"final\":true}"
        } else {
            b",\"final\":false}"
        });
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::{json, Value};
    use shared_logic::metrics::{PageViews, PageViewsState};

    use super::*;

    #[test]
    fn rows_are_the_json_of_their_fields() {
        let state = PageViewsState {
            views: 3,
            ..Default::default()
        };
        let rows = vec![
            Row {
                window_start: 0,
                window_end: 60_000,
                dims: vec![Cow::Borrowed("/a\"b\\c\u{1}")],
                state: Cow::Borrowed(&state),
                source: Source::BatchAndSpeed,
                is_final: false,
            },
            Row {
                window_start: 0,
                window_end: 60_000,
                dims: vec![Cow::Owned("é".to_string())],
                state: Cow::Owned(PageViewsState::default()),
                source: Source::Batch,
                is_final: true,
            },
        ];
        let mut out = Vec::new();
        write_rows::<PageViews>(&mut out, &rows, &["url"]).unwrap();
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"window_start": "1970-01-01T00:00:00Z", "window_end": "1970-01-01T00:01:00Z",
                 "dimensions": {"url": "/a\"b\\c\u{1}"}, "values": {"views": 3, "distinct_users": 0},
                 "source": "batch+speed", "final": false},
                {"window_start": "1970-01-01T00:00:00Z", "window_end": "1970-01-01T00:01:00Z",
                 "dimensions": {"url": "é"}, "values": {"views": 0, "distinct_users": 0},
                 "source": "batch", "final": true},
            ])
        );
        let mut empty = Vec::new();
        write_rows::<PageViews>(&mut empty, &[], &[]).unwrap();
        assert_eq!(empty, b"[]");
    }
}
