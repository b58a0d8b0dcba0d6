//! The ingest rate limit: one token bucket per client (its ingest token, or its address
//! when ingest takes no token), so that one client cannot take the collector from the
//! others. A request over its client's rate answers 429 with `Retry-After`
//! ([`crate::auth::ingest_auth`] counts each request before its body is read).
//!
//! Memory is bounded: the table holds at most `max_clients` buckets. A bucket that has
//! refilled to its burst is the same as a new one, so dropping it loses nothing; the table
//! drops those first when it is full. When every tracked client is active, clients beyond
//! the cap share one overflow bucket: a caller cycling through addresses gains no more than
//! that one bucket, and tracked clients keep their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How fast each client may post.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second a client may sustain; 0 turns the limit off.
    pub per_second: f64,
    /// Requests a client may send at once after being idle.
    pub burst: u32,
    /// Clients tracked with a bucket of their own.
    pub max_clients: usize,
}

impl Default for RateLimit {
    /// 1,000 requests per second sustained, bursts of 2,000, 10,000 clients: above the
    /// demo's generator (about 10 requests per second) and every load of
    /// `scripts/bench-serve.sh` from its one address (at most about 600 requests per
    /// second, with 100 events a request; 170 with 2,000), while bounding what one client
    /// takes of the collector.
    fn default() -> Self {
        RateLimit {
            per_second: 1_000.0,
            burst: 2_000,
            max_clients: 10_000,
        }
    }
}

impl RateLimit {
    /// Whether requests are limited at all.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// The position of the ingest token the request carried.
    Token(usize),
    /// The peer address, when ingest takes no token.
    Address(IpAddr),
    /// Neither is known (a server started without connection info).
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Refills for the time since the last update, up to `burst`.
    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst as f64);
        self.updated = now;
    }

    fn is_full(&self, limit: &RateLimit, now: Instant) -> bool {
        let mut probe = *self;
        probe.refill(limit, now);
        probe.tokens >= limit.burst as f64
    }

    /// Takes one request, or says how long until one is available.
    fn take(&mut self, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - self.tokens) / limit.per_second,
        ))
    }
}

struct Table {
    buckets: HashMap<Client, Bucket>,
    overflow: Bucket,
}

/// The per-client buckets.
pub struct RateLimiter {
    limit: RateLimit,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// A limiter with every bucket full.
    pub fn new(limit: RateLimit) -> RateLimiter {
        let full = Bucket {
            tokens: limit.burst as f64,
            updated: Instant::now(),
        };
        RateLimiter {
            limit,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                overflow: full,
            }),
        }
    }

    /// The limit it applies.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Counts one request of `client` at `now`: `Err(wait)` when it is over its rate, with
    /// the time until its next request is admitted.
    pub fn admit(&self, client: &Client, now: Instant) -> Result<(), Duration> {
        if !self.limit.enabled() {
            return Ok(());
        }
        let limit = self.limit;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Table { buckets, overflow } = &mut *table;
        if let Some(bucket) = buckets.get_mut(client) {
            return bucket.take(&limit, now);
        }
        if buckets.len() >= limit.max_clients {
            buckets.retain(|_, b| !b.is_full(&limit, now));
        }
        if buckets.len() >= limit.max_clients {
            return overflow.take(&limit, now);
        }
        let mut bucket = Bucket {
            tokens: limit.burst as f64,
            updated: now,
        };
        let taken = bucket.take(&limit, now);
        buckets.insert(client.clone(), bucket);
        taken
    }

    /// Clients tracked with a bucket of their own.
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_second,
            burst,
            max_clients,
        })
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_with_the_wait_said() {
        let l = limiter(2.0, 3, 10);
        let t0 = Instant::now();
        let a = Client::Token(0);
        for _ in 0..3 {
            assert_eq!(l.admit(&a, t0), Ok(()));
        }
        assert_eq!(l.admit(&a, t0), Err(Duration::from_millis(500)));
        // Another client has its own bucket.
        assert_eq!(l.admit(&Client::Token(1), t0), Ok(()));
        // Half a second later one request is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.admit(&a, t1), Ok(()));
        assert!(l.admit(&a, t1).is_err());
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let l = limiter(0.0, 0, 1);
        let t0 = Instant::now();
        for i in 0..1_000 {
            assert_eq!(l.admit(&Client::Token(i), t0), Ok(()));
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded_and_full_clients_share_the_overflow_bucket() {
        let l = limiter(1.0, 2, 3);
        let t0 = Instant::now();
        let ip = |i: u8| Client::Address(IpAddr::from([10, 0, 0, i]));
        for i in 0..3 {
            assert_eq!(l.admit(&ip(i), t0), Ok(()));
        }
        // Every tracked client is active: newcomers share the overflow bucket (burst 2).
        assert_eq!(l.admit(&ip(10), t0), Ok(()));
        assert_eq!(l.admit(&ip(11), t0), Ok(()));
        assert!(l.admit(&ip(12), t0).is_err());
        assert_eq!(l.tracked(), 3);
        // Tracked clients keep their own bucket meanwhile.
        assert_eq!(l.admit(&ip(0), t0), Ok(()));
        assert!(l.admit(&ip(0), t0).is_err());
        // Once the tracked buckets have refilled, they make room without losing anything.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(l.admit(&ip(20), later), Ok(()));
        assert_eq!(l.tracked(), 1);
    }
}
