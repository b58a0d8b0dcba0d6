//! `lambda speed`: flags for the speed layer, its HTTP endpoint, and the run report.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lambda_io::Lake;
use shared_logic::{topics, Validator};
use speed::cdc_consumer::{CdcConsumer, CdcOptions};
use speed::checkpoint::CheckpointStore;
use speed::consumer::{SpeedConsumer, SpeedOptions};
use speed::partition::{LatePolicy, TimeSettings};
use speed::views::RealtimeViews;

use crate::KafkaArgs;

#[derive(Args)]
pub struct SpeedArgs {
    #[command(flatten)]
    topics: crate::topic_args::EventTopicArgs,
    /// Consumer group; instances of one group split the partitions.
    #[arg(long, default_value = "lambda-speed")]
    group: String,
    /// Where checkpoints go: a path, file:// or s3:// URL.
    #[arg(long, default_value = "./data/checkpoints")]
    checkpoints: String,
    /// The batch layer's views location (its manifest bounds the speed state); none: no eviction.
    #[arg(long = "views")]
    batch_views: Option<String>,
    /// Which computation of the real-time views this is. Version 1 uses `--group` as is; a
    /// version N > 1 has a consumer group (`<group>-vN`) and checkpoints of its own, so it
    /// is computed beside the running version without touching it.
    #[arg(long, default_value_t = 1)]
    views_version: u32,
    /// Compute the views from offset 0 of every partition (a replay into a new
    /// `--views-version`); refused when that version already has checkpoints.
    #[arg(long)]
    from_beginning: bool,
    /// Seconds of batch-covered time kept before the boundary (for `lambda verify`).
    #[arg(long, default_value_t = 3_600)]
    retain_covered_secs: u64,
    /// Watermark = max event time − this.
    #[arg(long, default_value_t = 5_000)]
    out_of_orderness_ms: i64,
    /// Windows close when the watermark passes their end plus this.
    #[arg(long, default_value_t = 60_000)]
    allowed_lateness_ms: i64,
    /// What happens to events whose windows have closed.
    #[arg(long, value_enum, default_value_t = LatePolicy::Drop)]
    late_policy: LatePolicy,
    /// A partition silent this long does not hold back the watermark.
    #[arg(long, default_value_t = 30)]
    idle_timeout_secs: u64,
    /// Micro-batch size bound.
    #[arg(long, default_value_t = 20_000)]
    batch_max_records: usize,
    /// Micro-batch age bound: the longest a record waits for its micro-batch to fill
    /// (part of produce-to-visible latency; 10 ms keeps it a small share, see
    /// docs/benchmarks.md).
    #[arg(long, default_value_t = 10)]
    batch_max_age_ms: u64,
    /// Checkpoint (and commit) period.
    #[arg(long, default_value_t = 10.0)]
    checkpoint_interval_secs: f64,
    /// Dead-letter topic for rejected records.
    #[arg(long, default_value = topics::DEAD_LETTER)]
    dead_letter_topic: String,
    /// Topic for late records under `--late-policy side-output`.
    #[arg(long, default_value = topics::LATE)]
    late_topic: String,
    /// HTTP address of the views endpoint.
    #[arg(long, default_value = "127.0.0.1:9101")]
    listen: String,
    /// Bearer token the views endpoint requires on `/v1/speed/…` (serving and `lambda
    /// verify` send it with `--speed-token`); required when `--listen` is not loopback.
    #[arg(long, hide_env_values = true)]
    speed_token: Option<String>,
    /// Stop after this many records (benchmarks).
    #[arg(long)]
    stop_after_records: Option<u64>,
    /// Largest accepted clock skew into the future, in seconds.
    #[arg(long, default_value_t = 300)]
    max_future_skew_secs: i64,
    /// Also keep the `orders` and `daily_sales` metrics from the Debezium change streams of
    /// `orders`, `products` and `users` (products and users read whole by every instance,
    /// orders split by the group).
    #[arg(long)]
    cdc: bool,
    /// The `orders` change topic (with --cdc).
    #[arg(long, default_value = "cdc.orders")]
    cdc_orders_topic: String,
    /// The `products` change topic (with --cdc).
    #[arg(long, default_value = "cdc.products")]
    cdc_products_topic: String,
    /// The `users` change topic (with --cdc; created with one partition when missing).
    #[arg(long, default_value = "cdc.users")]
    cdc_users_topic: String,
    #[command(flatten)]
    logic: crate::LogicArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
}

pub async fn run(args: SpeedArgs) -> anyhow::Result<()> {
    if args.out_of_orderness_ms < 0 || args.allowed_lateness_ms < 0 {
        anyhow::bail!("--out-of-orderness-ms and --allowed-lateness-ms must not be negative");
    }
    if args.batch_max_records == 0
        || !(args.checkpoint_interval_secs > 0.0 && args.checkpoint_interval_secs.is_finite())
    {
        anyhow::bail!("--batch-max-records and --checkpoint-interval-secs must be positive");
    }
    let time = TimeSettings {
        out_of_orderness_ms: args.out_of_orderness_ms,
        allowed_lateness_ms: args.allowed_lateness_ms,
        late_policy: args.late_policy,
    };
    if args.views_version == 0 {
        anyhow::bail!("--views-version starts at 1");
    }
    let group = if args.views_version == 1 {
        args.group.clone()
    } else {
        format!("{}-v{}", args.group, args.views_version)
    };
    let mut views = RealtimeViews::new(
        args.logic.ctx()?,
        time,
        Duration::from_secs(args.idle_timeout_secs),
    );
    views.views_version = args.views_version;
    let event_topics = args.topics.resolve(topics::EVENTS)?;
    let checkpoints =
        CheckpointStore::for_topics(Lake::open(&args.checkpoints, true)?, &group, &event_topics);
    if args.from_beginning && !checkpoints.is_empty().await? {
        anyhow::bail!(
            "--from-beginning: views version {} (group `{group}`) already has checkpoints in {}; replay into a new --views-version",
            args.views_version,
            args.checkpoints
        );
    }
    let batch_views = match &args.batch_views {
        Some(v) => Some(Lake::open(v, false).with_context(|| format!("--views {v}"))?),
        None => None,
    };
    let opts = SpeedOptions {
        topics: event_topics.clone(),
        group_id: group.clone(),
        dead_letter_topic: args.dead_letter_topic,
        late_topic: args.late_topic,
        batch_max_records: args.batch_max_records,
        batch_max_age: Duration::from_millis(args.batch_max_age_ms),
        checkpoint_interval: Duration::from_secs_f64(args.checkpoint_interval_secs),
        validator: Validator {
            max_future_skew_ms: args.max_future_skew_secs * 1000,
            ..Validator::default()
        },
        stop_after_records: args.stop_after_records,
        batch_views,
        retain_covered: Duration::from_secs(args.retain_covered_secs),
    };
    let speed_token = crate::checked_token("--speed-token", args.speed_token)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    if speed_token.is_none() && !local.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: the views endpoint would answer every metric to the network without a token; set --speed-token (LAMBDA_SPEED_TOKEN, e.g. from `openssl rand -hex 32`) or listen on loopback",
            args.listen
        );
    }
    let server = axum::serve(listener, speed::http::router(views.clone(), speed_token));
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "views endpoint stopped");
        }
    });
    tracing::info!(topics = ?event_topics, group = %args.group, listen = %args.listen, "speed layer starts");
    let settings = args.kafka.settings()?;
    let (stop_cdc, stopped) = tokio::sync::watch::channel(false);
    let cdc = if args.cdc {
        let opts = CdcOptions {
            orders_topic: args.cdc_orders_topic.clone(),
            products_topic: args.cdc_products_topic.clone(),
            users_topic: args.cdc_users_topic.clone(),
            group_id: group.clone(),
            dead_letter_topic: opts.dead_letter_topic.clone(),
            batch_views: opts.batch_views.clone(),
            retain_covered: opts.retain_covered,
        };
        let consumer = CdcConsumer::new(views.clone(), &settings, opts).await?;
        let mut stopped = stopped.clone();
        Some(tokio::spawn(consumer.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })))
    } else {
        None
    };
    let consumer = SpeedConsumer::new(views.clone(), &settings, checkpoints, opts).await?;
    let run = consumer.run(lambda_tools::signal::shutdown_signal());
    tokio::pin!(run);
    let mut cdc = cdc;
    let stats = match &mut cdc {
        // A failing change-stream consumer stops the instance with its error.
        Some(task) => tokio::select! {
            stats = &mut run => stats?,
            ended = task => {
                ended.context("change streams task")??;
                anyhow::bail!("the change streams consumer stopped unexpectedly");
            }
        },
        None => run.await?,
    };
    let _ = stop_cdc.send(true);
    if let Some(cdc) = cdc {
        cdc.await.context("change streams task")??;
        let c = views.order_counters();
        println!(
            "change streams: {} order changes, {} product changes, {} duplicates, {} late, {} rejected, {} re-derived",
            c.order_changes, c.product_changes, c.duplicates, c.late, c.rejected, c.rederived
        );
    }
    let counters = views.counters();
    let (keys, dedup) = views.live_keys();
    let secs = stats.busy.as_secs_f64();
    println!(
        "speed layer stopped: {} records in {:.2} s ({:.0} records/s), {} micro-batches, {} checkpoints; events {}, rejected {}, duplicates {}, late dropped {}, late side-output {}, late updated {}; live keys {keys}, dedup keys {dedup}; produce-to-visible latency p50 {} ms, p99 {} ms ({} samples): produce-to-received (producer batching, broker, fetch) p50 {} ms, p99 {} ms; received-to-visible (micro-batch wait and processing) p50 {} ms, p99 {} ms",
        stats.records,
        secs,
        stats.records as f64 / secs.max(1e-9),
        stats.batches,
        stats.checkpoints,
        counters.events,
        counters.rejected,
        counters.duplicates,
        counters.late_dropped,
        counters.late_side_output,
        counters.late_updated,
        stats.latency.quantile(0.5).map_or("-".into(), |v| v.to_string()),
        stats.latency.quantile(0.99).map_or("-".into(), |v| v.to_string()),
        stats.latency.samples(),
        stats.delivery.quantile(0.5).map_or("-".into(), |v| v.to_string()),
        stats.delivery.quantile(0.99).map_or("-".into(), |v| v.to_string()),
        stats.processing.quantile(0.5).map_or("-".into(), |v| v.to_string()),
        stats.processing.quantile(0.99).map_or("-".into(), |v| v.to_string()),
    );
    Ok(())
}
