//! The demo's change data capture: a Debezium-like source of the shop's `orders`,
//! `products` and `users` tables producing to `cdc.orders`, `cdc.products` and `cdc.users`
//! (history first, then live, paced by source time), the speed layer's change-stream consumer, and one lake writer
//! per change topic. Wiring only, as `lambda generate --cdc`, `lambda speed --cdc` and
//! `lambda lake --cdc` run them.

use std::collections::HashMap;
use std::time::Duration;

use batch::lake_writer::{LakeWriter, WriterOptions};
use lambda_io::kafka::{ensure_topics, ClientRole, EventProducer, KafkaSettings};
use lambda_io::Lake;
use shared_logic::cdc::CdcTable;
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
use speed::cdc_consumer::{CdcConsumer, CdcOptions};
use speed::views::RealtimeViews;

use super::Stop;
use crate::error::{Context, ToolsError};

/// Where the change source starts and how fast it goes.
pub(super) struct Source {
    /// Source time of the first change (epoch ms).
    pub(super) start_ms: i64,
    pub(super) orders_per_second: f64,
    pub(super) seed: u64,
}

/// The running change-data-capture parts of the demo.
pub(super) struct DemoCdc {
    consumer: tokio::task::JoinHandle<Result<(), speed::SpeedError>>,
    source: tokio::task::JoinHandle<Result<u64, ToolsError>>,
    writers: Vec<std::thread::JoinHandle<Result<(), ToolsError>>>,
}

/// Creates the change topics and starts the source, the consumer and the lake writers,
/// until `stop`.
pub(super) async fn start(
    kafka: &KafkaSettings,
    lake: &Lake,
    realtime: &RealtimeViews,
    Source {
        start_ms,
        orders_per_second,
        seed,
    }: Source,
    stop: &Stop,
) -> Result<DemoCdc, ToolsError> {
    let (orders, products, users) = (
        CdcTable::Orders.default_topic(),
        CdcTable::Products.default_topic(),
        CdcTable::Users.default_topic(),
    );
    ensure_topics(
        kafka,
        &[(orders, 2), (products, 1), (users, 1)],
        Duration::from_secs(30),
    )
    .await?;
    let consumer = CdcConsumer::new(
        realtime.clone(),
        kafka,
        CdcOptions {
            orders_topic: orders.into(),
            products_topic: products.into(),
            users_topic: users.into(),
            group_id: "lambda-speed".into(),
            dead_letter_topic: shared_logic::topics::DEAD_LETTER.into(),
            batch_views: Some(lake.child("views")),
            retain_covered: Duration::from_secs(3_600),
        },
    )
    .await?;
    let consumer = tokio::spawn(consumer.run(stop.stopped()));
    let mut writers = Vec::new();
    for table in CdcTable::ALL {
        let writer = LakeWriter::new(
            lake.clone(),
            &kafka.client_config(ClientRole::Consumer, &[]),
            WriterOptions {
                topics: vec![table.default_topic().into()],
                group_id: format!("lambda-lake-cdc-{}", table.name()),
                roll_age: Duration::from_secs(10),
                cdc: Some(table),
                ..WriterOptions::default()
            },
        )?;
        let stop = stop.stopped();
        // Its future holds Kafka messages across awaits: a runtime of its own.
        writers.push(std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("lake writer runtime")?
                .block_on(writer.run(stop))
                .map(|_| ())
                .map_err(ToolsError::from)
        }));
    }
    let cfg = CdcConfig {
        seed,
        start_ms,
        orders_per_second,
        duplicate_fraction: 0.01,
        // Ids and source positions of this start differ from an earlier start's.
        order_prefix: format!("o{}-", start_ms / 1000),
        ..CdcConfig::default()
    };
    let producers = CdcTable::ALL
        .into_iter()
        .map(|t| Ok((t, EventProducer::new(kafka, t.default_topic())?)))
        .collect::<Result<HashMap<_, _>, ToolsError>>()?;
    let source = tokio::spawn(source(CdcGenerator::new(cfg), producers, stop.stopped()));
    Ok(DemoCdc {
        consumer,
        source,
        writers,
    })
}

/// Sends every change whose source time has come, ten times a second, until stopped; the
/// number of changes sent.
async fn source(
    mut changes: CdcGenerator,
    producers: HashMap<CdcTable, EventProducer>,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<u64, ToolsError> {
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = 0;
    let mut pending = None;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        while let Some(change) = pending.take().or_else(|| changes.next()) {
            if change.ts_ms > now {
                pending = Some(change);
                break;
            }
            producers[&change.table].send(change.key.as_bytes(), &change.json)?;
            sent += 1;
        }
    }
    for p in producers.values() {
        p.flush(Duration::from_secs(30))?;
    }
    Ok(sent)
}

impl DemoCdc {
    /// Waits for every part to stop (after the demo's stop signal).
    pub(super) async fn join(self) -> Result<(), ToolsError> {
        let sent = self.source.await.context("change source task")??;
        self.consumer
            .await
            .context("change streams task")?
            .map_err(ToolsError::from)?;
        for w in self.writers {
            tokio::task::spawn_blocking(move || w.join())
                .await
                .context("lake writer thread")?
                .map_err(|_| ToolsError::Invalid("a change-topic lake writer panicked".into()))??;
        }
        println!("change streams: {sent} changes sent to cdc.orders, cdc.products and cdc.users");
        Ok(())
    }
}
