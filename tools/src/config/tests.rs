//! Tests of the configuration model over a command tree of `lambda`'s shape.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

use super::*;
use crate::error::ToolsError;

/// A command tree of the shape of `lambda`'s: a global value option, subcommands with
/// single, multiple, flag and secret options, and a nested subcommand.
fn cli() -> Command {
    let kafka = |c: Command| {
        c.arg(
            Arg::new("brokers")
                .long("brokers")
                .default_value("localhost:9092"),
        )
        .arg(
            Arg::new("kafka_options")
                .long("kafka-option")
                .action(ArgAction::Append)
                .value_delimiter(';'),
        )
    };
    Command::new("lambda")
        .arg(
            Arg::new("log_format")
                .long("log-format")
                .global(true)
                .value_parser(["text", "json"])
                .default_value("text"),
        )
        .arg(Arg::new("config").long("config").global(true))
        .subcommand(kafka(
            Command::new("serve")
                .arg(Arg::new("topic").long("topic").default_value("events"))
                .arg(
                    Arg::new("listen")
                        .long("listen")
                        .default_value("127.0.0.1:8080"),
                )
                .arg(
                    Arg::new("max_rows")
                        .long("max-rows")
                        .value_parser(clap::value_parser!(u64))
                        .default_value("100000"),
                )
                .arg(
                    Arg::new("max_range_hours")
                        .long("max-range-hours")
                        .value_parser(clap::value_parser!(u64))
                        .default_value("744"),
                )
                .arg(
                    Arg::new("no_collector")
                        .long("no-collector")
                        .action(ArgAction::SetTrue),
                )
                .arg(Arg::new("query_token").long("query-token"))
                .arg(
                    Arg::new("speed_urls")
                        .long("speed-url")
                        .action(ArgAction::Append)
                        .value_delimiter(',')
                        .default_value("http://127.0.0.1:9101"),
                ),
        ))
        .subcommand(kafka(
            Command::new("speed")
                .arg(Arg::new("topic").long("topic").default_value("events"))
                .arg(
                    Arg::new("listen")
                        .long("listen")
                        .default_value("127.0.0.1:9101"),
                ),
        ))
        .subcommand(
            Command::new("lake").subcommand(
                Command::new("import")
                    .arg(Arg::new("input").required(true))
                    .arg(
                        Arg::new("chunk_lines")
                            .long("chunk-lines")
                            .value_parser(clap::value_parser!(u64))
                            .default_value("100000"),
                    ),
            ),
        )
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(Path::new("lambda.toml"), text).unwrap()
}

fn configured(text: Option<&str>, vars: &[(&str, &str)]) -> Result<Configured, ToolsError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.get(name).cloned();
    let file = text.map(file);
    configure(cli(), file.as_ref(), &env)
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
    assert_eq!(
        m.get_one::<String>("log_format").map(String::as_str),
        Some("json")
    );
    let serve = m.subcommand_matches("serve").unwrap();
    assert_eq!(
        serve.get_one::<String>("topic").map(String::as_str),
        Some("serve-topic")
    );
    assert!(serve.get_flag("no_collector"));
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
                match configure(cli(), Some(&f), &env) {
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
fn every_variable_name_means_one_option() {
    let described = describe(&cli());
    let mut meaning: HashMap<String, String> = HashMap::new();
    for option in described.as_array().unwrap() {
        let flag = option["flag"].as_str().unwrap().to_string();
        for name in option["env"].as_array().unwrap() {
            let name = name.as_str().unwrap().to_string();
            if let Some(previous) = meaning.insert(name.clone(), flag.clone()) {
                assert_eq!(previous, flag, "{name} names two options");
            }
        }
    }
    assert_eq!(meaning["LAMBDA_SERVE_MAX_ROWS"], "--max-rows");
    assert_eq!(meaning["LAMBDA_LAKE_IMPORT_CHUNK_LINES"], "--chunk-lines");
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
