//! Fuzzing on stable Rust for every parser of bytes that come from outside the process:
//! event JSON, Debezium envelopes, query strings, the TOML configuration, Parquet view
//! files and speed checkpoints read back, decimal prices and timestamps.
//!
//! coverage-guided fuzzing (cargo-fuzz, libFuzzer) needs a nightly compiler and an
//! instrumented rebuild of every dependency; this crate runs on the workspace's stable
//! toolchain instead, with:
//!
//! - [`targets`]: one `fn(&[u8]) -> Outcome` per parser, which also checks what the parser
//!   promises of what it accepts (bounds, round trips): a broken promise is a crash;
//! - [`mutate`] and [`json_mutate`]: byte-level and structure-aware mutations, with a
//!   dictionary of hostile tokens per target ([`dictionary`]);
//! - [`runner`]: a deterministic seeded loop (an input is a function of target, seed and
//!   iteration), panics caught with `catch_unwind`, CPU time measured per input (an input
//!   slower than the bound is a finding), a watchdog for inputs that never finish, and an
//!   outcome-guided pool: a mutant that produces an outcome not seen before is kept;
//! - [`minimize`]: shrinks a finding's input while it still fails the same way;
//! - [`artifacts`]: findings written to `fuzz/artifacts/<target>/` with the replay command,
//!   and the committed regressions of `fuzz/regressions/<target>/`.
//!
//! The library does the work; `src/main.rs` only parses flags, and the crate's tests run
//! every target for a bounded budget in CI.

pub mod artifacts;
pub mod corpus;
pub mod cpu;
pub mod dictionary;
pub mod json_mutate;
pub mod minimize;
pub mod mutate;
pub mod runner;
pub mod seeds;
pub mod targets;

pub use runner::{run, Finding, FindingKind, Report, RunConfig};
pub use targets::{Outcome, Target, TARGETS};

/// Errors of the harness itself (not findings).
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("unknown target `{0}`; targets: {1}")]
    UnknownTarget(String, String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the seed corpus of `{0}` is empty (fuzz/corpus/{0}/)")]
    EmptyCorpus(String),
}

/// The crate's directory (for corpus, regressions and artifacts).
pub fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
