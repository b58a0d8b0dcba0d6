//! What a partition notes for the metrics that count duplicates and rejects (the `quality`
//! metric): a dropped duplicate delivery in every window of its event, a rejected record in
//! the windows of its Kafka record time. Both are noted whatever the late policy, closed
//! windows included (marked revised, as under `update`): neither adds data to a metric,
//! and noting them wherever they are recognised keeps the counts equal to the batch
//! layer's, whenever they arrived.
//!
//! It also keeps what only the speed layer sees, for the quality report: per event-time
//! hour and producer, how many events arrived out of order and late
//! ([`shared_logic::arrival`]), and the first rejected records of each hour, producer and
//! reason ([`shared_logic::dead_letter_sample`]). Both are part of the partition's state
//! (checkpointed, a function of its record sequence) and are forgotten with the hours the
//! batch layer covers.

use shared_logic::dead_letter_sample::DeadLetterSample;
use shared_logic::metric::BuiltFrom;
use shared_logic::window::{HourKey, WindowStart, HOUR_MS};
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
        if let Some(sample) = DeadLetterSample::of(dead) {
            self.dead_letter_samples.offer(sample);
        }
        self.aggregates
            .note_reject(&dead.source, dead.reason, record_ms, ctx);
        self.note_changed(EventTime(record_ms), ctx, time);
    }

    /// Notes the arrival of a valid event of `producer` at `event_ms` (before it moves the
    /// newest event seen): out of order when behind that newest event, late when `late`
    /// (every window of it closed).
    pub(crate) fn note_arrival(&mut self, producer: &str, event_ms: i64, late: bool) {
        let out_of_order = self.max_event_time.is_some_and(|newest| event_ms < newest);
        let hour = HourKey(event_ms.div_euclid(HOUR_MS));
        self.arrivals.note(hour, producer, out_of_order, late);
    }

    /// Forgets the arrival counts of the event-time hours, and the dead-letter samples of
    /// the record-time hours, that end by `before_ms`.
    pub(crate) fn forget_arrivals_before(&mut self, before_ms: i64) {
        self.arrivals
            .retain_hours(|h| (h.0 + 1) * HOUR_MS > before_ms);
        self.dead_letter_samples
            .retain_hours(|start| start + HOUR_MS > before_ms);
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

#[cfg(test)]
mod tests {
    use shared_logic::dead_letter_sample::SAMPLES_PER_REASON;
    use shared_logic::{MetricContext, Validator};

    use crate::partition::{LatePolicy, Outcome, PartitionState, TimeSettings};

    const MIN: i64 = 60_000;
    const T0: i64 = 1_767_225_600_000;
    /// Every record's Kafka timestamp: in the second hour, ahead of every event.
    const RECORD_MS: i64 = T0 + 90 * MIN;

    fn record(id: &str, t: i64, source: &str) -> Vec<u8> {
        format!(r#"{{"event_id":"{id}","event_type":"page_view","event_time":{t},"user_id":"u","url":"/","source":"{source}"}}"#).into_bytes()
    }

    fn apply(
        state: &mut PartitionState,
        offset: i64,
        payload: &[u8],
        policy: LatePolicy,
    ) -> Outcome {
        let time = TimeSettings {
            late_policy: policy,
            ..TimeSettings::default()
        };
        state.apply(
            shared_logic::topics::EVENTS,
            0,
            offset,
            payload,
            &Validator::default(),
            Some(RECORD_MS),
            &MetricContext::default(),
            &time,
        )
    }

    #[test]
    fn arrivals_count_out_of_order_and_late_events_per_producer_and_hour_whatever_the_policy() {
        for policy in [LatePolicy::Drop, LatePolicy::SideOutput, LatePolicy::Update] {
            let mut state = PartitionState::default();
            let records = [
                record("a", T0 + 10 * MIN, "web"),
                // Behind the newest event, its window closed (ended 4 minutes before it).
                record("b", T0 + 5 * MIN, "web"),
                // Behind the newest event, its window still open.
                record("c", T0 + 10 * MIN - 2_000, "ios"),
                record("a", T0 + 10 * MIN, "web"),
                record("d", T0 + 11 * MIN, "web"),
                // The next hour, in order.
                record("e", T0 + 61 * MIN, "web"),
            ];
            let outcomes: Vec<Outcome> = records
                .iter()
                .enumerate()
                .map(|(i, r)| apply(&mut state, i as i64, r, policy))
                .collect();
            assert_eq!(outcomes[3], Outcome::Duplicate, "{policy:?}");
            let hour = shared_logic::window::HourKey(T0 / shared_logic::window::HOUR_MS);
            let web = state.arrivals.get(hour, "web").copied().unwrap();
            assert_eq!(
                (web.events, web.out_of_order, web.late),
                (3, 1, 1),
                "{policy:?}"
            );
            let ios = state.arrivals.get(hour, "ios").copied().unwrap();
            assert_eq!(
                (ios.events, ios.out_of_order, ios.late),
                (1, 1, 0),
                "{policy:?}"
            );
            let next = state
                .arrivals
                .get(shared_logic::window::HourKey(hour.0 + 1), "web");
            assert_eq!(
                next.map(|c| (c.events, c.out_of_order, c.late)),
                Some((1, 0, 0))
            );
            // The hours the batch layer covers are forgotten with their windows.
            state.evict_before(Some(T0 + 60 * MIN), None, &MetricContext::default());
            assert_eq!(state.arrivals.get(hour, "web"), None);
            assert_eq!(state.arrivals.hours(), 1);
        }
    }

    #[test]
    fn the_first_rejects_of_each_producer_hour_and_reason_are_sampled() {
        let mut state = PartitionState::default();
        let mut offset = 0;
        for _ in 0..5 {
            apply(
                &mut state,
                offset,
                br#"{"event_id":"x","source":"app"}"#,
                LatePolicy::Drop,
            );
            offset += 1;
        }
        apply(&mut state, offset, b"not json", LatePolicy::Drop);
        let samples = state
            .dead_letter_samples
            .within(T0 + 60 * MIN, T0 + 120 * MIN);
        let seen: Vec<(String, String, i64)> = samples
            .iter()
            .map(|s| (s.producer.clone(), s.reason.clone(), s.offset))
            .collect();
        assert_eq!(seen.len(), SAMPLES_PER_REASON + 1, "{seen:?}");
        assert_eq!(seen[0], ("app".into(), "missing_field".into(), 0));
        assert_eq!(
            seen[SAMPLES_PER_REASON],
            ("unknown".into(), "malformed_json".into(), 5)
        );
        assert_eq!(samples[SAMPLES_PER_REASON].record, "not json");
        assert_eq!(samples[0].record_ms, RECORD_MS);
        assert!(state
            .dead_letter_samples
            .within(T0, T0 + 60 * MIN)
            .is_empty());
    }
}
