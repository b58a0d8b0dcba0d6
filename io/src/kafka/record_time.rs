//! The one clock that every consumer of the events topic judges a record by: the record's
//! own Kafka timestamp (CreateTime as the producer set it, or LogAppendTime as the broker
//! set it), never the consumer's wall clock.
//!
//! The speed layer, the lake writer and the topic drain all read a record's clock through
//! this module, so one record gets one verdict in every layer and on every replay. The
//! collector produces each record with the clock reading it validated against as its
//! CreateTime, so a record the collector accepted is accepted downstream too.

use rdkafka::message::Timestamp;

/// A record's timestamp in epoch milliseconds, or `None` when it carries none (message
/// format v0, or a negative value).
pub fn record_time(timestamp: Timestamp) -> Option<i64> {
    timestamp.to_millis().filter(|ms| *ms >= 0)
}

/// The `now_ms` that validation's future-skew rule measures a record against: its
/// timestamp. A record without one has no clock to be measured against, so the rule does
/// not apply to it (`i64::MAX`): any other choice (the consumer's wall clock, a previous
/// record's time) could give the layers, or a replay, different verdicts.
pub fn validation_clock(record_time_ms: Option<i64>) -> i64 {
    record_time_ms.unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_the_record_timestamp_of_either_type() {
        assert_eq!(record_time(Timestamp::CreateTime(1_000)), Some(1_000));
        assert_eq!(record_time(Timestamp::LogAppendTime(2_000)), Some(2_000));
        assert_eq!(validation_clock(Some(1_000)), 1_000);
    }

    #[test]
    fn a_record_without_a_timestamp_is_not_measured_against_any_clock() {
        assert_eq!(record_time(Timestamp::NotAvailable), None);
        assert_eq!(record_time(Timestamp::CreateTime(-1)), None);
        let v = shared_logic::Validator::default();
        let far = br#"{"event_id":"e","event_type":"page_view","event_time":"2090-01-01T00:00:00Z","user_id":"u","url":"/"}"#;
        let origin = shared_logic::Origin {
            partition: 0,
            offset: 0,
        };
        assert!(v.validate(far, origin, validation_clock(None)).is_ok());
        assert!(v.validate(far, origin, validation_clock(Some(0))).is_err());
    }
}
