//! The `lambda` binary the process-level tests run: `LAMBDA_BIN` when set, otherwise the
//! one beside this test executable in the build directory (`<target>/debug/lambda`), which
//! `scripts/test.sh` builds before the tests (`cargo build --bins`).

use std::path::PathBuf;

/// The path of the `lambda` binary; panics with what to do when it was not built.
pub fn lambda_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LAMBDA_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    // Test executables live in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable is in <target>/<profile>/deps");
    let bin = profile.join(format!("lambda{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: build it first (`cargo build --bins`, as scripts/test.sh does) or set LAMBDA_BIN",
        bin.display()
    );
    bin
}
