//! The demo's speed token: its views endpoint answers only with it, as `lambda speed`'s
//! does. Given with `--speed-token`, or else kept in `<data-dir>/speed-token` (generated
//! from the operating system's random source on the first start, readable by its owner
//! only), so that `lambda verify --speed-token "$(cat data/speed-token)"` works across
//! restarts. Never printed.

use std::path::{Path, PathBuf};

use crate::error::{Context, ToolsError};

/// The file under the data directory that holds the generated token.
pub(super) fn token_file(data: &Path) -> PathBuf {
    data.join("speed-token")
}

/// The speed token: `given` (checked), else the one in `<data>/speed-token` (checked),
/// else a new one written there.
pub(super) fn speed_token(given: Option<&str>, data: &Path) -> Result<String, ToolsError> {
    let check = |option: &str, token: &str| {
        lambda_io::bearer::check_token(option, token)
            .map_err(|e| ToolsError::Invalid(e.to_string()))
    };
    if let Some(token) = given {
        check("--speed-token", token)?;
        return Ok(token.to_string());
    }
    let file = token_file(data);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let token = text.trim().to_string();
            check(&file.display().to_string(), &token)?;
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).context("the operating system's random source")?;
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&file, &token).with_context(|| format!("writing {}", file.display()))?;
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_generated_once_kept_and_placeholders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = speed_token(None, dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert!(lambda_io::bearer::check_token("t", &first).is_ok());
        assert_eq!(speed_token(None, dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(token_file(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(speed_token(None, other.path()).unwrap(), first);
        let e = speed_token(Some("change-me"), dir.path()).unwrap_err();
        assert!(e.to_string().contains("--speed-token"), "{e}");
        std::fs::write(token_file(other.path()), "secret\n").unwrap();
        assert!(speed_token(None, other.path()).is_err());
    }
}
