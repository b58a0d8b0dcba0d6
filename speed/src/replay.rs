//! Applying raw records to the views without Kafka: the speed layer's per-partition path
//! fed from a file (`lambda bench speed-file`) or a test.

use shared_logic::{topics, Validator};

use crate::partition::PartitionState;
use crate::views::RealtimeViews;

/// Rebuilds, from raw records `(partition, offset, record timestamp ms, payload)` of the
/// `events` topic, the state the speed layer would hold: the same per-partition path
/// without Kafka. For benchmarks fed from a file and for tests.
pub fn apply_records<'a>(
    views: &RealtimeViews,
    validator: &Validator,
    records: impl IntoIterator<Item = (i32, i64, i64, &'a [u8])>,
) -> u64 {
    let (ctx, time) = (&views.ctx, views.time);
    views.update(|states| {
        let mut n = 0;
        for (partition, offset, record_ms, payload) in records {
            let state = states
                .entry(partition)
                .or_insert_with(PartitionState::default);
            state.apply(
                topics::EVENTS,
                partition,
                offset,
                payload,
                validator,
                Some(record_ms),
                ctx,
                &time,
            );
            n += 1;
        }
        n
    })
}
