//! The process's allocator: mimalloc (as DataFusion's own CLI uses; a query answer builds
//! and frees tens of thousands of small values, where glibc's malloc and free were a tenth
//! of the SQL endpoint's CPU), keeping a running total of the bytes requested and not yet
//! freed, for benchmarks.
//!
//! `lambda bench speed-file` reads it before and after folding a file, so the size it
//! reports is the state's own (what its structures asked for, allocator overhead apart),
//! not the process's resident memory. One relaxed atomic add per allocation and free; it
//! never changes what is allocated.
//!
//! Freed memory stays with the process for [`PURGE_DELAY_MS`] before mimalloc gives it back
//! to the OS (its default is 1 s): a SQL answer frees tens of megabytes that the next one
//! (Grafana refreshes every few seconds) allocates again, and memory given back comes back
//! as page faults on zeroed pages, which were the SQL endpoint's slowest answers (p99 of the
//! panel query over psql about 100 to 200 ms with the default, 65 to 80 ms with 10 s, at the
//! same median; docs/benchmarks.md). `MIMALLOC_PURGE_DELAY` set in the environment wins.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long freed memory stays with the process before it goes back to the OS.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// mimalloc's `mi_option_purge_delay` (v3 `mimalloc.h`, `enum mi_option_e`; the Rust
/// bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the purge delay to [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` is set.
pub fn keep_freed_memory_a_while() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, which it reads atomically at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// mimalloc, counting live bytes.
pub struct Counting {
    live: AtomicUsize,
}

impl Counting {
    /// A counter at zero.
    pub const fn new() -> Self {
        Counting {
            live: AtomicUsize::new(0),
        }
    }

    /// Bytes allocated and not yet freed, now.
    pub fn live_bytes(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every call forwards to `MiMalloc` with the caller's own arguments; the counter is
// bookkeeping beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc(layout);
        if !p.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = MiMalloc.alloc_zeroed(layout);
        if !p.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        MiMalloc.dealloc(ptr, layout);
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = MiMalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            self.live.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Resident and peak resident memory of this process (`VmRSS`, `VmHWM` of
/// `/proc/self/status`), in bytes; `None` where the file is not there.
pub fn rss_and_peak() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one of mimalloc's options.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // mimalloc v3's default purge delay (no other option has 1000 for a default).
        assert!(
            before == 1_000 || before == PURGE_DELAY_MS,
            "option {MI_OPTION_PURGE_DELAY} is {before}"
        );
        keep_freed_memory_a_while();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, PURGE_DELAY_MS);
    }
}
