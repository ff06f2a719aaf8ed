//! The io_uring backend: every packet of a batch × every active destination becomes one
//! `SendMsg` SQE, all submitted with a single `io_uring_enter`; the sender's wake-up is an
//! eventfd `Read` on the same ring, so one syscall both sends and parks.
//!
//! Buffer ownership: the `msghdr`s, `iovec`s and packet bytes an SQE points to must live until
//! its completion. `send` returns only after every completion of its batch is reaped (UDP
//! sends on non-blocking sockets complete at once: no waiting on the network), so the
//! caller's batch buffers are free again when it returns. The wake-up buffer lives in this
//! struct. Nothing is allocated after `new`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::dest::{DestTable, Family};
use super::socket::{SocketError, SocketOptions};
use super::udp::{
    clone_sockets, count_family_missing, error_counter, family_sockets, open_sockets, FamilySocket, MAX_BATCH,
};
use crate::ops::stats::Stats;

/// user_data of the eventfd read; sends carry (family << 32) | message index.
const WAKE: u64 = u64::MAX;
/// Largest submission queue we ask for; bigger batches are submitted in chunks.
const MAX_SQ: usize = 4096;

/// Whether this kernel (and process: seccomp, qemu-user) offers what the backend needs.
pub fn probe() -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("kernel lacks IORING_FEAT_EXT_ARG (needs Linux 5.11)".into());
    }
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(|e| format!("io_uring probe: {e}"))?;
    for (code, name) in [(opcode::SendMsg::CODE, "SENDMSG"), (opcode::Read::CODE, "READ")] {
        if !p.is_supported(code) {
            return Err(format!("io_uring lacks IORING_OP_{name}"));
        }
    }
    Ok(())
}

/// Sends datagrams through one io_uring.
pub struct UringSender {
    ring: IoUring,
    v4: Option<FamilySocket>,
    v6: Option<FamilySocket>,
    wake_buf: Box<u64>,
    wake_pending: bool,
}

impl UringSender {
    /// Opens the sockets and the ring, sized for `slots` destinations.
    pub fn new(slots: usize, opts: &SocketOptions) -> Result<UringSender, SocketError> {
        let (v4, v6) = open_sockets(slots, opts)?;
        UringSender::with(slots, v4, v6)
    }

    /// Sends from `v4` and `v6`, opened (and bound) by the caller.
    pub fn with_sockets(
        slots: usize,
        v4: std::net::UdpSocket,
        v6: Option<std::net::UdpSocket>,
    ) -> Result<UringSender, SocketError> {
        let (v4, v6) = family_sockets(v4, v6, slots);
        UringSender::with(slots, v4, v6)
    }

    fn with(slots: usize, v4: Option<FamilySocket>, v6: Option<FamilySocket>) -> Result<UringSender, SocketError> {
        let entries = (MAX_BATCH * slots.max(1) + 1).next_power_of_two().min(MAX_SQ) as u32;
        let ring = IoUring::builder()
            .setup_cqsize(entries * 2)
            .build(entries)
            .map_err(|source| SocketError {
                key: "RTPMIC_SENDER",
                what: "io_uring_setup",
                source,
            })?;
        Ok(UringSender {
            ring,
            v4,
            v6,
            wake_buf: Box::new(0),
            wake_pending: false,
        })
    }

    /// Pushes one SQE, submitting what is queued first when the queue is full.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in `sqe` stays valid until its completion is reaped
            // (see the module docs).
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Reaps completions: counts sends, notes the wake-up. Returns how many sends completed.
    fn reap(&mut self, stats: &Stats) -> usize {
        let mut sends = 0;
        let Self {
            ring,
            v4,
            v6,
            wake_pending,
            ..
        } = self;
        for cqe in ring.completion() {
            let ud = cqe.user_data();
            if ud == WAKE {
                *wake_pending = false;
                continue;
            }
            sends += 1;
            if let Some(d) = dest_of(v4, v6, ud) {
                count_completion(&cqe, d, stats);
            }
        }
        sends
    }
}

fn count_completion(cqe: &cqueue::Entry, d: usize, stats: &Stats) {
    let r = cqe.result();
    if r >= 0 {
        stats.datagrams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.bytes.fetch_add(r as u64, std::sync::atomic::Ordering::Relaxed);
        stats.count_sent(d);
    } else {
        stats.count_error(d, error_counter(stats, -r), 1);
    }
}

impl super::DatagramSender for UringSender {
    fn send(&mut self, packets: &[&[u8]], dests: &mut DestTable, stats: &Stats) {
        let mut outstanding = 0usize;
        for (family, tag) in [(Family::V4, 4u64), (Family::V6, 6u64)] {
            let fs = if tag == 4 { self.v4.as_mut() } else { self.v6.as_mut() };
            let Some(fs) = fs else {
                count_family_missing(dests, family, packets.len(), stats);
                continue;
            };
            let k = fs.fill(packets, dests, family);
            let fd = fs.socket.as_raw_fd();
            let hdrs: *const libc::mmsghdr = fs.msgs.as_ptr();
            for i in 0..k {
                // SAFETY: i < k <= msgs.len(); the msghdr lives in `fs`, owned by self.
                let msg = unsafe { &(*hdrs.add(i)).msg_hdr } as *const libc::msghdr;
                let ud = (tag << 32) | i as u64;
                // MSG_DONTWAIT: with a full socket buffer io_uring would otherwise park the
                // send until there is room (and this thread with it); fail it with EAGAIN
                // instead, counted like the epoll backend's.
                let sqe = opcode::SendMsg::new(types::Fd(fd), msg)
                    .flags(libc::MSG_DONTWAIT as u32)
                    .build()
                    .user_data(ud);
                if self.push(&sqe).is_err() {
                    let d = dest_of(&self.v4, &self.v6, ud).unwrap_or(usize::MAX);
                    stats.count_error(d, &stats.send_errors, 1);
                    continue;
                }
                outstanding += 1;
            }
        }
        // Submit everything and wait until each send has completed, so the caller's buffers
        // are free when we return.
        while outstanding > 0 {
            match self.ring.submit_and_wait(outstanding) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(_) => {
                    // The ring itself failed: count what is left as errors, never spin.
                    stats
                        .send_errors
                        .fetch_add(outstanding as u64, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
            outstanding = outstanding.saturating_sub(self.reap(stats));
        }
    }

    fn wait(&mut self, wake_fd: RawFd, timeout: Duration) -> io::Result<()> {
        if !self.wake_pending {
            let buf = (&mut *self.wake_buf as *mut u64).cast::<u8>();
            let sqe = opcode::Read::new(types::Fd(wake_fd), buf, 8).build().user_data(WAKE);
            self.push(&sqe)?;
            self.wake_pending = true;
        }
        let ts = types::Timespec::new()
            .sec(timeout.as_secs())
            .nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        for cqe in self.ring.completion() {
            if cqe.user_data() == WAKE {
                self.wake_pending = false;
            }
        }
        Ok(())
    }

    fn sockets(&self) -> io::Result<Vec<std::net::UdpSocket>> {
        clone_sockets(&self.v4, &self.v6)
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }
}

/// The destination a send SQE's user_data ((family tag << 32) | message index) was for.
fn dest_of(v4: &Option<FamilySocket>, v6: &Option<FamilySocket>, user_data: u64) -> Option<usize> {
    let fs = if user_data >> 32 == 4 { v4 } else { v6 };
    fs.as_ref()?.msg_dest.get((user_data & 0xffff_ffff) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::DatagramSender;
    use crate::ring::Notifier;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn sends_every_packet_to_every_destination_and_wakes_on_the_eventfd() {
        probe().expect("io_uring is available on the test machine");
        let rx: Vec<UdpSocket> = ["127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| UdpSocket::bind(a).unwrap())
            .collect();
        let dests: Vec<Option<SocketAddr>> = rx.iter().map(|s| s.local_addr().ok()).collect();
        let mut table = DestTable::new(&dests);
        let opts = SocketOptions::default();
        let mut tx = UringSender::new(dests.len(), &opts).unwrap();
        let stats = Stats::new(2);
        tx.send(&[b"a", b"bc"], &mut table, &stats);
        assert_eq!(stats.datagrams.load(Relaxed), 4);
        assert_eq!(stats.bytes.load(Relaxed), 6);
        for s in &rx {
            let mut buf = [0u8; 8];
            assert_eq!(s.recv(&mut buf).unwrap(), 1);
            assert_eq!(s.recv(&mut buf).unwrap(), 2);
        }
        // The wake-up: a signalled eventfd ends the wait long before the 5 s timeout.
        let n = Notifier::new().unwrap();
        n.force();
        let t = std::time::Instant::now();
        tx.wait(n.raw_fd(), Duration::from_secs(5)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(4));
        assert!(!tx.wake_pending, "the eventfd read completed");
        // Nothing signalled: the read stays pending and the timeout ends the wait.
        tx.wait(n.raw_fd(), Duration::from_millis(20)).unwrap();
        assert!(tx.wake_pending);
        // Signalled while parked, from another thread: the pending read completes.
        let n = std::sync::Arc::new(n);
        let n2 = n.clone();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let signaller = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            n2.force();
        });
        go_tx.send(()).unwrap();
        let t = std::time::Instant::now();
        while tx.wake_pending && t.elapsed() < Duration::from_secs(4) {
            tx.wait(n.raw_fd(), Duration::from_secs(5)).unwrap();
        }
        assert!(
            !tx.wake_pending && t.elapsed() < Duration::from_secs(4),
            "a pending eventfd read is woken"
        );
        signaller.join().unwrap();
        // A refused destination (nothing listens) is counted, not fatal.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let mut table = DestTable::new(&[Some(addr)]);
        tx.send(&[b"x"], &mut table, &stats);
        assert_eq!(stats.datagrams.load(Relaxed) + stats.send_unreachable.load(Relaxed), 5);
    }
}
