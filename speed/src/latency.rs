//! Produce-to-visible latency of the speed layer: a histogram of 1 ms buckets up to 60 s,
//! filled by the consumer from each record's timestamp and read by benchmarks. It holds
//! figures only, never state that a view depends on.

/// Produce-to-visible latency, in milliseconds, as a histogram (1 ms buckets up to 60 s).
#[derive(Debug, Clone)]
pub struct Latency {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            counts: vec![0; 60_001],
            total: 0,
        }
    }
}

impl Latency {
    pub(crate) fn record(&mut self, ms: i64, n: u64) {
        let bucket = ms.clamp(0, 60_000) as usize;
        self.counts[bucket] += n;
        self.total += n;
    }

    /// The `q`-quantile in ms (0 ≤ q ≤ 1), if anything was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let target = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(ms as u64);
            }
        }
        Some(60_000)
    }

    /// Samples recorded.
    pub fn samples(&self) -> u64 {
        self.total
    }
}
