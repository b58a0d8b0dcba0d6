//! What changed in a partition's state since its last checkpoint, and the delta that carries
//! it: incremental checkpoints whose cost follows the change, not the state.
//!
//! Once a state has been checkpointed whole ([`PartitionState::start_tracking`]), each
//! change is noted as it is made: the windows whose keys changed (in any metric, by an
//! event, a session merge or an eviction), the dedup ids added, the users whose sessions
//! changed. [`PartitionState::take_delta`] turns the notes into a [`Delta`]: the scalars,
//! every key of each changed window (a window is replaced whole), the ids added and the
//! hours still held, each changed user's sessions (or their absence). Applying the deltas in
//! order to the whole state they follow gives exactly the state they were taken from.
//!
//! A note that names something unchanged is harmless (it is written with its current
//! value), so noting is cheap and conservative; a change not noted would be lost, so every
//! mutation of the state notes itself where it is made (in [`crate::partition`]).

use std::collections::{BTreeMap, BTreeSet};

use lambda_io::speed_api::Counters;
use serde::{Deserialize, Serialize};
use shared_logic::arrival::Arrivals;
use shared_logic::dead_letter_sample::DeadLetterSamples;
use shared_logic::sessions::UserSessions;
use shared_logic::{Aggregates, MetricId, MetricVisitor, Registered};

use crate::partition::{PartitionState, TopicCursor};

/// The partition's scalar fields, carried whole by every delta: small (the arrival counts
/// and dead-letter samples hold a few entries per producer and hour held).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scalars {
    cursors: BTreeMap<String, TopicCursor>,
    max_event_time: Option<i64>,
    progress: Option<i64>,
    revised: BTreeSet<i64>,
    counters: Counters,
    arrivals: Arrivals,
    dead_letter_samples: DeadLetterSamples,
}

/// What changed in a partition's state between two checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    scalars: Scalars,
    /// Windows replaced whole by the keys of `aggregates`.
    windows: Vec<i64>,
    /// Every key of those windows, in every metric.
    aggregates: Aggregates,
    /// Dedup ids added, by hour.
    ids: Vec<(i64, Vec<u128>)>,
    /// The hours whose dedup ids are still held (the others expired).
    hours: Vec<i64>,
    /// Changed users' sessions; `None`: forgotten.
    users: Vec<(String, Option<UserSessions>)>,
}

impl Delta {
    /// Number of windows, dedup ids and users it carries (for logs and benchmarks).
    pub fn size(&self) -> (usize, usize, usize) {
        let ids = self.ids.iter().map(|(_, ids)| ids.len()).sum();
        (self.windows.len(), ids, self.users.len())
    }
}

/// Copies the keys of some windows from one fold into another, metric by metric.
struct CopyWindows<'a> {
    from: &'a Aggregates,
    to: &'a mut Aggregates,
    windows: &'a BTreeSet<i64>,
}

impl MetricVisitor for CopyWindows<'_> {
    type Output = ();
    fn visit<M: Registered>(self) {
        let to = M::views_in_mut(self.to);
        for (key, state) in M::views_in(self.from).iter() {
            if self.windows.contains(&key.window.0) {
                to.merge_group(key, state);
            }
        }
    }
}

impl PartitionState {
    /// Starts noting changes afresh: the state is being checkpointed whole (or was just
    /// restored from its checkpoints), and the next delta follows from here.
    pub fn start_tracking(&mut self) {
        self.changes.restart();
    }

    /// Whether changes are noted since a whole checkpoint (else only a whole checkpoint is
    /// possible).
    pub fn is_tracking(&self) -> bool {
        self.changes.on
    }

    /// The changes since the last checkpoint, as a delta; the notes start afresh.
    pub fn take_delta(&mut self) -> Delta {
        let log = self.changes.restart();
        let mut aggregates = Aggregates::default();
        for id in MetricId::ALL {
            id.visit(CopyWindows {
                from: &self.aggregates,
                to: &mut aggregates,
                windows: &log.windows,
            });
        }
        let mut ids: Vec<(i64, Vec<u128>)> = Vec::new();
        let mut noted = log.ids;
        noted.sort_unstable();
        for (hour, id) in noted {
            match ids.last_mut() {
                Some((h, list)) if *h == hour => list.push(id),
                _ => ids.push((hour, vec![id])),
            }
        }
        let mut users: Vec<(String, Option<UserSessions>)> = log
            .users
            .into_iter()
            .map(|u| {
                let sessions = self.sessions.get(&u).cloned();
                (u, sessions)
            })
            .collect();
        users.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Delta {
            scalars: Scalars {
                cursors: self.cursors.clone(),
                max_event_time: self.max_event_time,
                progress: self.progress,
                revised: self.revised.clone(),
                counters: self.counters,
                arrivals: self.arrivals.clone(),
                dead_letter_samples: self.dead_letter_samples.clone(),
            },
            windows: log.windows.into_iter().collect(),
            aggregates,
            ids,
            hours: self.seen.keys().copied().collect(),
            users,
        }
    }

    /// Applies a delta taken from the state that followed this one.
    pub fn apply_delta(&mut self, delta: Delta) {
        let s = delta.scalars;
        self.cursors = s.cursors;
        self.max_event_time = s.max_event_time;
        self.progress = s.progress;
        self.revised = s.revised;
        self.counters = s.counters;
        self.arrivals = s.arrivals;
        self.dead_letter_samples = s.dead_letter_samples;
        let windows: BTreeSet<i64> = delta.windows.into_iter().collect();
        self.aggregates.retain_windows(|w| !windows.contains(&w.0));
        self.aggregates.merge_owned(delta.aggregates);
        for (hour, ids) in delta.ids {
            self.seen.entry(hour).or_default().extend(ids);
        }
        let hours: BTreeSet<i64> = delta.hours.into_iter().collect();
        self.seen.retain(|h, _| hours.contains(h));
        for (user, sessions) in delta.users {
            match sessions {
                Some(s) => {
                    self.sessions.insert(user, s);
                }
                None => {
                    self.sessions.remove(&user);
                }
            }
        }
    }
}
