//! `lambda bench speed-file` ([`crate::bench_speed_file`]): the speed layer's processing
//! path fed from an NDJSON file instead of Kafka.
//! `lambda bench ingest` and `lambda bench query` load a running `lambda serve` over HTTP
//! (`lambda_tools::load`). `lambda bench cdc`: the `orders` metric's speed and batch paths over
//! generated change streams, in memory. `lambda bench broker` ([`crate::bench_broker`]): a
//! broker's fetch rate over a store with a history.

use std::time::Instant;

use clap::{Args, Subcommand};
use lambda_tools::load as bench_http;
use shared_logic::MetricContext;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Feed the speed layer's per-record path from an NDJSON file; print records/s.
    SpeedFile(crate::bench_speed_file::SpeedFileArgs),
    /// Post generated events to a running `lambda serve` collector (`POST /v1/events`) as
    /// NDJSON batches over concurrent connections; print events/s accepted and latency.
    Ingest(bench_http::IngestArgs),
    /// Load a query route of a running `lambda serve` at a fixed open-loop rate (or closed
    /// loop with `--rate 0`); print latency quantiles and requests/s.
    Query(bench_http::QueryArgs),
    /// The `orders` metric's two paths over generated change streams, in memory: the speed
    /// layer's incremental one (parse, dedup, deltas, re-derivation) and the batch layer's
    /// replay; print changes/s of each and check that their views are equal.
    Cdc(CdcArgs),
    /// Fill a Kafka-API broker's store with a history (records, some with headers), write a
    /// backlog and read it back from the beginning: print produce and fetch msg/s.
    Broker(crate::bench_broker::BrokerArgs),
}

#[derive(Args)]
struct CdcArgs {
    /// Change records generated (products snapshot, orders, cancellations, re-deliveries).
    #[arg(long, default_value_t = 1_000_000)]
    count: usize,
    /// Deliver every products change after all order changes (each order is re-derived
    /// when its product arrives) instead of in source order.
    #[arg(long)]
    products_last: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::SpeedFile(args) => {
            crate::bench_speed_file::speed_file(args, &|| crate::HEAP.live_bytes())
        }
        BenchCommand::Ingest(args) => Ok(bench_http::ingest(args)?),
        BenchCommand::Query(args) => Ok(bench_http::query(args)?),
        BenchCommand::Cdc(args) => cdc(args),
        BenchCommand::Broker(args) => crate::bench_broker::broker(args),
    }
}

fn cdc(args: CdcArgs) -> anyhow::Result<()> {
    use shared_logic::cdc::{CdcTable, Change};
    use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
    use shared_logic::orders::replay_in_order;

    let ctx = MetricContext::default();
    let cfg = CdcConfig {
        duplicate_fraction: 0.01,
        category_change_every_ms: 60_000,
        ..CdcConfig::default()
    };
    let mut records: Vec<_> = CdcGenerator::new(cfg).take(args.count).collect();
    if args.products_last {
        records.sort_by_key(|r| r.table != CdcTable::Orders);
    }
    // Orders keyed into 4 partitions, as the topic would hold them.
    let mut next = [0i64; 4];
    let started = Instant::now();
    let mut streams = speed::orders::OrderStreams::new(i64::MIN);
    for r in &records {
        let Ok(Some(change)) = Change::parse(r.table, &r.json) else {
            continue;
        };
        match r.table {
            CdcTable::Products => {
                streams.apply_product(&change, &ctx);
            }
            CdcTable::Users => {
                streams.apply_user(&change, &ctx);
            }
            CdcTable::Orders => {
                let p = (xxhash_rust::xxh3::xxh3_64(r.key.as_bytes()) % 4) as usize;
                next[p] += 1;
                streams.apply_order(p as i32, next[p] - 1, change, &ctx);
            }
        }
    }
    let speed_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let replayed = replay_in_order(records.iter().map(|r| (r.table, r.json.as_slice())), &ctx);
    let batch_secs = started.elapsed().as_secs_f64();
    let mut incremental = shared_logic::Aggregates::default();
    for part in streams.partitions.values() {
        incremental.merge_owned(part.aggregates.clone());
    }
    let c = streams.counters;
    println!(
        "orders and daily_sales from {} change records{}: speed path {speed_secs:.2} s ({:.0} changes/s, one core; {} re-derived), batch replay {batch_secs:.2} s ({:.0} changes/s); {} keys; views equal: {}",
        records.len(),
        if args.products_last { " (products and users after all orders)" } else { "" },
        records.len() as f64 / speed_secs.max(1e-9),
        c.rederived,
        records.len() as f64 / batch_secs.max(1e-9),
        replayed.len(),
        incremental == replayed
    );
    if incremental != replayed {
        anyhow::bail!("the speed path's views differ from the replay");
    }
    Ok(())
}
