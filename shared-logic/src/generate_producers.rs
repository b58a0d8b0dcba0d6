//! The producing services of a generated stream and their faults, for the data-quality
//! demo and tests. Each user of a [`Generator`] is assigned a producer by weight (its
//! records' `source` field; see [`crate::source`]) and the time it is sent (the stream's nominal
//! time: the Kafka record time a producer in step with its clock would stamp), and a fault
//! plan turns a producer bad for a span of that time:
//!
//! - [`FaultKind::Silent`]: the producer sends nothing;
//! - [`FaultKind::Invalid`]: a share of its records lack `user_id` (rejected, `missing_field`);
//! - [`FaultKind::ClockLag`]: its event times run behind the true time by a fixed amount
//!   (the delay from event time to record time grows by it);
//! - [`FaultKind::Volume`]: each of its records is followed by copies as new events (new
//!   event ids), `factor` records in all.
//!
//! Deterministic: the same generator, producers, faults and seed give the same records.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::generate::{Generator, Record, RecordKind};

/// What goes wrong with a producer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Silent,
    /// This share of its records is invalid.
    Invalid(f64),
    /// Its clock runs this many ms behind.
    ClockLag(i64),
    /// It sends this many records for each one (≥ 1).
    Volume(u32),
}

/// A fault of one producer over the record times `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub producer: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub kind: FaultKind,
}

impl Fault {
    /// Parses `<producer>:<kind>:<from>/<to>`: kind `silent`, `invalid=<share>`,
    /// `clock-lag=<duration>` or `volume=<factor>`; `from` and `to` RFC 3339 or epoch ms,
    /// e.g. `app:clock-lag=10m:2026-01-01T06:10:00Z/2026-01-01T07:00:00Z`.
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let bad = |why: &str| format!("fault `{spec}`: {why}");
        let mut parts = spec.splitn(3, ':');
        let (Some(producer), Some(kind), Some(span)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <producer>:<kind>:<from>/<to>"));
        };
        let (from, to) = span
            .split_once('/')
            .ok_or_else(|| bad("expected the span <from>/<to>"))?;
        let instant = |t: &str| {
            crate::instant::parse_instant(t.trim())
                .map_err(|_| bad(&format!("`{t}` is not RFC 3339 or epoch ms")))
        };
        let (name, value) = match kind.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (kind.trim(), None),
        };
        let number = |what: &str| {
            value
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("{name} needs ={what}")))
        };
        let kind =
            match name {
                "silent" if value.is_none() => FaultKind::Silent,
                "invalid" => FaultKind::Invalid(number("<share in [0, 1]>")?),
                "volume" => FaultKind::Volume(number("<whole factor ≥ 1>")? as u32),
                "clock-lag" => FaultKind::ClockLag(
                    value
                        .and_then(crate::durations::parse_duration)
                        .ok_or_else(|| bad("clock-lag needs =<duration> such as 10m"))?,
                ),
                _ => return Err(bad(
                    "the kind is silent, invalid=<share>, clock-lag=<duration> or volume=<factor>",
                )),
            };
        Ok(Fault {
            producer: producer.trim().to_string(),
            from_ms: instant(from)?,
            to_ms: instant(to)?,
            kind,
        })
    }
}

/// Parses a producer and its weight: `<name>=<weight>`, or `<name>` (weight 1).
pub fn parse_producer(spec: &str) -> Result<(String, f64), String> {
    let (name, weight) = match spec.split_once('=') {
        Some((n, w)) => (
            n.trim(),
            w.trim()
                .parse::<f64>()
                .map_err(|_| format!("producer `{spec}`: `{w}` is not a weight"))?,
        ),
        None => (spec.trim(), 1.0),
    };
    Ok((name.to_string(), weight))
}

/// A record with its producer and the time it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedRecord {
    pub record: Record,
    pub producer: String,
    /// When the producer sends it, epoch ms (its Kafka record time).
    pub at_ms: i64,
}

/// A generator whose records come from weighted producers with faults.
pub struct Producers {
    generator: Generator,
    producers: Vec<(String, f64)>,
    total_weight: f64,
    faults: Vec<Fault>,
    rng: ChaCha8Rng,
    seed: u64,
    pending: Vec<ProducedRecord>,
}

impl Producers {
    /// `producers`: names (see [`crate::source::normalise`]) and positive weights.
    pub fn new(
        generator: Generator,
        producers: Vec<(String, f64)>,
        faults: Vec<Fault>,
        seed: u64,
    ) -> Result<Producers, String> {
        if producers.is_empty() {
            return Err("at least one producer is needed".into());
        }
        for (name, weight) in &producers {
            match crate::source::normalise(name) {
                Ok(Some(n)) if n == *name => {}
                _ => return Err(format!("`{name}` is not a source name (a-z, 0-9, . _ -)")),
            }
            if !(weight.is_finite() && *weight > 0.0) {
                return Err(format!("the weight of `{name}` must be positive"));
            }
        }
        for f in &faults {
            if !producers.iter().any(|(n, _)| *n == f.producer) {
                return Err(format!("a fault names `{}`, not a producer", f.producer));
            }
            let ok = match f.kind {
                FaultKind::Invalid(share) => (0.0..=1.0).contains(&share),
                FaultKind::Volume(factor) => factor >= 1,
                FaultKind::ClockLag(_) | FaultKind::Silent => true,
            };
            if !ok || f.from_ms >= f.to_ms {
                return Err(format!(
                    "fault {f:?}: a share in [0, 1], a factor ≥ 1, from < to"
                ));
            }
        }
        let total_weight = producers.iter().map(|(_, w)| w).sum();
        Ok(Producers {
            generator,
            producers,
            total_weight,
            faults,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            pending: Vec::new(),
        })
    }

    /// The stream's nominal time at the next record (see [`Generator::nominal_time_ms`]).
    pub fn nominal_time_ms(&self) -> i64 {
        self.generator.nominal_time_ms()
    }

    /// The producer of a user's records (by a hash of its key, so that a repeated record
    /// comes from the producer of the original).
    fn pick(&self, key: &str) -> String {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), self.seed);
        let mut x = (h >> 11) as f64 / (1u64 << 53) as f64 * self.total_weight;
        for (name, weight) in &self.producers {
            if x < *weight {
                return name.clone();
            }
            x -= weight;
        }
        self.producers[self.producers.len() - 1].0.clone()
    }

    /// The next record (`None` never: the stream is endless; an iterator for `take`).
    fn produce(&mut self) -> ProducedRecord {
        loop {
            if let Some(r) = self.pending.pop() {
                return r;
            }
            let mut record = self.generator.next_record();
            let at_ms = self.generator.nominal_time_ms();
            let producer = self.pick(&record.key);
            let active: Vec<FaultKind> = self
                .faults
                .iter()
                .filter(|f| f.producer == producer && (f.from_ms..f.to_ms).contains(&at_ms))
                .map(|f| f.kind)
                .collect();
            if active.contains(&FaultKind::Silent) {
                continue;
            }
            let mut fields: serde_json::Map<String, serde_json::Value> =
                match serde_json::from_slice(&record.json) {
                    Ok(serde_json::Value::Object(m)) => m,
                    // An invalid record of the generator's own: sent as it is.
                    _ => {
                        return ProducedRecord {
                            record,
                            producer,
                            at_ms,
                        }
                    }
                };
            fields.insert("source".into(), producer.clone().into());
            let mut factor = 1;
            for kind in &active {
                match *kind {
                    FaultKind::Invalid(share) if self.rng.random::<f64>() < share => {
                        fields.remove("user_id");
                        record.kind = RecordKind::Invalid;
                    }
                    FaultKind::ClockLag(lag) => lag_event_time(&mut fields, lag),
                    FaultKind::Volume(k) => factor = k,
                    _ => {}
                }
            }
            let key = record.key.clone();
            for copy in 1..factor {
                let mut more = fields.clone();
                if let Some(serde_json::Value::String(id)) = more.get("event_id") {
                    let id = format!("{id}-x{copy}");
                    more.insert("event_id".into(), id.into());
                }
                self.pending.push(ProducedRecord {
                    record: Record {
                        json: serde_json::to_vec(&more).unwrap_or_default(),
                        key: key.clone(),
                        kind: record.kind,
                    },
                    producer: producer.clone(),
                    at_ms,
                });
            }
            record.json = serde_json::to_vec(&fields).unwrap_or_default();
            return ProducedRecord {
                record,
                producer,
                at_ms,
            };
        }
    }
}

impl Iterator for Producers {
    type Item = ProducedRecord;

    fn next(&mut self) -> Option<ProducedRecord> {
        Some(self.produce())
    }
}

/// Moves an event time (epoch ms or RFC 3339) back by `lag` ms.
fn lag_event_time(fields: &mut serde_json::Map<String, serde_json::Value>, lag: i64) {
    let Some(value) = fields.get("event_time") else {
        return;
    };
    let ms = match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => crate::instant::parse_instant(s).ok(),
        _ => None,
    };
    if let Some(ms) = ms {
        fields.insert("event_time".into(), (ms - lag).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::GeneratorConfig;
    use crate::validate::Validator;
    use crate::{Origin, RecordMeta};

    const T0: i64 = 1_767_225_600_000;
    const MIN: i64 = 60_000;

    fn producers(faults: Vec<Fault>) -> Producers {
        let generator = Generator::new(GeneratorConfig {
            events_per_second: 1.0,
            ..GeneratorConfig::default()
        });
        let names = vec![("web".to_string(), 3.0), ("app".to_string(), 1.0)];
        Producers::new(generator, names, faults, 7).unwrap()
    }

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            producer: "app".into(),
            from_ms: T0 + 10 * MIN,
            to_ms: T0 + 20 * MIN,
            kind,
        }
    }

    /// Validated as a layer does, with the record time it is sent at.
    fn validated(r: &ProducedRecord) -> Result<crate::Event, crate::DeadLetter> {
        let meta = RecordMeta {
            origin: Origin::import_line(0),
            record_ms: Some(r.at_ms),
            source_header: None,
        };
        Validator::default().validate_record(&r.record.json, meta, r.at_ms)
    }

    #[test]
    fn records_carry_their_producer_by_weight_and_their_send_time() {
        let records: Vec<_> = producers(vec![]).take(4_000).collect();
        let web = records.iter().filter(|r| r.producer == "web").count();
        assert!((2_800..3_200).contains(&web), "{web} of 4,000 from web");
        for r in &records {
            let e = validated(r).unwrap();
            assert_eq!(e.source(), r.producer);
            assert!((r.at_ms - e.event_time().0).abs() <= 1_000, "{r:?}");
        }
    }

    #[test]
    fn each_fault_does_what_it_says_in_its_span_only() {
        let span = |r: &ProducedRecord| (T0 + 10 * MIN..T0 + 20 * MIN).contains(&r.at_ms);
        let app_in_span =
            |rs: &[ProducedRecord]| rs.iter().filter(|r| r.producer == "app" && span(r)).count();
        let clean: Vec<_> = producers(vec![]).take(2_400).collect();
        let silent: Vec<_> = producers(vec![fault(FaultKind::Silent)])
            .take(2_400)
            .collect();
        assert!(app_in_span(&clean) > 100);
        assert_eq!(app_in_span(&silent), 0);

        let invalid: Vec<_> = producers(vec![fault(FaultKind::Invalid(0.3))])
            .take(2_400)
            .collect();
        let (bad, all) =
            invalid
                .iter()
                .filter(|r| r.producer == "app")
                .fold((0, 0), |(b, a), r| {
                    let reject = validated(r).err().map(|d| d.reason.code());
                    assert!(reject.is_none() || span(r), "{r:?}");
                    (b + reject.is_some() as usize, a + span(r) as usize)
                });
        assert!(
            (bad as f64 / all as f64 - 0.3).abs() < 0.08,
            "{bad} of {all}"
        );

        let lagging: Vec<_> = producers(vec![fault(FaultKind::ClockLag(10 * MIN))])
            .take(2_400)
            .collect();
        for r in &lagging {
            let delay = r.at_ms - validated(r).unwrap().event_time().0;
            let lags = r.producer == "app" && span(r);
            assert_eq!(delay >= 10 * MIN, lags, "{r:?}");
        }

        let doubled: Vec<_> = producers(vec![fault(FaultKind::Volume(2))])
            .take(2_400)
            .collect();
        assert!(app_in_span(&doubled) > 2 * app_in_span(&clean) * 9 / 10);
        let ids: std::collections::HashSet<_> = doubled
            .iter()
            .map(|r| validated(r).unwrap().event_id().clone())
            .collect();
        assert_eq!(ids.len(), doubled.len(), "copies are new events");
    }

    #[test]
    fn faults_and_producers_parse_from_their_text() {
        let f =
            Fault::parse("app:clock-lag=10m:2026-01-01T00:10:00Z/2026-01-01T01:00:00Z").unwrap();
        assert_eq!(
            f,
            Fault {
                producer: "app".into(),
                from_ms: T0 + 10 * MIN,
                to_ms: T0 + 60 * MIN,
                kind: FaultKind::ClockLag(10 * MIN),
            }
        );
        let kind = |s: &str| Fault::parse(&format!("web:{s}:0/1")).map(|f| f.kind);
        assert_eq!(kind("silent"), Ok(FaultKind::Silent));
        assert_eq!(kind("invalid=0.3"), Ok(FaultKind::Invalid(0.3)));
        assert_eq!(kind("volume=2"), Ok(FaultKind::Volume(2)));
        for bad in [
            "web:silent",
            "web:loud:0/1",
            "web:invalid:0/1",
            "web:silent:x/1",
            "web:clock-lag=soon:0/1",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_producer("web=3"), Ok(("web".into(), 3.0)));
        assert_eq!(parse_producer("ios"), Ok(("ios".into(), 1.0)));
        assert!(parse_producer("ios=many").is_err());
    }

    #[test]
    fn bad_plans_are_refused_with_a_reason() {
        let g = || Generator::new(GeneratorConfig::default());
        let one = || vec![("web".to_string(), 1.0)];
        assert!(Producers::new(g(), vec![], vec![], 1).is_err());
        assert!(Producers::new(g(), vec![("Web!".into(), 1.0)], vec![], 1).is_err());
        assert!(Producers::new(g(), vec![("web".into(), 0.0)], vec![], 1).is_err());
        let mut f = fault(FaultKind::Silent);
        assert!(Producers::new(g(), one(), vec![f.clone()], 1)
            .err()
            .unwrap()
            .contains("not a producer"));
        f.producer = "web".into();
        f.kind = FaultKind::Invalid(1.5);
        assert!(Producers::new(g(), one(), vec![f], 1).is_err());
    }
}
