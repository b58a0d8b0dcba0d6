//! `lambda demo`: the whole platform in one process on a laptop — the local broker (unless
//! `--brokers`), a generator posting to the collector, the speed layer, the lake writer, the
//! batch job on a short schedule and the serving layer with its dashboard — stopped
//! cleanly on Ctrl-C, with its data under `--data-dir` reused by the next start.
//!
//! Wiring only: every part is the crates' own code, as the separate subcommands run it.
//! [`broker`] starts Kafka, [`layers`] the speed, lake and serving layers, [`traffic`] the
//! clickstream, [`cdc`] the change streams, [`schedule`] the batch runs, [`token`] the
//! speed token of the views endpoint.

mod broker;
mod cdc;

pub use broker::stop_local_broker;
mod layers;
mod schedule;
mod token;
mod traffic;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use lambda_io::Lake;
use shared_logic::window::HOUR_MS;
use tokio::sync::watch;

use crate::error::{Context, ToolsError};
use layers::Layers;
use traffic::{print_status, Sent};

#[derive(Args)]
pub struct DemoArgs {
    /// Where the broker's storage, the lake, the views and the checkpoints live.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// A Kafka cluster to use instead of starting the local broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Port of the local broker.
    #[arg(long, default_value_t = 9092)]
    pub broker_port: u16,
    /// Hours the local broker keeps the events, dead-letter and late topics (0: for good).
    /// About 650 MiB of store an hour at 500 events/s (docs/broker.md); ignored with
    /// --brokers (the cluster keeps its own retention).
    #[arg(long, default_value_t = 6)]
    pub broker_retention_hours: u64,
    /// Extra librdkafka client property (repeatable).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// Live events per second sent to the collector (on a laptop the local broker's sqlite
    /// storage bounds this; give --brokers a real cluster for more).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// On a first start (empty lake): whole hours of history sent first (the current hour
    /// so far too), so that the batch layer has complete hours to compute. At the live rate
    /// an hour is 1.8 M events at 500 events/s, which the local broker takes in about 3
    /// minutes.
    #[arg(long, default_value_t = 1)]
    pub history_hours: u32,
    /// Events per second of event time in the history (default: --rate, so the history
    /// reads as the live stream does and the charts have no cliff).
    #[arg(long)]
    pub history_rate: Option<f64>,
    /// How often the batch job runs.
    #[arg(long, default_value_t = 120)]
    pub batch_period_secs: u64,
    /// Settled dirty hours computed per batch run (1: the boundary moves one hour a run).
    #[arg(long, default_value_t = 1)]
    pub batch_hours_per_run: usize,
    /// An hour is settled this many seconds after its end.
    #[arg(long, default_value_t = 60)]
    pub settle_secs: i64,
    /// Address of the dashboard and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address of the SQL endpoint (PostgreSQL wire protocol; psql, Grafana).
    #[arg(long, default_value = "127.0.0.1:5433")]
    pub pg_listen: String,
    /// Address of the speed layer's views endpoint (for `lambda verify`).
    #[arg(long = "views-listen", default_value = "127.0.0.1:9101")]
    pub speed_listen: String,
    /// Bearer token of the speed views endpoint (default: generated on the first start and
    /// kept in `<data-dir>/speed-token`).
    #[arg(long, hide_env_values = true)]
    pub speed_token: Option<String>,
    /// Generator seed (default: a new one per start, so events of restarts are distinct).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Log lines on the terminal, as the other commands write them (by default they go to
    /// `<data-dir>/demo.log` and the terminal shows the demo's status lines and errors).
    #[arg(long)]
    pub verbose: bool,
    /// Orders placed per second by the demo's Debezium-like source of `orders` and
    /// `products` (the `orders` metric); 0 runs no change streams.
    #[arg(long, default_value_t = 1.0)]
    pub orders_rate: f64,
}

/// Where the demo's log lines go: `<data-dir>/demo.log`, or the terminal (`None`) with
/// `--verbose`.
pub fn log_path(args: &DemoArgs) -> Option<PathBuf> {
    (!args.verbose).then(|| args.data_dir.join("demo.log"))
}

/// The demo's stop signal, handed to every part.
#[derive(Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Resolves once the demo stops.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

fn check(args: &DemoArgs) -> Result<(), ToolsError> {
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(args.rate) || !args.history_rate.is_none_or(positive) {
        crate::invalid!("--rate and --history-rate must be positive");
    }
    if !(args.orders_rate >= 0.0 && args.orders_rate.is_finite()) {
        crate::invalid!("--orders-rate must not be negative");
    }
    if args.broker_retention_hours > 24 * 365 * 100 {
        crate::invalid!(
            "--broker-retention-hours must be at most a century (0 keeps records for good)"
        );
    }
    if args.batch_period_secs == 0 || args.batch_hours_per_run == 0 {
        crate::invalid!("--batch-period-secs and --batch-hours-per-run must be positive");
    }
    Ok(())
}

/// Runs the demo until Ctrl-C, SIGTERM or `--duration-secs`.
pub async fn run(args: DemoArgs) -> Result<(), ToolsError> {
    check(&args)?;
    let data = args.data_dir.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("--data-dir {}", data.display()))?;
    let speed_token = token::speed_token(args.speed_token.as_deref(), &data)?;
    let (kafka, broker_process) = broker::start(
        args.brokers.as_deref(),
        args.broker_port,
        &args.kafka_options,
        &data,
        (args.broker_retention_hours > 0)
            .then(|| Duration::from_secs(args.broker_retention_hours.saturating_mul(3600))),
    )
    .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = Stop(stop_rx);
    let lake = Lake::open(
        data.join("lake")
            .to_str()
            .context("--data-dir is not UTF-8")?,
        true,
    )?;
    let views = lake.child("views");
    // `./data` of a version before the Delta tables is converted in place (idempotent).
    let group = batch::lake_writer::WriterOptions::default().group_id;
    if !batch::migrate::migrate(&lake, &group).await?.nothing_done() {
        println!("lake: converted to Delta tables in place (lambda lake migrate)");
    }
    let migrated = batch::views_admin::migrate(&views).await?;
    if !migrated.already {
        println!(
            "views: {} hour(s) converted to Delta tables in place (lambda views migrate)",
            migrated.hours
        );
    }
    let first_start = lake.hours().await?.is_empty();
    let layers = Layers::start(
        &kafka,
        &lake,
        &data,
        layers::Listen {
            api: &args.listen,
            sql: &args.pg_listen,
            speed: &args.speed_listen,
        },
        speed_token,
        &stop,
    )
    .await?;

    // Generator -> collector over HTTP.
    let sent = Arc::new(Sent::default());
    let seed = args.seed.unwrap_or_else(|| {
        xxhash_rust::xxh3::xxh3_64(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        )
    });
    // The batch job waits until the history is in: its settle horizon is wall-clock time,
    // and a history sent faster than real time is not complete in the lake before then.
    let (history_sent, history_in) = tokio::sync::oneshot::channel();
    let generator = tokio::spawn(traffic::generate(
        traffic::Traffic {
            url: format!("http://{}/v1/events", layers.api_addr),
            seed,
            rate: args.rate,
            history_hours: if first_start { args.history_hours } else { 0 },
            history_rate: args.history_rate.unwrap_or(args.rate),
        },
        history_sent,
        sent.clone(),
        stop.stopped(),
    ));

    // Change streams: source, speed consumer, lake writers.
    let cdc = if args.orders_rate > 0.0 {
        let now = chrono::Utc::now().timestamp_millis();
        let start = if first_start {
            (now.div_euclid(HOUR_MS) - args.history_hours as i64) * HOUR_MS
        } else {
            now
        };
        let source = cdc::Source {
            start_ms: start,
            orders_per_second: args.orders_rate,
            seed,
        };
        Some(cdc::start(&kafka, &lake, &layers.realtime, source, &stop).await?)
    } else {
        None
    };

    let batch = tokio::spawn(schedule::batch_schedule(
        history_in,
        kafka.clone(),
        lake.clone(),
        views.clone(),
        Duration::from_secs(args.batch_period_secs),
        args.batch_hours_per_run,
        args.settle_secs,
        stop.stopped(),
    ));

    let (api, speed) = (layers.api_addr, layers.speed_addr);
    println!(
        "lambda demo: dashboard http://{api}/  API http://{api}/v1/metrics  speed views http://{speed}/v1/speed/status (bearer token in {})",
        token::token_file(&data).display()
    );
    println!(
        "SQL: psql \"host={} port={} user=lambda dbname=lambda\" (tables {}; _hourly and _daily too)",
        layers.sql_addr.ip(),
        layers.sql_addr.port(),
        shared_logic::registry::NAMES.join(", ")
    );
    println!(
        "data in {} (broker, lake, views, checkpoints; {}); batch every {} s; {} events/s live{}; Ctrl-C stops everything",
        data.display(),
        match log_path(&args) {
            Some(log) => format!("log in {}, --verbose shows it here", log.display()),
            None => "log on the terminal".into(),
        },
        args.batch_period_secs,
        args.rate,
        if first_start {
            format!(
                ", {} hour{} of history first (and the current hour so far)",
                args.history_hours,
                if args.history_hours == 1 { "" } else { "s" }
            )
        } else {
            ", no history (data from an earlier start)".into()
        }
    );

    let until = async {
        match args.duration_secs {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending().await,
        }
    };
    let status = async {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            print_status(&sent, &layers.realtime, &layers.state);
        }
    };
    tokio::select! {
        _ = crate::signal::shutdown_signal() => {}
        _ = until => {}
        _ = status => {}
    }
    println!("stopping: generator, speed layer (checkpoint), lake writer (flush), batch, serving");
    let _ = stop_tx.send(true);
    let _ = generator.await;
    let _ = batch.await;
    if let Some(cdc) = cdc {
        cdc.join().await?;
    }
    let (realtime, state) = (layers.realtime.clone(), layers.state.clone());
    let joined = layers.join().await;
    print_status(&sent, &realtime, &state);
    joined?;
    broker::park(broker_process);
    println!("stopped; data kept in {}", data.display());
    Ok(())
}
