//! A single-producer single-consumer ring of fixed capacity that drops the oldest entry when
//! full, plus the eventfd [`Notifier`] its reader parks on.
//!
//! Hand-written because the crates at hand (heapless::spsc, ringbuf, rtrb) refuse a push when
//! full; a live audio path must instead discard the *oldest* data so latency stays bounded.
//!
//! Protocol (all indices are monotonically increasing u64; slot = index % capacity):
//! * `head` — next index to write; only the producer stores it (Release).
//! * `tail` — next index to read; moved by compare-and-swap by the consumer (claiming an
//!   entry) or by the producer (discarding the oldest entry when full).
//! * `reading` — index + 1 of the entry the consumer is copying out, 0 when idle. The consumer
//!   publishes it *before* claiming, so the producer never writes a slot being read: if the
//!   slot it needs is busy, the producer drops the new entry instead. `push` says which
//!   happened; the caller counts it.
//!
//! Entries are read in place through a closure; nothing is allocated after `new`.

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// What happened to a pushed entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Stored; nothing lost.
    Stored,
    /// Stored after discarding the oldest entry.
    DroppedOldest,
    /// Not stored: the ring was full and its oldest slot was being read.
    DroppedNew,
}

struct Shared<T> {
    slots: Box<[UnsafeCell<T>]>,
    head: AtomicU64,
    tail: AtomicU64,
    reading: AtomicU64,
    closed: AtomicBool,
    readable: Notifier,
    writable: Notifier,
}

// SAFETY: slots are only touched under the protocol above (one writer, one reader, never the
// same slot at once); T moves between threads, so T: Send is required.
unsafe impl<T: Send> Sync for Shared<T> {}

/// The writing end.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
}

/// The reading end.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
}

/// Creates a ring of `capacity` slots, each initialised by `init`.
pub fn ring<T: Send>(capacity: usize, init: impl Fn() -> T) -> io::Result<(Producer<T>, Consumer<T>)> {
    assert!(capacity >= 2, "a ring needs at least two slots");
    let slots: Box<[UnsafeCell<T>]> = (0..capacity).map(|_| UnsafeCell::new(init())).collect();
    let shared = Arc::new(Shared {
        slots,
        head: AtomicU64::new(0),
        tail: AtomicU64::new(0),
        reading: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        readable: Notifier::new()?,
        writable: Notifier::new()?,
    });
    Ok((Producer { shared: shared.clone() }, Consumer { shared }))
}

impl<T> Shared<T> {
    fn cap(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Whether the consumer is still copying out the entry that slot `h % cap` held before.
    fn slot_busy(&self, h: u64) -> bool {
        h >= self.cap() && self.reading.load(SeqCst) == h - self.cap() + 1
    }

    /// Whether the producer can store without discarding anything.
    fn has_room(&self) -> bool {
        let h = self.head.load(Relaxed);
        h - self.tail.load(SeqCst) < self.cap() && !self.slot_busy(h)
    }
}

impl<T: Send> Producer<T> {
    /// Writes one entry with `fill`, discarding the oldest one when the ring is full.
    /// Wakes a parked consumer. Never blocks.
    pub fn push(&mut self, fill: impl FnOnce(&mut T)) -> Pushed {
        let s = &*self.shared;
        let h = s.head.load(Relaxed);
        let mut outcome = Pushed::Stored;
        loop {
            let t = s.tail.load(SeqCst);
            if h - t < s.cap() {
                break;
            }
            if s.tail.compare_exchange(t, t + 1, SeqCst, SeqCst).is_ok() {
                outcome = Pushed::DroppedOldest;
                break;
            }
        }
        if outcome == Pushed::Stored && s.slot_busy(h) {
            // The consumer is still copying out the entry this slot held.
            return Pushed::DroppedNew;
        }
        // SAFETY: the entry slot h held before (h - cap) is below `tail` (consumed or
        // discarded) and not being read (checked above); the consumer claims only indices
        // below `head`, which still excludes h.
        fill(unsafe { &mut *s.slots[(h % s.cap()) as usize].get() });
        s.head.store(h + 1, SeqCst);
        s.readable.notify();
        outcome
    }

    /// Writes one entry, waiting for space instead of dropping (benchmark "no-drop" mode,
    /// used when the source is faster than real time). Returns false when the consumer is gone.
    pub fn push_waiting(&mut self, fill: impl FnOnce(&mut T)) -> bool {
        let s = &*self.shared;
        loop {
            if s.has_room() {
                break;
            }
            if s.closed.load(SeqCst) {
                return false;
            }
            s.writable.prepare_wait();
            if s.has_room() || s.closed.load(SeqCst) {
                s.writable.cancel_wait();
                continue;
            }
            s.writable.wait(Some(Duration::from_millis(100)));
        }
        self.push(fill) == Pushed::Stored
    }

    /// Marks the end of the stream: the consumer drains what is left, then sees `None`.
    pub fn close(&self) {
        self.shared.closed.store(true, SeqCst);
        self.shared.readable.force();
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, SeqCst);
        self.shared.readable.force();
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, SeqCst);
        self.shared.writable.force();
    }
}

/// Result of waiting for data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// At least one entry can be popped.
    Data,
    /// The producer closed the ring and everything was read.
    Closed,
    /// The timeout passed with nothing to read.
    Timeout,
}

impl<T: Send> Consumer<T> {
    /// Reads the oldest entry in place with `read`; `None` when the ring is empty.
    pub fn pop<R>(&mut self, read: impl FnOnce(&T) -> R) -> Option<R> {
        let s = &*self.shared;
        loop {
            let t = s.tail.load(SeqCst);
            let h = s.head.load(SeqCst);
            if t == h {
                return None;
            }
            s.reading.store(t + 1, SeqCst);
            if s.tail.compare_exchange(t, t + 1, SeqCst, SeqCst).is_ok() {
                // SAFETY: entry t was published (t < head) and is ours: the producer will not
                // write its slot while `reading` names it.
                let r = read(unsafe { &*s.slots[(t % s.cap()) as usize].get() });
                s.reading.store(0, SeqCst);
                // A producer waiting for room (no-drop mode) is woken once the ring is half
                // empty, not on every pop: one wake-up per cap/2 entries.
                if s.head.load(SeqCst) - (t + 1) <= s.cap() / 2 {
                    s.writable.notify();
                }
                return Some(r);
            }
            // The producer discarded entry t meanwhile; try the next one.
            s.reading.store(0, SeqCst);
        }
    }

    /// Parks until an entry is ready, the ring is closed, or `timeout` passes.
    pub fn wait(&self, timeout: Option<Duration>) -> Ready {
        let s = &*self.shared;
        if let Some(r) = self.ready_now() {
            return r;
        }
        s.readable.prepare_wait();
        if let Some(r) = self.ready_now() {
            s.readable.cancel_wait();
            return r;
        }
        s.readable.wait(timeout);
        self.ready_now().unwrap_or(Ready::Timeout)
    }

    fn ready_now(&self) -> Option<Ready> {
        let s = &*self.shared;
        if s.head.load(SeqCst) != s.tail.load(SeqCst) {
            Some(Ready::Data)
        } else if s.closed.load(SeqCst) {
            Some(Ready::Closed)
        } else {
            None
        }
    }

    /// Arms the notifier so the producer signals the eventfd on the next push; for a reader
    /// that polls the eventfd itself (epoll). Call [`Consumer::is_empty`] after arming.
    pub fn arm(&self) {
        self.shared.readable.prepare_wait();
    }

    /// Disarms the notifier after waiting on the eventfd through epoll. The eventfd is not
    /// read: mio registers edge-triggered, and every eventfd write raises a new edge, so the
    /// counter may grow (2^64 writes away from full) and a `read` per wake-up is saved.
    pub fn disarm(&self) {
        self.shared.readable.cancel_wait();
    }

    pub fn is_empty(&self) -> bool {
        self.shared.head.load(SeqCst) == self.shared.tail.load(SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(SeqCst) && self.is_empty()
    }

    /// The eventfd that becomes readable when data arrives (for epoll).
    pub fn readable_fd(&self) -> RawFd {
        self.shared.readable.fd.as_raw_fd()
    }
}

/// An eventfd with a "someone is waiting" flag, so the writer makes the `write` syscall only
/// when the reader is actually parked.
pub struct Notifier {
    fd: OwnedFd,
    waiting: AtomicBool,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        // SAFETY: plain syscall; the result is checked and owned at once.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Notifier {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            waiting: AtomicBool::new(false),
        })
    }

    /// Wakes the reader if it is parked.
    pub fn notify(&self) {
        if self.waiting.load(SeqCst) {
            self.force();
        }
    }

    /// Signals the eventfd unconditionally (close, stop).
    pub fn force(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd. A full counter (EAGAIN)
        // already means "readable", so the result needs no handling.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Announces that the reader is about to park; it must re-check its condition after this.
    pub fn prepare_wait(&self) {
        self.waiting.store(true, SeqCst);
    }

    pub fn cancel_wait(&self) {
        self.waiting.store(false, SeqCst);
    }

    /// Parks on the eventfd (poll) until signalled or `timeout`, then clears it.
    pub fn wait(&self, timeout: Option<Duration>) {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout
            .map(|t| t.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(-1);
        // SAFETY: one valid pollfd. EINTR or timeout just return to the caller's re-check.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        self.drain();
        self.waiting.store(false, SeqCst);
    }

    /// Resets the eventfd counter.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN (already clear) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_drop_oldest() {
        let (mut p, mut c) = ring(3, || 0u32).unwrap();
        for i in 1..=3 {
            assert_eq!(p.push(|s| *s = i), Pushed::Stored);
        }
        assert_eq!(p.push(|s| *s = 4), Pushed::DroppedOldest);
        let got: Vec<u32> = std::iter::from_fn(|| c.pop(|s| *s)).collect();
        assert_eq!(got, vec![2, 3, 4]);
        assert_eq!(c.wait(Some(Duration::from_millis(1))), Ready::Timeout);
        drop(p);
        assert_eq!(c.wait(None), Ready::Closed);
    }

    #[test]
    fn threads_see_every_entry_in_order_or_a_counted_drop() {
        const N: u64 = 200_000;
        let (mut p, mut c) = ring(4, || [0u64; 8]).unwrap();
        let producer = std::thread::spawn(move || {
            // Whoever pushes counts the drops (the pipeline's threads do, into Stats).
            (0..N).filter(|&i| p.push(|s| s.fill(i)) != Pushed::Stored).count() as u64
        });
        let mut seen = 0u64;
        let mut last = None;
        loop {
            match c.pop(|s| *s) {
                Some(s) => {
                    // A torn slot would show mixed values.
                    assert!(s.iter().all(|&v| v == s[0]), "torn read {s:?}");
                    assert!(last.is_none_or(|l| s[0] > l), "out of order");
                    last = Some(s[0]);
                    seen += 1;
                }
                None => {
                    if c.wait(None) == Ready::Closed {
                        break;
                    }
                }
            }
        }
        let dropped = producer.join().unwrap();
        assert_eq!(seen + dropped, N, "every entry is either read or counted as dropped");
    }

    /// The capture → encoder ring of a live stream in simulated time: one frame is pushed per
    /// tick; the reader takes everything there is each tick, except while starved (ticks
    /// 100..200), when it gets to read one frame every 40 ticks. Nothing read is ever older
    /// than the ring holds, every frame is read or counted as dropped, and on the first tick
    /// the reader runs freely again it is back to the newest frame.
    #[test]
    fn a_starved_reader_sees_bounded_age_and_recovers_at_once() {
        const CAP: u64 = 8;
        let (mut p, mut c) = ring(CAP as usize, || 0u64).unwrap();
        let mut dropped = 0;
        let mut read = Vec::new();
        // Age (ticks) of the newest frame read by the end of each tick.
        let mut lag = Vec::new();
        for tick in 0..300u64 {
            if p.push(|s| *s = tick) != Pushed::Stored {
                dropped += 1;
            }
            let starved = (100..200).contains(&tick);
            let budget = if !starved {
                usize::MAX
            } else if tick % 40 == 0 {
                1
            } else {
                0
            };
            for _ in 0..budget {
                let Some(frame) = c.pop(|s| *s) else { break };
                assert!(
                    tick - frame < CAP,
                    "tick {tick}: read frame {frame}, older than the ring"
                );
                assert!(read.last().is_none_or(|&l| frame > l), "out of order");
                read.push(frame);
            }
            lag.push(read.last().map(|&f| tick - f));
        }
        assert_eq!(read.len() as u64 + dropped, 300, "every frame read or counted");
        assert!(dropped >= 100 - 3 * CAP, "starved for 100 ticks: {dropped} dropped");
        assert!(lag[..100].iter().all(|&l| l == Some(0)), "fed: each frame read at once");
        assert!(
            lag[100..200].iter().all(|l| l.unwrap() <= 40 + CAP),
            "bounded while starved"
        );
        assert!(
            lag[200..].iter().all(|&l| l == Some(0)),
            "recovered on the first free tick"
        );
    }

    #[test]
    fn waiting_push_loses_nothing() {
        const N: u64 = 50_000;
        let (mut p, mut c) = ring(2, || 0u64).unwrap();
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                assert!(p.push_waiting(|s| *s = i));
            }
        });
        let mut expect = 0;
        loop {
            match c.pop(|s| *s) {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None if c.wait(None) == Ready::Closed => break,
                None => {}
            }
        }
        producer.join().unwrap();
        assert_eq!(expect, N);
    }
}
