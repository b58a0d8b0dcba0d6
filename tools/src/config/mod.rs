//! One configuration model for every subcommand: each option `--foo-bar` of `lambda sub`
//! can be given, in order of precedence, as
//!
//! 1. the flag `--foo-bar`;
//! 2. the variable `LAMBDA_SUB_FOO_BAR` (this subcommand only), then `LAMBDA_FOO_BAR`
//!    (every subcommand that has the option; `--brokers` also reads `KAFKA_BROKERS` last);
//! 3. the key `foo-bar` in the section `[sub]` of the TOML file given by `--config` or
//!    `LAMBDA_CONFIG` (nested subcommands: `[lake.import]`), then in the section `[common]`
//!    (every subcommand that has the option);
//! 4. the built-in default.
//!
//! The model is derived from the clap command tree, so a new flag has its variable and its
//! file key without further code. [`configure`] applies it to the tree (the subcommand's
//! variable becomes the clap `env`, the lower layers become the default value, each checked
//! with the option's own parser first); [`show`] prints the effective configuration with
//! the source of every value and secrets masked; [`describe`] lists every option's names.

mod file;
mod model;
mod options;
mod show;
#[cfg(test)]
mod tests;

pub use file::ConfigFile;
pub use model::{config_path, configure, for_process, Configured};
pub use options::{env_name, is_secret, Source, COMMON, CONFIG_ENV};
pub use show::{describe, show};
