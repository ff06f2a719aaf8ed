//! The sending half of the pipeline: packets → every destination, RTCP sender reports,
//! paced release, destination changes from the resolver.
//!
//! [`SendStage`] is that half as a value: the `rtpmic-send` thread ([`run`]) drives it from
//! the encoder's ring, or the thread that encodes drives it directly when the pipeline runs
//! with fewer threads (`RTPMIC_THREADS`, see `crate::pipeline`). Either way the backend
//! gets up to [`MAX_BATCH`] packets in one call and each packet's software-added latency is
//! recorded once the kernel has accepted it.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::dest::{DestTable, DestUpdate};
use super::pacer::Pacer;
use super::rtcp_out::RtcpOut;
use super::udp::MAX_BATCH;
use super::DatagramSender;
use crate::config::MAX_DATAGRAM;
use crate::ops::{hot_path, stats::Stats};
use crate::ring::Consumer;
use crate::rt::now_ns;

/// One RTP packet on its way to the network.
pub struct Packet {
    pub data: [u8; MAX_DATAGRAM],
    /// 0 marks a slot that holds nothing to send.
    pub len: usize,
    /// When the frame it carries left the capture device (CLOCK_MONOTONIC).
    pub captured_ns: u64,
    /// When the encoder finished the packet.
    pub ready_ns: u64,
    /// The RTP timestamp in the header, and the payload length, for RTCP sender reports.
    pub rtp_timestamp: u32,
    pub payload_len: usize,
}

impl Packet {
    pub fn empty() -> Packet {
        Packet {
            data: [0; MAX_DATAGRAM],
            len: 0,
            captured_ns: 0,
            ready_ns: 0,
            rtp_timestamp: 0,
            payload_len: 0,
        }
    }

    fn meta(&self) -> Meta {
        Meta {
            len: self.len,
            captured_ns: self.captured_ns,
            ready_ns: self.ready_ns,
            rtp_timestamp: self.rtp_timestamp,
            payload_len: self.payload_len,
        }
    }
}

/// What the bookkeeping after a send needs of a packet.
#[derive(Clone, Copy, Default)]
struct Meta {
    len: usize,
    captured_ns: u64,
    ready_ns: u64,
    rtp_timestamp: u32,
    payload_len: usize,
}

/// Longest park between checks when no RTCP report is due sooner.
pub const MAX_PARK: Duration = Duration::from_millis(500);

/// Everything that puts packets on the wire, owned by one thread.
pub struct SendStage {
    pub tx: Box<dyn DatagramSender>,
    pub dests: DestTable,
    /// New addresses from the resolver thread, applied before each send.
    pub updates: Consumer<DestUpdate>,
    pub rtcp: Option<RtcpOut>,
    /// `RTPMIC_PACING=on`: each packet waits for its release time.
    pub pacer: Option<Pacer>,
}

impl SendStage {
    /// Sends one packet to every destination (after its release time when paced), then
    /// does the per-packet bookkeeping. Packets with `len == 0` are skipped.
    pub fn send_one(&mut self, p: &Packet, stats: &Stats) {
        if p.len > 0 {
            self.send_batch(&[&p.data[..p.len]], &[p.meta()], stats);
        }
    }

    /// Sends `packets` (at most [`MAX_BATCH`], none empty) in one backend call.
    fn send_batch(&mut self, packets: &[&[u8]], meta: &[Meta], stats: &Stats) {
        self.apply_updates();
        if let (Some(p), Some(first)) = (self.pacer.as_mut(), meta.first()) {
            // Ready is when this thread has the packet: with a sender thread that includes
            // the packet ring's handoff, which the hold must cover too.
            sleep_until(p.release_at(first.rtp_timestamp, first.captured_ns, now_ns()));
        }
        self.tx.send(packets, &mut self.dests, stats);
        stats.packets_out.fetch_add(packets.len() as u64, Relaxed);
        let now = now_ns();
        for m in meta {
            let encoded = m.ready_ns.saturating_sub(m.captured_ns);
            stats.latency.record(now.saturating_sub(m.captured_ns), encoded);
            if let Some(r) = self.rtcp.as_mut() {
                r.on_rtp(m.rtp_timestamp, m.captured_ns, m.payload_len);
            }
        }
        if let Some(r) = self.rtcp.as_mut() {
            r.poll(now, stats);
        }
    }

    /// Applies address changes from the resolver (a ring pop: no lock, no allocation).
    pub fn apply_updates(&mut self) {
        while let Some(u) = self.updates.pop(|u| *u) {
            self.dests.apply(u);
            if let Some(r) = self.rtcp.as_mut() {
                r.apply(u);
            }
        }
    }

    /// Timed work while no packet flows: destination changes, an RTCP report when one is due.
    pub fn poll(&mut self, now: u64, stats: &Stats) {
        self.apply_updates();
        if let Some(r) = self.rtcp.as_mut() {
            r.poll(now, stats);
        }
    }

    /// How long the owning thread may park before [`SendStage::poll`] has work.
    pub fn park(&self, now: u64) -> Duration {
        self.rtcp.as_ref().map_or(MAX_PARK, |r| r.timeout(now).min(MAX_PARK))
    }

    /// The stream is over: RTCP BYE (RFC 3550 §6.6).
    pub fn finish(&mut self, stats: &Stats) {
        if let Some(r) = self.rtcp.as_mut() {
            r.bye(now_ns(), stats);
        }
    }
}

/// Body of the `rtpmic-send` thread; returns when the encoder closed the ring and everything
/// is sent (then RTCP BYE goes out). Waits on the ring's eventfd through the backend (epoll,
/// or a read on the io_uring).
pub fn run(mut input: Consumer<Packet>, mut stage: SendStage, stats: &Stats) -> io::Result<()> {
    // Paced: one packet at a time, each at its release time.
    let batch = if stage.pacer.is_some() { 1 } else { MAX_BATCH };
    let fd: RawFd = input.readable_fd();
    let mut bufs = [[0u8; MAX_DATAGRAM]; MAX_BATCH];
    let mut meta = [Meta::default(); MAX_BATCH];
    let mut warmed_up = false;
    loop {
        let mut n = 0;
        while n < batch {
            let Some(m) = input.pop(|p| {
                bufs[n][..p.len].copy_from_slice(&p.data[..p.len]);
                p.meta()
            }) else {
                break;
            };
            if m.len > 0 {
                meta[n] = m;
                n += 1;
            }
        }
        if n > 0 {
            let packets: [&[u8]; MAX_BATCH] = std::array::from_fn(|i| &bufs[i][..meta[i].len]);
            stage.send_batch(&packets[..n], &meta[..n], stats);
            if !warmed_up {
                warmed_up = true;
                hot_path::enter();
            }
            continue;
        }
        let now = now_ns();
        stage.poll(now, stats);
        if input.is_closed() {
            break;
        }
        input.arm();
        if !input.is_empty() || input.is_closed() {
            input.disarm();
            continue;
        }
        if let Err(e) = stage.tx.wait(fd, stage.park(now)) {
            hot_path::leave();
            return Err(e);
        }
        input.disarm();
    }
    stage.finish(stats);
    hot_path::leave();
    Ok(())
}

/// Sleeps until CLOCK_MONOTONIC reads `at_ns` (at once when that has passed).
fn sleep_until(at_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: valid timespec; a null remainder is allowed with TIMER_ABSTIME.
    while unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) }
        == libc::EINTR
    {}
}
