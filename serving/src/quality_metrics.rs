//! The data-quality gauges of `/metrics`: the quality report ([`crate::quality`]) of the
//! current hour and the one before it, per producer and rule, for Prometheus alerting
//! (`deploy/prometheus/quality-rules.yml`):
//!
//! - `lambda_quality_verdict{producer, check, hour}`: 0 pass, 1 warn, 2 fail;
//! - `lambda_quality_measured{producer, check, hour}`: the measured figure (a share, or
//!   seconds for `delay_p99` and `freshness`);
//! - `lambda_quality_records_received{producer, hour}`;
//!
//! `hour` is `current` (the hour in progress, judged up to now) or `previous` (the last
//! whole hour). A rule without a figure in an hour (no baseline for `volume`, no event with
//! a record time for `delay_p99`) has no sample.

use shared_logic::quality_report::ProducerHour;
use shared_logic::quality_rules::{Check, Verdict};
use shared_logic::window::{HourKey, HOUR_MS};

use crate::error::ServingError;
use crate::state::AppState;
use crate::telemetry::{Sample, Value};

/// The samples of the current and previous hour's report at `now_ms`.
pub async fn quality_samples(state: &AppState, now_ms: i64) -> Result<Vec<Sample>, ServingError> {
    let current = HourKey(now_ms.div_euclid(HOUR_MS));
    let rules = &state.opts.quality_rules.0;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let hours = crate::quality::quality_report(
        state,
        HourKey(current.0 - 1),
        HourKey(current.0 + 1),
        rules,
        now_ms,
    )
    .await?;
    Ok(samples(&hours, current))
}

/// The samples of `hours` (a report), `current` being the hour in progress.
pub fn samples(hours: &[ProducerHour], current: HourKey) -> Vec<Sample> {
    let mut out = Vec::new();
    for h in hours {
        let which = if h.hour == current {
            "current"
        } else {
            "previous"
        };
        let labels = |check: Option<Check>| {
            let mut l = vec![("producer", h.producer.clone())];
            if let Some(c) = check {
                l.push(("check", c.name().to_string()));
            }
            l.push(("hour", which.to_string()));
            l
        };
        out.push(Sample {
            name: "lambda_quality_records_received",
            help: "Records received from a producer in the hour: valid events, duplicates and rejects.",
            labels: labels(None),
            value: Value::Int(i64::try_from(h.received).unwrap_or(i64::MAX)),
        });
        for o in &h.outcomes {
            out.push(Sample {
                name: "lambda_quality_verdict",
                help:
                    "A data-quality rule's verdict for a producer's hour: 0 pass, 1 warn, 2 fail.",
                labels: labels(Some(o.check)),
                value: Value::Int(match o.verdict {
                    Verdict::Pass => 0,
                    Verdict::Warn => 1,
                    Verdict::Fail => 2,
                }),
            });
            let measured = match o.check {
                Check::DelayP99 | Check::Freshness => o.measured / 1000.0,
                _ => o.measured,
            };
            out.push(Sample {
                name: "lambda_quality_measured",
                help: "The figure a data-quality rule judged: a share, or seconds for delay_p99 and freshness.",
                labels: labels(Some(o.check)),
                value: Value::Float(measured),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::quality::QualityState;
    use shared_logic::quality_report::{add, report, WindowStates};
    use shared_logic::quality_rules::RuleSet;

    #[test]
    fn each_judged_rule_is_a_verdict_and_a_measure_per_producer_and_hour() {
        let h = 493_000;
        let mut states = WindowStates::new();
        for (hour, newest_min) in [(h, 59), (h + 1, 10)] {
            let state = QualityState {
                events: 100,
                complete: 100,
                newest_event_ms: Some(hour * HOUR_MS + newest_min * 60_000),
                ..QualityState::default()
            };
            add(&mut states, "web", hour * HOUR_MS, &state);
        }
        // 30 minutes into hour h + 1, the newest event 20 minutes old.
        let now = (h + 1) * HOUR_MS + 30 * 60_000;
        let read = [(HourKey(h - 6), HourKey(h + 2))];
        let hours = report(
            &states,
            &read,
            HourKey(h),
            HourKey(h + 2),
            &RuleSet::default().0,
            now,
        );
        let samples = samples(&hours, HourKey(h + 1));
        let find = |name: &str, check: &str, hour: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels.contains(&("check", check.to_string()))
                        && s.labels.contains(&("hour", hour.to_string()))
                })
                .map(|s| s.value)
        };
        assert_eq!(
            find("lambda_quality_verdict", "freshness", "current"),
            Some(Value::Int(2))
        );
        assert_eq!(
            find("lambda_quality_measured", "freshness", "current"),
            Some(Value::Float(1_200.0))
        );
        assert_eq!(
            find("lambda_quality_verdict", "completeness", "previous"),
            Some(Value::Int(0))
        );
        // No baseline for the previous hour's volume, no record time for any delay.
        assert_eq!(find("lambda_quality_verdict", "volume", "previous"), None);
        assert_eq!(find("lambda_quality_verdict", "delay_p99", "current"), None);
        let received: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "lambda_quality_records_received")
            .map(|s| s.value)
            .collect();
        assert_eq!(received, vec![Value::Int(100), Value::Int(100)]);
    }
}
