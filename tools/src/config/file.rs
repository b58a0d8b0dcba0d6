//! The TOML configuration file: parsed, and checked against the command tree (unknown
//! sections and keys, values each option's own parser refuses) with the place of every
//! mistake.

use std::path::{Path, PathBuf};

use clap::Command;

use super::options::{configurable, section_name, COMMON};
use crate::error::{Context, ToolsError};

/// A parsed configuration file.
pub struct ConfigFile {
    pub(super) path: PathBuf,
    pub(super) root: toml::Table,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ToolsError> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ToolsError> {
        let root: toml::Table = text
            .parse()
            .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            root,
        })
    }

    /// The table of a subcommand path (`[]` = `[common]`), when the file has one.
    pub(super) fn section(&self, path: &[String]) -> Option<&toml::Table> {
        let mut table = &self.root;
        if path.is_empty() {
            return table.get(COMMON)?.as_table();
        }
        for name in path {
            table = table.get(name)?.as_table()?;
        }
        Some(table)
    }
}

pub(super) fn toml_scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => Err("expected a single value".to_string()),
    }
}

pub(super) fn toml_values(value: &toml::Value, multi: bool) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) if multi => items.iter().map(toml_scalar).collect(),
        toml::Value::Array(_) => Err("takes one value, not a list".to_string()),
        other => toml_scalar(other).map(|v| vec![v]),
    }
}

/// Unknown keys and sections are errors (a typo must not silently fall back to a default).
pub(super) fn check_file(
    command: &Command,
    root: &toml::Table,
    everywhere: &[String],
    errors: &mut Vec<String>,
) {
    for (key, value) in root {
        let is_section = key == COMMON || command.find_subcommand(key).is_some();
        match value.as_table() {
            Some(_) if is_section => {}
            _ if is_section => errors.push(format!("`{key}` must be a section ([{key}])")),
            _ => errors.push(format!(
                "`{key}` at the top level: options go in a subcommand's section ([serve], \
                 [speed], ...) or in [{COMMON}] for every subcommand"
            )),
        }
    }
    if let Some(common) = root.get(COMMON).and_then(toml::Value::as_table) {
        for key in common.keys() {
            if !everywhere.iter().any(|l| l == key) {
                errors.push(format!(
                    "unknown key `{key}` in [{COMMON}]: no subcommand has this option{}",
                    spelling_hint(key)
                ));
            }
        }
    }
    let sections: toml::Table = root
        .iter()
        .filter(|(k, v)| *k != COMMON && v.is_table())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    check_table(command, &sections, &[], errors);
}

pub(super) fn spelling_hint(key: &str) -> String {
    if key.contains('_') && !key.contains('-') {
        format!(
            " (keys are spelled like the flags: `{}`)",
            key.replace('_', "-")
        )
    } else {
        String::new()
    }
}

pub(super) fn check_table(
    command: &Command,
    table: &toml::Table,
    path: &[String],
    errors: &mut Vec<String>,
) {
    let section = section_name(path);
    for (key, value) in table {
        if let Some(sub) = command.find_subcommand(key) {
            match value.as_table() {
                Some(inner) => {
                    let mut inner_path = path.to_vec();
                    inner_path.push(key.clone());
                    check_table(sub, inner, &inner_path, errors);
                }
                None => errors.push(format!("`{key}` in {section} must be a section")),
            }
            continue;
        }
        let own = command
            .get_arguments()
            .filter_map(configurable)
            .any(|l| l == key);
        if !own {
            errors.push(format!(
                "unknown key `{key}` in {section}: `lambda {}` has no option --{key}{}",
                path.join(" "),
                spelling_hint(key)
            ));
        }
    }
}
