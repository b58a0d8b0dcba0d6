//! `lambda serve`: flags for the serving layer (query API, collector, dashboard) and its
//! wiring: batch views from the views location, real-time views from speed instances over
//! HTTP, events into Kafka.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lambda_io::Lake;
use serving::api::watch_manifest;
use serving::batch_views::BatchViews;
use serving::collector::{Collector, CollectorOptions};
use serving::query::QueryLimits;
use serving::rate_limit::RateLimit;
use serving::{ApiOptions, AppState};
use shared_logic::{topics, Validator};

use crate::KafkaArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// HTTP address of the API and dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    #[command(flatten)]
    layers: crate::LayerArgs,
    #[command(flatten)]
    logic: crate::LogicArgs,
    /// Timeout of one request to a speed instance.
    #[arg(long, default_value_t = 2_000)]
    speed_timeout_ms: u64,
    /// How often the batch manifest is checked for a new version.
    #[arg(long, default_value_t = 5.0)]
    manifest_poll_secs: f64,
    /// Decoded batch hour-view files kept in memory.
    #[arg(long, default_value_t = 512)]
    batch_cache_hours: usize,
    /// Longest range one query may span.
    #[arg(long, default_value_t = 744)]
    max_range_hours: i64,
    /// Largest `limit` of one query.
    #[arg(long, default_value_t = 100_000)]
    max_rows: usize,
    /// Repeated queries are answered from a cache up to this old (twice this while one
    /// background refresh runs); 0 computes every answer. Each answer says its age.
    #[arg(long, default_value_t = 500)]
    answer_max_staleness_ms: u64,
    /// Bearer token required by the query routes (off when unset).
    #[arg(long, hide_env_values = true)]
    query_token: Option<String>,
    /// Bearer token required by `POST /v1/events` (off when unset); repeatable or
    /// comma-separated: one per client, each with its own rate limit.
    #[arg(long, hide_env_values = true, value_delimiter = ',')]
    ingest_token: Vec<String>,
    /// Requests per second each ingest client (token, or address without tokens) may
    /// sustain on `POST /v1/events`; over it: 429 with `Retry-After`. 0 turns it off.
    #[arg(long, default_value_t = RateLimit::default().per_second)]
    ingest_rate: f64,
    /// Requests an ingest client may send at once after being idle.
    #[arg(long, default_value_t = RateLimit::default().burst)]
    ingest_burst: u32,
    /// Bearer token of the admin routes (`PUT /v1/admin/speed`); they are disabled when unset.
    #[arg(long, hide_env_values = true)]
    admin_token: Option<String>,
    /// Do not collect events (`POST /v1/events` answers 503).
    #[arg(long)]
    no_collector: bool,
    /// Topic the collector produces valid events to.
    #[arg(long, default_value = topics::EVENTS)]
    pub(crate) topic: String,
    /// Produce each valid event to its type's topic, <topic>.page_view,
    /// <topic>.add_to_cart, <topic>.purchase (created with --partitions each), keyed by
    /// user_id; read them with `lambda speed/lake --topic-per-event-type`.
    #[arg(long)]
    pub(crate) topic_per_event_type: bool,
    /// Partitions of the events topic when the collector creates it.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Topic the collector produces rejected records to.
    #[arg(long, default_value = topics::DEAD_LETTER)]
    dead_letter_topic: String,
    /// Largest request body of `POST /v1/events`.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    max_body_bytes: usize,
    /// How long the collector waits for Kafka to acknowledge a request's records.
    #[arg(long, default_value_t = 10_000)]
    delivery_timeout_ms: u64,
    /// Largest accepted clock skew into the future, in seconds.
    #[arg(long, default_value_t = 300)]
    max_future_skew_secs: i64,
    /// A data-quality rule of `GET /v1/quality`, replacing its check's default, e.g.
    /// `duplicates=warn:2%,fail:5%` or `volume=warn:30%,fail:60%,weeks:4,hours:6`;
    /// repeatable; `none` turns every rule off (docs/quality.md lists the checks).
    #[arg(long, value_name = "RULE")]
    quality_rule: Vec<String>,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    sql: SqlArgs,
}

/// The SQL endpoint (PostgreSQL wire protocol) over the same views.
#[derive(Args)]
pub struct SqlArgs {
    /// Address of the SQL endpoint (PostgreSQL wire protocol), e.g. 127.0.0.1:5433; off
    /// when unset. The password is the query token.
    #[arg(long)]
    pg_listen: Option<String>,
    /// PEM certificate chain of the SQL endpoint: TLS on, plaintext sessions refused.
    #[arg(long, requires = "pg_tls_key")]
    pg_tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--pg-tls-cert`.
    #[arg(long, requires = "pg_tls_cert")]
    pg_tls_key: Option<std::path::PathBuf>,
    /// Longest SQL statement, planning and sending the rows included.
    #[arg(long, default_value_t = 30_000)]
    pg_statement_timeout_ms: u64,
    /// Most rows one SQL answer may send (more: an error, SQLSTATE 54000).
    #[arg(long, default_value_t = 100_000)]
    pg_max_rows: usize,
    /// Most merged rows one table scan may read before SQL aggregates them.
    #[arg(long, default_value_t = 2_000_000)]
    pg_max_scan_rows: usize,
    /// Most SQL sessions open at once (more: SQLSTATE 53300).
    #[arg(long, default_value_t = 64)]
    pg_max_sessions: usize,
    /// Most SQL statements executing at once; the others wait within their timeout.
    #[arg(long, default_value_t = 4)]
    pg_max_running: usize,
}

impl SqlArgs {
    fn options(&self, token: Option<String>) -> anyhow::Result<Option<lambda_sql::SqlOptions>> {
        let Some(listen) = &self.pg_listen else {
            return Ok(None);
        };
        if self.pg_statement_timeout_ms == 0
            || self.pg_max_rows == 0
            || self.pg_max_scan_rows == 0
            || self.pg_max_sessions == 0
            || self.pg_max_running == 0
        {
            anyhow::bail!("--pg-statement-timeout-ms, --pg-max-rows, --pg-max-scan-rows, --pg-max-sessions and --pg-max-running must be positive");
        }
        Ok(Some(lambda_sql::SqlOptions {
            listen: listen.clone(),
            tls: self.pg_tls_cert.clone().zip(self.pg_tls_key.clone()),
            token,
            statement_timeout: Duration::from_millis(self.pg_statement_timeout_ms),
            max_rows: self.pg_max_rows,
            max_scan_rows: self.pg_max_scan_rows,
            max_sessions: self.pg_max_sessions,
            max_running: self.pg_max_running,
        }))
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !(args.manifest_poll_secs > 0.0 && args.manifest_poll_secs.is_finite()) {
        anyhow::bail!("--manifest-poll-secs must be positive");
    }
    if args.max_range_hours <= 0 || args.max_rows == 0 || args.max_body_bytes == 0 {
        anyhow::bail!("--max-range-hours, --max-rows and --max-body-bytes must be positive");
    }
    let lake = Lake::open(&args.layers.views, true)
        .with_context(|| format!("--views {}", args.layers.views))?;
    if !(args.ingest_rate >= 0.0 && args.ingest_rate.is_finite())
        || (args.ingest_rate > 0.0 && args.ingest_burst == 0)
    {
        anyhow::bail!("--ingest-rate must not be negative, and --ingest-burst must be positive");
    }
    let query_token = crate::checked_token("--query-token", args.query_token)?;
    let sql_options = args.sql.options(query_token.clone())?;
    let admin_token = crate::checked_token("--admin-token", args.admin_token)?;
    let mut ingest_tokens = Vec::new();
    for token in args.ingest_token {
        ingest_tokens.extend(crate::checked_token("--ingest-token", Some(token))?);
    }
    let speed = args
        .layers
        .speed_views(Duration::from_millis(args.speed_timeout_ms))?;
    let collector = if args.no_collector {
        None
    } else {
        let settings = args.kafka.settings()?;
        // The broker may be down at start: the collector then answers 503 until it is up.
        let event_topics = if args.topic_per_event_type {
            topics::per_event_type(&args.topic)
        } else {
            vec![args.topic.clone()]
        };
        let mut created: Vec<(&str, i32)> = event_topics
            .iter()
            .map(|t| (t.as_str(), args.partitions))
            .collect();
        created.push((&args.dead_letter_topic, 1));
        if let Err(e) =
            lambda_io::kafka::ensure_topics(&settings, &created, Duration::from_secs(10)).await
        {
            tracing::warn!(error = %e, "could not check the collector's topics; requests will fail until Kafka is reachable");
        }
        Some(Collector::new(
            &settings,
            CollectorOptions {
                topic: args.topic.clone(),
                per_event_type: args.topic_per_event_type,
                dead_letter_topic: args.dead_letter_topic.clone(),
                validator: Validator {
                    max_future_skew_ms: args.max_future_skew_secs * 1000,
                    ..Validator::default()
                },
                delivery_timeout: Duration::from_millis(args.delivery_timeout_ms),
                max_body_bytes: args.max_body_bytes,
                rate_limit: RateLimit {
                    per_second: args.ingest_rate,
                    burst: args.ingest_burst,
                    ..RateLimit::default()
                },
            },
        )?)
    };
    let ctx = args.logic.ctx()?;
    let quality_rules = shared_logic::quality_rules::rules(&args.quality_rule)
        .map(shared_logic::quality_rules::RuleSet)
        .map_err(anyhow::Error::msg)?;
    let state = Arc::new(AppState {
        batch: BatchViews::new(lake, args.batch_cache_hours).with_windows(ctx.windows),
        speed: speed.into(),
        collector,
        telemetry: Default::default(),
        answers: serving::answer_cache::AnswerCache::new(
            Duration::from_millis(args.answer_max_staleness_ms),
            1_024,
        ),
        opts: ApiOptions {
            limits: QueryLimits {
                max_range_ms: args.max_range_hours * shared_logic::window::HOUR_MS,
                max_rows: args.max_rows,
                ..QueryLimits::default()
            },
            query_token,
            ingest_tokens,
            admin_token,
            ctx,
            quality_rules,
        },
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sql = match sql_options {
        Some(opts) => {
            let endpoint = lambda_sql::SqlEndpoint::bind(state.clone(), &opts).await?;
            let addr = endpoint.local_addr()?;
            println!(
                "SQL (PostgreSQL wire) on {addr}: psql \"host={} port={} user=lambda dbname=lambda{}\"",
                addr.ip(),
                addr.port(),
                if opts.tls.is_some() { " sslmode=require" } else { "" }
            );
            tracing::info!(%addr, tls = opts.tls.is_some(), "SQL endpoint starts");
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(endpoint.serve(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })))
        }
        None => None,
    };
    let watcher = tokio::spawn(watch_manifest(
        state.clone(),
        Duration::from_secs_f64(args.manifest_poll_secs),
        async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        },
    ));
    println!(
        "serving on http://{} (dashboard at /, API at /v1/metrics, OpenAPI at /openapi.json)",
        listener.local_addr()?
    );
    tracing::info!(listen = %args.listen, views = %args.layers.views, speed = ?args.layers.speed_urls, "serving layer starts");
    // With the peer address, so that the ingest rate limit tells clients without a token
    // apart.
    let app = serving::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(lambda_tools::signal::shutdown_signal())
        .await
        .context("HTTP server")?;
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    if let Some(sql) = sql {
        let _ = sql.await;
    }
    Ok(())
}
