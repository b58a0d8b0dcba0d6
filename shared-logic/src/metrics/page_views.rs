//! The `page_views` metric.

use serde::{Deserialize, Serialize};

use crate::event::{EventRef, EventType};
use crate::hll::Hll;
use crate::mergeable::{add_count, Mergeable};
use crate::metric::{Metric, MetricContext, Value, ValueKind};

/// `page_views`: views and distinct users, by url, country and device.
pub struct PageViews;

/// State of [`PageViews`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageViewsState {
    pub views: u64,
    pub users: Hll,
}

impl Mergeable for PageViewsState {
    fn merge(&mut self, other: &Self) {
        self.views = add_count(self.views, other.views);
        self.users.merge(&other.users);
    }
}

impl Metric for PageViews {
    const NAME: &'static str = "page_views";
    const DIMENSIONS: &'static [&'static str] = &["url", "country", "device"];
    const VALUES: &'static [(&'static str, ValueKind)] = &[
        ("views", ValueKind::Count),
        ("distinct_users", ValueKind::Count),
    ];
    type State = PageViewsState;

    fn applies_to(event: &EventRef<'_>) -> bool {
        event.event_type() == EventType::PageView
    }

    fn dimension_values<'e>(event: &EventRef<'e>, out: &mut [&'e str]) {
        out[0] = event.url();
        out[1] = event.country();
        out[2] = event.device().as_str();
    }

    fn update(state: &mut Self::State, event: &EventRef<'_>, _ctx: &MetricContext) {
        state.views = add_count(state.views, 1);
        state.users.add(event.user_id());
    }

    const SKETCHES: &'static [(&'static str, &'static str)] = &[("users", "distinct_users")];
    fn sketches(state: &Self::State) -> Vec<&Hll> {
        vec![&state.users]
    }
    fn sketches_mut(state: &mut Self::State) -> Vec<&mut Hll> {
        vec![&mut state.users]
    }
    const SKETCHED_VALUES: &'static [&'static str] = &["distinct_users"];
    fn values(state: &Self::State) -> Vec<Value> {
        vec![
            Value::Count(state.views),
            Value::Count(state.users.estimate()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{event, fold_day, key, n, values};

    #[test]
    fn page_views_count_views_and_distinct_users_per_url() {
        let url = |u: &str| format!(r#","url":"{u}""#);
        let events = [
            event("e1", "page_view", 0, "u1", &url("/a")),
            event("e2", "page_view", 60_000, "u2", &url("/a")),
            event("e3", "page_view", 120_000, "u1", &url("/a")),
            event("e4", "page_view", 180_000, "u3", &url("/b")),
            // Not page views: not counted, whatever their url.
            event(
                "e5",
                "add_to_cart",
                0,
                "u4",
                r#","url":"/a","product_id":"p","quantity":1"#,
            ),
        ];
        assert_eq!(
            values::<PageViews>(&fold_day(&events)),
            vec![
                (key(&["/a", "US", "desktop"]), vec![n(3), n(2)]),
                (key(&["/b", "US", "desktop"]), vec![n(1), n(1)]),
            ]
        );
    }
}
