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

use io_uring::{opcode, squeue, types, IoUring, Probe};

use super::socket::SocketError;
use super::udp::{refuse_unroutable, Messages, StreamSockets, CHUNK};
use crate::rtp::session::{SendResult, Transmit};

/// user_data of the eventfd read; a send carries (socket index << 32) | message index.
const WAKE: u64 = u64::MAX;

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
    sockets: StreamSockets,
    /// One message array per socket: all four are in flight at once.
    messages: [Messages; 4],
    wake_buf: Box<u64>,
    wake_pending: bool,
}

impl UringSender {
    /// The ring, sized for a whole chunk on every socket at once.
    pub fn new(sockets: StreamSockets) -> Result<UringSender, SocketError> {
        let entries = (4 * CHUNK + 1).next_power_of_two() as u32;
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
            sockets,
            messages: std::array::from_fn(|_| Messages::new()),
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

    /// Reaps completions into `results`; notes the wake-up. Returns how many sends
    /// completed.
    fn reap(&mut self, results: &mut [SendResult]) -> usize {
        let mut sends = 0;
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            if ud == WAKE {
                self.wake_pending = false;
                continue;
            }
            sends += 1;
            let (index, k) = ((ud >> 32) as usize, (ud & 0xffff_ffff) as usize);
            if let Some(&i) = self.messages.get(index).and_then(|m| m.origin.get(k)) {
                let r = cqe.result();
                results[i] = if r >= 0 { Ok(r as usize) } else { Err(-r) };
            }
        }
        sends
    }
}

impl super::DatagramSender for UringSender {
    fn send(&mut self, batch: &[Transmit<'_>], results: &mut [SendResult]) {
        refuse_unroutable(&self.sockets, batch, results);
        let mut outstanding = 0usize;
        for index in 0..4 {
            let Some(fd) = self.sockets_fd(index) else { continue };
            let k = self.messages[index].fill(batch, index);
            for j in 0..k {
                let msg = &self.messages[index].msgs[j].msg_hdr as *const libc::msghdr;
                // MSG_DONTWAIT: with a full socket buffer io_uring would otherwise park the
                // send until there is room (and this thread with it); fail it with EAGAIN
                // instead, as the epoll backend does.
                let sqe = opcode::SendMsg::new(types::Fd(fd), msg)
                    .flags(libc::MSG_DONTWAIT as u32)
                    .build()
                    .user_data(((index as u64) << 32) | j as u64);
                if self.push(&sqe).is_err() {
                    results[self.messages[index].origin[j]] = Err(libc::EIO);
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
                // The ring itself failed: what is left stays failed (EINPROGRESS), never spin.
                Err(_) => return,
            }
            outstanding = outstanding.saturating_sub(self.reap(results));
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

    fn sockets(&self) -> &StreamSockets {
        &self.sockets
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }
}

impl UringSender {
    fn sockets_fd(&self, index: usize) -> Option<RawFd> {
        self.sockets.by_index(index).map(|s| s.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::socket::SocketOptions;
    use crate::net::DatagramSender;
    use crate::ring::Notifier;
    use crate::rtp::session::{Kind, Local, PeerId, Route};
    use std::net::{SocketAddr, UdpSocket};

    fn transmit(to: SocketAddr, bytes: &[u8]) -> Transmit<'_> {
        Transmit {
            peer: PeerId::new(0, 1),
            route: Route::Udp(to),
            local: Local::Rtp,
            kind: Kind::Rtp,
            bytes,
        }
    }

    #[test]
    fn sends_every_datagram_and_wakes_on_the_eventfd() {
        probe().expect("io_uring is available on the test machine");
        let rx: Vec<UdpSocket> = ["127.0.0.1:0", "[::1]:0"]
            .iter()
            .map(|a| UdpSocket::bind(a).unwrap())
            .collect();
        let to: Vec<SocketAddr> = rx.iter().map(|s| s.local_addr().unwrap()).collect();
        let opts = SocketOptions::default();
        let mut tx = UringSender::new(StreamSockets::open(&opts, true, false).unwrap()).unwrap();
        let batch = [
            transmit(to[0], b"a"),
            transmit(to[1], b"a"),
            transmit(to[0], b"bc"),
            transmit(to[1], b"bc"),
        ];
        let mut results = [Ok(0); 4];
        tx.send(&batch, &mut results);
        assert_eq!(results, [Ok(1), Ok(1), Ok(2), Ok(2)]);
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
        // A refused destination (nothing listens) is reported, not fatal.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let mut one = [Ok(0)];
        tx.send(&[transmit(addr, b"x")], &mut one);
        assert!(matches!(one[0], Ok(1) | Err(libc::ECONNREFUSED)), "{:?}", one[0]);
    }
}
