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

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// Environment variable naming the configuration file (same as `--config`).
pub const CONFIG_ENV: &str = "LAMBDA_CONFIG";
/// Read by `--brokers` after the `LAMBDA_*` names: the conventional name of Kafka tooling.
const KAFKA_BROKERS_ENV: &str = shared_logic::topics::BROKERS_ENV;
const MASK: &str = "****";
/// The file's section for options of every subcommand (and of `lambda` itself).
pub const COMMON: &str = "common";

/// A parsed configuration file.
pub struct ConfigFile {
    path: PathBuf,
    root: toml::Table,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let root: toml::Table = text
            .parse()
            .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            root,
        })
    }

    /// The table of a subcommand path (`[]` = `[common]`), when the file has one.
    fn section(&self, path: &[String]) -> Option<&toml::Table> {
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

/// The command tree with the configuration applied, and where each applied value came from.
pub struct Configured {
    pub command: Command,
    pub file: Option<PathBuf>,
    provenance: HashMap<(String, String), Source>,
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

/// `LAMBDA_` + the path and the long name, upper case, `-` as `_`.
pub fn env_name(path: &[String], long: &str) -> String {
    let mut name = String::from("LAMBDA");
    for part in path.iter().map(String::as_str).chain([long]) {
        name.push('_');
        name.push_str(&part.to_ascii_uppercase().replace('-', "_"));
    }
    name
}

/// Options the model covers: named (`--long`), not clap's own, not `--config` itself.
fn configurable(arg: &Arg) -> Option<&str> {
    let long = arg.get_long()?;
    (!matches!(long, "help" | "version" | "config")).then_some(long)
}

fn is_multi(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Options whose values `config show` masks.
pub fn is_secret(long: &str) -> bool {
    ["token", "password", "secret"]
        .iter()
        .any(|word| long.contains(word))
}

/// A `key=value` client property whose value is a credential (SASL, TLS keys).
fn secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "private", ".key.pem", "token"]
        .iter()
        .any(|word| key.contains(word))
}

/// A value as `config show` prints it.
fn masked(long: &str, value: &str) -> String {
    if is_secret(long) {
        return MASK.to_string();
    }
    match value.split_once('=') {
        Some((key, _)) if long == "kafka-option" && secret_property(key) => format!("{key}={MASK}"),
        _ => value.to_string(),
    }
}

/// Applies the configuration layers below the flags to `command`. `env` looks up process
/// variables (injected so tests need not change the process environment). Every value is
/// checked with the option's parser; all problems are reported together.
pub fn configure(
    command: Command,
    file: Option<&ConfigFile>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Configured> {
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
        bail!("invalid configuration:\n  {}", errors.join("\n  "));
    }
    Ok(Configured {
        command,
        file: file.map(|f| f.path.clone()),
        provenance,
    })
}

struct Walker<'a> {
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

/// Runs the option's own parser on `value` (clap would otherwise assert on a bad default).
fn check_value(command: &Command, long: &str, value: &str) -> Result<(), String> {
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

fn section_name(path: &[String]) -> String {
    if path.is_empty() {
        format!("[{COMMON}]")
    } else {
        format!("[{}]", path.join("."))
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn toml_scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => Err("expected a single value".to_string()),
    }
}

fn toml_values(value: &toml::Value, multi: bool) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) if multi => items.iter().map(toml_scalar).collect(),
        toml::Value::Array(_) => Err("takes one value, not a list".to_string()),
        other => toml_scalar(other).map(|v| vec![v]),
    }
}

/// Every configurable long name anywhere in the tree (valid top-level keys).
fn all_longs(command: &Command) -> Vec<String> {
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

/// Unknown keys and sections are errors (a typo must not silently fall back to a default).
fn check_file(
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

fn spelling_hint(key: &str) -> String {
    if key.contains('_') && !key.contains('-') {
        format!(
            " (keys are spelled like the flags: `{}`)",
            key.replace('_', "-")
        )
    } else {
        String::new()
    }
}

fn check_table(command: &Command, table: &toml::Table, path: &[String], errors: &mut Vec<String>) {
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

/// Builds the configured command for this process: the file from `--config`/`LAMBDA_CONFIG`
/// and the process environment.
pub fn for_process(command: Command, args: &[OsString]) -> anyhow::Result<Configured> {
    let file = config_path(args)
        .map(|path| ConfigFile::load(&path))
        .transpose()?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    configure(command, file.as_ref(), &env)
}

/// One option's effective value, as `config show` reports it.
#[derive(serde::Serialize)]
struct Shown {
    name: String,
    section: String,
    value: Option<Vec<String>>,
    multiple: bool,
    source: String,
    env: Vec<String>,
}

/// The effective configuration of the subcommand that `args` (without `lambda`) selects.
pub fn show(configured: &Configured, args: &[String], json: bool) -> anyhow::Result<String> {
    if args.is_empty() {
        let names: Vec<&str> = configured
            .command
            .get_subcommands()
            .map(Command::get_name)
            .collect();
        bail!(
            "name a subcommand, e.g. `lambda config show serve`: one of {}",
            names.join(", ")
        );
    }
    let argv = std::iter::once("lambda".to_string()).chain(args.iter().cloned());
    let matches = configured
        .command
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| {
            let text = e.render().to_string();
            anyhow::anyhow!("{}", text.trim().trim_start_matches("error: "))
        })?;
    // `lambda`'s own options, then the selected (innermost) subcommand's.
    let mut shown = self::options(configured, &configured.command, &matches, &[]);
    let mut command = &configured.command;
    let mut matches = &matches;
    let mut path: Vec<String> = Vec::new();
    while let Some((name, sub_matches)) = matches.subcommand() {
        command = command
            .find_subcommand(name)
            .context("subcommand vanished")?;
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
        return Ok(serde_json::to_string_pretty(&doc)?);
    }
    Ok(render_toml(&path, configured.file.as_deref(), &shown))
}

fn options(
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
fn render_toml(path: &[String], file: Option<&Path>, shown: &[Shown]) -> String {
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
fn toml_literal(value: &str) -> String {
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

/// The variables an option reads, most specific first.
fn env_names(path: &[String], long: &str) -> Vec<String> {
    let mut env = vec![env_name(path, long)];
    if !path.is_empty() {
        env.push(env_name(&[], long));
    }
    if long == "brokers" {
        env.push(KAFKA_BROKERS_ENV.to_string());
    }
    env
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("lambda.toml"), text).unwrap()
    }

    fn configured(text: Option<&str>, vars: &[(&str, &str)]) -> anyhow::Result<Configured> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |name: &str| vars.get(name).cloned();
        let file = text.map(file);
        configure(crate::Cli::command(), file.as_ref(), &env)
    }

    /// (value, source) of every option `lambda <args>` resolves.
    fn effective(c: &Configured, args: &[&str]) -> BTreeMap<String, (Option<Vec<String>>, String)> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let json: serde_json::Value = serde_json::from_str(&show(c, &args, true).unwrap()).unwrap();
        json["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let value = o["value"]
                    .as_array()
                    .map(|v| v.iter().map(|s| s.as_str().unwrap().to_string()).collect());
                let name = o["name"].as_str().unwrap().to_string();
                (name, (value, o["source"].as_str().unwrap().to_string()))
            })
            .collect()
    }

    fn one(value: &str) -> Option<Vec<String>> {
        Some(vec![value.to_string()])
    }

    const FILE: &str = r#"
[common]
brokers = "common:9092"
topic = "common-topic"
log-format = "json"
[serve]
topic = "serve-topic"
max-rows = 7
no-collector = true
speed-url = ["http://a:9101", "http://b:9101"]
[lake.import]
chunk-lines = 5
"#;

    #[test]
    fn precedence_is_flag_then_variables_then_section_then_common_then_default() {
        let c = configured(Some(FILE), &[]).unwrap();
        let e = effective(&c, &["serve"]);
        assert_eq!(
            e["topic"],
            (one("serve-topic"), "file lambda.toml [serve]".into())
        );
        assert_eq!(
            e["brokers"],
            (one("common:9092"), "file lambda.toml [common]".into())
        );
        assert_eq!(
            e["log-format"],
            (one("json"), "file lambda.toml [common]".into())
        );
        assert_eq!(e["max-rows"].0, one("7"));
        assert_eq!(e["no-collector"].0, one("true"));
        assert_eq!(
            e["speed-url"].0,
            Some(vec![
                "http://a:9101".to_string(),
                "http://b:9101".to_string()
            ])
        );
        assert_eq!(e["listen"], (one("127.0.0.1:8080"), "default".into()));

        // The general variable beats the file; KAFKA_BROKERS only when nothing else names it.
        let c = configured(
            Some(FILE),
            &[("LAMBDA_TOPIC", "env-topic"), ("KAFKA_BROKERS", "kb:9092")],
        )
        .unwrap();
        let e = effective(&c, &["serve"]);
        assert_eq!(e["topic"], (one("env-topic"), "env LAMBDA_TOPIC".into()));
        assert_eq!(e["brokers"], (one("kb:9092"), "env KAFKA_BROKERS".into()));
        let c = configured(
            None,
            &[("KAFKA_BROKERS", "kb:9092"), ("LAMBDA_BROKERS", "lb:9092")],
        )
        .unwrap();
        assert_eq!(effective(&c, &["speed"])["brokers"].0, one("lb:9092"));

        // The flag beats everything.
        let e = effective(&c, &["serve", "--topic", "flag-topic"]);
        assert_eq!(e["topic"], (one("flag-topic"), "flag".into()));

        // Nested sections; [common] applies to every subcommand that has the option.
        let c = configured(Some(FILE), &[]).unwrap();
        let e = effective(&c, &["lake", "import", "in.ndjson"]);
        assert_eq!(e["chunk-lines"].0, one("5"));
        assert_eq!(effective(&c, &["speed"])["topic"].0, one("common-topic"));
    }

    #[test]
    fn the_configured_values_reach_the_parsed_arguments() {
        let c = configured(Some(FILE), &[("LAMBDA_SPEED_LISTEN", "ignored")]).unwrap();
        let m = c
            .command
            .clone()
            .try_get_matches_from(["lambda", "serve"])
            .unwrap();
        let cli = <crate::Cli as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
        assert!(matches!(cli.log_format, crate::LogFormat::Json));
        let crate::Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(serve.topic, "serve-topic");
    }

    #[test]
    fn mistakes_in_the_file_are_errors_with_their_place_and_reason() {
        let cases = [
            ("[serve]\nlisen = \"x\"", "unknown key `lisen` in [serve]"),
            (
                "[serve]\nquery_token = \"x\"",
                "spelled like the flags: `query-token`",
            ),
            ("topic = \"x\"", "`topic` at the top level"),
            ("[common]\nnope = 1", "unknown key `nope` in [common]"),
            (
                "[serve]\nmax-rows = \"many\"",
                "lambda.toml [serve] max-rows: invalid value",
            ),
            (
                "[serve]\nlisten = [\"a\", \"b\"]",
                "[serve] listen: takes one value",
            ),
            (
                "[serve]\nno-collector = \"maybe\"",
                "`maybe` is not a boolean",
            ),
            (
                "[common]\nlog-format = \"xml\"",
                "[common] log-format: invalid value",
            ),
            ("serve = 3", "`serve` must be a section"),
            ("[serve\n", "is not valid TOML"),
        ];
        for (text, expected) in cases {
            let err = match ConfigFile::parse(Path::new("lambda.toml"), text) {
                Err(e) => format!("{e:#}"),
                Ok(f) => {
                    let env = |_: &str| None;
                    match configure(crate::Cli::command(), Some(&f), &env) {
                        Err(e) => format!("{e:#}"),
                        Ok(_) => panic!("{text:?} was accepted"),
                    }
                }
            };
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let err = configured(None, &[("LAMBDA_MAX_ROWS", "lots")])
            .err()
            .unwrap();
        assert!(
            format!("{err}").contains("variable LAMBDA_MAX_ROWS"),
            "{err}"
        );
    }

    #[test]
    fn every_variable_name_means_one_option_and_none_is_reserved() {
        let described = describe(&crate::Cli::command());
        let mut meaning: HashMap<String, String> = HashMap::new();
        for option in described.as_array().unwrap() {
            let flag = option["flag"].as_str().unwrap().to_string();
            for name in option["env"].as_array().unwrap() {
                let name = name.as_str().unwrap().to_string();
                assert!(
                    ![
                        "LAMBDA_LOG",
                        "LAMBDA_CONFIG",
                        "LAMBDA_BIN",
                        "LAMBDA_ARTIFACTS_DIR"
                    ]
                    .contains(&name.as_str()),
                    "{name} is reserved"
                );
                if let Some(previous) = meaning.insert(name.clone(), flag.clone()) {
                    assert_eq!(previous, flag, "{name} names two options");
                }
            }
        }
        assert!(meaning.len() > 100, "{}", meaning.len());
    }

    #[test]
    fn secrets_are_masked() {
        let c = configured(
            Some("[serve]\nquery-token = \"s3cret\"\n[common]\nkafka-option = [\"sasl.password=pw\", \"security.protocol=SASL_SSL\"]"),
            &[],
        )
        .unwrap();
        let text = show(&c, &["serve".to_string()], false).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("=pw"), "{text}");
        assert!(text.contains("query-token = \"****\""), "{text}");
        assert!(
            text.contains("\"sasl.password=****\", \"security.protocol=SASL_SSL\""),
            "{text}"
        );
    }

    #[test]
    fn the_shown_configuration_read_back_as_a_file_gives_the_same_values() {
        let c = configured(Some(FILE), &[("LAMBDA_SERVE_MAX_RANGE_HOURS", "9")]).unwrap();
        let args = [
            "serve".to_string(),
            "--listen".to_string(),
            "0.0.0.0:1".to_string(),
        ];
        let text = show(&c, &args, false).unwrap();
        let again = configured(Some(&text), &[]).unwrap();
        let values = |c: &Configured, args: &[&str]| -> BTreeMap<String, Option<Vec<String>>> {
            effective(c, args)
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect()
        };
        assert_eq!(
            values(&again, &["serve"]),
            values(&c, &["serve", "--listen", "0.0.0.0:1"])
        );
        assert!(text.contains("max-rows = 7"), "{text}");
    }

    #[test]
    fn the_file_is_found_by_flag_or_variable() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["lambda", "--config", "a.toml", "serve"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_path(&args(&["lambda", "serve", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }
}
