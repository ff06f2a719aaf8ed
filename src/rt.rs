//! Real-time set-up of the calling thread / process: SCHED_RR, mlockall (when
//! `RLIMIT_MEMLOCK` allows it), stack prefault.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Stack of the encoder thread. libopus keeps its scratch on the stack (VLAs/alloca, tens of
/// KiB at most); 256 KiB leaves a wide margin. With `mlockall` every stack is resident in
/// full, so an 8 MiB default stack per thread would blow the memory budget.
pub const ENCODE_STACK: usize = 256 * 1024;

/// Stack of the capture and sender threads (alsa-lib's read path, a batch of packets).
pub const IO_STACK: usize = 128 * 1024;

/// Stack of the helper threads (RTCP in, SAP, name resolution: getaddrinfo and its NSS
/// modules want some room). Not the 2 MiB default: under `mlockall` every byte is resident.
pub const HELPER_STACK: usize = 256 * 1024;

/// A finite `RLIMIT_MEMLOCK` at least this large (1 GiB) is trusted with `mlockall`; below
/// it memory is not locked (see [`lock_memory`]).
///
/// Under `MCL_FUTURE` every mapping made afterwards is locked and counts against the limit
/// in full (Linux `mlock_future_ok`), `MCL_ONFAULT` or not: thread stacks, the ALSA
/// plugins' buffers and shared memory, and glibc's malloc arenas, which reserve 64 MiB of
/// address space per thread that allocates (on 64-bit). Measured (release build, x86-64,
/// `RTPMIC_THREADS=3`, SAP, three destinations): 330–400 MiB of address space for 6 MiB
/// resident. A limit below that makes later `mmap`/`brk` fail with `EAGAIN`: malloc returns
/// NULL inside alsa-lib (`snd_pcm_open` then reports a misleading "Invalid argument …
/// alsa.conf may be old or corrupted", forever) or Rust aborts. 1 GiB leaves 2.5 × room.
pub const MEMLOCK_ENOUGH: u64 = 1 << 30;

/// Whether to call `mlockall`, from `RLIMIT_MEMLOCK`'s soft limit (`None`: unlimited) and
/// whether the process holds `CAP_IPC_LOCK` (with it the kernel ignores the limit).
pub fn should_lock(limit: Option<u64>, cap_ipc_lock: bool) -> bool {
    cap_ipc_lock || limit.is_none_or(|l| l >= MEMLOCK_ENOUGH)
}

/// Why memory is not locked. Its text is one log line: what happened and the fix.
#[derive(Debug, thiserror::Error)]
pub enum MemoryLockError {
    #[error(
        "mlockall skipped: RLIMIT_MEMLOCK is {} and there is no CAP_IPC_LOCK; locking all \
         memory under it would make later allocations fail (it must hold the whole address \
         space, several hundred MiB), so memory stays unlocked and pages may be swapped out. \
         Fix: LimitMEMLOCK=infinity in the unit (rtpmic.service has it), or run as root / with \
         CAP_IPC_LOCK; RTPMIC_RT_PRIORITY=0 turns locking off",
        format_bytes(*limit)
    )]
    LimitTooSmall { limit: u64 },
    #[error("mlockall refused ({0}); pages may be swapped out")]
    Refused(io::Error),
}

/// `limit` bytes in the largest binary unit that divides it exactly.
fn format_bytes(limit: u64) -> String {
    match limit {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

/// The finite `RLIMIT_MEMLOCK` memory was locked under without `CAP_IPC_LOCK` (0: not
/// locked, or no limit applies), for [`memory_lock_hint`].
static LOCKED_UNDER_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Locks in RAM every page the process touches, now and later, so the hot path never waits
/// for one to come back from swap — when the process may: with `CAP_IPC_LOCK`, an unlimited
/// `RLIMIT_MEMLOCK`, or one of at least [`MEMLOCK_ENOUGH`]. A smaller limit (a normal user's
/// 8 MiB default) is not used at all: [`MemoryLockError::LimitTooSmall`] says so and the
/// stream runs unlocked. The soft limit is first raised to the hard one (any process may),
/// so a unit or shell that only raised the hard limit is enough.
///
/// `MCL_ONFAULT` (Linux 4.4): pages are locked as they are first touched rather than all
/// populated up front. Everything the real-time threads use is touched during start-up and
/// warm-up (stacks are prefaulted, rings and buffers written by then), so it stays resident;
/// library code that never runs (most of libc, libasound, libopus) is never made resident,
/// which keeps RSS about 2 MiB lower on a small board. A kernel without `MCL_ONFAULT` gets
/// the plain lock.
pub fn lock_memory() -> Result<(), MemoryLockError> {
    let limit = raise_memlock_soft_limit();
    let cap = has_cap_ipc_lock();
    if !should_lock(limit, cap) {
        return Err(MemoryLockError::LimitTooSmall {
            limit: limit.unwrap_or(u64::MAX),
        });
    }
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
    .map_err(MemoryLockError::Refused)?;
    if let (Some(l), false) = (limit, cap) {
        LOCKED_UNDER_LIMIT.store(l, Relaxed);
    }
    Ok(())
}

/// For an error that may be an allocation failing (`ENOMEM`, `EAGAIN`): when memory is
/// locked under a finite `RLIMIT_MEMLOCK`, the likely cause, to append to the message.
pub fn memory_lock_hint(errno: i32) -> Option<String> {
    let limit = LOCKED_UNDER_LIMIT.load(Relaxed);
    (limit != 0 && (errno == libc::ENOMEM || errno == libc::EAGAIN)).then(|| {
        format!(
            "memory is locked (mlockall) and every new mapping counts against RLIMIT_MEMLOCK={}: \
             raise it (LimitMEMLOCK=infinity) or set RTPMIC_RT_PRIORITY=0",
            format_bytes(limit)
        )
    })
}

/// `RLIMIT_MEMLOCK`'s soft limit after raising it to the hard limit (`None`: unlimited).
fn raise_memlock_soft_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Some(0);
    }
    if r.rlim_cur < r.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        // SAFETY: valid pointer; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            r = raised;
        }
    }
    // rlim_t is 32 bits on armv7, 64 on aarch64 and x86_64.
    #[allow(clippy::useless_conversion)]
    (r.rlim_cur != libc::RLIM_INFINITY).then_some(u64::from(r.rlim_cur))
}

/// Whether `CAP_IPC_LOCK` (capability 14) is in the effective set, from /proc/self/status
/// (`CapEff:`, hexadecimal); false when that cannot be read.
fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim().to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_only_where_the_limit_cannot_bite() {
        assert!(should_lock(None, false), "unlimited");
        assert!(
            should_lock(Some(8 << 20), true),
            "CAP_IPC_LOCK: the kernel ignores the limit"
        );
        assert!(should_lock(Some(MEMLOCK_ENOUGH), false));
        assert!(!should_lock(Some(8 << 20), false), "a normal user's 8 MiB");
        assert!(
            !should_lock(Some(512 << 20), false),
            "below the address space it must cover"
        );
        assert!(!should_lock(Some(0), false));
    }

    #[test]
    fn the_warning_names_the_limit_and_the_fix() {
        let e = MemoryLockError::LimitTooSmall { limit: 8 << 20 }.to_string();
        assert!(
            e.contains("RLIMIT_MEMLOCK is 8 MiB") && e.contains("LimitMEMLOCK=infinity") && !e.contains('\n'),
            "{e}"
        );
        assert_eq!(format_bytes(65536), "64 KiB");
        assert_eq!(format_bytes(1000), "1000 bytes");
    }
}
