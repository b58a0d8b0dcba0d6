//! What the `lambda` binary runs beyond the layers, as library code that tests drive:
//!
//! - [`config`]: one configuration model for every subcommand (flags, `LAMBDA_*`
//!   variables, a TOML file), derived from the clap command tree;
//! - [`load`]: the HTTP load generators behind `lambda bench ingest` and `lambda bench
//!   query`;
//! - [`demo`]: the supervisor of `lambda demo` (the whole platform in one process);
//! - [`signal`]: the shutdown signal every long-running subcommand waits for.
//!
//! The binary only parses arguments and wires these and the layers together.

pub mod config;
pub mod demo;
pub mod error;
pub mod load;
pub mod signal;

pub use error::{Context, ToolsError};
