//! `lambda generate`: wires the shared-logic generator to an output (NDJSON file or stdout,
//! or a Kafka topic), paces it when a rate is given, and stops cleanly on Ctrl-C.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use lambda_io::kafka::{ensure_topics, EventProducer};
use shared_logic::cdc::CdcTable;
use shared_logic::generate::{Generator, GeneratorConfig, Record, RecordKind};
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator, CdcRecord};
use shared_logic::generate_producers::{parse_producer, Fault, Producers};
use shared_logic::topics;

use crate::KafkaArgs;

/// Default start of event time when output is not paced: fixed, so that output is reproducible.
const FIXED_START: &str = "2026-01-01T00:00:00Z";

#[derive(Args)]
pub struct GenerateArgs {
    /// Seed of the generator: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of records to emit.
    #[arg(long, conflicts_with = "duration_secs")]
    count: Option<u64>,
    /// Emit for this many seconds (wall clock with --rate, event time otherwise).
    #[arg(long = "duration-secs")]
    duration_secs: Option<f64>,
    /// Pace output at this many records per second of wall clock (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Records per second of event time (default: --rate, or 1000).
    #[arg(long)]
    event_rate: Option<f64>,
    /// Event time of the first record: RFC 3339 or `now` (default: `now` with --rate, else 2026-01-01T00:00:00Z).
    #[arg(long)]
    start: Option<String>,
    /// Number of distinct users.
    #[arg(long, default_value_t = 50_000)]
    users: u32,
    /// Fraction of events moved back in time by up to --out-of-order-ms.
    #[arg(long, default_value_t = 0.0)]
    out_of_order: f64,
    #[arg(long, default_value_t = 5_000)]
    out_of_order_ms: i64,
    /// Fraction of events moved back by more than --lateness-ms (late beyond the allowed lateness).
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    #[arg(long, default_value_t = 60_000)]
    lateness_ms: i64,
    /// Fraction of records repeated byte for byte (duplicate deliveries).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Fraction of records that fail validation.
    #[arg(long, default_value_t = 0.0)]
    invalid: f64,
    /// A producing service and its weight (`web=3`; repeatable): each user's records come
    /// from one, named in their `source` field, and each record is stamped (as its Kafka
    /// record time) when its producer sends it: the data-quality figures' producers.
    #[arg(long = "source", value_name = "NAME=WEIGHT")]
    sources: Vec<String>,
    /// A fault of a producer over a span of time (repeatable; needs --source):
    /// `<producer>:<kind>:<from>/<to>`, kind `silent`, `invalid=<share>`,
    /// `clock-lag=<duration>` or `volume=<factor>`, e.g.
    /// `app:clock-lag=10m:2026-01-01T06:10:00Z/2026-01-01T07:00:00Z`.
    #[arg(long = "fault", value_name = "SPEC", requires = "sources")]
    faults: Vec<String>,
    /// NDJSON output file, or `-` for stdout.
    #[arg(long, short, default_value = "-", conflicts_with = "kafka")]
    output: PathBuf,
    /// Produce to Kafka instead of writing NDJSON.
    #[arg(long)]
    kafka: bool,
    /// Topic to produce to (created with --partitions when missing).
    #[arg(long, default_value = topics::EVENTS)]
    topic: String,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Emit Debezium change streams of the shop's tables instead of events: `orders`,
    /// `products` or `users` (NDJSON or Kafka), or `all` (Kafka: each table to its topic).
    #[arg(long, value_enum)]
    cdc: Option<CdcSelection>,
    /// Orders placed per second of source time (with --cdc).
    #[arg(long, default_value_t = 2.0)]
    orders_per_second: f64,
    /// Fraction of orders cancelled or refunded later (with --cdc).
    #[arg(long, default_value_t = 0.1)]
    cancel_fraction: f64,
    /// A product changes category every this many seconds of source time (with --cdc; 0: never).
    #[arg(long, default_value_t = 600)]
    category_change_secs: i64,
    /// Wrap change events in Debezium's schema/payload envelope (with --cdc).
    #[arg(long)]
    debezium_schema: bool,
    /// Topic of the orders change stream (with --cdc and --kafka).
    #[arg(long, default_value = "cdc.orders")]
    orders_topic: String,
    /// Topic of the products change stream (with --cdc and --kafka).
    #[arg(long, default_value = "cdc.products")]
    products_topic: String,
    /// Topic of the users change stream (with --cdc and --kafka).
    #[arg(long, default_value = "cdc.users")]
    users_topic: String,
    #[command(flatten)]
    kafka_args: KafkaArgs,
}

fn parse_start(text: &str) -> anyhow::Result<i64> {
    if text == "now" {
        return Ok(chrono::Utc::now().timestamp_millis());
    }
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| {
            format!("--start `{text}` is not RFC 3339 (e.g. 2026-11-24T10:00:00Z) or `now`")
        })?
        .timestamp_millis())
}

impl GenerateArgs {
    fn config(&self) -> anyhow::Result<GeneratorConfig> {
        if let Some(rate) = self.rate {
            if !(rate > 0.0 && rate.is_finite()) {
                bail!("--rate must be a positive number, found {rate}");
            }
        }
        let start = match (&self.start, self.rate) {
            (Some(s), _) => parse_start(s)?,
            (None, Some(_)) => parse_start("now")?,
            (None, None) => parse_start(FIXED_START)?,
        };
        let cfg = GeneratorConfig {
            seed: self.seed,
            start_ms: start,
            events_per_second: self.event_rate.or(self.rate).unwrap_or(1_000.0),
            users: self.users,
            out_of_order_fraction: self.out_of_order,
            out_of_order_ms: self.out_of_order_ms,
            late_fraction: self.late,
            lateness_ms: self.lateness_ms,
            duplicate_fraction: self.duplicates,
            invalid_fraction: self.invalid,
            ..GeneratorConfig::default()
        };
        cfg.check().map_err(anyhow::Error::msg)?;
        Ok(cfg)
    }

    /// How many records to emit, if bounded by count (or by event-time duration without a rate).
    fn limit(&self, cfg: &GeneratorConfig) -> anyhow::Result<Option<u64>> {
        match (self.count, self.duration_secs, self.rate) {
            (Some(n), _, _) => Ok(Some(n)),
            (None, Some(d), None) if d >= 0.0 => Ok(Some((d * cfg.events_per_second) as u64)),
            (None, Some(d), Some(_)) if d >= 0.0 => Ok(None),
            (None, Some(d), _) => bail!("--duration-secs must not be negative, found {d}"),
            (None, None, Some(_)) => Ok(None),
            (None, None, None) => {
                bail!("give --count or --duration-secs (or --rate to stream until Ctrl-C)")
            }
        }
    }
}

/// Which change streams `--cdc` emits.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CdcSelection {
    Orders,
    Products,
    Users,
    All,
}

impl CdcSelection {
    fn includes(self, table: CdcTable) -> bool {
        match self {
            CdcSelection::Orders => table == CdcTable::Orders,
            CdcSelection::Products => table == CdcTable::Products,
            CdcSelection::Users => table == CdcTable::Users,
            CdcSelection::All => true,
        }
    }
}

enum Sink {
    Ndjson(BufWriter<Box<dyn Write + Send>>),
    Kafka(EventProducer),
}

/// Runs the generator until its limit, its duration or Ctrl-C.
pub async fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if let Some(selection) = args.cdc {
        return run_cdc(args, selection).await;
    }
    let cfg = args.config()?;
    let limit = args.limit(&cfg)?;
    let sink = if args.kafka {
        let settings = args.kafka_args.settings()?;
        ensure_topics(
            &settings,
            &[(&args.topic, args.partitions)],
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("preparing topic `{}` on {}", args.topic, settings.brokers))?;
        Sink::Kafka(EventProducer::new(&settings, &args.topic)?)
    } else if args.output.as_os_str() == "-" {
        Sink::Ndjson(BufWriter::with_capacity(
            1 << 20,
            Box::new(std::io::stdout()),
        ))
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create output file {}", args.output.display()))?;
        Sink::Ndjson(BufWriter::with_capacity(1 << 20, Box::new(file)))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop_on_signal.store(true, Ordering::Relaxed);
        }
    });
    let deadline = match (args.duration_secs, args.rate) {
        (Some(d), Some(_)) => Some(Instant::now() + Duration::from_secs_f64(d)),
        _ => None,
    };
    let rate = args.rate;
    let stream = args.stream(cfg)?;
    tokio::task::spawn_blocking(move || emit(stream, limit, rate, deadline, sink, &stop)).await?
}

/// Generated records, each with the record time its producer stamps (with --source).
type Stream = Box<dyn Iterator<Item = (Record, Option<i64>)> + Send>;

impl GenerateArgs {
    /// The generator, from the producers of --source with the faults of --fault if any.
    fn stream(&self, cfg: GeneratorConfig) -> anyhow::Result<Stream> {
        let generator = Generator::new(cfg);
        if self.sources.is_empty() {
            return Ok(Box::new(generator.map(|r| (r, None))));
        }
        let producers = self
            .sources
            .iter()
            .map(|s| parse_producer(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let faults = self
            .faults
            .iter()
            .map(|f| Fault::parse(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let stream =
            Producers::new(generator, producers, faults, self.seed).map_err(anyhow::Error::msg)?;
        Ok(Box::new(stream.map(|p| (p.record, Some(p.at_ms)))))
    }
}

fn emit(
    mut generator: Stream,
    limit: Option<u64>,
    rate: Option<f64>,
    deadline: Option<Instant>,
    mut sink: Sink,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut kinds: HashMap<RecordKind, u64> = HashMap::new();
    let started = Instant::now();
    let mut sent = 0u64;
    while limit.is_none_or(|n| sent < n) {
        if sent.is_multiple_of(1024) {
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        let Some((record, at_ms)) = generator.next() else {
            break;
        };
        match &mut sink {
            Sink::Ndjson(out) => {
                let written = out
                    .write_all(&record.json)
                    .and_then(|_| out.write_all(b"\n"));
                match written {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                    other => other.context("writing NDJSON output")?,
                }
            }
            Sink::Kafka(producer) => {
                producer.send_at(record.key.as_bytes(), &record.json, &[], at_ms)?
            }
        }
        *kinds.entry(record.kind).or_default() += 1;
        sent += 1;
        if rate.is_some() && sent.is_multiple_of(1024) {
            if let Sink::Ndjson(out) = &mut sink {
                out.flush().ok();
            }
        }
    }
    let delivered = match &mut sink {
        Sink::Ndjson(out) => {
            match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("writing NDJSON output")?,
            }
            None
        }
        Sink::Kafka(producer) => Some(producer.flush(Duration::from_secs(120))?.delivered),
    };
    let secs = started.elapsed().as_secs_f64();
    let count = |k| kinds.get(&k).copied().unwrap_or(0);
    eprintln!(
        "generated {sent} records in {secs:.2} s ({:.0} records/s): valid {}, out_of_order {}, late {}, duplicate {}, invalid {}{}",
        sent as f64 / secs.max(1e-9),
        count(RecordKind::Valid),
        count(RecordKind::OutOfOrder),
        count(RecordKind::Late),
        count(RecordKind::Duplicate),
        count(RecordKind::Invalid),
        delivered.map(|d| format!("; {d} acknowledged by the broker")).unwrap_or_default(),
    );
    Ok(())
}

/// `--cdc`: the shop's Debezium change streams, to NDJSON (one table) or Kafka.
async fn run_cdc(args: GenerateArgs, selection: CdcSelection) -> anyhow::Result<()> {
    let start = match &args.start {
        Some(s) => parse_start(s)?,
        None => parse_start(FIXED_START)?,
    };
    let rate_ok = args.orders_per_second.is_finite() && args.orders_per_second > 0.0;
    if !rate_ok || !(0.0..=1.0).contains(&args.cancel_fraction) {
        bail!("--orders-per-second must be positive and --cancel-fraction within [0, 1]");
    }
    let cfg = CdcConfig {
        seed: args.seed,
        start_ms: start,
        orders_per_second: args.orders_per_second,
        cancel_fraction: args.cancel_fraction,
        category_change_every_ms: args.category_change_secs.max(0) * 1000,
        duplicate_fraction: args.duplicates.clamp(0.0, 1.0),
        with_schema: args.debezium_schema,
        ..CdcConfig::default()
    };
    let Some(count) = args.count else {
        bail!("give --count with --cdc");
    };
    let mut sink = if args.kafka {
        let settings = args.kafka_args.settings()?;
        let topics = [
            (&args.orders_topic, CdcTable::Orders),
            (&args.products_topic, CdcTable::Products),
            (&args.users_topic, CdcTable::Users),
        ];
        let wanted: Vec<(&str, i32)> = topics
            .iter()
            .filter(|(_, t)| selection.includes(*t))
            .map(|(name, _)| (name.as_str(), args.partitions))
            .collect();
        ensure_topics(&settings, &wanted, Duration::from_secs(30))
            .await
            .with_context(|| format!("preparing the change topics on {}", settings.brokers))?;
        let mut producers = std::collections::HashMap::new();
        for (name, table) in topics.iter().filter(|(_, t)| selection.includes(*t)) {
            producers.insert(*table, EventProducer::new(&settings, name)?);
        }
        CdcSink::Kafka(producers)
    } else {
        if selection == CdcSelection::All {
            bail!("--cdc all needs --kafka (each table to its topic); NDJSON takes one table");
        }
        let writer: Box<dyn Write + Send> =
            if args.output.as_os_str() == "-" {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::fs::File::create(&args.output).with_context(|| {
                    format!("cannot create output file {}", args.output.display())
                })?)
            };
        CdcSink::Ndjson(BufWriter::with_capacity(1 << 20, writer))
    };
    tokio::task::spawn_blocking(move || {
        let mut sent = 0u64;
        let mut by_table: HashMap<&'static str, u64> = HashMap::new();
        for record in CdcGenerator::new(cfg).filter(|r| selection.includes(r.table)) {
            if sent >= count {
                break;
            }
            if !sink.send(&record)? {
                break;
            }
            *by_table.entry(record.table.name()).or_default() += 1;
            sent += 1;
        }
        let delivered = sink.finish()?;
        eprintln!(
            "generated {sent} change events: orders {}, products {}, users {}{}",
            by_table.get("orders").copied().unwrap_or(0),
            by_table.get("products").copied().unwrap_or(0),
            by_table.get("users").copied().unwrap_or(0),
            delivered
                .map(|d| format!("; {d} acknowledged by the broker"))
                .unwrap_or_default(),
        );
        Ok(())
    })
    .await?
}

/// Where `--cdc` writes.
enum CdcSink {
    Ndjson(BufWriter<Box<dyn Write + Send>>),
    /// A producer per selected table.
    Kafka(std::collections::HashMap<CdcTable, EventProducer>),
}

impl CdcSink {
    /// Writes one record; false when the reader went away (a closed pipe).
    fn send(&mut self, r: &CdcRecord) -> anyhow::Result<bool> {
        match self {
            CdcSink::Ndjson(out) => {
                match out.write_all(&r.json).and_then(|_| out.write_all(b"\n")) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
                    other => other.context("writing NDJSON output").map(|_| true),
                }
            }
            CdcSink::Kafka(producers) => {
                if let Some(producer) = producers.get(&r.table) {
                    producer.send(r.key.as_bytes(), &r.json)?;
                }
                Ok(true)
            }
        }
    }

    /// Flushes; for Kafka, waits for the broker's acknowledgements (their count).
    fn finish(self) -> anyhow::Result<Option<u64>> {
        match self {
            CdcSink::Ndjson(mut out) => match out.flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(None),
                other => other.context("writing NDJSON output").map(|_| None),
            },
            CdcSink::Kafka(producers) => {
                let timeout = Duration::from_secs(120);
                let mut delivered = 0;
                for p in producers.values() {
                    delivered += p.flush(timeout)?.delivered;
                }
                Ok(Some(delivered))
            }
        }
    }
}
