//! Shrinking a failing input: ranges are removed, halving their size down to single bytes,
//! as long as the input still fails the same way (delta debugging, in a time budget, since
//! a slow input costs its full time per attempt).

use std::time::{Duration, Instant};

/// The smallest input found within `budget` for which `fails` still holds (`input` itself
/// when nothing smaller fails).
pub fn minimize(input: &[u8], budget: Duration, mut fails: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let start = Instant::now();
    let mut best = input.to_vec();
    let mut chunk = best.len().div_ceil(2).max(1);
    while !best.is_empty() && start.elapsed() < budget {
        let mut removed_any = false;
        let mut at = 0;
        while at < best.len() && start.elapsed() < budget {
            let end = (at + chunk).min(best.len());
            let candidate = [&best[..at], &best[end..]].concat();
            if fails(&candidate) {
                best = candidate;
                removed_any = true;
            } else {
                at += chunk;
            }
        }
        if !removed_any {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_to_the_bytes_that_matter() {
        let input = b"{\"a\":1,\"price\":\"0e2147483647\",\"b\":[1,2,3]}";
        let small = minimize(input, Duration::from_secs(5), |c| {
            c.windows(2).any(|w| w == b"0e") && c.contains(&b'7')
        });
        assert_eq!(small, b"0e7");
        let same = minimize(b"abc", Duration::from_secs(5), |c| c == b"abc");
        assert_eq!(same, b"abc");
    }
}
