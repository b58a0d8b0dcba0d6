//! How far back the speed layer keeps what the batch layer already covers: the horizon
//! before which its windows are evicted.

use std::time::Duration;

use lambda_io::manifest::Published;

use crate::views::RealtimeViews;

/// How much of what the batch layer covers the speed layer keeps, ms: the lateness horizon,
/// or `retain_covered` if longer.
pub fn keep_ms(views: &RealtimeViews, retain_covered: Duration) -> i64 {
    let horizon = views.time.allowed_lateness_ms + views.time.out_of_orderness_ms;
    horizon.max(retain_covered.as_millis() as i64)
}

/// Where the state of the metrics `pick` selects may be evicted: the earliest of their
/// time boundaries minus `keep_ms`; `None` while any of them has no boundary.
pub fn eviction_horizon(
    published: &Published,
    keep_ms: i64,
    pick: impl Fn(&str) -> bool,
) -> Option<i64> {
    let mut earliest: Option<i64> = None;
    for (_, boundary) in published.time_boundary.iter().filter(|(m, _)| pick(m)) {
        let t = boundary
            .as_deref()
            .and_then(|b| chrono::DateTime::parse_from_rfc3339(b).ok())
            .map(|b| b.timestamp_millis() - keep_ms)?;
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    earliest
}
