//! Default names of the Kafka topics the layers share, so that producers and consumers
//! agree without configuration.

/// Validated and not-yet-validated events, as JSON, keyed by `user_id`.
pub const EVENTS: &str = "events";
/// Rejected records: the raw bytes, with the reason code in the `reason` header.
pub const DEAD_LETTER: &str = "events-dead-letter";
/// Events the speed layer received after their window closed (side-output policy).
pub const LATE: &str = "events-late";
/// Environment variable naming a real Kafka cluster (`host:port,host:port`).
pub const BROKERS_ENV: &str = "KAFKA_BROKERS";
/// Brokers used when nothing else is configured: the local broker the scripts start.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The topic of one event type when events are routed by type: `<base>.<event_type>`
/// (`events.page_view`, `events.add_to_cart`, `events.purchase`). Every such topic is keyed
/// by `user_id` and has the base topic's partition count, so that partition `p` of each
/// carries the same users (the speed layer reads them co-partitioned).
pub fn of_event_type(base: &str, event_type: crate::EventType) -> String {
    format!("{base}.{}", event_type.as_str())
}

/// The topics of every event type under `base`, in funnel order.
pub fn per_event_type(base: &str) -> Vec<String> {
    crate::EventType::ALL
        .iter()
        .map(|t| of_event_type(base, *t))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_type_topics_are_named_after_the_base_and_the_wire_name() {
        assert_eq!(
            super::per_event_type("events"),
            ["events.page_view", "events.add_to_cart", "events.purchase"]
        );
    }
}
