//! The data-quality rules: what a user configures (`--quality-rule validity=warn:0.99,fail:0.95`,
//! or `quality-rule = [...]` in `lambda.toml`), their defaults, and the verdict of one
//! measured figure against its rule (pass / warn / fail, with the value and the threshold
//! crossed). Pure: the layers measure the figures, and evaluate them here, so an hour's
//! verdict is the same wherever it is computed.
//!
//! | rule | figure | fails when | default warn / fail |
//! |---|---|---|---|
//! | `validity` | valid events ÷ records received | below | 0.99 / 0.95 |
//! | `duplicates` | duplicate deliveries ÷ records received | above | 1 % / 5 % |
//! | `completeness` | share of valid events with a country and a device | below | 0.98 / 0.90 |
//! | `delay_p99` | p99 of event-to-arrival delay | above | 60s / 300s |
//! | `volume` | relative distance of records received from the baseline mean | above | 25 % / 50 % |
//! | `freshness` | the longest stretch of an hour without a new event of a producer | above | 5m / 15m |
//!
//! The volume baseline is the mean of the same hour of the week over the last `weeks`
//! weeks (default 4) where those hours exist, otherwise of the last `hours` hours
//! (default 6); baseline hours whose own volume failed are left out, so one faulty hour
//! does not move the band of the hours after it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::durations::{duration_text, parse_duration};
use crate::window::HourKey;

/// What a rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Validity,
    Duplicates,
    Completeness,
    DelayP99,
    Volume,
    Freshness,
}

/// How a rule's thresholds read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A share in `[0, 1]` (`0.99` or `99%`).
    Ratio,
    /// Milliseconds (`60s`, `5m`).
    Duration,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::Validity,
        Check::Duplicates,
        Check::Completeness,
        Check::DelayP99,
        Check::Volume,
        Check::Freshness,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Validity => "validity",
            Check::Duplicates => "duplicates",
            Check::Completeness => "completeness",
            Check::DelayP99 => "delay_p99",
            Check::Volume => "volume",
            Check::Freshness => "freshness",
        }
    }

    /// True when a lower figure is worse (the figure must stay at least the threshold).
    pub fn lower_is_worse(self) -> bool {
        matches!(self, Check::Validity | Check::Completeness)
    }

    fn unit(self) -> Unit {
        match self {
            Check::DelayP99 | Check::Freshness => Unit::Duration,
            _ => Unit::Ratio,
        }
    }

    /// The default rule.
    pub fn default_rule(self) -> Rule {
        let (warn, fail) = match self {
            Check::Validity => (0.99, 0.95),
            Check::Duplicates => (0.01, 0.05),
            Check::Completeness => (0.98, 0.90),
            Check::DelayP99 => (60_000.0, 300_000.0),
            Check::Volume => (0.25, 0.50),
            Check::Freshness => (300_000.0, 900_000.0),
        };
        Rule {
            check: self,
            warn,
            fail,
            baseline: Baseline::default(),
        }
    }
}

/// The hours a volume rule compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Baseline {
    /// The same hour of the week over this many weeks.
    pub weeks: u32,
    /// Otherwise, this many hours before.
    pub hours: u32,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline { weeks: 4, hours: 6 }
    }
}

/// One rule: its check and thresholds (ratios, or milliseconds for durations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    pub check: Check,
    pub warn: f64,
    pub fail: f64,
    /// Used by `volume` only.
    pub baseline: Baseline,
}

/// A rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// A measured figure judged by its rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    pub check: Check,
    pub verdict: Verdict,
    pub measured: f64,
    /// The threshold crossed (`fail` when failing, else `warn`).
    pub threshold: f64,
}

impl Rule {
    /// The verdict of `measured` (for `volume`: the relative distance from the baseline,
    /// [`volume_distance`]). A figure that is not a number fails.
    pub fn judge(&self, measured: f64) -> Outcome {
        let worse = |value: f64, threshold: f64| {
            if self.check.lower_is_worse() {
                value < threshold
            } else {
                value > threshold
            }
        };
        let verdict = if measured.is_nan() || worse(measured, self.fail) {
            Verdict::Fail
        } else if worse(measured, self.warn) {
            Verdict::Warn
        } else {
            Verdict::Pass
        };
        Outcome {
            check: self.check,
            verdict,
            measured,
            threshold: if verdict == Verdict::Fail {
                self.fail
            } else {
                self.warn
            },
        }
    }

    /// The rule as it is written (`validity=warn:0.99,fail:0.95`).
    pub fn text(&self) -> String {
        let value = |v: f64| match self.check.unit() {
            Unit::Ratio => format!("{v}"),
            Unit::Duration => duration_text(v as i64),
        };
        let mut text = format!(
            "{}=warn:{},fail:{}",
            self.check.name(),
            value(self.warn),
            value(self.fail)
        );
        if self.check == Check::Volume {
            text.push_str(&format!(
                ",weeks:{},hours:{}",
                self.baseline.weeks, self.baseline.hours
            ));
        }
        text
    }

    /// Parses one rule: `<check>=warn:<value>,fail:<value>` (either threshold may be left
    /// out: it keeps its default), and for `volume` also `weeks:<n>` and `hours:<n>`.
    pub fn parse(spec: &str) -> Result<Rule, String> {
        let bad = |why: String| format!("quality rule `{spec}`: {why}");
        let (name, settings) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected <check>=warn:<value>,fail:<value>".into()))?;
        let check = Check::ALL
            .into_iter()
            .find(|c| c.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Check::ALL.iter().map(|c| c.name()).collect();
                bad(format!(
                    "unknown check `{}` (one of {})",
                    name.trim(),
                    names.join(", ")
                ))
            })?;
        let mut rule = check.default_rule();
        for setting in settings.split(',').map(str::trim) {
            let (key, value) = setting
                .split_once(':')
                .ok_or_else(|| bad(format!("`{setting}` is not <key>:<value>")))?;
            let count = || {
                value
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| bad(format!("`{value}` is not a whole number")))
            };
            match (key.trim(), check) {
                ("warn", _) => rule.warn = threshold(check, value).map_err(bad)?,
                ("fail", _) => rule.fail = threshold(check, value).map_err(bad)?,
                ("weeks", Check::Volume) => rule.baseline.weeks = count()?,
                ("hours", Check::Volume) => rule.baseline.hours = count()?.max(1),
                (key, _) => return Err(bad(format!("`{key}` is not a setting of {name}"))),
            }
        }
        let ordered = if check.lower_is_worse() {
            rule.warn >= rule.fail
        } else {
            rule.warn <= rule.fail
        };
        if !ordered {
            return Err(bad(format!(
                "warn must come before fail ({})",
                if check.lower_is_worse() {
                    "warn ≥ fail"
                } else {
                    "warn ≤ fail"
                }
            )));
        }
        Ok(rule)
    }
}

/// A threshold of `check`: a share (`0.99`, `99%`; in `[0, 1]`, volume's distance may pass
/// 1) or a duration (`60s`, `5m`, `1h`).
fn threshold(check: Check, value: &str) -> Result<f64, String> {
    let value = value.trim();
    match check.unit() {
        Unit::Duration => parse_duration(value)
            .map(|ms| ms as f64)
            .ok_or_else(|| format!("`{value}` is not a duration such as 90s, 5m or 1h")),
        Unit::Ratio => {
            let (number, scale) = match value.strip_suffix('%') {
                Some(n) => (n, 100.0),
                None => (value, 1.0),
            };
            let share = number
                .trim()
                .parse::<f64>()
                .ok()
                .map(|n| n / scale)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| format!("`{value}` is not a share such as 0.99 or 1%"))?;
            if share > 1.0 && check != Check::Volume {
                return Err(format!("`{value}` is more than 100 %"));
            }
            Ok(share)
        }
    }
}

/// The rules a deployment judges its quality figures by (the defaults unless configured).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet(pub Vec<Rule>);

impl Default for RuleSet {
    /// Every check's default rule.
    fn default() -> Self {
        RuleSet(Check::ALL.map(Check::default_rule).to_vec())
    }
}

/// The rules in force: the defaults, each replaced by a configured rule of its check;
/// `none` alone turns every rule off.
pub fn rules(specs: &[String]) -> Result<Vec<Rule>, String> {
    if specs.len() == 1 && specs[0].trim() == "none" {
        return Ok(Vec::new());
    }
    let mut rules: BTreeMap<Check, Rule> = Check::ALL
        .map(|c| (c, c.default_rule()))
        .into_iter()
        .collect();
    for spec in specs {
        let rule = Rule::parse(spec)?;
        rules.insert(rule.check, rule);
    }
    Ok(rules.into_values().collect())
}

/// The mean volume `hour` is compared with, from the volumes (records received) of earlier
/// hours and whether each passed its own volume rule: the same hour of the week over the
/// last `weeks` weeks where any of them is known, else the last `hours` hours; hours that
/// failed are left out. `None` without a comparable hour.
pub fn volume_baseline(
    hour: HourKey,
    history: &BTreeMap<HourKey, (f64, bool)>,
    baseline: Baseline,
) -> Option<f64> {
    // The mean over `count` hours, `step` hours apart, before `hour`.
    let mean = |step: i64, count: u32| {
        let kept: Vec<f64> = (1..=i64::from(count))
            .filter_map(|i| history.get(&HourKey(hour.0 - i * step)))
            .filter(|(_, failed)| !failed)
            .map(|(volume, _)| *volume)
            .collect();
        (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
    };
    mean(24 * 7, baseline.weeks).or_else(|| mean(1, baseline.hours))
}

/// The relative distance of `volume` from `mean` (0 when both are 0; infinite when only
/// the mean is).
pub fn volume_distance(volume: f64, mean: f64) -> f64 {
    if mean == 0.0 {
        return if volume == 0.0 { 0.0 } else { f64::INFINITY };
    }
    (volume - mean).abs() / mean
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A worse figure never gets a better verdict, whatever the thresholds.
        #[test]
        fn verdicts_are_monotonic_in_the_figure(
            check in prop::sample::select(Check::ALL.to_vec()),
            a in 0.0f64..1.0, b in 0.0f64..1.0, x in 0.0f64..2.0, y in 0.0f64..2.0,
        ) {
            let (warn, fail) = if check.lower_is_worse() { (a.max(b), a.min(b)) } else { (a.min(b), a.max(b)) };
            let rule = Rule { warn, fail, ..check.default_rule() };
            let (better, worse) = if check.lower_is_worse() { (x.max(y), x.min(y)) } else { (x.min(y), x.max(y)) };
            prop_assert!(rule.judge(better).verdict <= rule.judge(worse).verdict);
        }
    }

    #[test]
    fn defaults_parse_back_from_their_text() {
        for check in Check::ALL {
            let rule = check.default_rule();
            assert_eq!(Rule::parse(&rule.text()), Ok(rule), "{}", rule.text());
        }
        assert_eq!(rules(&[]).unwrap().len(), 6);
        assert!(rules(&["none".into()]).unwrap().is_empty());
    }

    #[test]
    fn a_configured_rule_replaces_its_default_and_keeps_unsaid_thresholds() {
        let set = rules(&[
            "duplicates=warn:2%".into(),
            "delay_p99 = fail:10m, warn:90s".into(),
            "volume=warn:30%,fail:60%,weeks:2,hours:12".into(),
        ])
        .unwrap();
        let of = |c: Check| *set.iter().find(|r| r.check == c).unwrap();
        assert_eq!(
            (of(Check::Duplicates).warn, of(Check::Duplicates).fail),
            (0.02, 0.05)
        );
        assert_eq!(
            (of(Check::DelayP99).warn, of(Check::DelayP99).fail),
            (90_000.0, 600_000.0)
        );
        assert_eq!(
            of(Check::Volume).baseline,
            Baseline {
                weeks: 2,
                hours: 12
            }
        );
        assert_eq!(of(Check::Validity), Check::Validity.default_rule());
    }

    #[test]
    fn bad_rules_say_why() {
        let cases = [
            ("validity", "expected <check>="),
            ("speed=warn:1", "unknown check `speed`"),
            ("validity=warn", "is not <key>:<value>"),
            ("validity=warn:lots", "is not a share"),
            ("validity=warn:120%", "more than 100 %"),
            ("validity=warn:-0.1", "is not a share"),
            ("freshness=warn:5", "is not a duration"),
            ("validity=warn:0.9,fail:0.95", "warn ≥ fail"),
            ("duplicates=warn:10%", "warn ≤ fail"),
            ("validity=weeks:2", "`weeks` is not a setting of validity"),
            ("volume=weeks:many", "is not a whole number"),
        ];
        for (spec, why) in cases {
            let err = Rule::parse(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(err.contains(spec), "{spec}: {err}");
        }
        assert!(rules(&["validity=warn:2".into()]).is_err());
    }

    #[test]
    fn figures_are_judged_on_the_right_side_of_each_threshold() {
        let validity = Check::Validity.default_rule();
        let verdict = |rule: &Rule, v: f64| rule.judge(v).verdict;
        assert_eq!(verdict(&validity, 0.995), Verdict::Pass);
        assert_eq!(verdict(&validity, 0.99), Verdict::Pass);
        assert_eq!(verdict(&validity, 0.97), Verdict::Warn);
        assert_eq!(verdict(&validity, 0.70), Verdict::Fail);
        assert_eq!(verdict(&validity, f64::NAN), Verdict::Fail);
        let delay = Check::DelayP99.default_rule();
        assert_eq!(verdict(&delay, 60_000.0), Verdict::Pass);
        assert_eq!(verdict(&delay, 60_001.0), Verdict::Warn);
        let failed = delay.judge(600_000.0);
        assert_eq!(
            (failed.verdict, failed.measured, failed.threshold),
            (Verdict::Fail, 600_000.0, 300_000.0)
        );
        assert_eq!(delay.judge(1.0).threshold, 60_000.0);
    }

    #[test]
    fn the_volume_baseline_prefers_the_same_hour_of_past_weeks_and_skips_failed_hours() {
        let week = 24 * 7;
        let hour = HourKey(10 * week + 5);
        let mut history = BTreeMap::new();
        // The last six hours: 100 each, but one hour failed at 400.
        for h in 1..=6 {
            history.insert(HourKey(hour.0 - h), (100.0, false));
        }
        history.insert(HourKey(hour.0 - 2), (400.0, true));
        let baseline = Baseline::default();
        assert_eq!(volume_baseline(hour, &history, baseline), Some(100.0));
        // Same hour one and two weeks before: they win.
        history.insert(HourKey(hour.0 - week), (50.0, false));
        history.insert(HourKey(hour.0 - 2 * week), (70.0, false));
        history.insert(HourKey(hour.0 - 5 * week), (1_000.0, false)); // beyond 4 weeks
        assert_eq!(volume_baseline(hour, &history, baseline), Some(60.0));
        assert_eq!(
            volume_baseline(HourKey(0), &BTreeMap::new(), baseline),
            None
        );
        assert_eq!(volume_distance(150.0, 100.0), 0.5);
        assert_eq!(volume_distance(50.0, 100.0), 0.5);
        assert_eq!(volume_distance(0.0, 0.0), 0.0);
        assert_eq!(volume_distance(3.0, 0.0), f64::INFINITY);
        let volume = Check::Volume.default_rule();
        assert_eq!(
            volume.judge(volume_distance(200.0, 100.0)).verdict,
            Verdict::Fail
        );
        assert_eq!(
            volume.judge(volume_distance(130.0, 100.0)).verdict,
            Verdict::Warn
        );
    }
}
