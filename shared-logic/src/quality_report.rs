//! The quality report: the `quality` figures of each producer and hour judged by the rules
//! ([`crate::quality_rules`]) into pass / warn / fail. Pure: serving hands it the merged
//! window states (batch where it covers the hour, speed otherwise), which hours it read,
//! and the wall clock; `GET /v1/quality` and `lambda quality` print what it returns.
//!
//! Per producer and hour (event types merged):
//! - `validity`: valid events ÷ records received (valid events + rejected records);
//! - `duplicates`: duplicate deliveries ÷ records received;
//! - `completeness`: events with a country and a device ÷ events;
//! - `delay_p99`: the p99 of record time − event time;
//! - `volume`: the relative distance of the hour's records received (valid events,
//!   duplicates and rejects) from the baseline ([`volume_baseline`]), both as records per
//!   hour over the part of the hour the producer can be judged on: from its first record in
//!   the first hour it appears in, up to now in the current hour; not judged without a
//!   baseline hour, nor on less than [`MIN_VOLUME_COVERAGE_MS`] of an hour;
//! - `freshness`: the longest stretch of the hour without a new event of the producer:
//!   measured just before each window that has its events and at the end of the hour (or
//!   now, for the current hour), from its newest event or the start of the hour, whichever
//!   is later; in whole windows. A producer that goes silent for 20 minutes fails it in that
//!   hour, even if it is back before the hour ends; a silent hour is 60 minutes.
//!
//! Next to them, what only the speed layer saw ([`add_speed_notes`]): the hour's arrivals
//! (out of order, late; [`crate::arrival`]), marked as the speed layer's, and its first
//! dead letters per reason ([`crate::dead_letter_sample`]). They are figures, not rules.
//!
//! A producer is reported for every hour of the range from the first hour it has records in
//! (within the range or the baseline hours read before it); a read hour without its records
//! is an hour of volume 0; hours not read (between the weeks of the weekly baseline) are
//! not volumes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::arrival::{ArrivalCounts, Arrivals};
use crate::dead_letter_sample::DeadLetterSample;
use crate::mergeable::Mergeable;
use crate::quality::{QualityFigures, QualityState};
use crate::quality_rules::{volume_baseline, volume_distance, Check, Outcome, Rule, Verdict};
use crate::window::{HourKey, HOUR_MS};

/// Least part of an hour its volume is judged on (a few minutes of records say too little
/// about an hour's).
pub const MIN_VOLUME_COVERAGE_MS: i64 = 15 * 60_000;

/// Least part of a window in progress its volume is judged on.
pub const MIN_WINDOW_VOLUME_MS: i64 = 30_000;

/// The merged `quality` state of each producer and window (window start, epoch ms; windows
/// of at most an hour, never straddling one).
pub type WindowStates = BTreeMap<(String, i64), QualityState>;

/// One producer's hour: its figures, each rule's outcome and the worst verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerHour {
    pub producer: String,
    #[serde(serialize_with = "hour_json")]
    pub hour: HourKey,
    /// Records received: valid events, duplicate deliveries and rejected records.
    pub received: u64,
    #[serde(serialize_with = "figures_json")]
    pub figures: QualityFigures,
    /// Rejected records by reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The longest time within the hour without a newer event (see the module docs).
    pub freshness_ms: Option<i64>,
    pub outcomes: Vec<Outcome>,
    /// The worst outcome (pass when no rule was judged).
    pub verdict: Verdict,
    /// What the speed layer saw arrive of the producer's events of the hour; none when it
    /// does not hold the hour (any more).
    #[serde(serialize_with = "arrival_json")]
    pub arrival: Option<ArrivalCounts>,
    /// The first rejected records of the hour per reason, as the speed layer kept them.
    pub dead_letter_samples: Vec<DeadLetterSample>,
}

fn arrival_json<S: serde::Serializer>(a: &Option<ArrivalCounts>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(a) = a else {
        return s.serialize_none();
    };
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("layer", "speed")?;
    m.serialize_entry("events", &a.events)?;
    m.serialize_entry("out_of_order", &a.out_of_order)?;
    m.serialize_entry("out_of_order_share", &a.out_of_order_share())?;
    m.serialize_entry("late", &a.late)?;
    m.serialize_entry("late_share", &a.late_share())?;
    m.end()
}

/// Adds what the speed layer saw to the report's hours: each producer hour's arrivals and
/// its dead-letter samples (by reason and position).
pub fn add_speed_notes(
    hours: &mut [ProducerHour],
    arrivals: &Arrivals,
    samples: &[DeadLetterSample],
) {
    for h in hours.iter_mut() {
        h.arrival = arrivals.get(h.hour, &h.producer).copied();
        h.dead_letter_samples = samples
            .iter()
            .filter(|s| s.producer == h.producer && s.hour_ms == h.hour.start_ms())
            .cloned()
            .collect();
    }
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
    m.serialize_entry("rejected", &f.rejected)?;
    m.serialize_entry("validity", &f.validity)?;
    m.end()
}

/// The hours `[from, to)` read into [`WindowStates`] (every window of a producer in them
/// is in the states or had none of its records).
pub type HourRange = (HourKey, HourKey);

/// The report of the hours `[from, to)` from `states` (which may hold earlier hours: the
/// volume baselines and the newest events before the range), read over `read` ranges,
/// judged by `rules` at wall clock `now_ms`; ordered by hour, then producer.
pub fn report(
    states: &WindowStates,
    read: &[HourRange],
    from: HourKey,
    to: HourKey,
    rules: &[Rule],
    now_ms: i64,
) -> Vec<ProducerHour> {
    report_by_window(states, read, (from, to), rules, now_ms, None).0
}

/// One producer's window (a minute by default), judged by the rules as its hour is: the
/// window's own figures, its records received as a rate per hour against its hour's
/// volume baseline, and as freshness the stretch without a new event that it ends (a
/// window with events) or that runs through it (a window without).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProducerWindow {
    pub producer: String,
    #[serde(serialize_with = "ms_json")]
    pub window: i64,
    pub received: u64,
    pub freshness_ms: Option<i64>,
    pub outcomes: Vec<Outcome>,
    pub verdict: Verdict,
}

fn ms_json<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::instant::format_instant(*ms))
}

/// [`report`], and with `window_ms` (the states' window size) each producer's windows of
/// the hours `[from, to)` up to now judged too ([`ProducerWindow`]), ordered by window,
/// then producer.
pub fn report_by_window(
    states: &WindowStates,
    read: &[HourRange],
    (from, to): HourRange,
    rules: &[Rule],
    now_ms: i64,
    window_ms: Option<i64>,
) -> (Vec<ProducerHour>, Vec<ProducerWindow>) {
    let mut judged_windows = Vec::new();
    let mut by_producer: BTreeMap<&str, BTreeMap<i64, &QualityState>> = BTreeMap::new();
    for ((producer, start), state) in states {
        by_producer
            .entry(producer.as_str())
            .or_default()
            .insert(*start, state);
    }
    let was_read = |h: HourKey| read.iter().any(|(f, t)| (*f..*t).contains(&h));
    let mut out = Vec::new();
    for (producer, windows) in by_producer {
        let Some(first_ms) = windows.keys().next().copied() else {
            continue;
        };
        let first = first_ms.div_euclid(HOUR_MS);
        let mut volumes: BTreeMap<HourKey, (f64, bool)> = BTreeMap::new();
        let mut newest: Option<i64> = None;
        for h in first..to.0 {
            let hour = HourKey(h);
            let (start, end) = (hour.start_ms(), hour.start_ms() + HOUR_MS);
            let mut state = QualityState::default();
            let mut longest: Option<i64> = None;
            let mut age_at = |t: i64, newest: Option<i64>| {
                if let Some(n) = newest {
                    longest = Some(longest.map_or(t - n, |l| l.max(t - n)).max(0));
                }
            };
            // Only the stretch within the hour: a silence before it counts in its own hours.
            let since = |n: Option<i64>| n.map(|n| n.max(start));
            let newest_before = newest;
            for (w, s) in windows.range(start..end) {
                age_at(*w, since(newest));
                state.merge(s);
                if let Some(t) = s.newest_event_ms {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
            age_at(end.min(now_ms), since(newest));
            if !was_read(hour) {
                continue;
            }
            let received = state
                .events
                .saturating_add(state.duplicates)
                .saturating_add(state.rejected);
            // Records per hour over the part of the hour the producer can be judged on: from
            // its first record in its first hour, up to now in the current one.
            let covered = end.min(now_ms) - if h == first { first_ms } else { start };
            let volume = (covered >= MIN_VOLUME_COVERAGE_MS)
                .then(|| received as f64 * HOUR_MS as f64 / covered as f64);
            let outcomes = judge(rules, &state, received, (hour, volume), &volumes, longest);
            if let Some(size) = window_ms.filter(|_| hour >= from) {
                let judging = Judging {
                    producer,
                    first_ms,
                    windows: &windows,
                    rules,
                    volumes: &volumes,
                    now_ms,
                };
                judging.windows_of(hour, size, newest_before, &mut judged_windows);
            }
            let volume_failed = outcomes
                .iter()
                .any(|o| o.check == Check::Volume && o.verdict == Verdict::Fail);
            if let Some(v) = volume {
                volumes.insert(hour, (v, volume_failed));
            }
            if hour >= from {
                out.push(ProducerHour {
                    producer: producer.to_string(),
                    hour,
                    received,
                    figures: state.figures(),
                    rejected_by_reason: state.rejected_by_reason.clone(),
                    freshness_ms: longest,
                    verdict: worst(&outcomes),
                    outcomes,
                    arrival: None,
                    dead_letter_samples: Vec::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.hour, &a.producer).cmp(&(b.hour, &b.producer)));
    judged_windows.sort_by(|a, b| (a.window, &a.producer).cmp(&(b.window, &b.producer)));
    (out, judged_windows)
}

/// What judging one producer's windows needs: its window states, the rules, the volumes of
/// its earlier hours (the baselines), the wall clock.
struct Judging<'a> {
    producer: &'a str,
    /// The producer's first window with records: none is judged before it, nor its volume.
    first_ms: i64,
    windows: &'a BTreeMap<i64, &'a QualityState>,
    rules: &'a [Rule],
    volumes: &'a BTreeMap<HourKey, (f64, bool)>,
    now_ms: i64,
}

impl Judging<'_> {
    /// Judges the windows of `hour` up to now (`newest`: the producer's newest event
    /// before the hour) into `out`.
    fn windows_of(
        &self,
        hour: HourKey,
        size: i64,
        mut newest: Option<i64>,
        out: &mut Vec<ProducerWindow>,
    ) {
        let empty = QualityState::default();
        let mut w = hour.start_ms().max(self.first_ms);
        while w < (hour.start_ms() + HOUR_MS).min(self.now_ms) {
            let state = self.windows.get(&w).copied().unwrap_or(&empty);
            let end = (w + size).min(self.now_ms);
            let received = state
                .events
                .saturating_add(state.duplicates)
                .saturating_add(state.rejected);
            let fresh_at = if state.newest_event_ms.is_some() {
                w
            } else {
                end
            };
            let freshness = newest.map(|n| (fresh_at - n).max(0));
            // Too short a part of the window in progress says nothing about its rate.
            let volume = (w != self.first_ms && end - w >= size.min(MIN_WINDOW_VOLUME_MS))
                .then(|| received as f64 * HOUR_MS as f64 / (end - w) as f64);
            let outcomes = judge(
                self.rules,
                state,
                received,
                (hour, volume),
                self.volumes,
                freshness,
            );
            if let Some(t) = state.newest_event_ms {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
            out.push(ProducerWindow {
                producer: self.producer.to_string(),
                window: w,
                received,
                freshness_ms: freshness,
                verdict: worst(&outcomes),
                outcomes,
            });
            w += size;
        }
    }
}

/// The worst verdict of `outcomes` (pass when none).
fn worst(outcomes: &[Outcome]) -> Verdict {
    outcomes
        .iter()
        .map(|o| o.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
}

/// Each rule's outcome for one producer's hour; rules without a figure are left out.
fn judge(
    rules: &[Rule],
    state: &QualityState,
    received: u64,
    (hour, volume): (HourKey, Option<f64>),
    volumes: &BTreeMap<HourKey, (f64, bool)>,
    freshness_ms: Option<i64>,
) -> Vec<Outcome> {
    let f = state.figures();
    let of_received = |n: u64| (received > 0).then(|| n as f64 / received as f64);
    rules
        .iter()
        .filter_map(|rule| {
            let measured = match rule.check {
                Check::Validity => f.validity,
                Check::Duplicates => of_received(state.duplicates),
                Check::Completeness => f.completeness,
                Check::DelayP99 => f.delay_p99_ms.map(|d| d as f64),
                Check::Volume => volume.and_then(|v| {
                    volume_baseline(hour, volumes, rule.baseline)
                        .map(|mean| volume_distance(v, mean))
                }),
                Check::Freshness => freshness_ms.map(|ms| ms as f64),
            }?;
            Some(rule.judge(measured))
        })
        .collect()
}

/// Merges the state of one producer's window (of several event types, or layers) in.
pub fn add(states: &mut WindowStates, producer: &str, window_ms: i64, state: &QualityState) {
    states
        .entry((producer.to_string(), window_ms))
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
        let mut states = WindowStates::new();
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
                (H0 + h) * HOUR_MS,
                &state(n, 0, end(h), delay),
            );
            // app: 30 % rejected in hour 2; silent from 40 minutes into hour 4 until hour 6;
            // 10 % duplicates in 7.
            let app = match h {
                2 => {
                    let mut s = state(700, 0, end(h), 1_000);
                    for _ in 0..300 {
                        s.note_reject(crate::validate::Reason::MissingField);
                    }
                    s
                }
                4 => state(660, 0, (H0 + 4) * HOUR_MS + 40 * 60_000, 1_000),
                5 => continue,
                7 => state(1_000, 111, end(h), 1_000),
                _ => state(1_000, 0, end(h), 1_000),
            };
            add(&mut states, "app", (H0 + h) * HOUR_MS, &app);
        }
        let now = (H0 + 9) * HOUR_MS;
        let read = [(HourKey(H0), HourKey(H0 + 8))];
        let r = report(&states, &read, HourKey(H0), HourKey(H0 + 8), &rules, now);
        assert_eq!(r.len(), 16);
        let rejected = r
            .iter()
            .find(|p| p.producer == "app" && p.hour == HourKey(H0 + 2));
        assert_eq!(rejected.unwrap().rejected_by_reason["missing_field"], 300);
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
                // 1,000 records received (no volume change), 700 valid.
                (2, vec![(Validity, Fail)]),
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
    fn volumes_are_per_hour_over_the_part_judged_and_the_report_starts_at_from() {
        let rules = rules(&[]).unwrap();
        let volume = |r: &[ProducerHour], h: i64| {
            let p = r.iter().find(|p| p.hour == HourKey(H0 + h)).unwrap();
            p.outcomes
                .iter()
                .find(|o| o.check == Check::Volume)
                .map(|o| o.measured)
        };
        let mut states = WindowStates::new();
        // First seen 40 minutes into hour 0: 10 records in 20 minutes, 30 an hour.
        let w0 = H0 * HOUR_MS + 40 * 60_000;
        add(&mut states, "web", w0, &state(10, 0, w0 + 10, 0));
        // Hour 1: 30 records.
        let h1 = (H0 + 1) * HOUR_MS;
        add(&mut states, "web", h1, &state(30, 0, h1 + HOUR_MS - 1, 0));
        // Hour 2, 30 minutes in: 15 records, 30 an hour.
        let h2 = (H0 + 2) * HOUR_MS;
        let now = h2 + 30 * 60_000;
        add(&mut states, "web", h2, &state(15, 0, now - 1_000, 0));
        let read = [(HourKey(H0), HourKey(H0 + 3))];
        let r = report(
            &states,
            &read,
            HourKey(H0 + 1),
            HourKey(H0 + 3),
            &rules,
            now,
        );
        assert_eq!(r.len(), 2, "from hour 1 on");
        assert_eq!(volume(&r, 1), Some(0.0));
        assert_eq!(volume(&r, 2), Some(0.0));
        assert!(r.iter().all(|p| p.verdict == Verdict::Pass), "{r:?}");
        // Freshness of the current hour is measured at now.
        let fresh = r[1].outcomes.iter().find(|o| o.check == Check::Freshness);
        assert_eq!(fresh.map(|o| o.measured), Some(1_000.0));
        // Five minutes into hour 2: too little of it to judge its volume.
        let early = report(
            &states,
            &read,
            HourKey(H0 + 2),
            HourKey(H0 + 3),
            &rules,
            h2 + 5 * 60_000,
        );
        assert_eq!(volume(&early, 2), None);
        // The first hour has no baseline.
        let first = report(&states, &read, HourKey(H0), HourKey(H0 + 1), &rules, now);
        assert_eq!(volume(&first, 0), None);
    }

    #[test]
    fn speed_notes_land_on_their_producer_hour_and_say_they_are_the_speed_layers() {
        let mut states = WindowStates::new();
        let h = (H0 * HOUR_MS, (H0 + 1) * HOUR_MS);
        add(&mut states, "web", h.0, &state(10, 0, h.0 + 1, 5));
        add(&mut states, "ios", h.0, &state(10, 0, h.0 + 1, 5));
        add(&mut states, "web", h.1, &state(10, 0, h.1 + 1, 5));
        let read = [(HourKey(H0), HourKey(H0 + 2))];
        let mut r = report(
            &states,
            &read,
            HourKey(H0),
            HourKey(H0 + 2),
            &rules(&[]).unwrap(),
            h.1 + 3_600_000,
        );
        let mut arrivals = Arrivals::default();
        for late in [true, false, false, false] {
            arrivals.note(HourKey(H0), "web", true, late);
        }
        let dead = crate::validate::DeadLetter {
            raw: b"{".to_vec(),
            reason: crate::validate::Reason::MalformedJson,
            message: "not JSON".into(),
            origin: crate::event::Origin {
                partition: 0,
                offset: 7,
            },
            source: "ios".into(),
            record_ms: Some(h.0 + 10),
        };
        let samples = vec![DeadLetterSample::of(&dead).unwrap()];
        add_speed_notes(&mut r, &arrivals, &samples);
        let find = |p: &str, hour: i64| {
            r.iter()
                .find(|x| x.producer == p && x.hour.0 == hour)
                .unwrap()
        };
        let web = serde_json::to_value(find("web", H0)).unwrap();
        assert_eq!(web["arrival"]["layer"], "speed");
        assert_eq!(web["arrival"]["events"], 4);
        assert_eq!(web["arrival"]["out_of_order_share"], 1.0);
        assert_eq!(web["arrival"]["late_share"], 0.25);
        assert_eq!(web["dead_letter_samples"], serde_json::json!([]));
        let ios = serde_json::to_value(find("ios", H0)).unwrap();
        assert_eq!(ios["arrival"], serde_json::Value::Null, "no arrivals held");
        assert_eq!(ios["dead_letter_samples"][0]["offset"], 7);
        assert_eq!(ios["dead_letter_samples"][0]["reason"], "malformed_json");
        assert!(find("web", H0 + 1).arrival.is_none());
    }

    #[test]
    fn windows_are_judged_one_by_one_against_their_hours_baseline() {
        let rules = rules(&[]).unwrap();
        const MIN: i64 = 60_000;
        let mut states = WindowStates::new();
        let (h0, h1) = (H0 * HOUR_MS, (H0 + 1) * HOUR_MS);
        // 60 records a minute, but none from 01:20 to 01:40, and 10 rejects at 01:50.
        for m in (0..120).filter(|m| !(80..100).contains(m)) {
            let w = h0 + m * MIN;
            let mut s = state(60, 0, w + 59_000, 0);
            if m == 110 {
                s.events = 50;
                s.rejected = 10;
            }
            add(&mut states, "web", w, &s);
        }
        let read = [(HourKey(H0), HourKey(H0 + 2))];
        let now = h1 + 45 * MIN + 10_000;
        let (hours, windows) = report_by_window(
            &states,
            &read,
            (HourKey(H0 + 1), HourKey(H0 + 2)),
            &rules,
            now,
            Some(MIN),
        );
        assert_eq!(hours.len(), 1);
        assert_eq!(
            windows.len(),
            46,
            "hour 1 up to now, the window in progress included"
        );
        let failing = |check: Check| -> Vec<i64> {
            windows
                .iter()
                .filter(|w| {
                    w.outcomes
                        .iter()
                        .any(|o| o.check == check && o.verdict == Verdict::Fail)
                })
                .map(|w| (w.window - h1) / MIN)
                .collect()
        };
        // The silence: each empty window's rate is 0 against 3,600 an hour.
        assert_eq!(failing(Check::Volume), (20..40).collect::<Vec<_>>());
        // More than 15 minutes since 01:19:59 from the window ending 01:35 on, and the window
        // that ends the silence.
        assert_eq!(failing(Check::Freshness), (34..41).collect::<Vec<_>>());
        assert!(failing(Check::Validity).is_empty(), "01:50 is after now");
        let w24 = &windows[24];
        let fresh = w24
            .outcomes
            .iter()
            .find(|o| o.check == Check::Freshness)
            .unwrap();
        assert_eq!((fresh.measured, fresh.verdict), (301_000.0, Verdict::Warn));
        // The window in progress, 10 s in: too short for a rate.
        assert!(windows[45]
            .outcomes
            .iter()
            .all(|o| o.check != Check::Volume));
        let later = report_by_window(
            &states,
            &read,
            (HourKey(H0 + 1), HourKey(H0 + 2)),
            &rules,
            h1 + HOUR_MS,
            Some(MIN),
        )
        .1;
        let validity: Vec<i64> = later
            .iter()
            .filter(|w| {
                w.outcomes
                    .iter()
                    .any(|o| o.check == Check::Validity && o.verdict == Verdict::Fail)
            })
            .map(|w| (w.window - h1) / MIN)
            .collect();
        assert_eq!(validity, [50]);
        assert_eq!(later.len(), 60);
        let json = serde_json::to_value(&later[0]).unwrap();
        assert_eq!(json["window"], crate::instant::format_instant(h1));
        assert_eq!(json["received"], 60);
    }
}
