//! The `rtpmic-send` thread: packets from the encoder ring → every destination.
//!
//! Waits on the ring's eventfd through the backend (epoll, or a read on the io_uring), so
//! later sockets (RTCP in) join the same loop. Takes up to [`MAX_BATCH`] ready packets at once and hands them to the backend in one
//! call; records each packet's software-added latency once the kernel has accepted it.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::dest::{DestTable, DestUpdate};
use super::udp::MAX_BATCH;
use super::DatagramSender;
use crate::config::MAX_PACKET;
use crate::ops::{hot_path, stats::Stats};
use crate::ring::Consumer;
use crate::rt::now_ns;

/// One RTP packet on its way to the network.
pub struct Packet {
    pub data: [u8; MAX_PACKET],
    /// 0 marks a slot that holds nothing to send.
    pub len: usize,
    /// When the frame it carries left the capture device (CLOCK_MONOTONIC).
    pub captured_ns: u64,
}

impl Packet {
    pub fn empty() -> Packet {
        Packet {
            data: [0; MAX_PACKET],
            len: 0,
            captured_ns: 0,
        }
    }
}

/// Body of the sender thread; returns when the encoder closed the ring and everything is sent.
/// Address changes from the resolver are applied between batches.
pub fn run(
    mut input: Consumer<Packet>,
    mut tx: impl DatagramSender,
    mut dests: DestTable,
    mut updates: Consumer<DestUpdate>,
    stats: &Stats,
) -> io::Result<()> {
    let fd: RawFd = input.readable_fd();
    let mut bufs = [[0u8; MAX_PACKET]; MAX_BATCH];
    let mut lens = [0usize; MAX_BATCH];
    let mut captured = [0u64; MAX_BATCH];
    let mut warmed_up = false;
    loop {
        while let Some(u) = updates.pop(|u| *u) {
            dests.apply(u);
        }
        let mut n = 0;
        while n < MAX_BATCH {
            let Some((len, at)) = input.pop(|p| {
                bufs[n][..p.len].copy_from_slice(&p.data[..p.len]);
                (p.len, p.captured_ns)
            }) else {
                break;
            };
            if len > 0 {
                lens[n] = len;
                captured[n] = at;
                n += 1;
            }
        }
        if n > 0 {
            let packets: [&[u8]; MAX_BATCH] = std::array::from_fn(|i| &bufs[i][..lens[i]]);
            tx.send(&packets[..n], &mut dests, stats);
            let now = now_ns();
            for &at in &captured[..n] {
                stats.latency.record(now.saturating_sub(at));
            }
            if !warmed_up {
                warmed_up = true;
                hot_path::enter();
            }
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
        if let Err(e) = tx.wait(fd, Duration::from_millis(500)) {
            hot_path::leave();
            return Err(e);
        }
        input.disarm();
    }
    hot_path::leave();
    Ok(())
}
