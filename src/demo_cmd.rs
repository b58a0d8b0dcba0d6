//! `lambda demo`: the whole platform in one process on a laptop — the local broker (unless
//! `--brokers`), a generator posting to the collector, the speed layer, the lake writer, the
//! batch job on a short schedule and the serving layer with its dashboard — stopped
//! cleanly on Ctrl-C, with its data under `--data-dir` reused by the next start.
//!
//! Wiring only: every part is the crates' own code, as the separate subcommands run it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use batch::job::{self, BatchOptions, HourSelection};
use batch::lake_writer::{LakeWriter, WriterOptions};
use batch::Lake;
use clap::Args;
use serving::api::{watch_manifest, ApiOptions, AppState};
use serving::batch_views::BatchViews;
use serving::collector::{Collector, CollectorOptions};
use serving::speed_views::SpeedViews;
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{topics, MetricContext};
use speed::checkpoint::CheckpointStore;
use speed::consumer::{SpeedConsumer, SpeedOptions};
use speed::kafka::{ensure_topics, KafkaSettings};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tokio::sync::watch;

#[derive(Args)]
pub struct DemoArgs {
    /// Where the broker's storage, the lake, the views and the checkpoints live.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// A Kafka cluster to use instead of starting the local broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Port of the local broker.
    #[arg(long, default_value_t = 9092)]
    broker_port: u16,
    /// Extra librdkafka client property (repeatable).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Live events per second sent to the collector (on a laptop the local broker's sqlite
    /// storage bounds this; give --brokers a real cluster for more).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// On a first start (empty lake): hours of history sent first, so that the batch layer
    /// has complete hours to compute.
    #[arg(long, default_value_t = 3)]
    history_hours: u32,
    /// Events per second of event time in the history.
    #[arg(long, default_value_t = 20.0)]
    history_rate: f64,
    /// How often the batch job runs.
    #[arg(long, default_value_t = 120)]
    batch_period_secs: u64,
    /// Settled dirty hours computed per batch run (1: the boundary moves one hour a run).
    #[arg(long, default_value_t = 1)]
    batch_hours_per_run: usize,
    /// An hour is settled this many seconds after its end.
    #[arg(long, default_value_t = 60)]
    settle_secs: i64,
    /// Address of the dashboard and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Address of the speed layer's views endpoint (for `lambda verify`).
    #[arg(long = "views-listen", default_value = "127.0.0.1:9101")]
    speed_listen: String,
    /// Generator seed (default: a new one per start, so events of restarts are distinct).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Orders placed per second by the demo's Debezium-like source of `orders` and
    /// `products` (the `orders` metric); 0 runs no change streams.
    #[arg(long, default_value_t = 1.0)]
    orders_rate: f64,
}

/// Kills the local broker when the demo ends.
struct BrokerProcess(std::process::Child);

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Counts of what the demo's generator sent.
#[derive(Default)]
struct Sent {
    accepted: AtomicU64,
    rejected: AtomicU64,
    failed_requests: AtomicU64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !positive(args.rate) || !positive(args.history_rate) {
        anyhow::bail!("--rate and --history-rate must be positive");
    }
    if !(args.orders_rate >= 0.0 && args.orders_rate.is_finite()) {
        anyhow::bail!("--orders-rate must not be negative");
    }
    if args.batch_period_secs == 0 || args.batch_hours_per_run == 0 {
        anyhow::bail!("--batch-period-secs and --batch-hours-per-run must be positive");
    }
    let data = args.data_dir.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("--data-dir {}", data.display()))?;
    let (brokers, _broker) = match &args.brokers {
        Some(b) => (b.clone(), None),
        None => {
            let addr = format!("127.0.0.1:{}", args.broker_port);
            std::net::TcpListener::bind(&addr).with_context(|| {
                format!("port {} is taken (a broker already running? pass --brokers {addr} to use it, or --broker-port)", args.broker_port)
            })?;
            let child = speed::local_broker::spawn(&data.join("broker"), args.broker_port)?;
            println!(
                "started the local broker (tansu, sqlite storage in {}) on {addr}",
                data.join("broker").display()
            );
            (addr, Some(BrokerProcess(child)))
        }
    };
    {
        let brokers = brokers.clone();
        tokio::task::spawn_blocking(move || {
            speed::local_broker::wait_ready(&brokers, Duration::from_secs(60))
        })
        .await??;
    }
    let kafka = KafkaSettings::new(&brokers).with_options(&args.kafka_options)?;
    ensure_topics(
        &kafka,
        &[
            (topics::EVENTS, 4),
            (topics::DEAD_LETTER, 1),
            (topics::LATE, 1),
        ],
        Duration::from_secs(30),
    )
    .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let lake = Lake::open(
        data.join("lake")
            .to_str()
            .context("--data-dir is not UTF-8")?,
        true,
    )?;
    let views = lake.child("views");
    let first_start = lake.hours().await?.is_empty();

    // Speed layer.
    let realtime = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(30),
    );
    let checkpoints = CheckpointStore::new(
        Lake::open(
            data.join("checkpoints").to_str().context("UTF-8 path")?,
            true,
        )?,
        "lambda-speed",
        topics::EVENTS,
    );
    let consumer = SpeedConsumer::new(
        realtime.clone(),
        &kafka,
        checkpoints,
        SpeedOptions {
            batch_views: Some(views.clone()),
            ..SpeedOptions::default()
        },
    )
    .await?;
    let speed_task = tokio::spawn(consumer.run(stopped()));

    // Lake writer (its future holds Kafka messages across awaits: a runtime of its own).
    let writer = LakeWriter::new(
        lake.clone(),
        &kafka.client_config(&[]),
        WriterOptions {
            roll_age: Duration::from_secs(10),
            ..WriterOptions::default()
        },
    )?;
    let writer_stop = stopped();
    let writer_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("lake writer runtime: {e}"))?
            .block_on(writer.run(writer_stop))
            .map_err(anyhow::Error::from)
    });

    // Serving layer with the collector and the dashboard; the speed views endpoint.
    let state = Arc::new(AppState {
        batch: BatchViews::new(views.clone(), 512),
        speed: SpeedViews::InProcess(realtime.clone()).into(),
        collector: Some(Collector::new(&kafka, CollectorOptions::default())?),
        telemetry: Default::default(),
        answers: serving::answer_cache::AnswerCache::new(Duration::from_millis(500), 1_024),
        opts: ApiOptions::default(),
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let api_addr = listener.local_addr()?;
    let server = {
        let serve =
            axum::serve(listener, serving::router(state.clone())).with_graceful_shutdown(stopped());
        tokio::spawn(async move { serve.await })
    };
    let speed_listener = tokio::net::TcpListener::bind(&args.speed_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.speed_listen))?;
    let speed_addr = speed_listener.local_addr()?;
    let speed_server = {
        let serve = axum::serve(speed_listener, speed::http::router(realtime.clone()))
            .with_graceful_shutdown(stopped());
        tokio::spawn(async move { serve.await })
    };
    let watcher = tokio::spawn(watch_manifest(
        state.clone(),
        Duration::from_secs(2),
        stopped(),
    ));

    // Generator -> collector over HTTP.
    let sent = Arc::new(Sent::default());
    let seed = args.seed.unwrap_or_else(|| {
        xxhash_rust::xxh3::xxh3_64(
            format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
        )
    });
    let generator = tokio::spawn(generate(
        format!("http://{api_addr}/v1/events"),
        seed,
        args.rate,
        if first_start { args.history_hours } else { 0 },
        args.history_rate,
        sent.clone(),
        stopped(),
    ));

    // Change streams: source, speed consumer, lake writers.
    let cdc = if args.orders_rate > 0.0 {
        let now = chrono::Utc::now().timestamp_millis();
        let start = if first_start {
            (now.div_euclid(HOUR_MS) - args.history_hours as i64) * HOUR_MS
        } else {
            now
        };
        let stopped = || -> crate::demo_cdc::Stopped { Box::pin(stopped()) };
        Some(
            crate::demo_cdc::start(
                &kafka,
                &lake,
                &realtime,
                start,
                args.orders_rate,
                seed,
                stopped,
            )
            .await?,
        )
    } else {
        None
    };

    // Batch job on a schedule.
    let batch = tokio::spawn(batch_schedule(
        lake.clone(),
        views.clone(),
        Duration::from_secs(args.batch_period_secs),
        args.batch_hours_per_run,
        args.settle_secs,
        stopped(),
    ));

    println!(
        "lambda demo: dashboard http://{api_addr}/  API http://{api_addr}/v1/metrics  speed views http://{speed_addr}/v1/speed/status"
    );
    println!(
        "data in {} (broker, lake, views, checkpoints); batch every {} s; {} events/s live{}; Ctrl-C stops everything",
        data.display(),
        args.batch_period_secs,
        args.rate,
        if first_start {
            format!(", {} hours of history first", args.history_hours)
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
            print_status(&sent, &realtime, &state);
        }
    };
    tokio::select! {
        _ = crate::shutdown_signal() => {}
        _ = until => {}
        _ = status => {}
    }
    println!("stopping: generator, speed layer (checkpoint), lake writer (flush), batch, serving");
    let _ = stop_tx.send(true);
    let _ = generator.await;
    let _ = batch.await;
    if let Some(cdc) = cdc {
        cdc.join().await.context("change streams")?;
    }
    let speed_result = speed_task.await.context("speed task")?;
    let writer_result = tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .context("lake writer thread")?
        .map_err(|_| anyhow::anyhow!("the lake writer thread panicked"))?;
    let _ = server.await;
    let _ = speed_server.await;
    let _ = watcher.await;
    print_status(&sent, &realtime, &state);
    speed_result.context("speed layer")?;
    writer_result.context("lake writer")?;
    println!("stopped; data kept in {}", data.display());
    Ok(())
}

fn print_status(sent: &Sent, realtime: &RealtimeViews, state: &AppState) {
    let progress = realtime.progress();
    let now = chrono::Utc::now().timestamp_millis();
    let published = state.batch.published();
    let boundary = published
        .as_ref()
        .and_then(|p| p.time_boundary.get("page_views").cloned().flatten())
        .unwrap_or_else(|| "none yet".into());
    println!(
        "[demo] collector accepted {} rejected {} | speed: {} events, {} order changes, freshness {} | batch: {} hours, boundary {} (manifest v{})",
        sent.accepted.load(Ordering::Relaxed),
        sent.rejected.load(Ordering::Relaxed),
        progress.counters.events,
        realtime.order_counters().order_changes,
        progress
            .newest_event_ms
            .map_or("-".into(), |t| format!("{:.1} s", (now - t) as f64 / 1000.0)),
        published.as_ref().map_or(0, |p| p.hours.len()),
        boundary,
        published.as_ref().map_or(0, |p| p.version),
    );
}

/// Posts the history (if any) as fast as the collector takes it, then live events paced
/// at `rate`, until stopped.
async fn generate(
    url: String,
    seed: u64,
    rate: f64,
    history_hours: u32,
    history_rate: f64,
    sent: Arc<Sent>,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let (client, url, sent) = (client.clone(), url.clone(), sent.clone());
        async move {
            let answer = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => {
                    if let Ok(v) = r.json::<serde_json::Value>().await {
                        sent.accepted
                            .fetch_add(v["accepted"].as_u64().unwrap_or(0), Ordering::Relaxed);
                        sent.rejected
                            .fetch_add(v["rejected"].as_u64().unwrap_or(0), Ordering::Relaxed);
                    }
                }
                Ok(r) => {
                    sent.failed_requests.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(status = %r.status(), "collector refused a batch");
                }
                Err(e) => {
                    sent.failed_requests.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "collector unreachable");
                }
            }
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    let noise = |cfg: GeneratorConfig| GeneratorConfig {
        duplicate_fraction: 0.01,
        out_of_order_fraction: 0.02,
        out_of_order_ms: 3_000,
        invalid_fraction: 0.005,
        ..cfg
    };
    if history_hours > 0 {
        let start = (now.div_euclid(HOUR_MS) - history_hours as i64) * HOUR_MS;
        let count = ((now - 60_000 - start) as f64 / 1000.0 * history_rate) as usize;
        let history = Generator::new(noise(GeneratorConfig {
            seed: seed ^ 0x5eed,
            start_ms: start,
            events_per_second: history_rate,
            ..GeneratorConfig::default()
        }));
        let mut body = Vec::new();
        for (i, r) in history.take(count).enumerate() {
            body.extend_from_slice(&r.json);
            body.push(b'\n');
            if (i + 1) % 2_000 == 0 {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = post(std::mem::take(&mut body)) => {}
                }
            }
        }
        if !body.is_empty() {
            post(body).await;
        }
    }
    let start = chrono::Utc::now().timestamp_millis();
    let mut live = Generator::new(noise(GeneratorConfig {
        seed,
        start_ms: start,
        events_per_second: rate,
        ..GeneratorConfig::default()
    }));
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        // Paced by event time, so events are sent when they happen (duplicates and
        // invalid records do not move the generator's clock).
        let now = chrono::Utc::now().timestamp_millis();
        let mut body = Vec::new();
        while live.nominal_time_ms() <= now {
            let Some(r) = live.next() else { return };
            body.extend_from_slice(&r.json);
            body.push(b'\n');
        }
        if !body.is_empty() {
            tokio::spawn(post(body));
        }
    }
}

/// Every `period`: the oldest settled dirty hours (at most `per_run`) are computed and
/// published.
async fn batch_schedule(
    lake: Lake,
    views: Lake,
    period: Duration,
    per_run: usize,
    settle_secs: i64,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let settled = chrono::Utc::now().timestamp_millis() - settle_secs.max(0) * 1000;
        let selection = HourSelection::Dirty {
            before: Some(HourKey(settled.div_euclid(HOUR_MS))),
        };
        let hours = match job::select_hours(&lake, &views, &selection).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "batch: cannot select hours");
                continue;
            }
        };
        if hours.is_empty() {
            // No events hour to compute: the run still replays the change log when new
            // change files landed (the orders pass), and does nothing otherwise.
            let opts = BatchOptions::default();
            let replayed = batch::orders::run(
                &lake,
                &views,
                &job::new_run_id(),
                Some(HourKey(settled.div_euclid(HOUR_MS))),
                &opts.ctx,
                opts.lock_ttl,
                opts.skip_corrupt,
            )
            .await;
            match replayed {
                Ok((report, _)) if report.replayed => println!(
                    "[batch] change log replayed: {} order changes, {} hour(s) of orders published",
                    report.order_changes,
                    report.published_hours.len()
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "batch: change log replay failed"),
            }
        }
        for hour in hours.into_iter().take(per_run) {
            let opts = BatchOptions {
                complete_before_ms: Some(settled),
                ..BatchOptions::default()
            };
            match job::run(&lake, &views, &HourSelection::One(hour), &opts).await {
                Ok(report) => println!(
                    "[batch] run {} computed {hour} ({} rows) in {:.1} s",
                    report.run_id,
                    report.rows_read(),
                    report.elapsed.as_secs_f64()
                ),
                Err(e) => tracing::warn!(error = %e, %hour, "batch run failed"),
            }
        }
    }
}
