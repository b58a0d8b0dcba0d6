//! The seed corpus, `fuzz/corpus/<target>/`: valid inputs of each target, taken from the
//! platform's own inputs (see [`crate::seeds`], which writes them).

use std::path::Path;

use crate::FuzzError;

/// The seed corpus of `target`, in file-name order.
pub fn load(target: &str) -> Result<Vec<Vec<u8>>, FuzzError> {
    let files = read_dir(&crate::crate_dir().join("corpus").join(target))?;
    if files.is_empty() {
        return Err(FuzzError::EmptyCorpus(target.to_string()));
    }
    Ok(files.into_iter().map(|(_, bytes)| bytes).collect())
}

/// Every file of `dir` (none when it does not exist) as `(name, bytes)`, by name.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, FuzzError> {
    let io = |source| FuzzError::Io {
        path: dir.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            let bytes = std::fs::read(entry.path()).map_err(io)?;
            files.push((entry.file_name().to_string_lossy().into_owned(), bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// The committed seed corpus of `target` followed by seeds made fresh from the current code
/// (see [`crate::seeds`]), without repeats.
pub fn with_fresh_seeds(target: &str) -> Result<Vec<Vec<u8>>, FuzzError> {
    let mut all = match load(target) {
        Ok(files) => files,
        Err(FuzzError::EmptyCorpus(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    for (_, fresh) in crate::seeds::generate(target) {
        if !all.contains(&fresh) {
            all.push(fresh);
        }
    }
    if all.is_empty() {
        return Err(FuzzError::EmptyCorpus(target.to_string()));
    }
    Ok(all)
}
