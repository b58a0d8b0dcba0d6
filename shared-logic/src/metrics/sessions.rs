//! The `sessions` metric: sessions built by [`crate::sessions`] are added to (and retracted
//! from) the windows of their start.

use serde::{Deserialize, Serialize};

use crate::event::EventRef;
use crate::mergeable::{add_sum, Mergeable, Signed};
use crate::metric::{count, ratio, BuiltFrom, Metric, MetricContext, Value, ValueKind};
use crate::metric_views::MetricViews;
use crate::sessions::Session;

/// `sessions`: per window of session start, by country and device: sessions, their total
/// duration, page views and bounces (one-event sessions); derived: average duration, page
/// views per session, bounce rate. Sessions are built by [`crate::sessions`] (a user's
/// events, not one event at a time), so this metric takes no part in the per-event fold:
/// [`crate::MetricViews::apply_session`] adds and retracts whole sessions.
pub struct Sessions;

/// State of [`Sessions`]: signed sums, so that a session merged into another by a late
/// event can be retracted (a commutative group). The sums are `i128`, wide enough for any
/// fold (see [`crate::mergeable`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionsState {
    pub sessions: i128,
    pub duration_ms: i128,
    pub page_views: i128,
    pub bounces: i128,
}

impl SessionsState {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) one session.
    pub fn add(&mut self, session: &Session, sign: i64) {
        let sign = sign as i128;
        self.sessions = add_sum(self.sessions, sign);
        self.duration_ms = add_sum(self.duration_ms, sign * session.duration_ms() as i128);
        self.page_views = add_sum(self.page_views, sign * session.page_views as i128);
        self.bounces = add_sum(self.bounces, sign * session.is_bounce() as i128);
    }
}

impl Mergeable for SessionsState {
    fn merge(&mut self, other: &Self) {
        self.sessions = add_sum(self.sessions, other.sessions);
        self.duration_ms = add_sum(self.duration_ms, other.duration_ms);
        self.page_views = add_sum(self.page_views, other.page_views);
        self.bounces = add_sum(self.bounces, other.bounces);
    }
}

impl Metric for Sessions {
    const NAME: &'static str = "sessions";
    const DIMENSIONS: &'static [&'static str] = &["country", "device"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("sessions", ValueKind::Count),
        ("total_duration_ms", ValueKind::Count),
        ("page_views", ValueKind::Count),
        ("bounces", ValueKind::Count),
        ("average_duration_ms", ValueKind::Ratio),
        ("page_views_per_session", ValueKind::Ratio),
        ("bounce_rate", ValueKind::Ratio),
    ];
    type State = SessionsState;

    fn applies_to(_event: &EventRef<'_>) -> bool {
        false
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.country();
        out[1] = event.device().as_str();
    }

    fn update(_state: &mut Self::State, _event: &EventRef<'_>, _ctx: &MetricContext) {}

    const SETTLES_WITH_WATERMARK: bool = false;

    const BUILT_FROM: BuiltFrom = BuiltFrom::Sessions;

    fn values(state: &Self::State) -> Vec<Value> {
        let (n, duration, views, bounces) = (
            count(state.sessions),
            count(state.duration_ms),
            count(state.page_views),
            count(state.bounces),
        );
        vec![
            Value::Count(n),
            Value::Count(duration),
            Value::Count(views),
            Value::Count(bounces),
            ratio(duration, n),
            ratio(views, n),
            ratio(bounces, n),
        ]
    }
}

impl Signed for SessionsState {
    fn is_zero(&self) -> bool {
        *self == SessionsState::default()
    }
}

impl MetricViews<Sessions> {
    /// Applies what one event did to its user's sessions: retracts the sessions it merged
    /// and adds the merged one. The common case (the event extends one session, whose start
    /// stays) is one update per window.
    pub fn apply_change(&mut self, removed: &[Session], added: &Session, ctx: &MetricContext) {
        if let [only] = removed {
            if (only.start, only.start_tie) == (added.start, added.start_tie) {
                let mut delta = SessionsState::default();
                delta.add(added, 1);
                delta.add(only, -1);
                self.add_to_session_windows(added, &delta, ctx);
                return;
            }
        }
        for s in removed {
            self.apply_session(s, -1, ctx);
        }
        self.apply_session(added, 1, ctx);
    }

    /// Adds (`sign` = 1) or retracts (`sign` = -1) a session in the windows of its start;
    /// a key whose sums return to zero is removed, so that views built in different orders
    /// hold the same keys.
    pub fn apply_session(&mut self, session: &Session, sign: i64, ctx: &MetricContext) {
        let mut delta = SessionsState::default();
        delta.add(session, sign);
        self.add_to_session_windows(session, &delta, ctx);
    }

    fn add_to_session_windows(
        &mut self,
        session: &Session,
        delta: &SessionsState,
        ctx: &MetricContext,
    ) {
        let dims = [session.country.as_str(), session.device.as_str()];
        self.add_signed(session.start, &dims, delta, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{event, fold_day, key, n, r, values};

    const MIN: i64 = 60_000;

    #[test]
    fn sessions_count_duration_page_views_and_bounces() {
        let url = r#","url":"/""#;
        let item = r#","product_id":"p","quantity":1"#;
        let events = [
            // u1: a session of three page views over 20 minutes…
            event("a1", "page_view", 0, "u1", url),
            event("a2", "page_view", 10 * MIN, "u1", url),
            event("a3", "page_view", 20 * MIN, "u1", url),
            // …then, more than the 30-minute gap later, a session of one cart (a bounce).
            event("a4", "add_to_cart", 20 * MIN + 31 * MIN, "u1", item),
            // u2: one page view (a bounce).
            event("b1", "page_view", 5 * MIN, "u2", url),
        ];
        // 3 sessions; duration 20 + 0 + 0 minutes; page views 3 + 0 + 1; 2 bounces.
        let total = 20 * MIN as u64;
        assert_eq!(
            values::<Sessions>(&fold_day(&events)),
            vec![(
                key(&["US", "desktop"]),
                vec![
                    n(3),
                    n(total),
                    n(4),
                    n(2),
                    r(total as f64 / 3.0),
                    r(4.0 / 3.0),
                    r(2.0 / 3.0)
                ]
            )]
        );
    }

    #[test]
    fn exactly_the_gap_still_joins_a_session() {
        let url = r#","url":"/""#;
        let events = [
            event("a1", "page_view", 0, "u1", url),
            event("a2", "page_view", 30 * MIN, "u1", url),
        ];
        let rows = values::<Sessions>(&fold_day(&events));
        assert_eq!(rows[0].1[..4], [n(1), n(30 * MIN as u64), n(2), n(0)]);
    }
}
