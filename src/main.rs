//! `lambda`: the one binary of the platform. It parses flags and calls the crates; the work
//! lives in `shared-logic`, `batch`, `speed` and `serving`, where tests drive it in-process.

mod batch_cmd;
mod bench_cmd;
mod bench_http;
mod demo_cmd;
mod generate;
mod lake_cmd;
mod serve_cmd;
mod speed_cmd;
mod verify_cmd;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use shared_logic::topics;
use speed::kafka::KafkaSettings;

#[derive(Parser)]
#[command(
    name = "lambda",
    version,
    about = "Lambda-architecture analytics: batch and speed layers over one event stream"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "LAMBDA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    /// The Parquet lake: write it from Kafka (default), or import NDJSON (`lake import`).
    Lake(lake_cmd::LakeArgs),
    /// Keep real-time views from the Kafka stream (event-time windows, watermarks,
    /// checkpoints), served over HTTP for the serving layer.
    Speed(speed_cmd::SpeedArgs),
    /// Benchmarks: the speed path fed from a file, and HTTP load on a running `lambda serve`
    /// (collector ingest, query latency).
    Bench(bench_cmd::BenchArgs),
    /// Compute hourly batch views from the lake and publish them (exit 0 ok, 1 failed,
    /// 2 bad usage, 3 hour locked by another run, 4 hour has no data).
    Batch(batch_cmd::BatchArgs),
    /// Serve the query API (batch and real-time views merged), the event collector
    /// (`POST /v1/events`) and the live dashboard.
    Serve(serve_cmd::ServeArgs),
    /// Compare batch and speed views window by window (exit 0 equal, 1 different or failed).
    Verify(verify_cmd::VerifyArgs),
    /// The whole platform in one process: local broker, generator, collector, speed layer,
    /// lake writer, batch job on a schedule, API and dashboard.
    Demo(demo_cmd::DemoArgs),
}

/// How to reach Kafka; shared by every subcommand that talks to it.
#[derive(Args, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers of the Kafka cluster.
    #[arg(long, env = topics::BROKERS_ENV, default_value = topics::DEFAULT_BROKERS)]
    pub brokers: String,
    /// Extra librdkafka client property, e.g. `security.protocol=SASL_SSL` (repeatable).
    #[arg(
        long = "kafka-option",
        value_name = "KEY=VALUE",
        env = "LAMBDA_KAFKA_OPTIONS",
        value_delimiter = ';'
    )]
    pub kafka_options: Vec<String>,
}

impl KafkaArgs {
    pub fn settings(&self) -> anyhow::Result<KafkaSettings> {
        Ok(KafkaSettings::new(&self.brokers).with_options(&self.kafka_options)?)
    }
}

/// Where the serving side reads both layers' views; shared by `serve` and `verify`.
#[derive(Args, Clone)]
pub struct LayerArgs {
    /// The batch layer's views location (a path, file:// or s3:// URL; `lambda batch`
    /// writes to <lake>/views by default).
    #[arg(long, env = "LAMBDA_VIEWS", default_value = "./data/lake/views")]
    pub views: String,
    /// Base URL of a speed instance's views endpoint (repeatable or comma-separated; all
    /// are merged).
    #[arg(
        long = "speed-url",
        env = "LAMBDA_SPEED_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9101"
    )]
    pub speed_urls: Vec<String>,
}

#[derive(Args)]
struct InspectArgs {
    /// Topic to read.
    #[arg(long, env = "LAMBDA_TOPIC", default_value = topics::EVENTS)]
    topic: String,
    /// Give up when the end of the topic is not reached within this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Resolves on Ctrl-C or SIGTERM (how Kubernetes stops a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("LAMBDA_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let config = args.kafka.settings()?.client_config(&[]);
    let now = chrono::Utc::now().timestamp_millis();
    let summary = speed::drain::read_to_end(
        &config,
        &args.topic,
        &shared_logic::Validator::default(),
        now,
        Duration::from_secs(args.timeout_secs),
    )
    .with_context(|| format!("reading topic `{}`", args.topic))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

async fn run(command: Command) -> Result<(), (anyhow::Error, u8)> {
    let plain = |r: anyhow::Result<()>| r.map_err(|e| (e, 1));
    match command {
        Command::Generate(args) => plain(generate::run(args).await),
        Command::Inspect(args) => plain(
            tokio::task::spawn_blocking(move || inspect(args))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r),
        ),
        Command::Lake(args) => plain(lake_cmd::run(args).await),
        Command::Batch(args) => batch_cmd::run(args).await,
        Command::Speed(args) => plain(speed_cmd::run(args).await),
        Command::Serve(args) => plain(serve_cmd::run(args).await),
        Command::Demo(args) => plain(demo_cmd::run(args).await),
        Command::Verify(args) => match verify_cmd::run(args).await {
            Ok(true) => Ok(()),
            Ok(false) => Err((anyhow::anyhow!("batch and speed views differ"), 1)),
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err((e, code)) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(code)
        }
    }
}
