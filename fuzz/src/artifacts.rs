//! Findings on disk: each failing input goes to `<artifacts>/<target>/` (gitignored) with
//! the command that replays it; an input worth keeping is copied to
//! `fuzz/regressions/<target>/`, which the crate's tests replay on every run.

use std::path::{Path, PathBuf};

use crate::runner::{Finding, FindingKind};
use crate::FuzzError;

/// The default artifacts directory, `fuzz/artifacts`.
pub fn default_dir() -> PathBuf {
    crate::crate_dir().join("artifacts")
}

/// Writes a finding's input: its path and the command that replays it.
pub fn write_finding(dir: &Path, f: &Finding) -> Result<(PathBuf, String), FuzzError> {
    let kind = match f.kind {
        FindingKind::Crash => "crash",
        FindingKind::Slow => "slow",
    };
    let dir = dir.join(f.target);
    let path = dir.join(format!("{kind}-seed{}-iter{}", f.seed, f.iteration));
    let io = |source| FuzzError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&path, &f.input).map_err(io)?;
    let replay = format!(
        "cargo run -p lambda-fuzz --release -- replay {} {}",
        f.target,
        path.display()
    );
    Ok((path, replay))
}

/// The committed regression inputs of `target`, by file name.
pub fn regressions(target: &str) -> Result<Vec<(String, Vec<u8>)>, FuzzError> {
    crate::corpus::read_dir(&crate::crate_dir().join("regressions").join(target))
}
