//! Real-time set-up of the calling thread / process: SCHED_RR, mlockall, stack prefault.

use std::io;

/// Stack size of each real-time thread. libopus keeps its scratch on the stack (VLAs/alloca,
/// tens of KiB at most); 256 KiB leaves a wide margin while, with `mlockall`, the three
/// locked stacks stay well under a megabyte (an 8 MiB default stack each would not).
pub const THREAD_STACK: usize = 256 * 1024;

/// How much of the stack `prefault_stack` touches.
const PREFAULT: usize = 128 * 1024;

/// Locks current and future pages in RAM so the hot path never page-faults to disk.
pub fn lock_memory() -> io::Result<()> {
    // SAFETY: plain syscall with constant flags.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread under SCHED_RR at `priority` (1..=99); 0 leaves it alone.
pub fn set_realtime(priority: u8) -> io::Result<()> {
    if priority == 0 {
        return Ok(());
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: valid param for the current thread.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_RR, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Touches the first `PREFAULT` bytes of the stack so later deep calls (libopus) do not fault.
#[inline(never)]
pub fn prefault_stack() {
    let mut buf = [0u8; PREFAULT];
    std::hint::black_box(&mut buf);
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC), the time base of every latency figure.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespec; CLOCK_MONOTONIC cannot fail on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
