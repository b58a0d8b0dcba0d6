//! A speed instance's grouped rows on the wire: what `GET /v1/speed/views/{metric}` answers
//! when the reader names a grouping (`group_by=`), as an Arrow IPC stream.
//!
//! One row per window and grouped values, in order of window and then values (as the speed
//! layer hands them over): `window_start` (epoch ms), one string column per
//! grouped dimension (in the grouping's order, named after the dimension) and `state` (the
//! metric's state in the postcard encoding of `shared_logic::views`). No derived values and
//! no compression: the rows go from one process to the next and are merged at once, so the
//! encoding is the cheapest to write and read (views files, which people and other engines
//! read, are Parquet).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int64Array, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use shared_logic::views::{decode_state, encode_state, STATE_COLUMN};
use shared_logic::{GroupKey, Grouping, LogicError, Metric, WindowStart};

use crate::error::IoError;
use crate::speed_api::{Since, KNOWN_FROM_PARAM, KNOWN_TO_PARAM, SINCE_PARAM};

/// The media type of the stream.
pub const CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

/// The query parameters that ask for rows grouped by `grouping` (besides `from` and `to`):
/// `group_by` (dimension names joined by commas; empty for none), one `filter` of
/// `dimension:value` per filter, and `sketches` (`true` or `false`).
pub fn request_params<M: Metric>(grouping: &Grouping) -> Vec<(&'static str, String)> {
    let name = |i: &usize| M::DIMENSIONS.get(*i).copied().unwrap_or_default();
    let mut params = vec![(
        "group_by",
        grouping
            .group_by
            .iter()
            .map(name)
            .collect::<Vec<_>>()
            .join(","),
    )];
    params.extend(
        grouping
            .filters
            .iter()
            .map(|(i, value)| ("filter", format!("{}:{value}", name(i)))),
    );
    params.push(("sketches", grouping.sketches.to_string()));
    params
}

/// The parameters of a query string, decoded, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The grouping a request's parameters ask for ([`request_params`]), if they name one
/// (`group_by` is present); an unknown dimension or a malformed value is an error.
pub fn parse_request<M: Metric>(params: &[(String, String)]) -> Result<Option<Grouping>, String> {
    let Some((_, group_by)) = params.iter().find(|(k, _)| k == "group_by") else {
        return Ok(None);
    };
    let index = |name: &str| {
        M::DIMENSIONS
            .iter()
            .position(|d| *d == name)
            .ok_or_else(|| format!("{} has no dimension `{name}`", M::NAME))
    };
    let group_by = group_by
        .split(',')
        .filter(|n| !n.is_empty())
        .map(index)
        .collect::<Result<Vec<_>, _>>()?;
    let mut filters = Vec::new();
    let mut sketches = true;
    for (key, value) in params {
        match key.as_str() {
            "filter" => {
                let (name, value) = value
                    .split_once(':')
                    .ok_or_else(|| format!("filter `{value}` is not `dimension:value`"))?;
                filters.push((index(name)?, value.to_string()));
            }
            "sketches" => {
                sketches = value
                    .parse()
                    .map_err(|_| format!("sketches `{value}` is not true or false"))?
            }
            _ => {}
        }
    }
    Ok(Some(Grouping {
        group_by,
        filters,
        sketches,
    }))
}

/// The parameters of an incremental read ([`crate::speed_api::Since`]): `since`,
/// `known_from`, `known_to`.
pub fn since_params(since: &Since) -> [(&'static str, String); 3] {
    [
        (SINCE_PARAM, since.version.to_string()),
        (KNOWN_FROM_PARAM, since.known_from.to_string()),
        (KNOWN_TO_PARAM, since.known_to.to_string()),
    ]
}

/// What a request holds already ([`since_params`]), if it says (`since` is present); a
/// malformed value or a missing bound is an error.
pub fn parse_since(params: &[(String, String)]) -> Result<Option<Since>, String> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let Some(version) = get(SINCE_PARAM) else {
        return Ok(None);
    };
    let bound = |name: &str| {
        let text = get(name).ok_or_else(|| format!("`{SINCE_PARAM}` needs `{name}`"))?;
        text.parse::<i64>()
            .map_err(|_| format!("{name} `{text}` is not epoch milliseconds"))
    };
    Ok(Some(Since {
        version: version.parse()?,
        known_from: bound(KNOWN_FROM_PARAM)?,
        known_to: bound(KNOWN_TO_PARAM)?,
    }))
}

/// Builds the stream of one metric's grouped rows.
pub struct Encoder<M: Metric> {
    names: Vec<&'static str>,
    windows: Int64Builder,
    dims: Vec<StringBuilder>,
    states: BinaryBuilder,
    error: Option<LogicError>,
    _metric: std::marker::PhantomData<M>,
}

impl<M: Metric> Encoder<M> {
    /// An empty stream of rows grouped by `grouping`.
    pub fn new(grouping: &Grouping) -> Self {
        let names: Vec<&'static str> = grouping
            .group_by
            .iter()
            .filter_map(|i| M::DIMENSIONS.get(*i).copied())
            .collect();
        Encoder {
            dims: names.iter().map(|_| StringBuilder::new()).collect(),
            names,
            windows: Int64Builder::new(),
            states: BinaryBuilder::new(),
            error: None,
            _metric: std::marker::PhantomData,
        }
    }

    /// Adds a row: a key holding the window and the grouped values, and its state.
    pub fn push(&mut self, key: &GroupKey, state: &M::State) {
        match encode_state::<M>(state) {
            Ok(bytes) => self.states.append_value(bytes),
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        }
        self.windows.append_value(key.window.0);
        let mut values = key.dims();
        for column in &mut self.dims {
            column.append_value(values.next().unwrap_or_default());
        }
    }

    /// The stream's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, IoError> {
        let wire = |e: arrow::error::ArrowError| IoError::Views {
            path: format!("{} grouped rows", M::NAME),
            source: e.into(),
        };
        if let Some(source) = self.error {
            return Err(IoError::Views {
                path: format!("{} grouped rows", M::NAME),
                source,
            });
        }
        let mut fields = vec![Field::new("window_start", DataType::Int64, false)];
        fields.extend(
            self.names
                .iter()
                .map(|n| Field::new(*n, DataType::Utf8, false)),
        );
        fields.push(Field::new(STATE_COLUMN, DataType::Binary, false));
        let schema = Arc::new(Schema::new(fields));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.windows.finish())];
        columns.extend(
            self.dims
                .iter_mut()
                .map(|d| Arc::new(d.finish()) as ArrayRef),
        );
        columns.push(Arc::new(self.states.finish()));
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(wire)?;
        let mut out = Vec::new();
        let mut writer = StreamWriter::try_new(&mut out, &schema).map_err(wire)?;
        writer.write(&batch).map_err(wire)?;
        writer.finish().map_err(wire)?;
        drop(writer);
        Ok(out)
    }
}

/// Reads a stream of grouped rows of metric `M` (grouped by `grouping`), handing each row's
/// window, grouped values and state to `sink`. Nothing is handed over unless the whole
/// stream decodes; a malformed stream (or a decoder panic on one) is an error naming `name`.
pub fn decode<M: Metric>(
    bytes: bytes::Bytes,
    grouping: &Grouping,
    name: &str,
    mut sink: impl FnMut(WindowStart, &[&str], M::State),
) -> Result<(), IoError> {
    let bad = |reason: String| IoError::Views {
        path: name.to_string(),
        source: LogicError::Schema(reason),
    };
    let read = || -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
        StreamReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
    };
    let batches = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(batches) => batches.map_err(|e| bad(e.to_string()))?,
        Err(_) => return Err(bad("the Arrow stream is malformed".into())),
    };
    let width = grouping.group_by.len();
    let mut rows = Vec::new();
    for batch in &batches {
        if batch.num_columns() != width + 2 {
            return Err(bad(format!(
                "{} columns where the grouping needs {}",
                batch.num_columns(),
                width + 2
            )));
        }
        let windows: &Int64Array = batch
            .column(0)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("window_start is not Int64".into()))?;
        let dims = (1..=width)
            .map(|c| {
                batch
                    .column(c)
                    .as_string_opt::<i32>()
                    .ok_or_else(|| bad(format!("column {c} is not Utf8")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let states = batch
            .column(width + 1)
            .as_binary_opt::<i32>()
            .ok_or_else(|| bad("state is not Binary".into()))?;
        for i in 0..batch.num_rows() {
            if windows.is_null(i) || states.is_null(i) || dims.iter().any(|d| d.is_null(i)) {
                return Err(bad(format!("row {i} has a null")));
            }
            let state = decode_state::<M>(states.value(i)).map_err(|source| IoError::Views {
                path: name.to_string(),
                source,
            })?;
            rows.push((batch, i, state));
        }
    }
    let mut values = Vec::with_capacity(width);
    for (batch, i, state) in rows {
        values.clear();
        for c in 1..=width {
            values.push(batch.column(c).as_string::<i32>().value(i));
        }
        sink(
            WindowStart(batch.column(0).as_primitive::<Int64Type>().value(i)),
            &values,
            state,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::metrics::{PageViews, PageViewsState};

    fn grouping() -> Grouping {
        Grouping {
            group_by: vec![1, 0],
            filters: Vec::new(),
            sketches: true,
        }
    }

    #[test]
    fn a_grouping_round_trips_through_its_request_parameters() {
        let grouping = Grouping {
            group_by: vec![2, 0],
            filters: vec![(1, "U:S".into())],
            sketches: false,
        };
        let params: Vec<(String, String)> = request_params::<PageViews>(&grouping)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(parse_request::<PageViews>(&params), Ok(Some(grouping)));
        assert_eq!(parse_request::<PageViews>(&[]), Ok(None));
        let bad = |k: &str, v: &str| {
            let mut p = vec![("group_by".to_string(), "url".to_string())];
            p.push((k.to_string(), v.to_string()));
            parse_request::<PageViews>(&p).unwrap_err()
        };
        let unknown = [("group_by".to_string(), "url,nope".to_string())];
        assert!(parse_request::<PageViews>(&unknown)
            .unwrap_err()
            .contains("no dimension `nope`"));
        assert!(bad("filter", "country").contains("not `dimension:value`"));
        assert!(bad("sketches", "maybe").contains("not true or false"));
    }

    #[test]
    fn what_a_reader_holds_round_trips_through_its_parameters_and_bad_values_are_errors() {
        let since = Since {
            version: "7-9".parse().unwrap(),
            known_from: -60_000,
            known_to: 3_600_000,
        };
        let params: Vec<(String, String)> = since_params(&since)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(parse_since(&params), Ok(Some(since)));
        assert_eq!(parse_since(&[]), Ok(None));
        let without_bound = &params[..2];
        assert!(parse_since(without_bound).unwrap_err().contains("known_to"));
        let mut bad = params.clone();
        bad[0].1 = "seven".into();
        assert!(parse_since(&bad).is_err());
        bad = params.clone();
        bad[1].1 = "yesterday".into();
        assert!(parse_since(&bad).unwrap_err().contains("known_from"));
    }

    #[test]
    fn rows_round_trip() {
        let mut encoder = Encoder::<PageViews>::new(&grouping());
        let mut state = PageViewsState {
            views: 3,
            ..Default::default()
        };
        state.users.add("u1");
        encoder.push(&GroupKey::new(WindowStart(60_000), &["US", "/a"]), &state);
        encoder.push(&GroupKey::new(WindowStart(0), &["DE", "/b"]), &state);
        let bytes = bytes::Bytes::from(encoder.finish().unwrap());
        let mut rows = Vec::new();
        decode::<PageViews>(bytes, &grouping(), "test", |w, dims, s| {
            rows.push((w.0, dims.join(","), s))
        })
        .unwrap();
        assert_eq!(
            rows,
            vec![
                (60_000, "US,/a".to_string(), state.clone()),
                (0, "DE,/b".to_string(), state)
            ]
        );
    }

    #[test]
    fn a_malformed_stream_is_an_error_and_hands_nothing_over() {
        let mut encoder = Encoder::<PageViews>::new(&grouping());
        encoder.push(
            &GroupKey::new(WindowStart(0), &["US", "/a"]),
            &PageViewsState::default(),
        );
        let good = encoder.finish().unwrap();
        let narrower = Grouping {
            group_by: vec![0],
            ..grouping()
        };
        let mut handed = 0;
        let err = decode::<PageViews>(good.clone().into(), &narrower, "x", |_, _, _| handed += 1);
        assert!(err.is_err());
        for cut in [0, 7, good.len() / 2, good.len() - 3] {
            let mut bytes = good[..cut].to_vec();
            bytes.extend_from_slice(&[0xff; 5]);
            let decoded =
                decode::<PageViews>(bytes.into(), &grouping(), "x", |_, _, _| handed += 1);
            assert!(decoded.is_err(), "cut at {cut}");
        }
        assert_eq!(handed, 0);
    }
}
