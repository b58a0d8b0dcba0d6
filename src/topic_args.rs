//! The `--topic` / `--topic-per-event-type` flags of the commands that read events (`lambda
//! speed`, `lambda lake`): one topic, several co-partitioned ones, or one per event type.

use clap::Args;

/// Which event topics a command reads.
#[derive(Args, Debug, Clone, Default)]
pub struct EventTopicArgs {
    /// Topic to consume; repeat it to read several (for the speed layer they must be
    /// co-partitioned: keyed by user_id, with as many partitions each) [default: events,
    /// or the table's change topic with --cdc].
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Read one topic per event type under each --topic: <topic>.page_view,
    /// <topic>.add_to_cart and <topic>.purchase (what `lambda serve
    /// --topic-per-event-type` writes).
    #[arg(long)]
    pub topic_per_event_type: bool,
}

impl EventTopicArgs {
    /// The topics to read: the flags, else `default`; each expanded per event type when
    /// asked; without repeats, in the order given.
    pub fn resolve(&self, default: &str) -> anyhow::Result<Vec<String>> {
        let bases: Vec<String> = if self.topics.is_empty() {
            vec![default.to_string()]
        } else {
            self.topics.clone()
        };
        let mut topics: Vec<String> = Vec::new();
        for base in bases {
            let base = base.trim().to_string();
            if base.is_empty() {
                anyhow::bail!("--topic: a topic name is empty");
            }
            let expanded = if self.topic_per_event_type {
                shared_logic::topics::per_event_type(&base)
            } else {
                vec![base]
            };
            for topic in expanded {
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
        }
        Ok(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_default_repeat_and_expand_per_event_type() {
        let none = EventTopicArgs::default();
        assert_eq!(none.resolve("events").unwrap(), ["events"]);
        let two = EventTopicArgs {
            topics: vec!["a".into(), "b".into(), "a".into()],
            topic_per_event_type: false,
        };
        assert_eq!(two.resolve("events").unwrap(), ["a", "b"]);
        let per_type = EventTopicArgs {
            topics: vec![],
            topic_per_event_type: true,
        };
        assert_eq!(
            per_type.resolve("events").unwrap(),
            ["events.page_view", "events.add_to_cart", "events.purchase"]
        );
        let empty = EventTopicArgs {
            topics: vec![" ".into()],
            topic_per_event_type: false,
        };
        assert!(empty
            .resolve("events")
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
