//! The demo's layers in one process: the speed layer (consumer and views endpoint), the
//! lake writer (on a runtime of its own), and the serving layer (API, collector, dashboard,
//! SQL endpoint) with its batch manifest watcher; started together, stopped together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use batch::lake_writer::{LakeWriter, WriterOptions};
use lambda_io::kafka::{ClientRole, KafkaSettings};
use lambda_io::Lake;
use serving::api::watch_manifest;
use serving::batch_views::BatchViews;
use serving::collector::{Collector, CollectorOptions};
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::{topics, MetricContext};
use speed::checkpoint::CheckpointStore;
use speed::consumer::{SpeedConsumer, SpeedOptions};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tokio::task::JoinHandle;

use super::Stop;
use crate::error::{Context, ToolsError};

/// The running layers.
pub(super) struct Layers {
    pub(super) realtime: RealtimeViews,
    pub(super) state: Arc<AppState>,
    pub(super) api_addr: SocketAddr,
    pub(super) sql_addr: SocketAddr,
    pub(super) speed_addr: SocketAddr,
    speed: JoinHandle<Result<speed::consumer::SpeedStats, speed::SpeedError>>,
    writer: std::thread::JoinHandle<Result<(), ToolsError>>,
    servers: Vec<JoinHandle<()>>,
}

/// Where the layers listen.
pub(super) struct Listen<'a> {
    /// The API, the collector and the dashboard.
    pub(super) api: &'a str,
    /// The SQL endpoint.
    pub(super) sql: &'a str,
    /// The speed views endpoint.
    pub(super) speed: &'a str,
}

impl Layers {
    /// Starts every layer over `lake` (views under `views/`, checkpoints under
    /// `<data>/checkpoints`), listening where `listen` says (the speed views answer only
    /// with `speed_token`).
    pub(super) async fn start(
        kafka: &KafkaSettings,
        lake: &Lake,
        data: &Path,
        listen: Listen<'_>,
        speed_token: String,
        stop: &Stop,
    ) -> Result<Layers, ToolsError> {
        let views = lake.child("views");
        let realtime = RealtimeViews::new(
            MetricContext::default(),
            TimeSettings::default(),
            Duration::from_secs(30),
        );
        let checkpoints = CheckpointStore::new(
            Lake::open(
                data.join("checkpoints")
                    .to_str()
                    .context("--data-dir is not UTF-8")?,
                true,
            )?,
            "lambda-speed",
            topics::EVENTS,
        );
        let consumer = SpeedConsumer::new(
            realtime.clone(),
            kafka,
            checkpoints,
            SpeedOptions {
                batch_views: Some(views.clone()),
                ..SpeedOptions::default()
            },
        )
        .await?;
        let speed = tokio::spawn(consumer.run(stop.stopped()));

        // The lake writer's future holds Kafka messages across awaits: a runtime of its own.
        let writer = LakeWriter::new(
            lake.clone(),
            &kafka.client_config(ClientRole::Consumer, &[]),
            WriterOptions {
                roll_age: Duration::from_secs(10),
                ..WriterOptions::default()
            },
        )?;
        let writer_stop = stop.stopped();
        let writer = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("lake writer runtime")?
                .block_on(writer.run(writer_stop))
                .map(|_| ())
                .map_err(ToolsError::from)
        });

        let state = Arc::new(AppState {
            batch: BatchViews::new(views.clone(), 512),
            speed: SpeedViews::in_process(realtime.clone()).into(),
            collector: Some(Collector::new(kafka, CollectorOptions::default())?),
            telemetry: Default::default(),
            answers: serving::answer_cache::AnswerCache::new(Duration::from_millis(500), 1_024),
            opts: ApiOptions::default(),
        });
        let listener = tokio::net::TcpListener::bind(listen.api)
            .await
            .with_context(|| format!("cannot listen on {}", listen.api))?;
        let api_addr = listener.local_addr().context("API address")?;
        let speed_listener = tokio::net::TcpListener::bind(listen.speed)
            .await
            .with_context(|| format!("cannot listen on {}", listen.speed))?;
        let speed_addr = speed_listener.local_addr().context("speed views address")?;
        let sql = lambda_sql::SqlEndpoint::bind(
            state.clone(),
            &lambda_sql::SqlOptions {
                listen: listen.sql.to_string(),
                ..lambda_sql::SqlOptions::default()
            },
        )
        .await
        .context("SQL endpoint")?;
        let sql_addr = sql.local_addr().context("SQL address")?;
        let app =
            serving::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let api = axum::serve(listener, app).with_graceful_shutdown(stop.stopped());
        let views = speed::http::router(realtime.clone(), Some(speed_token));
        let views_endpoint =
            axum::serve(speed_listener, views).with_graceful_shutdown(stop.stopped());
        let servers = vec![
            tokio::spawn(async move {
                let _ = api.await;
            }),
            tokio::spawn(async move {
                let _ = views_endpoint.await;
            }),
            tokio::spawn(sql.serve(stop.stopped())),
            tokio::spawn(watch_manifest(
                state.clone(),
                Duration::from_secs(2),
                stop.stopped(),
            )),
        ];
        Ok(Layers {
            realtime,
            state,
            api_addr,
            sql_addr,
            speed_addr,
            speed,
            writer,
            servers,
        })
    }

    /// Waits for every layer to stop (after the stop signal): the speed layer checkpoints,
    /// the lake writer flushes, the servers drain.
    pub(super) async fn join(self) -> Result<(), ToolsError> {
        let speed = self.speed.await.context("speed task")?;
        let writer = self.writer;
        let writer = tokio::task::spawn_blocking(move || writer.join())
            .await
            .context("lake writer thread")?
            .map_err(|_| ToolsError::Invalid("the lake writer thread panicked".into()))?;
        for server in self.servers {
            let _ = server.await;
        }
        speed.map(|_| ()).context("speed layer")?;
        writer.context("lake writer")?;
        Ok(())
    }
}
