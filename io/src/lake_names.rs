//! How lake files are named. A flush of one source partition's offset range `[first, last]`
//! is written under `<source>-p<partition>-<first>-<last>-<suffix>.parquet` (events, dead
//! letters and change files alike): the prefix tells a reader (lineage) which offsets the
//! file holds, the random suffix keeps two writes of the same range (a retried flush, a
//! zombie writer after a rebalance) from replacing each other's bytes. Which of them is in
//! the table is decided by the table's commits, never by the names. Offsets are fixed width,
//! so names sort in offset order. Names written before the suffix (no `-<suffix>`) parse too.

/// The name of a file holding one flush of one source partition, without a suffix (the
/// name lakes written before the Delta tables used; see [`unique_flush_file_name`]).
pub fn flush_file_name(source: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{}.parquet", flush_prefix(source, partition, first, last))
}

/// A [`flush_file_name`] made unique by a random suffix: what writers write now.
pub fn unique_flush_file_name(source: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "{}-{:012x}.parquet",
        flush_prefix(source, partition, first, last),
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}

/// The name of a file compacted from several source partitions' files:
/// `compacted-<suffix>.parquet` (no offsets in it; the files' tags name the ranges).
pub fn compacted_file_name() -> String {
    format!(
        "compacted-{:012x}.parquet",
        rand::random::<u64>() & 0xffff_ffff_ffff
    )
}

fn flush_prefix(source: &str, partition: i32, first: i64, last: i64) -> String {
    let partition = if partition < 0 {
        format!("m{}", -(partition as i64))
    } else {
        partition.to_string()
    };
    // Fixed-width offsets: names sort in offset order.
    format!("{source}-p{partition}-{first:020}-{last:020}")
}

fn offset(text: &str) -> Option<i64> {
    (text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// The parts of a [`flush_file_name`] or [`unique_flush_file_name`]: source, partition,
/// first and last offset.
pub fn parse_flush_file_name(name: &str) -> Option<(String, i32, i64, i64)> {
    let mut stem = name.strip_suffix(".parquet")?;
    if let Some((head, suffix)) = stem.rsplit_once('-') {
        if offset(suffix).is_none() {
            stem = head;
        }
    }
    let mut parts = stem.rsplitn(4, '-');
    let last = offset(parts.next()?)?;
    let first = offset(parts.next()?)?;
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
    fn unique_names_differ_for_the_same_range_and_parse_to_it() {
        let a = unique_flush_file_name("my-topic", 3, 9, 120);
        let b = unique_flush_file_name("my-topic", 3, 9, 120);
        assert_ne!(a, b, "a retried or zombie flush never overwrites a file");
        let prefix = flush_file_name("my-topic", 3, 9, 120);
        assert!(a.starts_with(prefix.trim_end_matches(".parquet")), "{a}");
        for name in [a, b] {
            assert_eq!(
                parse_flush_file_name(&name),
                Some(("my-topic".to_string(), 3, 9, 120))
            );
        }
        assert_eq!(parse_flush_file_name(&compacted_file_name()), None);
        let import = unique_flush_file_name("import_x", -1, 0, 5);
        assert_eq!(
            parse_flush_file_name(&import),
            Some(("import_x".to_string(), -1, 0, 5))
        );
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
