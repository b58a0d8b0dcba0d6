//! A bound on how long a consumer group may leave a partition unread, whatever the broker
//! does. Brokers are meant to hand a dead member's partitions to the live ones once its
//! session times out; the local broker (tansu 0.6.0) can instead settle on an assignment
//! that gives a live member nothing while a dead one keeps partitions, and stay there
//! (docs/broker.md, "Consumer groups after crashes"). [`GroupWatchdog`] watches the group's
//! committed offsets: when a partition this member does not hold has records beyond its
//! committed offset and that offset has not moved for longer than the broker's own
//! recovery may take (the session timeout plus a margin) plus the wait between two of the
//! group's commits, the member leaves the group and joins again as a new member, which
//! makes the broker assign every partition anew ([`crate::kafka::GroupMember`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::IoError;

/// Where the group stands on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's first offset (where a group without a commit starts).
    pub low: i64,
    /// The partition's end (high watermark).
    pub high: i64,
}

impl PartitionProgress {
    /// The group's position: its committed offset, else the partition's start.
    fn position(&self) -> i64 {
        self.committed.unwrap_or(self.low).max(self.low)
    }
}

/// A topic's partition: (topic, partition number).
pub type TopicPartition = (String, i32);

/// Decides when a member should leave and rejoin its group (see the module doc).
#[derive(Debug)]
pub struct GroupWatchdog {
    stall: Duration,
    /// Partition → the position last seen for it and since when it has not moved, for
    /// partitions this member does not hold that have records to read.
    waiting: BTreeMap<TopicPartition, (i64, Instant)>,
}

impl GroupWatchdog {
    /// A watchdog that calls a partition stalled after `stall` without progress.
    pub fn new(stall: Duration) -> Self {
        GroupWatchdog {
            stall,
            waiting: BTreeMap::new(),
        }
    }

    /// The bound for a group whose members time out after `session` and whose readers
    /// commit their position at least every `commit_every`: the broker's own recovery (the
    /// session timeout, then a rebalance) plus 15 s, plus the wait between two commits.
    pub fn for_group(session: Duration, commit_every: Duration) -> Self {
        GroupWatchdog::new(session + Duration::from_secs(15) + commit_every)
    }

    /// How long a partition may wait.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    /// Takes one look at the group at `now`; returns the stalled partitions (this member
    /// should rejoin) or an empty list.
    pub fn observe(
        &mut self,
        now: Instant,
        held: &BTreeSet<TopicPartition>,
        progress: &BTreeMap<TopicPartition, PartitionProgress>,
    ) -> Vec<TopicPartition> {
        let mut stalled = Vec::new();
        for (partition, p) in progress {
            let position = p.position();
            if held.contains(partition) || p.high <= position {
                self.waiting.remove(partition);
                continue;
            }
            match self.waiting.get(partition) {
                Some(&(seen, since)) if seen == position => {
                    if now.saturating_duration_since(since) >= self.stall {
                        stalled.push(partition.clone());
                    }
                }
                _ => {
                    self.waiting.insert(partition.clone(), (position, now));
                }
            }
        }
        self.waiting.retain(|p, _| progress.contains_key(p));
        stalled
    }

    /// Forgets what it saw (after a rejoin: every partition gets a fresh bound).
    pub fn reset(&mut self) {
        self.waiting.clear();
    }
}

/// The group's committed offset and the watermarks of every partition of `topics`, as
/// `consumer` (a member of the group) sees them. A topic whose partitions cannot be listed
/// (not created yet) is left out; an error only when none can. Blocking: run it where
/// blocking is fine.
pub fn group_progress<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topics: &[String],
    brokers: &str,
    timeout: Duration,
) -> Result<BTreeMap<TopicPartition, PartitionProgress>, IoError> {
    let err = |what: &str| {
        let (brokers, what) = (brokers.to_string(), what.to_string());
        move |source| IoError::Kafka {
            brokers,
            what,
            source: Box::new(source),
        }
    };
    let mut list = TopicPartitionList::new();
    let mut last_error = None;
    for topic in topics {
        match crate::kafka::client::partitions_of(consumer, topic, brokers, timeout) {
            Ok(partitions) => {
                for p in partitions {
                    list.add_partition(topic, p);
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    if list.count() == 0 {
        if let Some(e) = last_error {
            return Err(e);
        }
    }
    let wanted: Vec<TopicPartition> = list
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect();
    let committed = consumer
        .committed_offsets(list, timeout)
        .map_err(err("read the group's committed offsets"))?;
    let mut progress = BTreeMap::new();
    for (topic, p) in wanted {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p, timeout)
            .map_err(err("fetch watermarks"))?;
        let committed = committed
            .find_partition(&topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        progress.insert(
            (topic, p),
            PartitionProgress {
                committed,
                low,
                high,
            },
        );
    }
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        ("events".to_string(), p)
    }

    fn tps(ps: &[i32]) -> Vec<TopicPartition> {
        ps.iter().map(|&p| tp(p)).collect()
    }

    fn progress(
        entries: &[(i32, Option<i64>, i64)],
    ) -> BTreeMap<TopicPartition, PartitionProgress> {
        entries
            .iter()
            .map(|&(p, committed, high)| {
                (
                    tp(p),
                    PartitionProgress {
                        committed,
                        low: 0,
                        high,
                    },
                )
            })
            .collect()
    }

    const STALL: Duration = Duration::from_secs(20);

    #[test]
    fn an_unread_partition_nobody_advances_is_stalled_after_the_bound() {
        let mut w = GroupWatchdog::new(STALL);
        let t0 = Instant::now();
        let none = BTreeSet::new();
        let g = progress(&[(0, Some(10), 100), (1, None, 50)]);
        assert!(w.observe(t0, &none, &g).is_empty());
        assert!(w
            .observe(t0 + STALL - Duration::from_millis(1), &none, &g)
            .is_empty());
        assert_eq!(w.observe(t0 + STALL, &none, &g), tps(&[0, 1]));
    }

    #[test]
    fn progress_held_partitions_and_read_partitions_are_not_stalled() {
        let mut w = GroupWatchdog::new(STALL);
        let t0 = Instant::now();
        let held: BTreeSet<TopicPartition> = [tp(2)].into();
        // 0 advances, 1 is read to its end, 2 is ours, 3 has no records.
        let first = progress(&[
            (0, Some(10), 100),
            (1, Some(50), 50),
            (2, Some(0), 9),
            (3, None, 0),
        ]);
        assert!(w.observe(t0, &held, &first).is_empty());
        let later = progress(&[
            (0, Some(11), 100),
            (1, Some(50), 60),
            (2, Some(0), 9),
            (3, None, 0),
        ]);
        // 1 got new records at t0 + STALL: its wait starts then.
        assert!(w.observe(t0 + STALL, &held, &later).is_empty());
        assert!(w
            .observe(t0 + 2 * STALL - Duration::from_millis(1), &held, &later)
            .is_empty());
        assert_eq!(w.observe(t0 + 2 * STALL, &held, &later), tps(&[0, 1]));
    }

    #[test]
    fn the_bound_is_the_session_timeout_a_margin_and_the_wait_between_commits() {
        let w = GroupWatchdog::for_group(Duration::from_secs(6), Duration::from_millis(500));
        assert_eq!(w.stall(), Duration::from_millis(21_500));
    }

    #[test]
    fn a_reset_restarts_every_bound() {
        let mut w = GroupWatchdog::new(STALL);
        let t0 = Instant::now();
        let none = BTreeSet::new();
        let g = progress(&[(0, Some(10), 100)]);
        w.observe(t0, &none, &g);
        w.reset();
        assert!(w.observe(t0 + STALL, &none, &g).is_empty());
        assert_eq!(w.observe(t0 + 2 * STALL, &none, &g), tps(&[0]));
    }

    #[test]
    fn a_commit_below_the_partitions_start_counts_from_the_start() {
        let mut w = GroupWatchdog::new(STALL);
        let t0 = Instant::now();
        let none = BTreeSet::new();
        let mut g = progress(&[(0, Some(3), 100)]);
        g.get_mut(&tp(0)).unwrap().low = 100;
        // Retention removed everything up to the end: nothing to read.
        assert!(w.observe(t0, &none, &g).is_empty());
        assert!(w.observe(t0 + 2 * STALL, &none, &g).is_empty());
    }
}
