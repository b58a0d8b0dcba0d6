//! The quality report: the `quality` figures of each producer and hour judged by the rules
//! ([`crate::quality_rules`]) into pass / warn / fail. Pure: serving hands it the merged
//! hourly states (batch where it covers the hour, speed otherwise) and the wall clock, and
//! `GET /v1/quality` and `lambda quality` print what it returns.
//!
//! Per producer and hour (event types merged):
//! - `duplicates`: duplicate deliveries ÷ deliveries (valid events + duplicates);
//! - `completeness`: events with a country and a device ÷ events;
//! - `delay_p99`: the p99 of record time − event time;
//! - `volume`: the relative distance of the hour's deliveries from the baseline
//!   ([`volume_baseline`]); not judged without a baseline hour;
//! - `freshness`: the age of the producer's newest event at the end of the hour (or now,
//!   for the current hour): a producer that went silent fails it even in an hour with no
//!   event at all.
//!
//! A producer is reported for every hour of the range from the first hour it has events in
//! (within the range or the baseline hours before it); an hour without its events is an
//! hour of volume 0. `validity` needs the rejected records of each producer, which the
//! `quality` metric does not hold yet: it is not judged here.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::mergeable::Mergeable;
use crate::quality::{QualityFigures, QualityState};
use crate::quality_rules::{volume_baseline, volume_distance, Check, Outcome, Rule, Verdict};
use crate::window::{HourKey, HOUR_MS};

/// The merged `quality` state of each producer and hour.
pub type HourlyStates = BTreeMap<(String, HourKey), QualityState>;

/// One producer's hour: its figures, each rule's outcome and the worst verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerHour {
    pub producer: String,
    #[serde(serialize_with = "hour_json")]
    pub hour: HourKey,
    /// Valid events plus duplicate deliveries.
    pub deliveries: u64,
    #[serde(serialize_with = "figures_json")]
    pub figures: QualityFigures,
    pub outcomes: Vec<Outcome>,
    /// The worst outcome (pass when no rule was judged).
    pub verdict: Verdict,
}

fn hour_json<S: serde::Serializer>(h: &HourKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::instant::format_instant(h.start_ms()))
}

fn figures_json<S: serde::Serializer>(f: &QualityFigures, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("events", &f.events)?;
    m.serialize_entry("duplicates", &f.duplicates)?;
    m.serialize_entry("duplicate_share", &f.duplicate_share)?;
    m.serialize_entry("unknown_country_share", &f.unknown_country_share)?;
    m.serialize_entry("unknown_device_share", &f.unknown_device_share)?;
    m.serialize_entry("unknown_category_share", &f.unknown_category_share)?;
    m.serialize_entry("completeness", &f.completeness)?;
    m.serialize_entry("timed", &f.timed)?;
    m.serialize_entry("delay_p50_ms", &f.delay_p50_ms)?;
    m.serialize_entry("delay_p95_ms", &f.delay_p95_ms)?;
    m.serialize_entry("delay_p99_ms", &f.delay_p99_ms)?;
    m.serialize_entry("ahead", &f.ahead)?;
    m.serialize_entry(
        "newest_event",
        &f.newest_event_ms.map(crate::instant::format_instant),
    )?;
    m.end()
}

/// The report of the hours `[from, to)` from `states` (which may hold earlier hours: the
/// volume baselines and the newest events before the range), judged by `rules` at wall
/// clock `now_ms`; ordered by hour, then producer.
pub fn report(
    states: &HourlyStates,
    from: HourKey,
    to: HourKey,
    rules: &[Rule],
    now_ms: i64,
) -> Vec<ProducerHour> {
    let mut by_producer: BTreeMap<&str, BTreeMap<HourKey, &QualityState>> = BTreeMap::new();
    for ((producer, hour), state) in states {
        if *hour < to {
            by_producer
                .entry(producer.as_str())
                .or_default()
                .insert(*hour, state);
        }
    }
    let mut out = Vec::new();
    for (producer, hours) in by_producer {
        let Some(first) = hours.keys().next().copied() else {
            continue;
        };
        let empty = QualityState::default();
        let mut volumes: BTreeMap<HourKey, (f64, bool)> = BTreeMap::new();
        let mut newest: Option<i64> = None;
        for h in first.0..to.0 {
            let hour = HourKey(h);
            let state = hours.get(&hour).copied().unwrap_or(&empty);
            if let Some(t) = state.newest_event_ms {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
            let deliveries = state.events.saturating_add(state.duplicates);
            let end_ms = (hour.start_ms() + HOUR_MS).min(now_ms);
            let outcomes = judge(rules, state, deliveries, hour, &volumes, newest, end_ms);
            let volume_failed = outcomes
                .iter()
                .any(|o| o.check == Check::Volume && o.verdict == Verdict::Fail);
            volumes.insert(hour, (deliveries as f64, volume_failed));
            if hour >= from {
                out.push(ProducerHour {
                    producer: producer.to_string(),
                    hour,
                    deliveries,
                    figures: state.figures(),
                    verdict: outcomes
                        .iter()
                        .map(|o| o.verdict)
                        .max()
                        .unwrap_or(Verdict::Pass),
                    outcomes,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.hour, &a.producer).cmp(&(b.hour, &b.producer)));
    out
}

/// Each rule's outcome for one producer's hour; rules without a figure are left out.
fn judge(
    rules: &[Rule],
    state: &QualityState,
    deliveries: u64,
    hour: HourKey,
    volumes: &BTreeMap<HourKey, (f64, bool)>,
    newest: Option<i64>,
    end_ms: i64,
) -> Vec<Outcome> {
    let f = state.figures();
    rules
        .iter()
        .filter_map(|rule| {
            let measured = match rule.check {
                Check::Validity => None,
                Check::Duplicates => f.duplicate_share,
                Check::Completeness => f.completeness,
                Check::DelayP99 => f.delay_p99_ms.map(|d| d as f64),
                Check::Volume => volume_baseline(hour, volumes, rule.baseline)
                    .map(|mean| volume_distance(deliveries as f64, mean)),
                Check::Freshness => newest.map(|t| (end_ms - t).max(0) as f64),
            }?;
            Some(rule.judge(measured))
        })
        .collect()
}

/// Merges the states of several event types (or layers) of one producer and hour.
pub fn add(states: &mut HourlyStates, producer: &str, hour: HourKey, state: &QualityState) {
    states
        .entry((producer.to_string(), hour))
        .or_default()
        .merge(state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality_rules::rules;

    const H0: i64 = 493_000; // an hour key

    /// A state of `events` events, `duplicates` duplicates, all complete, newest at `newest`.
    fn state(events: u64, duplicates: u64, newest: i64, delay_ms: u64) -> QualityState {
        let mut s = QualityState {
            events,
            duplicates,
            complete: events,
            newest_event_ms: Some(newest),
            ..QualityState::default()
        };
        for _ in 0..events {
            s.delay.add(delay_ms);
        }
        s
    }

    fn verdicts(r: &[ProducerHour], producer: &str) -> Vec<(i64, Vec<(Check, Verdict)>)> {
        r.iter()
            .filter(|p| p.producer == producer)
            .map(|p| {
                let failing = p
                    .outcomes
                    .iter()
                    .filter(|o| o.verdict != Verdict::Pass)
                    .map(|o| (o.check, o.verdict))
                    .collect();
                (p.hour.0 - H0, failing)
            })
            .collect()
    }

    #[test]
    fn each_fault_fails_its_rule_in_its_hour_and_nothing_else() {
        let rules = rules(&[]).unwrap();
        let mut states = HourlyStates::new();
        let end = |h: i64| (H0 + h + 1) * HOUR_MS - 1;
        for h in 0..8 {
            // web: steady, except a doubled hour 3 and a lagging clock in hour 5.
            let (n, delay) = match h {
                3 => (2_000, 1_000),
                5 => (1_000, 600_000),
                _ => (1_000, 1_000),
            };
            add(
                &mut states,
                "web",
                HourKey(H0 + h),
                &state(n, 0, end(h), delay),
            );
            // app: silent from 40 minutes into hour 4 until hour 6; 10 % duplicates in 7.
            let app = match h {
                4 => state(660, 0, (H0 + 4) * HOUR_MS + 40 * 60_000, 1_000),
                5 => continue,
                7 => state(1_000, 111, end(h), 1_000),
                _ => state(1_000, 0, end(h), 1_000),
            };
            add(&mut states, "app", HourKey(H0 + h), &app);
        }
        let now = (H0 + 9) * HOUR_MS;
        let r = report(&states, HourKey(H0), HourKey(H0 + 8), &rules, now);
        assert_eq!(r.len(), 16);
        use Check::*;
        use Verdict::*;
        assert_eq!(
            verdicts(&r, "web"),
            vec![
                (0, vec![]),
                (1, vec![]),
                (2, vec![]),
                (3, vec![(Volume, Fail)]),
                (4, vec![]),
                (5, vec![(DelayP99, Fail)]),
                (6, vec![]),
                (7, vec![]),
            ]
        );
        assert_eq!(
            verdicts(&r, "app"),
            vec![
                (0, vec![]),
                (1, vec![]),
                (2, vec![]),
                // 660 of ~1,000: 34 % below the mean; silent for the last 20 minutes.
                (3, vec![]),
                (4, vec![(Volume, Warn), (Freshness, Fail)]),
                (5, vec![(Volume, Fail), (Freshness, Fail)]),
                // Back: the failed hour 5 is left out of the baseline.
                (6, vec![]),
                (7, vec![(Duplicates, Fail)]),
            ]
        );
    }

    #[test]
    fn the_first_hours_have_no_volume_baseline_and_the_report_starts_at_from() {
        let rules = rules(&[]).unwrap();
        let mut states = HourlyStates::new();
        add(
            &mut states,
            "web",
            HourKey(H0),
            &state(10, 0, H0 * HOUR_MS + 10, 0),
        );
        add(
            &mut states,
            "web",
            HourKey(H0 + 1),
            &state(10, 0, (H0 + 1) * HOUR_MS + 10, 0),
        );
        let now = (H0 + 1) * HOUR_MS + 60_000;
        let r = report(&states, HourKey(H0 + 1), HourKey(H0 + 2), &rules, now);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].hour, HourKey(H0 + 1));
        assert_eq!(r[0].verdict, Verdict::Pass);
        let volume = r[0].outcomes.iter().find(|o| o.check == Check::Volume);
        assert_eq!(volume.map(|o| o.measured), Some(0.0));
        // Freshness of the current hour is measured at now.
        let fresh = r[0].outcomes.iter().find(|o| o.check == Check::Freshness);
        assert_eq!(fresh.map(|o| o.measured), Some(60_000.0 - 10.0));
        let only = report(&states, HourKey(H0), HourKey(H0 + 1), &rules, now);
        assert!(only[0].outcomes.iter().all(|o| o.check != Check::Volume));
    }
}
