//! Several topics read as one: the check that they are co-partitioned (as many partitions
//! each, so that partition `p` of every topic carries the same keys) and that the group's
//! assignment keeps partition `p` of every topic on one member.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lambda_io::kafka::KafkaSettings;

use crate::error::SpeedError;

/// Checks that `topics` have as many partitions each (those that exist; a topic created
/// later is checked by the assignment, [`split_assignment`]).
pub async fn co_partitioned(kafka: &KafkaSettings, topics: &[String]) -> Result<(), SpeedError> {
    if topics.len() < 2 {
        return Ok(());
    }
    let counts =
        lambda_io::kafka::client::partition_counts(kafka, topics, Duration::from_secs(10)).await?;
    let mut seen: Option<(&str, usize)> = None;
    for (topic, count) in &counts {
        match seen {
            Some((first, n)) if n != *count => {
                return Err(SpeedError::Usage(format!(
                    "topics {first} ({n} partitions) and {topic} ({count}) are not co-partitioned: the speed layer reads several topics only when each has as many partitions (and the same key)"
                )))
            }
            None => seen = Some((topic, *count)),
            _ => {}
        }
    }
    Ok(())
}

/// An error when the assignment gives this member partition `p` of some subscribed topics
/// but not of others that have it: two members would hold one partition state.
pub fn split_assignment(
    topics: &[String],
    assigned: &BTreeMap<i32, Vec<String>>,
) -> Result<(), SpeedError> {
    if topics.len() < 2 {
        return Ok(());
    }
    let all: BTreeSet<&str> = assigned.values().flatten().map(String::as_str).collect();
    for (p, got) in assigned {
        if got.len() != all.len() {
            return Err(SpeedError::Usage(format!(
                "partition {p} is assigned on {got:?} but not on every topic read ({all:?}): the topics are not co-partitioned or the group's assignor is not `range`"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(entries: &[(i32, &[&str])]) -> BTreeMap<i32, Vec<String>> {
        entries
            .iter()
            .map(|(p, topics)| (*p, topics.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn a_partition_split_between_members_is_refused_with_the_reason() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let whole = assignment(&[(0, &["a", "b"]), (2, &["a", "b"])]);
        assert!(split_assignment(&topics, &whole).is_ok());
        // A topic not created yet is in nobody's assignment.
        let one = assignment(&[(0, &["a"]), (1, &["a"])]);
        assert!(split_assignment(&topics, &one).is_ok());
        let split = assignment(&[(0, &["a", "b"]), (1, &["a"])]);
        let err = split_assignment(&topics, &split).unwrap_err().to_string();
        assert!(
            err.contains("partition 1") && err.contains("range"),
            "{err}"
        );
        // One topic: nothing to split.
        assert!(split_assignment(&topics[..1], &one).is_ok());
    }
}
