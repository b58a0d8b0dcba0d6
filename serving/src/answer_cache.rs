//! A bounded-staleness cache of query answers, for dashboards that ask the same question
//! many times a second.
//!
//! An answer merges every fine-grained state of its range (hundreds of thousands of keys
//! for an hour of `page_views` by url), so computing it costs far more than serving it.
//! Answers are kept per normalised query (metric, aligned range, granularity, grouping,
//! filters, limit), batch manifest version and speed-views generation:
//! - younger than `max_staleness`: served as they are;
//! - up to twice that old: served, and one background task recomputes them;
//! - older: computed now, unless a computation of it is already running (then the old
//!   answer is served until that one lands);
//! - missing: computed now, once — concurrent requests for the same query wait for that
//!   one computation (single flight).
//!
//! So an answer is at most `2 × max_staleness` plus one computation old, every
//! answer says how old it is (`answer_age_ms`) and how fresh its data is (`freshness_ms`),
//! and neither a new batch manifest nor a switch of the speed views is hidden (both are
//! part of the key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One computed answer: its JSON without `freshness_ms` and `answer_age_ms` (added per
/// response), when it was computed, and its newest event time.
#[derive(Clone)]
pub struct Answer {
    /// The answer object's JSON, starting with `{`.
    pub body: Bytes,
    pub computed_at: Instant,
    pub newest_event_ms: Option<i64>,
}

impl Answer {
    /// The response body: `body` with `freshness_ms` (at `now_ms`) and `answer_age_ms`.
    pub fn render(&self, now_ms: i64) -> Vec<u8> {
        let age = self.computed_at.elapsed().as_millis();
        let freshness = self
            .newest_event_ms
            .map_or("null".to_string(), |t| (now_ms - t).max(0).to_string());
        let head = format!("{{\"freshness_ms\":{freshness},\"answer_age_ms\":{age}");
        let rest = &self.body[1..];
        let mut out = Vec::with_capacity(head.len() + self.body.len() + 1);
        out.extend_from_slice(head.as_bytes());
        if rest.first() != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        out
    }
}

#[derive(Default)]
struct Slot {
    answer: Mutex<Option<Answer>>,
    /// Held by the one computation of this query in flight.
    computing: Arc<tokio::sync::Mutex<()>>,
}

/// The cache; `max_staleness` zero turns it off.
pub struct AnswerCache {
    max_staleness: Duration,
    capacity: usize,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// What [`AnswerCache::lookup`] found.
pub enum Lookup {
    /// Fresh enough: serve it.
    Fresh(Answer),
    /// Serve it, and recompute in the background if `refresh` is `Some` (then this
    /// request is the one that refreshes; the guard is held until the refresh is stored).
    Stale {
        answer: Answer,
        refresh: Option<Refresh>,
    },
    /// Compute now (the guard makes concurrent requests for the query wait for this one).
    Compute(Refresh),
}

/// The right to compute one query's answer.
pub struct Refresh {
    slot: Arc<Slot>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Refresh {
    /// Stores a computed answer.
    pub fn store(self, answer: Answer) {
        *self.slot.answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer);
    }
}

impl Default for AnswerCache {
    /// Off.
    fn default() -> Self {
        AnswerCache::new(Duration::ZERO, 1)
    }
}

impl AnswerCache {
    /// A cache serving answers up to `max_staleness` old (zero: no caching), holding at
    /// most `capacity` queries.
    pub fn new(max_staleness: Duration, capacity: usize) -> Self {
        AnswerCache {
            max_staleness,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Whether answers are cached at all.
    pub fn enabled(&self) -> bool {
        !self.max_staleness.is_zero()
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.get(key) {
            return s.clone();
        }
        if slots.len() >= self.capacity {
            // Drop the oldest answers (and any never filled).
            let mut ages: Vec<(String, Option<Instant>)> = slots
                .iter()
                .map(|(k, s)| {
                    let at = s
                        .answer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .map(|a| a.computed_at);
                    (k.clone(), at)
                })
                .collect();
            ages.sort_by_key(|(_, at)| *at);
            for (k, _) in ages.into_iter().take(slots.len() + 1 - self.capacity) {
                slots.remove(&k);
            }
        }
        let slot = Arc::new(Slot::default());
        slots.insert(key.to_string(), slot.clone());
        slot
    }

    fn current(slot: &Slot) -> Option<Answer> {
        slot.answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Looks `key` up (see the module docs for the rules).
    pub async fn lookup(&self, key: &str) -> Lookup {
        let slot = self.slot(key);
        if let Some(answer) = Self::current(&slot) {
            let age = answer.computed_at.elapsed();
            if age < self.max_staleness {
                return Lookup::Fresh(answer);
            }
            if age < self.max_staleness * 2 {
                let refresh = slot
                    .computing
                    .clone()
                    .try_lock_owned()
                    .ok()
                    .map(|g| Refresh {
                        slot: slot.clone(),
                        _guard: g,
                    });
                return Lookup::Stale { answer, refresh };
            }
        }
        let guard = match slot.computing.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                // Being recomputed right now: an old answer is served meanwhile (its age
                // is bounded by the computation in flight); with none, wait for it.
                if let Some(answer) = Self::current(&slot) {
                    return Lookup::Stale {
                        answer,
                        refresh: None,
                    };
                }
                slot.computing.clone().lock_owned().await
            }
        };
        // Another request may have computed it while this one waited.
        if let Some(answer) = Self::current(&slot) {
            if answer.computed_at.elapsed() < self.max_staleness {
                return Lookup::Fresh(answer);
            }
        }
        Lookup::Compute(Refresh {
            slot,
            _guard: guard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Answer {
        Answer {
            body: Bytes::from(body.to_string()),
            computed_at: Instant::now(),
            newest_event_ms: Some(1_000),
        }
    }

    #[test]
    fn rendering_adds_freshness_and_age_to_the_object() {
        let text = String::from_utf8(answer(r#"{"rows":[]}"#).render(1_500)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["freshness_ms"], 500);
        assert!(v["answer_age_ms"].as_u64().is_some());
        assert_eq!(v["rows"], serde_json::json!([]));
        let empty = String::from_utf8(answer("{}").render(1_000)).unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&empty).is_ok(),
            "{empty}"
        );
    }

    #[tokio::test]
    async fn one_computation_serves_until_stale_then_one_refresh_at_a_time() {
        let cache = AnswerCache::new(Duration::from_millis(200), 8);
        let Lookup::Compute(refresh) = cache.lookup("q").await else {
            panic!("an empty cache computes");
        };
        refresh.store(answer("{}"));
        assert!(matches!(cache.lookup("q").await, Lookup::Fresh(_)));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Lookup::Stale {
            refresh: Some(first),
            ..
        } = cache.lookup("q").await
        else {
            panic!("a stale answer is served and refreshed");
        };
        assert!(
            matches!(cache.lookup("q").await, Lookup::Stale { refresh: None, .. }),
            "only one refresh at a time"
        );
        first.store(answer("{}"));
        assert!(matches!(cache.lookup("q").await, Lookup::Fresh(_)));
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(
            matches!(cache.lookup("q").await, Lookup::Compute(_)),
            "too old: computed now"
        );
    }

    #[tokio::test]
    async fn capacity_drops_the_oldest_queries() {
        let cache = AnswerCache::new(Duration::from_secs(60), 2);
        for key in ["a", "b", "c"] {
            if let Lookup::Compute(r) = cache.lookup(key).await {
                r.store(answer("{}"));
            }
        }
        assert_eq!(cache.slots.lock().unwrap().len(), 2);
        assert!(matches!(cache.lookup("c").await, Lookup::Fresh(_)));
    }
}
