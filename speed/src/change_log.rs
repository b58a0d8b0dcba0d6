//! The notes of what changed in a partition's state: since its last checkpoint (see
//! [`crate::changes`] for the deltas made of them), and since the views last looked (the
//! windows whose grouped rows [`crate::rollups`] must forget). The state notes each change
//! where it makes it; nothing here reads the state.

use std::collections::BTreeSet;

use shared_logic::metric::BuiltFrom;

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
    /// Window starts whose keys changed since [`ChangeLog::take_touched`], with the kind of
    /// metric that changed there (always noted, checkpoints or not): an event extending a
    /// session changes the `sessions` window where the session started, often long ago,
    /// and nothing else there.
    touched: BTreeSet<(BuiltFrom, i64)>,
    /// The window noted last in `touched`.
    last_touched: Option<(BuiltFrom, i64)>,
}

impl PartialEq for ChangeLog {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl ChangeLog {
    /// Notes that the keys of window `start` changed in the metrics built from `built`.
    pub(crate) fn window(&mut self, built: BuiltFrom, start: i64) {
        if self.last_touched != Some((built, start)) {
            self.touched.insert((built, start));
            self.last_touched = Some((built, start));
        }
        if self.on && self.last_window != Some(start) {
            self.windows.insert(start);
            self.last_window = Some(start);
        }
    }

    /// The windows touched since the last call, with the kind of metric changed there;
    /// noting goes on.
    pub(crate) fn take_touched(&mut self) -> BTreeSet<(BuiltFrom, i64)> {
        self.last_touched = None;
        std::mem::take(&mut self.touched)
    }

    /// The notes since the last checkpoint, handed over; noting starts afresh (and is on).
    /// The touched windows stay: they are the views' notes, not the checkpoint's.
    pub(crate) fn restart(&mut self) -> ChangeLog {
        let fresh = ChangeLog {
            on: true,
            touched: std::mem::take(&mut self.touched),
            last_touched: self.last_touched,
            ..ChangeLog::default()
        };
        std::mem::replace(self, fresh)
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
