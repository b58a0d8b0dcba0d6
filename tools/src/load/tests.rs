//! Tests of the load generators' pure parts.

use std::time::Duration;

use super::query::substitute_times;
use super::stats::quantile_ms;

#[test]
fn placeholders_become_minute_aligned_times() {
    // 2026-11-28T10:00:30.5Z: now rounds up to 10:01.
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T10:00:30.5Z")
        .unwrap()
        .timestamp_millis();
    let got = substitute_times("/m?from={now-60m}&to={now}&x={now+1h}", now).unwrap();
    assert_eq!(
        got,
        "/m?from=2026-11-28T09:01:00Z&to=2026-11-28T10:01:00Z&x=2026-11-28T11:01:00Z"
    );
    assert_eq!(substitute_times("/plain", now).unwrap(), "/plain");
    assert!(substitute_times("/m?from={now-60}", now).is_err());
    assert!(substitute_times("/m?from={now-60m", now).is_err());
}

#[test]
fn quantiles_are_nearest_rank() {
    let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(quantile_ms(&v, 0.5), 50.0);
    assert_eq!(quantile_ms(&v, 0.99), 99.0);
    assert_eq!(quantile_ms(&v, 1.0), 100.0);
    assert_eq!(quantile_ms(&v[..1], 0.99), 1.0);
    assert!(quantile_ms(&[], 0.5).is_nan());
}
