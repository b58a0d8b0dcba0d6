//! JSON bytes -> validated events -> folded states, on one core.
//!
//! Three figures, each in events per second (criterion's `thrpt`):
//! - `fold`: validated events folded into every metric's state (1-minute windows);
//! - `validate`: JSON parsing, validation and normalisation alone;
//! - `validate_and_fold`: the whole path from bytes to states.
//!
//! Run: `cargo bench -p shared-logic --bench fold`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shared_logic::generate::{Generator, GeneratorConfig};
use shared_logic::{Aggregates, Event, MetricContext, Origin, Validator};

const EVENTS: usize = 200_000;
const NOW: i64 = 4_000_000_000_000;

fn records() -> Vec<Vec<u8>> {
    Generator::new(GeneratorConfig::default())
        .take(EVENTS)
        .map(|r| r.json)
        .collect()
}

fn validate_all(records: &[Vec<u8>], v: &Validator) -> Vec<Event> {
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            v.validate(
                r,
                Origin {
                    partition: 0,
                    offset: i as i64,
                },
                NOW,
            )
            .ok()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records = records();
    let validator = Validator::default();
    let events = validate_all(&records, &validator);
    assert_eq!(events.len(), EVENTS);
    let ctx = MetricContext::default();

    let mut group = c.benchmark_group("shared_logic");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    group.bench_function("fold", |b| b.iter(|| Aggregates::fold(&events, &ctx)));
    group.bench_function("validate", |b| {
        b.iter(|| validate_all(&records, &validator))
    });
    group.bench_function("validate_and_fold", |b| {
        b.iter_batched(
            || (),
            |_| {
                let mut agg = Aggregates::default();
                for (i, r) in records.iter().enumerate() {
                    if let Ok(e) = validator.validate(
                        r,
                        Origin {
                            partition: 0,
                            offset: i as i64,
                        },
                        NOW,
                    ) {
                        agg.update(&e.view(), &ctx);
                    }
                }
                agg
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
