//! `lambda config show` (the effective configuration, with sources, secrets masked; as TOML
//! that configures the same values, or JSON) and `lambda config describe` (every option's
//! names).

use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

use super::model::Configured;
use super::options::{
    configurable, env_name, env_names, is_multi, is_secret, masked, section_name, Source,
};
use crate::error::{Context, ToolsError};

/// One option's effective value, as `config show` reports it.
#[derive(serde::Serialize)]
pub(super) struct Shown {
    name: String,
    section: String,
    value: Option<Vec<String>>,
    multiple: bool,
    source: String,
    env: Vec<String>,
}

/// The effective configuration of the subcommand that `args` (without `lambda`) selects.
pub fn show(configured: &Configured, args: &[String], json: bool) -> Result<String, ToolsError> {
    if args.is_empty() {
        let names: Vec<&str> = configured
            .command
            .get_subcommands()
            .map(Command::get_name)
            .collect();
        return Err(ToolsError::Config(format!(
            "name a subcommand, e.g. `lambda config show serve`: one of {}",
            names.join(", ")
        )));
    }
    let argv = std::iter::once("lambda".to_string()).chain(args.iter().cloned());
    let matches = configured
        .command
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| {
            let text = e.render().to_string();
            ToolsError::Config(text.trim().trim_start_matches("error: ").to_string())
        })?;
    // `lambda`'s own options, then the selected (innermost) subcommand's.
    let mut shown = self::options(configured, &configured.command, &matches, &[]);
    let mut command = &configured.command;
    let mut matches = &matches;
    let mut path: Vec<String> = Vec::new();
    while let Some((name, sub_matches)) = matches.subcommand() {
        command = command
            .find_subcommand(name)
            .ok_or_else(|| ToolsError::Invalid("subcommand vanished".into()))?;
        matches = sub_matches;
        path.push(name.to_string());
    }
    shown.extend(self::options(configured, command, matches, &path));
    if json {
        let doc = serde_json::json!({
            "command": path.join(" "),
            "config_file": configured.file.as_ref().map(|p| p.display().to_string()),
            "options": shown,
        });
        return serde_json::to_string_pretty(&doc).context("config show as JSON");
    }
    Ok(render_toml(&path, configured.file.as_deref(), &shown))
}

pub(super) fn options(
    configured: &Configured,
    command: &Command,
    matches: &ArgMatches,
    path: &[String],
) -> Vec<Shown> {
    command
        .get_arguments()
        .filter(|arg| path.is_empty() || !arg.is_global_set())
        .filter_map(|arg| {
            let long = configurable(arg)?;
            let id = arg.get_id().as_str();
            let value = matches
                .try_get_raw(id)
                .ok()
                .flatten()
                .map(|raw| raw.map(|v| masked(long, &v.to_string_lossy())).collect());
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env(env_name(path, long)),
                _ => configured
                    .provenance
                    .get(&(path.join(" "), long.to_string()))
                    .cloned()
                    .unwrap_or(Source::Default),
            };
            Some(Shown {
                name: long.to_string(),
                section: section_name(path),
                value,
                multiple: is_multi(arg),
                source: source.to_string(),
                env: env_names(path, long),
            })
        })
        .collect()
}

/// TOML text that, saved as a file, configures the same values (secrets masked).
pub(super) fn render_toml(path: &[String], file: Option<&Path>, shown: &[Shown]) -> String {
    let mut out = format!(
        "# Effective configuration of `lambda {}` (flag > env > file > default).\n",
        path.join(" ")
    );
    match file {
        Some(file) => out.push_str(&format!("# Config file: {}\n", file.display())),
        None => out.push_str("# No config file (--config or LAMBDA_CONFIG).\n"),
    }
    let mut section = "";
    for item in shown {
        if item.section != section {
            section = &item.section;
            out.push_str(&format!("\n{section}\n"));
        }
        let line = match &item.value {
            None => format!("# {} is not set", item.name),
            Some(values) if !item.multiple && values.len() == 1 => {
                format!("{} = {}", item.name, toml_literal(&values[0]))
            }
            Some(values) => {
                let list: Vec<String> = values.iter().map(|v| toml_literal(v)).collect();
                format!("{} = [{}]", item.name, list.join(", "))
            }
        };
        let names = item.env.join(", ");
        out.push_str(&format!("{line:<44} # {} [{names}]\n", item.source));
    }
    out
}

/// `value` as a TOML literal: numbers and booleans bare when they read back to the same text.
pub(super) fn toml_literal(value: &str) -> String {
    let bare = matches!(value, "true" | "false")
        || value.parse::<i64>().is_ok_and(|n| n.to_string() == value)
        || (value.contains('.')
            && value
                .parse::<f64>()
                .is_ok_and(|f| f.is_finite() && f.to_string() == value));
    if bare {
        value.to_string()
    } else {
        toml::Value::String(value.to_string()).to_string()
    }
}

/// Every option of every subcommand with its flag, variable, file key and default.
pub fn describe(command: &Command) -> serde_json::Value {
    fn visit(command: &Command, path: &mut Vec<String>, out: &mut Vec<serde_json::Value>) {
        for arg in command.get_arguments() {
            let Some(long) = configurable(arg) else {
                continue;
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let env = env_names(path, long);
            out.push(serde_json::json!({
                "command": path.join(" "),
                "flag": format!("--{long}"),
                "env": env,
                "file": format!("{} {long}", section_name(path)),
                "multiple": is_multi(arg),
                "secret": is_secret(long),
                "default": defaults,
                "help": arg.get_help().map(|h| h.to_string()),
            }));
        }
        for sub in command.get_subcommands() {
            path.push(sub.get_name().to_string());
            visit(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    visit(command, &mut Vec::new(), &mut out);
    serde_json::Value::Array(out)
}
