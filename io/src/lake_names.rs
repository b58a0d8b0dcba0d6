//! How lake files are named. A flush of one source partition's offset range `[first, last]`
//! is written under `<source>-p<partition>-<first>-<last>.parquet` (events, dead letters and
//! change files alike), so a retry of the same range writes the same name and no range is
//! ever in the lake twice. Offsets are fixed width, so names sort in offset order.

/// The name of a file holding one flush of one source partition.
pub fn flush_file_name(source: &str, partition: i32, first: i64, last: i64) -> String {
    // Fixed-width offsets: names sort in offset order.
    let partition = if partition < 0 {
        format!("m{}", -(partition as i64))
    } else {
        partition.to_string()
    };
    format!("{source}-p{partition}-{first:020}-{last:020}.parquet")
}

/// The parts of a [`flush_file_name`]: source, partition, first and last offset.
pub fn parse_flush_file_name(name: &str) -> Option<(String, i32, i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(4, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.strip_prefix('p')?;
    let partition = match partition.strip_prefix('m') {
        Some(negative) => -negative.parse::<i32>().ok()?,
        None => partition.parse().ok()?,
    };
    let source = parts.next()?.to_string();
    Some((source, partition, first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_names_parse_back() {
        for (source, p, first, last) in [("events", 3, 9, 120), ("my-topic", -1, 0, 7)] {
            let name = flush_file_name(source, p, first, last);
            assert_eq!(
                parse_flush_file_name(&name),
                Some((source.to_string(), p, first, last))
            );
        }
        assert_eq!(parse_flush_file_name("notes.txt"), None);
        assert_eq!(parse_flush_file_name("x-px-1-2.parquet"), None);
    }

    #[test]
    fn flush_names_sort_in_offset_order_and_encode_import_partitions() {
        let a = flush_file_name("events", 3, 9, 120);
        let b = flush_file_name("events", 3, 121, 2_000);
        assert!(a < b);
        assert_eq!(
            a,
            "events-p3-00000000000000000009-00000000000000000120.parquet"
        );
        assert!(flush_file_name("import", -1, 0, 5).starts_with("import-pm1-"));
    }
}
