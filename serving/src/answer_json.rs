//! The JSON of an answer's rows, written straight from the merged rows (no intermediate
//! `serde_json::Value` per row and field: at tens of thousands of rows that tree, not the
//! merge, was the cost of an answer).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use shared_logic::instant::format_instant;
use shared_logic::Metric;

use crate::merge::Row;

/// The rows of an answer as a JSON array: each with its window, grouped dimension values
/// (by name), evaluated values (by name), source and finality.
pub struct RowsJson<'a, M: Metric> {
    pub rows: &'a [Row<'a, M::State>],
    pub group_names: &'a [&'static str],
}

impl<M: Metric> Serialize for RowsJson<'_, M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        // Rows come ordered by window: each window's times are formatted once.
        let mut times: Option<(i64, String, String)> = None;
        for row in self.rows {
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
            seq.serialize_element(&RowJson::<M> {
                row,
                start,
                end,
                group_names: self.group_names,
            })?;
        }
        seq.end()
    }
}

struct RowJson<'a, M: Metric> {
    row: &'a Row<'a, M::State>,
    start: &'a str,
    end: &'a str,
    group_names: &'a [&'static str],
}

impl<M: Metric> Serialize for RowJson<'_, M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let row = self.row;
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("window_start", self.start)?;
        map.serialize_entry("window_end", self.end)?;
        map.serialize_entry(
            "dimensions",
            &Pairs(self.group_names.iter().copied().zip(row.dims.iter())),
        )?;
        let values = M::values(&row.state);
        map.serialize_entry(
            "values",
            &Pairs(M::VALUES.iter().map(|(name, _)| *name).zip(values.iter())),
        )?;
        map.serialize_entry("source", &row.source)?;
        map.serialize_entry("final", &row.is_final)?;
        map.end()
    }
}

/// A JSON object from `(name, value)` pairs, in order.
struct Pairs<I>(I);

impl<I, V> Serialize for Pairs<I>
where
    I: Iterator<Item = (&'static str, V)> + Clone,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.0.clone() {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}
