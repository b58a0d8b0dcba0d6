//! `lambda`: the one binary of the platform. It parses flags and calls the crates; the work
//! lives in `shared-logic`, `batch`, `speed` and `serving`, where tests drive it in-process.

mod batch_cmd;
mod bench_broker;
mod bench_cmd;
mod bench_speed_file;
mod generate;
mod heap_count;
mod lake_cmd;
mod quality_cmd;
mod serve_cmd;
mod speed_cmd;
mod topic_args;
mod verify_cmd;
mod views_cmd;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use lambda_io::kafka::{ClientRole, KafkaSettings};
use lambda_tools::config;
use shared_logic::topics;

/// Counts live heap bytes (read by `lambda bench speed-file`).
#[global_allocator]
static HEAP: heap_count::Counting = heap_count::Counting::new();

#[derive(Parser)]
#[command(
    name = "lambda",
    version,
    about = "Lambda-architecture analytics: batch and speed layers over one event stream"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// TOML configuration file: `[subcommand]` sections with keys spelled like the flags
    /// (flags and LAMBDA_* variables take precedence); see `lambda config`.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic e-commerce event stream (NDJSON to a file or stdout, or to Kafka).
    Generate(generate::GenerateArgs),
    /// Read a topic from the beginning to its current end and summarise what it holds.
    Inspect(InspectArgs),
    /// The lake's Delta tables: write them from Kafka (default), import NDJSON (`lake import`),
    /// compact (`lake optimize`), vacuum, migrate.
    Lake(lake_cmd::LakeArgs),
    /// Keep real-time views from the Kafka stream (event-time windows, watermarks,
    /// checkpoints), served over HTTP for the serving layer.
    Speed(speed_cmd::SpeedArgs),
    /// Benchmarks: the speed path fed from a file, and HTTP load on a running `lambda serve`
    /// (collector ingest, query latency).
    Bench(bench_cmd::BenchArgs),
    /// Compute hourly batch views from the lake and publish them (exit 0 ok, 1 failed,
    /// 2 bad usage, 4 hour has no data).
    Batch(batch_cmd::BatchArgs),
    /// The batch views' Delta tables: history (for time travel), vacuum, migrate.
    Views(views_cmd::ViewsArgs),
    /// Serve the query API (batch and real-time views merged), the event collector
    /// (`POST /v1/events`) and the live dashboard.
    Serve(serve_cmd::ServeArgs),
    /// Compare batch and speed views window by window (exit 0 equal, 1 different or failed,
    /// 2 bad usage, 3 nothing compared: no manifest, no covered hour in the range, or the
    /// speed layer holds none of the covered hours).
    Verify(verify_cmd::VerifyArgs),
    /// The data-quality report of a range of hours: each producer's figures judged by the
    /// quality rules (exit 0 no rule failed, 1 a rule failed or the report failed, 2 bad
    /// usage).
    Quality(quality_cmd::QualityArgs),
    /// The whole platform in one process: local broker, generator, collector, speed layer,
    /// lake writer, batch job on a schedule, API and dashboard.
    Demo(lambda_tools::demo::DemoArgs),
    /// The configuration model: `show` prints a subcommand's effective configuration (with
    /// the source of each value, secrets masked), `describe` every option's names.
    Config(ConfigArgs),
}

#[derive(Args)]
struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration of a subcommand as TOML (or JSON), e.g.
    /// `lambda config show serve --listen 0.0.0.0:8080`.
    Show {
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
        /// The subcommand and its flags, as they would be run.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "SUBCOMMAND"
        )]
        args: Vec<String>,
    },
    /// Every option of every subcommand: flag, variables, file key, default (JSON).
    Describe,
}

/// How to reach Kafka; shared by every subcommand that talks to it.
#[derive(Args, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers of the Kafka cluster.
    #[arg(long, default_value = topics::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Extra librdkafka client property, e.g. `security.protocol=SASL_SSL` (repeatable).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_delimiter = ';')]
    pub kafka_options: Vec<String>,
}

impl KafkaArgs {
    pub fn settings(&self) -> anyhow::Result<KafkaSettings> {
        Ok(KafkaSettings::new(&self.brokers).with_options(&self.kafka_options)?)
    }
}

/// In which window a cancelled, refunded or deleted order's revenue is reversed.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReversalArg {
    /// The window of the change: past windows stay as reported.
    Change,
    /// The window of the original order: past windows are restated.
    Original,
}

/// What the metrics' meaning depends on; batch, speed and serving must agree (the logic
/// fingerprint in the manifest and the speed status tells them apart).
#[derive(Args, Clone)]
pub struct LogicArgs {
    /// Window of an order's reversal (the `orders` metric).
    #[arg(long, value_enum, default_value_t = ReversalArg::Change)]
    pub reversal_window: ReversalArg,
    /// Currency revenue is reported in (ISO code: USD, EUR, GBP, JPY, CNY); each amount is
    /// converted once, at the rate of its event's day.
    #[arg(long, default_value = "USD")]
    pub reporting_currency: String,
    /// Dated exchange rates (CSV `valid_from,currency,usd_per_unit`, a rate for every
    /// currency; default: the shipped table, shared-logic/rates.csv).
    #[arg(long)]
    pub rates_file: Option<std::path::PathBuf>,
    /// Answer a metric in sliding windows too, `metric=size/slide` (repeatable, e.g.
    /// `page_views=10m/1m`): the layers keep their one-minute windows as panes and the API
    /// assembles a window of `size` every `slide` (`granularity=sliding`).
    #[arg(long = "sliding-window")]
    pub sliding_windows: Vec<String>,
}

impl LogicArgs {
    /// The metric context these options describe; a bad currency or rates file is an
    /// error with its reason (line number and what is wrong).
    pub fn ctx(&self) -> anyhow::Result<shared_logic::MetricContext> {
        let currency =
            shared_logic::Currency::parse(self.reporting_currency.trim()).with_context(|| {
                format!(
                    "--reporting-currency `{}`: not one of {}",
                    self.reporting_currency,
                    shared_logic::Currency::ALL.map(|c| c.code()).join(", ")
                )
            })?;
        let rates = match &self.rates_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--rates-file {}", path.display()))?;
                shared_logic::Rates::parse_csv(&text, currency)
                    .with_context(|| format!("--rates-file {}", path.display()))?
            }
            None => shared_logic::Rates::shipped(currency),
        };
        Ok(shared_logic::MetricContext {
            reversal: match self.reversal_window {
                ReversalArg::Change => shared_logic::cdc::ReversalWindow::Change,
                ReversalArg::Original => shared_logic::cdc::ReversalWindow::Original,
            },
            rates,
            sliding: shared_logic::sliding::SlidingWindows::parse(
                self.sliding_windows.iter().map(String::as_str),
                shared_logic::MetricContext::default().windows.size_ms(),
                shared_logic::registry::NAMES,
            )
            .context("--sliding-window")?,
            ..shared_logic::MetricContext::default()
        })
    }
}

/// Where the serving side reads both layers' views; shared by `serve` and `verify`.
#[derive(Args, Clone)]
pub struct LayerArgs {
    /// The batch layer's views location (a path, file:// or s3:// URL; `lambda batch`
    /// writes to <lake>/views by default).
    #[arg(long, default_value = "./data/lake/views")]
    pub views: String,
    /// Base URL of a speed instance's views endpoint (repeatable or comma-separated; all
    /// are merged).
    #[arg(
        long = "speed-url",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9101"
    )]
    pub speed_urls: Vec<String>,
    /// Bearer token the speed instances require (`lambda speed --speed-token`).
    #[arg(long, hide_env_values = true)]
    pub speed_token: Option<String>,
}

impl LayerArgs {
    /// The batch views of `--views`, with their manifest loaded (`cache_hours` decoded hour
    /// views kept).
    pub async fn batch_views(
        &self,
        cache_hours: usize,
    ) -> anyhow::Result<serving::batch_views::BatchViews> {
        use anyhow::Context;
        let lake = lambda_io::Lake::open(&self.views, false)
            .with_context(|| format!("--views {}", self.views))?;
        let batch = serving::batch_views::BatchViews::new(lake, cache_hours);
        batch.refresh().await?;
        Ok(batch)
    }

    /// The speed instances of `--speed-url`, reached with `--speed-token`.
    pub fn speed_views(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<serving::speed_views::SpeedViews> {
        let token = checked_token("--speed-token", self.speed_token.clone())?;
        Ok(serving::speed_views::SpeedViews::remote(&self.speed_urls, timeout)?.with_token(token))
    }
}

/// A token option, refused when it is a placeholder, empty or too short (see
/// `lambda_io::bearer::check_token`): no process starts with a token anyone could guess.
pub fn checked_token(option: &str, token: Option<String>) -> anyhow::Result<Option<String>> {
    if let Some(token) = &token {
        lambda_io::bearer::check_token(option, token)?;
    }
    Ok(token)
}

#[derive(Args)]
struct InspectArgs {
    /// Topic to read (default: `events`, or `cdc.<table>` with --cdc).
    #[arg(long)]
    topic: Option<String>,
    /// Read a Debezium change topic of this table instead of events: ops, re-deliveries,
    /// rejects by reason (what the dead-letter topic would hold).
    #[arg(long, value_enum)]
    cdc: Option<CdcTableArg>,
    /// Give up when the end of the topic is not reached within this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Sets up the log: lines on stderr, or, with `file` (the demo's log), every line in the
/// file and only errors on stderr, so that a terminal shows the command's own output.
fn init_logging(format: LogFormat, file: Option<std::fs::File>) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::fmt;
    use tracing_subscriber::prelude::*;

    let filter = tracing_subscriber::EnvFilter::try_from_env("LAMBDA_LOG")
        // delta-rs's kernel logs every snapshot and scan at INFO.
        .unwrap_or_else(|_| "info,buoyant_kernel=warn,deltalake_core=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let to_file = file.is_some();
    let lines = match (format, file) {
        (LogFormat::Text, None) => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        (LogFormat::Json, None) => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        (LogFormat::Text, Some(f)) => fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .boxed(),
        (LogFormat::Json, Some(f)) => fmt::layer()
            .json()
            .with_writer(std::sync::Mutex::new(f))
            .boxed(),
    };
    let errors = to_file.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(LevelFilter::ERROR)
    });
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(errors)
        .init();
}

/// The demo's log file (`<data-dir>/demo.log`, appended to), unless `--verbose` keeps the
/// log on stderr; other commands log to stderr.
fn log_file(command: &Command) -> anyhow::Result<Option<std::fs::File>> {
    let Command::Demo(args) = command else {
        return Ok(None);
    };
    let Some(path) = lambda_tools::demo::log_path(args) else {
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("--data-dir {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("log file {}", path.display()))?;
    Ok(Some(file))
}

/// The tables `--cdc` names.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CdcTableArg {
    Orders,
    Products,
    Users,
}

impl CdcTableArg {
    /// The table it names.
    pub(crate) fn table(self) -> shared_logic::cdc::CdcTable {
        use shared_logic::cdc::CdcTable;
        match self {
            CdcTableArg::Orders => CdcTable::Orders,
            CdcTableArg::Products => CdcTable::Products,
            CdcTableArg::Users => CdcTable::Users,
        }
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let config = args
        .kafka
        .settings()?
        .client_config(ClientRole::Consumer, &[]);
    let timeout = Duration::from_secs(args.timeout_secs);
    let text = match args.cdc {
        Some(table) => {
            let table = table.table();
            let topic = args
                .topic
                .unwrap_or_else(|| table.default_topic().to_string());
            let summary =
                lambda_io::kafka::drain::read_changes_to_end(&config, &topic, table, timeout)
                    .with_context(|| format!("reading change topic `{topic}`"))?;
            serde_json::to_string_pretty(&summary)?
        }
        None => {
            let topic = args.topic.unwrap_or_else(|| topics::EVENTS.to_string());
            let summary = lambda_io::kafka::drain::read_to_end(
                &config,
                &topic,
                &shared_logic::Validator::default(),
                timeout,
            )
            .with_context(|| format!("reading topic `{topic}`"))?;
            serde_json::to_string_pretty(&summary)?
        }
    };
    println!("{text}");
    Ok(())
}

fn config(args: ConfigArgs, configured: &config::Configured) -> anyhow::Result<()> {
    let text = match args.command {
        ConfigCommand::Show { json, args } => config::show(configured, &args, json)?,
        ConfigCommand::Describe => {
            serde_json::to_string_pretty(&config::describe(&Cli::command()))?
        }
    };
    println!("{text}");
    Ok(())
}

async fn run(command: Command, configured: &config::Configured) -> Result<(), (anyhow::Error, u8)> {
    let plain = |r: anyhow::Result<()>| r.map_err(|e| (e, 1));
    match command {
        Command::Config(args) => config(args, configured).map_err(|e| (e, 2)),
        Command::Generate(args) => plain(generate::run(args).await),
        Command::Inspect(args) => plain(
            tokio::task::spawn_blocking(move || inspect(args))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r),
        ),
        Command::Lake(args) => plain(lake_cmd::run(args).await),
        Command::Batch(args) => batch_cmd::run(args).await,
        Command::Views(args) => plain(views_cmd::run(args).await),
        Command::Speed(args) => plain(speed_cmd::run(args).await),
        Command::Serve(args) => plain(serve_cmd::run(args).await),
        Command::Demo(args) => plain(lambda_tools::demo::run(args).await.map_err(Into::into)),
        Command::Verify(args) => match verify_cmd::run(args).await {
            Ok(verify_cmd::Outcome::Equal) => Ok(()),
            Ok(verify_cmd::Outcome::Different) => {
                Err((anyhow::anyhow!("batch and speed views differ"), 1))
            }
            Ok(verify_cmd::Outcome::NothingCompared(why)) => Err((anyhow::anyhow!(why), 3)),
            Err(e) => Err((e, 1)),
        },
        Command::Quality(args) => match quality_cmd::run(args).await {
            Ok(shared_logic::quality_rules::Verdict::Fail) => {
                Err((anyhow::anyhow!("a data-quality rule failed"), 1))
            }
            Ok(_) => Ok(()),
            Err(e) => Err((e, 1)),
        },
        Command::Bench(args) => plain(
            tokio::task::spawn_blocking(move || bench_cmd::run(args))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r),
        ),
    }
}

fn main() -> std::process::ExitCode {
    heap_count::keep_freed_memory_a_while();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run_main());
    // Every task and blocking thread (a Kafka client among them) is gone after this; only
    // then does a demo's local broker stop.
    drop(runtime);
    lambda_tools::demo::stop_local_broker();
    code
}

async fn run_main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let configured = match config::for_process(Cli::command(), &args) {
        Ok(configured) => configured,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = match configured
        .command
        .clone()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match log_file(&cli.command) {
        Ok(file) => init_logging(cli.log_format, file),
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    }
    match run(cli.command, &configured).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err((e, code)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_variable_name_means_one_option_and_none_is_reserved() {
        let described = config::describe(&Cli::command());
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
    fn a_configuration_file_reaches_the_parsed_arguments() {
        let file = config::ConfigFile::parse(
            std::path::Path::new("lambda.toml"),
            "[common]\nlog-format = \"json\"\n[serve]\ntopic = \"serve-topic\"\n",
        )
        .unwrap();
        let env = |_: &str| None;
        let configured = config::configure(Cli::command(), Some(&file), &env).unwrap();
        let matches = configured
            .command
            .clone()
            .try_get_matches_from(["lambda", "serve"])
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert!(matches!(cli.log_format, LogFormat::Json));
        let Command::Serve(serve) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(serve.topic, "serve-topic");
    }
}
