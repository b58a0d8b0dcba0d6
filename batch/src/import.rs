//! `lambda lake import`: loads NDJSON (a file or stdin) into the lake with the same
//! validation and dead-letter handling as the Kafka path.
//!
//! Lines are numbered from 0; a line's origin is partition -1 and its line number, and the
//! file is committed in flushes of `chunk_lines` lines ([`crate::flush_commit`]) under the
//! application id `import/<source>` whose version is the last line committed: an import
//! that stopped half-way resumes where it stopped when run again, and importing the same
//! file again adds nothing (the lines are reported as already imported). Another file
//! imported under the same source name is taken for the same one: give it its own name.

use std::io::BufRead;

use lambda_io::Lake;
use shared_logic::{Origin, Validator};

use crate::error::BatchError;
use crate::flush_commit::commit_flush;
use crate::lake_tables::LakeTables;
use crate::writer::Flush;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Names the files (`<source>-pm1-<first line>-<last line>.parquet`).
    pub source: String,
    /// Lines per flush.
    pub chunk_lines: usize,
    pub validator: Validator,
    /// Wall clock for the future-skew rule and the dead-letter date.
    pub now_ms: i64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub lines: u64,
    pub events: u64,
    pub dead_letters: u64,
    /// Lines an earlier import of the same source had committed already.
    pub already_imported: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A source name from a file name: letters, digits, `-` and `_` only.
pub fn source_name(file: &str) -> String {
    if file == "-" {
        return "import_stdin".to_string();
    }
    let stem = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("stdin");
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("import_{clean}")
}

/// Imports every line of `reader`.
pub async fn import_ndjson(
    lake: &Lake,
    reader: Box<dyn BufRead + Send>,
    input_name: &str,
    options: ImportOptions,
) -> Result<ImportReport, BatchError> {
    let mut report = ImportReport::default();
    let mut tables = LakeTables::new(lake.clone());
    let app = format!("import/{}", options.source);
    let mut reader = Some(reader);
    let mut next_line: i64 = 0;
    loop {
        let Some(r) = reader.take() else { break };
        let opts = options.clone();
        let name = input_name.to_string();
        let first = next_line;
        let (r, flush, lines) =
            tokio::task::spawn_blocking(move || read_chunk(r, &opts, first, &name))
                .await
                .map_err(|e| BatchError::Usage(format!("import task failed: {e}")))??;
        if lines == 0 {
            break;
        }
        next_line += lines as i64;
        report.lines += lines;
        let written = commit_flush(&mut tables, flush, &app).await?;
        report.events += written.events;
        report.dead_letters += written.dead_letters;
        report.already_imported += written.already_committed;
        report.files += written.files.len() as u64;
        report.bytes += written.bytes;
        tracing::info!(
            lines = report.lines,
            events = report.events,
            dead_letters = report.dead_letters,
            already_imported = report.already_imported,
            "imported"
        );
        reader = Some(r);
    }
    Ok(report)
}

type Chunk = (Box<dyn BufRead + Send>, Flush, u64);

fn read_chunk(
    mut reader: Box<dyn BufRead + Send>,
    opts: &ImportOptions,
    first: i64,
    name: &str,
) -> Result<Chunk, BatchError> {
    let mut flush = Flush {
        source: opts.source.clone(),
        partition: Origin::IMPORT_PARTITION,
        first,
        last: first,
        events: Vec::new(),
        changes: Vec::new(),
        dead_letters: Vec::new(),
        received_ms: opts.now_ms,
    };
    let mut line = Vec::with_capacity(1024);
    let mut count = 0u64;
    while count < opts.chunk_lines as u64 {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| BatchError::Input {
                path: name.to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let origin = Origin::import_line(first + count as i64);
        match opts.validator.validate(&line, origin, opts.now_ms) {
            Ok(e) => flush.events.push(e),
            Err(d) => flush.dead_letters.push(d.into()),
        }
        count += 1;
    }
    flush.last = first + count.saturating_sub(1) as i64;
    Ok((reader, flush, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_safe_file_name_parts() {
        assert_eq!(source_name("/data/2026 11 24.ndjson"), "import_2026_11_24");
        assert_eq!(source_name("-"), "import_stdin");
    }
}
