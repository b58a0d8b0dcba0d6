//! The notes of what changed in a partition's state since its last checkpoint (see
//! [`crate::changes`] for the deltas made of them). The state notes each change where it
//! makes it; nothing here reads the state.

use std::collections::BTreeSet;

/// The changes noted since the last checkpoint. Bookkeeping, not state: two states are
/// equal whatever their notes, and the notes are never serialised.
#[derive(Debug, Clone, Default)]
pub struct ChangeLog {
    /// Whether changes are noted (from the first whole checkpoint on; a state that is never
    /// checkpointed keeps no notes).
    pub(crate) on: bool,
    /// Window starts whose keys changed.
    pub(crate) windows: BTreeSet<i64>,
    /// The window noted last (most events fall in the window before them).
    pub(crate) last_window: Option<i64>,
    /// Dedup ids added, with their hour.
    pub(crate) ids: Vec<(i64, u128)>,
    /// Users whose sessions changed.
    pub(crate) users: hashbrown::HashSet<String>,
}

impl PartialEq for ChangeLog {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ChangeLog {
    /// Notes that the keys of window `start` changed.
    pub(crate) fn window(&mut self, start: i64) {
        if self.on && self.last_window != Some(start) {
            self.windows.insert(start);
            self.last_window = Some(start);
        }
    }

    /// Notes a dedup id added to `hour`.
    pub(crate) fn id(&mut self, hour: i64, id: u128) {
        if self.on {
            self.ids.push((hour, id));
        }
    }

    /// Notes that `user`'s sessions changed.
    pub(crate) fn user(&mut self, user: &str) {
        if self.on && !self.users.contains(user) {
            self.users.insert(user.to_string());
        }
    }
}
