//! The `rtpmic-send` thread: packets from the encoder ring → every destination.
//!
//! Waits on the ring's eventfd through the backend (epoll, or a read on the io_uring), so
//! later sockets (RTCP in) join the same loop. Takes up to [`MAX_BATCH`] ready packets at once and hands them to the backend in one
//! call; records each packet's software-added latency once the kernel has accepted it.

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
            rtp_timestamp: 0,
            payload_len: 0,
        }
    }
}

/// Longest park between checks when no RTCP report is due sooner.
const MAX_PARK: Duration = Duration::from_millis(500);

/// Body of the sender thread; returns when the encoder closed the ring and everything is sent
/// (then RTCP BYE goes out). Address changes from the resolver are applied between batches.
pub fn run(
    mut input: Consumer<Packet>,
    mut tx: Box<dyn DatagramSender>,
    mut dests: DestTable,
    mut updates: Consumer<DestUpdate>,
    mut rtcp: Option<RtcpOut>,
    mut pacer: Option<Pacer>,
    stats: &Stats,
) -> io::Result<()> {
    // Paced: one packet at a time, each at its release time.
    let batch = if pacer.is_some() { 1 } else { MAX_BATCH };
    let fd: RawFd = input.readable_fd();
    let mut bufs = [[0u8; MAX_DATAGRAM]; MAX_BATCH];
    let mut meta = [(0usize, 0u64, 0u32, 0usize); MAX_BATCH];
    let mut warmed_up = false;
    loop {
        while let Some(u) = updates.pop(|u| *u) {
            dests.apply(u);
            if let Some(r) = rtcp.as_mut() {
                r.apply(u);
            }
        }
        let mut n = 0;
        while n < batch {
            let Some(m) = input.pop(|p| {
                bufs[n][..p.len].copy_from_slice(&p.data[..p.len]);
                (p.len, p.captured_ns, p.rtp_timestamp, p.payload_len)
            }) else {
                break;
            };
            if m.0 > 0 {
                meta[n] = m;
                n += 1;
            }
        }
        if let (true, Some(p)) = (n > 0, pacer.as_mut()) {
            sleep_until(p.release_at(meta[0].2, meta[0].1, now_ns()));
        }
        if n > 0 {
            let packets: [&[u8]; MAX_BATCH] = std::array::from_fn(|i| &bufs[i][..meta[i].0]);
            tx.send(&packets[..n], &mut dests, stats);
            stats.packets_out.fetch_add(n as u64, Relaxed);
        }
        // One clock read per iteration serves the latency record and the RTCP schedule.
        let now = now_ns();
        if n > 0 {
            for &(_, captured, ts, payload) in &meta[..n] {
                stats.latency.record(now.saturating_sub(captured));
                if let Some(r) = rtcp.as_mut() {
                    r.on_rtp(ts, captured, payload);
                }
            }
            if !warmed_up {
                warmed_up = true;
                hot_path::enter();
            }
        }
        if let Some(r) = rtcp.as_mut() {
            r.poll(now, stats);
        }
        if n > 0 {
            continue;
        }
        if input.is_closed() {
            break;
        }
        input.arm();
        if !input.is_empty() || input.is_closed() {
            input.disarm();
            continue;
        }
        let park = rtcp.as_ref().map_or(MAX_PARK, |r| r.timeout(now).min(MAX_PARK));
        if let Err(e) = tx.wait(fd, park) {
            hot_path::leave();
            return Err(e);
        }
        input.disarm();
    }
    if let Some(r) = rtcp.as_mut() {
        r.bye(now_ns(), stats);
    }
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
