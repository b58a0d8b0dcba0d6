//! The configured command tree: every layer (flag, variables, file, default) applied to
//! each option, with where each value came from.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, Command};

use super::file::{check_file, toml_values, ConfigFile};
use super::options::{
    all_longs, check_value, configurable, env_name, env_names, is_flag, is_multi, parse_bool,
    section_name, Source, CONFIG_ENV,
};
use crate::error::ToolsError;

/// The command tree with the configuration applied, and where each applied value came from.
pub struct Configured {
    pub command: Command,
    pub file: Option<PathBuf>,
    pub(super) provenance: HashMap<(String, String), Source>,
}

/// The file named by `--config FILE`/`--config=FILE` in `args`, else by `LAMBDA_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Applies the configuration layers below the flags to `command`. `env` looks up process
/// variables (injected so tests need not change the process environment). Every value is
/// checked with the option's parser; all problems are reported together.
pub fn configure(
    command: Command,
    file: Option<&ConfigFile>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Configured, ToolsError> {
    let mut errors = Vec::new();
    if let Some(file) = file {
        let everywhere = all_longs(&command);
        check_file(&command, &file.root, &everywhere, &mut errors);
    }
    let mut provenance = HashMap::new();
    let mut walker = Walker {
        file,
        env,
        provenance: &mut provenance,
        errors: &mut errors,
    };
    let command = walker.walk(command, &mut Vec::new());
    if !errors.is_empty() {
        return Err(ToolsError::Config(format!(
            "invalid configuration:\n  {}",
            errors.join("\n  ")
        )));
    }
    Ok(Configured {
        command,
        file: file.map(|f| f.path.clone()),
        provenance,
    })
}

pub(super) struct Walker<'a> {
    file: Option<&'a ConfigFile>,
    env: &'a dyn Fn(&str) -> Option<String>,
    provenance: &'a mut HashMap<(String, String), Source>,
    errors: &'a mut Vec<String>,
}

impl Walker<'_> {
    fn walk(&mut self, mut command: Command, path: &mut Vec<String>) -> Command {
        let args: Vec<Arg> = command.get_arguments().cloned().collect();
        for arg in &args {
            let Some(long) = configurable(arg) else {
                continue;
            };
            let lower = self.lower_layers(&command, arg, long, path);
            let specific = env_name(path, long);
            let id = arg.get_id().clone();
            command = command.mut_arg(id, |a| {
                let a = a.env(specific);
                match lower {
                    Some(values) => a.default_values(values),
                    None => a,
                }
            });
        }
        let names: Vec<String> = command
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            path.push(name.clone());
            command = command.mut_subcommand(name, |sub| self.walk(sub, path));
            path.pop();
        }
        command
    }

    /// The value from the general variable or the file, checked; records its source.
    fn lower_layers(
        &mut self,
        command: &Command,
        arg: &Arg,
        long: &str,
        path: &[String],
    ) -> Option<Vec<String>> {
        let (values, source, origin) = self.lookup(arg, long, path)?;
        let mut checked = Vec::with_capacity(values.len());
        for value in values {
            let value = if is_flag(arg) {
                match parse_bool(&value) {
                    Some(b) => b.to_string(),
                    None => {
                        self.errors
                            .push(format!("{origin}: `{value}` is not a boolean (true/false)"));
                        return None;
                    }
                }
            } else {
                value
            };
            if let Err(reason) = check_value(command, long, &value) {
                self.errors.push(format!("{origin}: {reason}"));
                return None;
            }
            checked.push(value);
        }
        self.provenance
            .insert((path.join(" "), long.to_string()), source);
        Some(checked)
    }

    /// (values, source, description for errors) from the first layer that has the option.
    fn lookup(
        &mut self,
        arg: &Arg,
        long: &str,
        path: &[String],
    ) -> Option<(Vec<String>, Source, String)> {
        // The most specific variable is clap's `env` (above these layers).
        for name in env_names(path, long).into_iter().skip(1) {
            if let Some(value) = (self.env)(&name) {
                let values = match arg.get_value_delimiter() {
                    Some(d) if is_multi(arg) => value.split(d).map(str::to_string).collect(),
                    _ => vec![value],
                };
                let origin = format!("variable {name}");
                return Some((values, Source::Env(name), origin));
            }
        }
        let file = self.file?;
        let sections: &[&[String]] = if path.is_empty() {
            &[&[]]
        } else {
            &[path, &[]]
        };
        for section in sections {
            let Some(value) = file.section(section).and_then(|t| t.get(long)) else {
                continue;
            };
            let name = section_name(section);
            let origin = format!("{} {name} {long}", file.path.display());
            let values = match toml_values(value, is_multi(arg)) {
                Ok(values) => values,
                Err(reason) => {
                    self.errors.push(format!("{origin}: {reason}"));
                    return None;
                }
            };
            let source = Source::File {
                path: file.path.clone(),
                section: name,
            };
            return Some((values, source, origin));
        }
        None
    }
}

/// Builds the configured command for this process: the file from `--config`/`LAMBDA_CONFIG`
/// and the process environment.
pub fn for_process(command: Command, args: &[OsString]) -> Result<Configured, ToolsError> {
    let file = config_path(args)
        .map(|path| ConfigFile::load(&path))
        .transpose()?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    configure(command, file.as_ref(), &env)
}
