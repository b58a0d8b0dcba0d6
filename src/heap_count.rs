//! The process's allocator: mimalloc (as DataFusion's own CLI uses; a query answer builds
//! and frees tens of thousands of small values, where glibc's malloc and free were a tenth
//! of the SQL endpoint's CPU), keeping a running total of the bytes requested and not yet
//! freed, for benchmarks.
//!
//! `lambda bench speed-file` reads it before and after folding a file, so the size it
//! reports is the state's own (what its structures asked for, allocator overhead apart),
//! not the process's resident memory. One relaxed atomic add per allocation and free; it
//! never changes what is allocated.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
