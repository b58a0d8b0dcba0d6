//! `lambda bench broker`: how fast a consumer reads a fresh backlog from a Kafka-API broker
//! whose store already holds a history (records, and records with headers such as our dead
//! letters carry). It reproduces the local broker's slow store (docs/broker.md): fill the
//! store once, then read the same backlog before and after the store is prepared.
//!
//! Phases, each optional, in this order: `--fill` records into `<topic>-fill` (every
//! `--fill-headers`-th with `--headers-per-record` headers), `--backlog` records into
//! `<topic>`, then `--consume`: read `<topic>` from its beginning with assigned partitions
//! (the fetch path alone) for at most `--max-seconds`. With `--fill-retention-ms` the history
//! topic is created with that retention (`cleanup.policy=delete`), so that the broker's
//! maintenance deletes it (tansu: every 10 minutes, and at start).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lambda_io::kafka::client::ensure_topics_configured;
use lambda_io::kafka::drain::fetch_rate;
use lambda_io::kafka::{ensure_topics, ClientRole, EventProducer, KafkaSettings};

use crate::KafkaArgs;

#[derive(Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The backlog topic; the history goes to `<topic>-fill`.
    #[arg(long, default_value = "bench-backlog")]
    topic: String,
    /// Partitions of the topics created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// History records to write first (0: none).
    #[arg(long, default_value_t = 0)]
    fill: u64,
    /// Of the history, how many records carry headers.
    #[arg(long, default_value_t = 0)]
    fill_headers: u64,
    /// Create the history topic with this retention (ms; `cleanup.policy=delete`).
    #[arg(long)]
    fill_retention_ms: Option<u64>,
    /// Headers on each of those records (a dead letter carries its reason and origin).
    #[arg(long, default_value_t = 4)]
    headers_per_record: usize,
    /// Backlog records to write into `<topic>` (0: none).
    #[arg(long, default_value_t = 0)]
    backlog: u64,
    /// Read `<topic>` from its beginning and print the fetch rate.
    #[arg(long)]
    consume: bool,
    /// Stop reading after this long (the rate is over what was read).
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
}

/// An event-sized record (about 230 bytes of JSON), keyed by user as the collector does.
fn record(i: u64) -> (String, String) {
    let user = format!("u{:07}", i % 100_000);
    let payload = format!(
        r#"{{"event_id":"bench-{i:012}","type":"page_view","user_id":"{user}","ts":"2026-12-02T12:00:00.000Z","url":"/products/{}","country":"DE","device":"mobile","session_id":"s{:09}"}}"#,
        i % 5_000,
        i / 20
    );
    (user, payload)
}

fn produce(
    settings: &KafkaSettings,
    topic: &str,
    count: u64,
    with_headers_every: Option<u64>,
    headers_per_record: usize,
) -> anyhow::Result<()> {
    let producer = EventProducer::new(settings, topic)?;
    let names: Vec<String> = (0..headers_per_record)
        .map(|h| format!("lambda.bench-header-{h}"))
        .collect();
    let headers: Vec<(&str, &str)> = names
        .iter()
        .map(|n| {
            (
                n.as_str(),
                "invalid_json: expected value at line 1 column 1",
            )
        })
        .collect();
    let started = Instant::now();
    for i in 0..count {
        let (key, payload) = record(i);
        match with_headers_every {
            Some(every) if i % every == 0 => {
                producer.send_with_headers(key.as_bytes(), payload.as_bytes(), &headers)?
            }
            _ => producer.send(key.as_bytes(), payload.as_bytes())?,
        }
    }
    let report = producer.flush(Duration::from_secs(600))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "produced {} records into `{topic}` in {secs:.1} s ({:.0} msg/s)",
        report.delivered,
        report.delivered as f64 / secs.max(1e-9)
    );
    Ok(())
}

pub fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    let settings = args.kafka.settings()?;
    let fill_topic = format!("{}-fill", args.topic);
    let runtime = tokio::runtime::Handle::current();
    if args.fill > 0 {
        let retention = args.fill_retention_ms.map(|ms| ms.to_string());
        let config: Vec<(&str, &str)> = match &retention {
            Some(ms) => vec![("cleanup.policy", "delete"), ("retention.ms", ms)],
            None => Vec::new(),
        };
        runtime.block_on(ensure_topics_configured(
            &settings,
            &[(fill_topic.as_str(), args.partitions)],
            &config,
            Duration::from_secs(30),
        ))?;
        let every = (args.fill_headers > 0).then(|| (args.fill / args.fill_headers).max(1));
        produce(
            &settings,
            &fill_topic,
            args.fill,
            every,
            args.headers_per_record,
        )
        .context("fill")?;
        if let Some(every) = every {
            let with_headers = args.fill.div_ceil(every);
            println!(
                "history: {} records, {with_headers} with {} headers each ({} header rows)",
                args.fill,
                args.headers_per_record,
                with_headers * args.headers_per_record as u64
            );
        }
    }
    if args.backlog > 0 {
        runtime.block_on(ensure_topics(
            &settings,
            &[(args.topic.as_str(), args.partitions)],
            Duration::from_secs(30),
        ))?;
        produce(&settings, &args.topic, args.backlog, None, 0).context("backlog")?;
    }
    if args.consume {
        let rate = fetch_rate(
            &settings.client_config(ClientRole::Consumer, &[]),
            &args.topic,
            Duration::from_secs(args.max_seconds),
        )?;
        if rate.records == 0 {
            println!(
                "fetched none of {} records of `{}`: no record arrived within {} s",
                rate.expected, args.topic, args.max_seconds
            );
        } else {
            println!(
                "fetched {} of {} records of `{}` in {:.1} s: {:.0} msg/s{}",
                rate.records,
                rate.expected,
                args.topic,
                rate.seconds,
                rate.per_second(),
                if rate.records < rate.expected {
                    format!(" (stopped after {} s)", args.max_seconds)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
