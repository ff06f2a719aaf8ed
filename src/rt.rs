//! Real-time set-up of the calling thread / process: SCHED_RR, mlockall, stack prefault.

use std::io;

/// Stack of the encoder thread. libopus keeps its scratch on the stack (VLAs/alloca, tens of
/// KiB at most); 256 KiB leaves a wide margin. With `mlockall` every stack is resident in
/// full, so an 8 MiB default stack per thread would blow the memory budget.
pub const ENCODE_STACK: usize = 256 * 1024;

/// Stack of the capture and sender threads (alsa-lib's read path, a batch of packets).
pub const IO_STACK: usize = 128 * 1024;

/// Stack of the helper threads (RTCP in, SAP, name resolution: getaddrinfo and its NSS
/// modules want some room). Not the 2 MiB default: under `mlockall` every byte is resident.
pub const HELPER_STACK: usize = 256 * 1024;

/// Locks in RAM every page the process touches, now and later, so the hot path never waits
/// for one to come back from swap.
///
/// `MCL_ONFAULT` (Linux 4.4): pages are locked as they are first touched rather than all
/// populated up front. Everything the real-time threads use is touched during start-up and
/// warm-up (stacks are prefaulted, rings and buffers written by then), so it stays resident;
/// library code that never runs (most of libc, libasound, libopus) is never made resident,
/// which keeps RSS about 2 MiB lower on a small board. A kernel without `MCL_ONFAULT` gets
/// the plain lock.
pub fn lock_memory() -> io::Result<()> {
    let lock = |flags| {
        // SAFETY: plain syscall with constant flags.
        if unsafe { libc::mlockall(flags) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match lock(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => lock(libc::MCL_CURRENT | libc::MCL_FUTURE),
        r => r,
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

/// Touches half of a `stack_size` stack so later deep calls (libopus) do not page-fault
/// (without `mlockall`; with it the whole stack is resident from the start anyway).
#[inline(never)]
pub fn prefault_stack(stack_size: usize) {
    const CHUNK: usize = 16 * 1024;
    #[inline(never)]
    fn touch(depth: usize) {
        let mut buf = [0u8; CHUNK];
        std::hint::black_box(&mut buf);
        if depth > 1 {
            touch(depth - 1);
        }
    }
    touch(stack_size / 2 / CHUNK);
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC), the time base of every latency figure.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespec; CLOCK_MONOTONIC cannot fail on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
