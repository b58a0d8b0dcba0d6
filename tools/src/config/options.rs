//! The option model: which arguments of the command tree are configurable, the variable
//! names and file sections that set them, where a value came from, and which values are
//! secrets (masked when shown).

use std::path::PathBuf;

use clap::{Arg, ArgAction, Command};

/// Environment variable naming the configuration file (same as `--config`).
pub const CONFIG_ENV: &str = "LAMBDA_CONFIG";

/// Read by `--brokers` after the `LAMBDA_*` names: the conventional name of Kafka tooling.
pub(super) const KAFKA_BROKERS_ENV: &str = shared_logic::topics::BROKERS_ENV;

pub(super) const MASK: &str = "****";

/// The file's section for options of every subcommand (and of `lambda` itself).
pub const COMMON: &str = "common";

/// Where an option's effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(String),
    File { path: PathBuf, section: String },
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File { path, section } => write!(f, "file {} {section}", path.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// `LAMBDA_` + the path and the long name, upper case, `-` as `_`.
pub fn env_name(path: &[String], long: &str) -> String {
    let mut name = String::from("LAMBDA");
    for part in path.iter().map(String::as_str).chain([long]) {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase().replace('-', "_"));
    }
    name
}

/// The variables an option reads, most specific first.
pub(super) fn env_names(path: &[String], long: &str) -> Vec<String> {
    let mut env = vec![env_name(path, long)];
    if !path.is_empty() {
        env.push(env_name(&[], long));
    }
    if long == "brokers" {
        env.push(KAFKA_BROKERS_ENV.to_string());
    }
    env
}

/// Options the model covers: named (`--long`), not clap's own, not `--config` itself.
pub(super) fn configurable(arg: &Arg) -> Option<&str> {
    let long = arg.get_long()?;
    (!matches!(long, "help" | "version" | "config")).then_some(long)
}

pub(super) fn is_multi(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

pub(super) fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Options whose values `config show` masks.
pub fn is_secret(long: &str) -> bool {
    ["token", "password", "secret"]
        .iter()
        .any(|word| long.contains(word))
}

/// A `key=value` client property whose value is a credential (SASL, TLS keys).
pub(super) fn secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "private", ".key.pem", "token"]
        .iter()
        .any(|word| key.contains(word))
}

/// A value as `config show` prints it.
pub(super) fn masked(long: &str, value: &str) -> String {
    if is_secret(long) {
        return MASK.to_string();
    }
    match value.split_once('=') {
        Some((key, _)) if long == "kafka-option" && secret_property(key) => format!("{key}={MASK}"),
        _ => value.to_string(),
    }
}

/// Runs the option's own parser on `value` (clap would otherwise assert on a bad default).
pub(super) fn check_value(command: &Command, long: &str, value: &str) -> Result<(), String> {
    let argv = [command.get_name().to_string(), format!("--{long}={value}")];
    let Err(e) = command.clone().try_get_matches_from(argv) else {
        return Ok(());
    };
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8 => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.trim_start_matches("error: ").to_string())
        }
        _ => Ok(()),
    }
}

pub(super) fn section_name(path: &[String]) -> String {
    if path.is_empty() {
        format!("[{COMMON}]")
    } else {
        format!("[{}]", path.join("."))
    }
}

pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Every configurable long name anywhere in the tree (valid top-level keys).
pub(super) fn all_longs(command: &Command) -> Vec<String> {
    let mut longs: Vec<String> = command
        .get_arguments()
        .filter_map(configurable)
        .map(str::to_string)
        .collect();
    for sub in command.get_subcommands() {
        longs.extend(all_longs(sub));
    }
    longs.sort();
    longs.dedup();
    longs
}
