//! The demo's change data capture: a Debezium-like source of the shop's `orders` and
//! `products` tables producing to `cdc.orders` and `cdc.products` (history first, then live,
//! paced by source time), the speed layer's change-stream consumer, and one lake writer
//! per change topic. Wiring only, as `lambda generate --cdc`, `lambda speed --cdc` and
//! `lambda lake --cdc` run them.

use std::time::Duration;

use anyhow::Context;
use batch::lake_writer::{LakeWriter, WriterOptions};
use batch::Lake;
use shared_logic::cdc::CdcTable;
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
use speed::cdc_consumer::{CdcConsumer, CdcOptions};
use speed::kafka::{ensure_topics, EventProducer, KafkaSettings};
use speed::views::RealtimeViews;

pub type Stopped = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The running change-data-capture parts of the demo.
pub struct DemoCdc {
    consumer: tokio::task::JoinHandle<Result<(), speed::SpeedError>>,
    source: tokio::task::JoinHandle<anyhow::Result<u64>>,
    writers: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
}

/// Creates the change topics and starts the source, the consumer and the lake writers;
/// `stopped()` resolves when the demo stops.
pub async fn start(
    kafka: &KafkaSettings,
    lake: &Lake,
    realtime: &RealtimeViews,
    start_ms: i64,
    orders_per_second: f64,
    seed: u64,
    stopped: impl Fn() -> Stopped,
) -> anyhow::Result<DemoCdc> {
    let (orders, products) = (
        CdcTable::Orders.default_topic(),
        CdcTable::Products.default_topic(),
    );
    ensure_topics(
        kafka,
        &[(orders, 2), (products, 1)],
        Duration::from_secs(30),
    )
    .await?;
    let consumer = CdcConsumer::new(
        realtime.clone(),
        kafka,
        CdcOptions {
            orders_topic: orders.into(),
            products_topic: products.into(),
            group_id: "lambda-speed".into(),
            dead_letter_topic: shared_logic::topics::DEAD_LETTER.into(),
            batch_views: Some(lake.child("views")),
            retain_covered: Duration::from_secs(3_600),
        },
    )
    .await?;
    let consumer = tokio::spawn(consumer.run(stopped()));
    let mut writers = Vec::new();
    for table in [CdcTable::Orders, CdcTable::Products] {
        let writer = LakeWriter::new(
            lake.clone(),
            &kafka.client_config(&[]),
            WriterOptions {
                topic: table.default_topic().into(),
                group_id: format!("lambda-lake-cdc-{}", table.name()),
                roll_age: Duration::from_secs(10),
                cdc: Some(table),
                ..WriterOptions::default()
            },
        )?;
        let stop = stopped();
        // Its future holds Kafka messages across awaits: a runtime of its own.
        writers.push(std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| anyhow::anyhow!("lake writer runtime: {e}"))?
                .block_on(writer.run(stop))
                .map(|_| ())
                .map_err(anyhow::Error::from)
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
    let producers = (
        EventProducer::new(kafka, orders)?,
        EventProducer::new(kafka, products)?,
    );
    let source = tokio::spawn(source(CdcGenerator::new(cfg), producers, stopped()));
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
    (orders, products): (EventProducer, EventProducer),
    stopped: Stopped,
) -> anyhow::Result<u64> {
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
            let producer = match change.table {
                CdcTable::Orders => &orders,
                CdcTable::Products => &products,
            };
            producer.send(change.key.as_bytes(), &change.json)?;
            sent += 1;
        }
    }
    for p in [&orders, &products] {
        p.flush(Duration::from_secs(30))?;
    }
    Ok(sent)
}

impl DemoCdc {
    /// Waits for every part to stop (after the demo's stop signal).
    pub async fn join(self) -> anyhow::Result<()> {
        let sent = self.source.await.context("change source task")??;
        self.consumer.await.context("change streams task")??;
        for w in self.writers {
            tokio::task::spawn_blocking(move || w.join())
                .await
                .context("lake writer thread")?
                .map_err(|_| anyhow::anyhow!("a change-topic lake writer panicked"))??;
        }
        println!("change streams: {sent} changes sent to cdc.orders and cdc.products");
        Ok(())
    }
}
