//! The platform's layers in this process, over the real broker: the speed consumer, the
//! lake writer, and the serving state over both (batch views read from the views location,
//! real-time views from the in-process speed handle). Tests produce to the topic (or POST
//! to the collector), wait until both layers have everything, run the batch job, query.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use batch::lake_writer::{LakeWriter, WriterOptions, WriterStats};
use lambda_io::kafka::KafkaSettings;
use lambda_io::Lake;
use serving::batch_views::BatchViews;
use serving::collector::{Collector, CollectorOptions};
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::MetricContext;
use speed::checkpoint::CheckpointStore;
use speed::consumer::{SpeedConsumer, SpeedOptions, SpeedStats};
use speed::error::SpeedError;
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tokio::sync::watch;

/// The running layers of one topic.
pub struct Pipeline {
    pub realtime: RealtimeViews,
    pub lake: Lake,
    pub lake_dir: PathBuf,
    pub views: Lake,
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    speed: tokio::task::JoinHandle<Result<SpeedStats, SpeedError>>,
    writer: std::thread::JoinHandle<Result<WriterStats, batch::BatchError>>,
}

/// Starts a lake writer on a thread of its own (its run future holds Kafka messages across
/// awaits, so it is not `Send`: it gets its own runtime) until `stop` resolves.
pub fn spawn_lake_writer(
    brokers: &str,
    lake: &Lake,
    opts: WriterOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::thread::JoinHandle<Result<WriterStats, batch::BatchError>> {
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", brokers);
    let writer = LakeWriter::new(lake.clone(), &client, opts).expect("lake writer");
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(writer.run(stop))
    })
}

impl Pipeline {
    /// Creates `topic` (3 partitions) and `<topic>-dlq` when missing, starts the speed layer
    /// (group `<topic>-speed`) and the lake writer (group `<topic>-lake`) on `topic`, with
    /// their files under `dir`, and a collector producing to `topic` (dead letters to
    /// `<topic>-dlq`).
    pub async fn start(brokers: &str, topic: &str, time: TimeSettings, dir: &Path) -> Pipeline {
        Pipeline::start_with(brokers, topic, false, time, dir).await
    }

    /// [`Pipeline::start`] with one topic per event type under `topic` (`<topic>.page_view`,
    /// ..., 3 partitions each) when `per_event_type`: the collector routes by type, the
    /// speed layer and the lake writer read the three topics.
    pub async fn start_with(
        brokers: &str,
        topic: &str,
        per_event_type: bool,
        time: TimeSettings,
        dir: &Path,
    ) -> Pipeline {
        let kafka = KafkaSettings::new(brokers);
        let dlq = format!("{topic}-dlq");
        let topics = if per_event_type {
            shared_logic::topics::per_event_type(topic)
        } else {
            vec![topic.to_string()]
        };
        let mut created: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 3)).collect();
        created.push((&dlq, 1));
        lambda_io::kafka::ensure_topics(&kafka, &created, Duration::from_secs(30))
            .await
            .expect("topics");
        let (stop, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let realtime =
            RealtimeViews::new(MetricContext::default(), time, Duration::from_secs(3_600));
        let checkpoints = Lake::open(dir.join("checkpoints").to_str().unwrap(), true).unwrap();
        let group = format!("{topic}-speed");
        let consumer = SpeedConsumer::new(
            realtime.clone(),
            &kafka,
            CheckpointStore::for_topics(checkpoints, &group, &topics),
            SpeedOptions {
                topics: topics.clone(),
                group_id: group,
                dead_letter_topic: format!("{topic}-speed-dlq"),
                late_topic: format!("{topic}-late"),
                checkpoint_interval: Duration::from_secs(2),
                ..SpeedOptions::default()
            },
        )
        .await
        .expect("speed consumer");
        let speed = tokio::spawn(consumer.run(stopped()));

        let lake_dir = dir.join("lake");
        let lake = Lake::open(lake_dir.to_str().unwrap(), true).unwrap();
        let writer = spawn_lake_writer(
            brokers,
            &lake,
            WriterOptions {
                topics,
                group_id: format!("{topic}-lake"),
                roll_age: Duration::from_secs(1),
                ..WriterOptions::default()
            },
            stopped(),
        );

        let views = lake.child("views");
        let collector = Collector::new(
            &kafka,
            CollectorOptions {
                topic: topic.into(),
                per_event_type,
                dead_letter_topic: dlq,
                ..CollectorOptions::default()
            },
        )
        .expect("collector");
        let state = Arc::new(AppState {
            batch: BatchViews::new(views.clone(), 64),
            speed: SpeedViews::in_process(realtime.clone()).into(),
            collector: Some(collector),
            telemetry: Default::default(),
            answers: Default::default(),
            opts: ApiOptions::default(),
        });
        state.batch.refresh().await.expect("manifest");
        Pipeline {
            realtime,
            lake,
            lake_dir,
            views,
            state,
            stop,
            speed,
            writer,
        }
    }

    /// Waits until the speed layer has applied `records` records and the lake holds them.
    pub async fn wait_for_records(&self, records: u64) {
        crate::wait_until(
            "the speed layer to apply every record",
            Duration::from_secs(180),
            || self.realtime.progress().counters.records >= records,
        )
        .await;
        crate::wait_until(
            "the lake writer to write every record",
            Duration::from_secs(180),
            || crate::lake_files::lake_rows(&self.lake_dir) >= records,
        )
        .await;
    }

    /// Runs the batch over every hour whose input changed and refreshes the served views.
    pub async fn batch_dirty_hours(&self) {
        batch::job::run(
            &self.lake,
            &self.views,
            &batch::job::HourSelection::Dirty { before: None },
            &batch::job::BatchOptions::default(),
        )
        .await
        .expect("batch run");
        self.state.batch.refresh().await.expect("manifest");
    }

    /// Stops both layers cleanly (checkpoint, flush and commit).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.speed
            .await
            .expect("speed task")
            .expect("speed layer stops cleanly");
        tokio::task::spawn_blocking(move || self.writer.join())
            .await
            .expect("join task")
            .expect("lake writer thread")
            .expect("lake writer stops cleanly");
    }
}
