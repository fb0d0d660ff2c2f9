//! Test support: a counting global allocator, shared by the `*_alloc` tests through
//! `#[path = "common/alloc_count.rs"] mod alloc_count;`. Only the thread inside
//! [`allocations`] counts, since the test harness allocates on its own threads.

#![allow(dead_code, unreachable_pub)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    if COUNT_HERE.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the heap allocations (and reallocations) it made on
/// this thread.
pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    let out = f();
    COUNT_HERE.with(|c| c.set(false));
    (out, ALLOCS.load(Ordering::Relaxed) - before)
}

/// A batch with room for `series` one-sample series of up to 16 labels, so that the counts
/// are the decoder's own and not the batch's growth.
pub fn roomy_batch<'a>(series: usize) -> eddy_storage::WriteBatch<'a> {
    eddy_storage::WriteBatch {
        labels: Vec::with_capacity(series * 16),
        series: Vec::with_capacity(series),
        timestamps: Vec::with_capacity(series),
        values: Vec::with_capacity(series),
    }
}
