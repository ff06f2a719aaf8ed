//! Marks the threads that must not allocate, so a counting global allocator (tests/zero_alloc.rs)
//! can attribute allocations to them.
//!
//! A `const`-initialised thread-local `Cell<bool>` has no destructor and no lazy set-up, so
//! reading it from inside an allocator neither allocates nor recurses.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static ENTERED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static HOT: Cell<bool> = const { Cell::new(false) };
}

/// Called by the capture, encoder and sender threads once set-up is done and the first
/// frame has passed through: from here on, they allocate nothing.
pub fn enter() {
    HOT.with(|h| h.set(true));
    ENTERED.fetch_add(1, Relaxed);
}

/// How many times a thread entered its hot loop in this process (tests use it to prove the
/// marker was really set).
pub fn entered_count() -> usize {
    ENTERED.load(Relaxed)
}

/// Called when a hot thread leaves its loop (shutdown may allocate, e.g. to log).
pub fn leave() {
    HOT.with(|h| h.set(false));
}

/// Whether the calling thread is in its hot loop.
pub fn is_hot() -> bool {
    HOT.try_with(|h| h.get()).unwrap_or(false)
}
