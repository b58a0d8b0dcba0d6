//! What a partition notes for the metrics that count duplicates and rejects (the `quality`
//! metric): a dropped duplicate delivery in every window of its event, a rejected record in
//! the windows of its Kafka record time. Both are noted whatever the late policy, closed
//! windows included (marked revised, as under `update`): neither adds data to a metric,
//! and noting them wherever they are recognised keeps the counts equal to the batch
//! layer's, whenever they arrived.

use shared_logic::metric::BuiltFrom;
use shared_logic::window::WindowStart;
use shared_logic::{DeadLetter, EventRef, EventTime, MetricContext};

use crate::partition::{PartitionState, TimeSettings};

impl PartitionState {
    /// Notes a duplicate delivery of `event` the dedup rule dropped.
    pub(crate) fn note_duplicate(
        &mut self,
        event: &EventRef<'_>,
        ctx: &MetricContext,
        time: &TimeSettings,
    ) {
        self.aggregates.note_duplicate_windows(event, ctx, |_| true);
        self.note_changed(event.event_time(), ctx, time);
    }

    /// Notes a rejected record that has a record time.
    pub(crate) fn note_reject(
        &mut self,
        dead: &DeadLetter,
        ctx: &MetricContext,
        time: &TimeSettings,
    ) {
        let Some(record_ms) = dead.record_ms else {
            return;
        };
        self.aggregates
            .note_reject(&dead.source, dead.reason, record_ms, ctx);
        self.note_changed(EventTime(record_ms), ctx, time);
    }

    /// The windows of `at` changed (revised when already closed).
    fn note_changed(&mut self, at: EventTime, ctx: &MetricContext, time: &TimeSettings) {
        let watermark = self.watermark(time);
        let closed = |w: WindowStart| {
            watermark.is_some_and(|wm| ctx.windows.end(w) + time.allowed_lateness_ms <= wm)
        };
        for w in ctx.windows.assign(at) {
            self.changes.window(BuiltFrom::Events, w.0);
            if closed(w) {
                self.revised.insert(w.0);
            }
        }
    }
}
