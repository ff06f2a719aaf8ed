//! RTCP sending state of the sender thread: when the next sender report is due, what it says,
//! and where it goes (each destination's RTP port + 1, or the RTP port with rtcp-mux).
//! Everything is allocated in `new`; reports leave from the RTCP sockets (where receivers'
//! reports come back, see `rtcp_in`) with one non-blocking `sendto` per destination.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::os::fd::AsRawFd;

use super::dest::{DestTable, DestUpdate, Family};
use super::rtcp_in::RtcpSockets;
use crate::ops::stats::Stats;
use crate::rtp::capture_clock::CaptureClock;
use crate::rtp::rtcp::{ntp_now, LayoutError, RtcpPackets, RtcpScheduler, SenderInfo};
use crate::rtp::srtp::SrtpContext;

/// RTCP state of one stream.
pub struct RtcpOut {
    packets: RtcpPackets,
    scheduler: RtcpScheduler,
    dests: DestTable,
    mux: bool,
    next_ns: u64,
    ticks_per_frame: u32,
    members: usize,
    rng: u64,
    sent_packets: u32,
    sent_octets: u32,
    /// Maps the newest packet's RTP timestamp to when its audio was captured.
    clock: CaptureClock,
    sockets: RtcpSockets,
    srtcp: Option<SrtpContext>,
    /// The compound packet as protected for SRTCP (scratch, so nothing allocates).
    protected: [u8; PROTECTED_LEN],
}

/// Room for our largest compound (SR + SDES + BYE) plus SRTCP's index and tag.
const PROTECTED_LEN: usize = 512;

/// Where RTCP for an RTP destination goes (RFC 3550 §11: the next higher, odd, port).
pub fn rtcp_addr(rtp: SocketAddr, mux: bool) -> SocketAddr {
    let mut rtcp = rtp;
    if !mux {
        // set_port keeps an IPv6 zone (scope id).
        rtcp.set_port(rtp.port().wrapping_add(1));
    }
    rtcp
}

/// What `RtcpOut::new` needs to know about the stream.
pub struct StreamInfo {
    pub ssrc: u32,
    pub cname: String,
    pub clock_rate: u32,
    pub ticks_per_frame: u32,
    /// Session bandwidth estimate in octets/s.
    pub session_bw: f64,
    pub mux: bool,
    /// SRTCP (RFC 3711 §3.4): every compound packet is protected before it leaves.
    pub srtcp: Option<SrtpContext>,
}

impl RtcpOut {
    /// `rtp_slots` are the destination table's RTP addresses (slot for slot).
    pub fn new(
        s: StreamInfo,
        rtp_slots: &[Option<SocketAddr>],
        sockets: RtcpSockets,
        now_ns: u64,
    ) -> Result<RtcpOut, LayoutError> {
        let mut packets = RtcpPackets::new(s.ssrc, &s.cname)?;
        let size = packets
            .report(SenderInfo {
                ntp: 0,
                rtp_timestamp: 0,
                packets: 0,
                octets: 0,
            })
            .len();
        let slots: Vec<Option<SocketAddr>> = rtp_slots.iter().map(|a| a.map(|a| rtcp_addr(a, s.mux))).collect();
        let members = 1 + rtp_slots.iter().flatten().count();
        let mut out = RtcpOut {
            scheduler: RtcpScheduler::new(s.session_bw, size),
            packets,
            dests: DestTable::new(&slots),
            mux: s.mux,
            next_ns: 0,
            ticks_per_frame: s.ticks_per_frame,
            members,
            rng: u64::from(s.ssrc) | 1,
            sent_packets: 0,
            sent_octets: 0,
            clock: CaptureClock::new(s.clock_rate),
            sockets,
            srtcp: s.srtcp,
            protected: [0; PROTECTED_LEN],
        };
        out.next_ns = now_ns + out.interval();
        Ok(out)
    }

    /// xorshift64: a uniform number in [0, 1) without allocating or locking.
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn interval(&mut self) -> u64 {
        let r = self.random();
        self.scheduler.next_interval_ns(self.members, r)
    }

    /// Re-points the RTCP address of a destination whose RTP address changed.
    pub fn apply(&mut self, u: DestUpdate) {
        self.dests.apply(DestUpdate {
            index: u.index,
            addr: u.addr.map(|a| rtcp_addr(a, self.mux)),
        });
    }

    /// Notes an RTP packet that was sent.
    pub fn on_rtp(&mut self, rtp_timestamp: u32, captured_ns: u64, payload_len: usize) {
        self.sent_packets = self.sent_packets.wrapping_add(1);
        self.sent_octets = self.sent_octets.wrapping_add(payload_len as u32);
        self.clock.observe(rtp_timestamp, captured_ns);
    }

    /// How long the sender may park before the next report is due.
    pub fn timeout(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(self.next_ns.saturating_sub(now_ns))
    }

    /// The SR fields for `now`: the RTP timestamp is extrapolated from the newest packet on
    /// the media clock ([`CaptureClock`]: its first sample plus one frame was captured at
    /// its estimated capture time), so the NTP/RTP pair maps real time to the audio clock
    /// (RFC 3550 §6.4.1).
    pub fn info(&self, now_ns: u64, ntp: u64) -> Option<SenderInfo> {
        Some(SenderInfo {
            ntp,
            rtp_timestamp: self.clock.rtp_at(now_ns, self.ticks_per_frame)?,
            packets: self.sent_packets,
            octets: self.sent_octets,
        })
    }

    /// Sends a report if one is due (and RTP has flowed). Returns whether it sent.
    pub fn poll(&mut self, now_ns: u64, stats: &Stats) -> bool {
        if now_ns < self.next_ns {
            return false;
        }
        self.next_ns = now_ns + self.interval();
        let Some(info) = self.info(now_ns, ntp_now()) else {
            return false;
        };
        let size = self.packets.report(info).len();
        self.send_to_all(false);
        self.scheduler.sent(size);
        stats.rtcp_reports.fetch_add(1, Relaxed);
        true
    }

    /// Sends the goodbye (SR + SDES + BYE) when RTP was sent (RFC 3550 §6.6).
    pub fn bye(&mut self, now_ns: u64, stats: &Stats) {
        let Some(info) = self.info(now_ns, ntp_now()) else {
            return;
        };
        self.packets.bye(info);
        self.send_to_all(true);
        stats.rtcp_reports.fetch_add(1, Relaxed);
    }

    /// One `sendto` per active destination from the socket of its family; failures are
    /// ignored (RTCP is periodic and RTP errors are counted already).
    fn send_to_all(&mut self, bye: bool) {
        let plain = if bye {
            self.packets.last_bye()
        } else {
            self.packets.last_report()
        };
        let bytes = match self.srtcp.as_mut() {
            None => plain,
            Some(ctx) => {
                let Some(scratch) = self.protected.get_mut(..plain.len()) else {
                    return;
                };
                scratch.copy_from_slice(plain);
                // One SRTCP index per compound, the same bytes to every destination.
                match ctx.protect_rtcp(&mut self.protected, plain.len()) {
                    Ok(n) => &self.protected[..n],
                    Err(_) => return,
                }
            }
        };
        for d in 0..self.dests.len() {
            let sock = match self.dests.family(d) {
                Family::Inactive => continue,
                Family::V4 => self.sockets.for_addr(true),
                Family::V6 => self.sockets.for_addr(false),
            };
            let Some(sock) = sock else { continue };
            let (name, len) = self.dests.name(d);
            // SAFETY: `bytes` and the sockaddr stay valid for the call.
            unsafe {
                libc::sendto(
                    sock.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT,
                    name.cast(),
                    len,
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> RtcpOut {
        let s = StreamInfo {
            ssrc: 9,
            cname: "c".into(),
            clock_rate: 48_000,
            ticks_per_frame: 960,
            session_bw: 4000.0,
            mux: false,
            srtcp: None,
        };
        let c = crate::config::Config::from_pairs([("RTPMIC_DEST", "127.0.0.1:5004")]).unwrap();
        let sockets = RtcpSockets::open(&c).unwrap();
        RtcpOut::new(s, &[Some("127.0.0.1:5004".parse().unwrap())], sockets, 0).unwrap()
    }

    #[test]
    fn rtcp_goes_to_the_next_port_unless_muxed() {
        let a: SocketAddr = "[::1]:5004".parse().unwrap();
        assert_eq!(rtcp_addr(a, false).port(), 5005);
        assert_eq!(rtcp_addr(a, true), a);
    }

    #[test]
    fn sender_info_extrapolates_the_media_clock() {
        let mut o = out();
        assert!(o.info(0, 0).is_none(), "no report before RTP");
        o.on_rtp(1000, 1_000_000_000, 100);
        o.on_rtp(1960, 1_020_000_000, 80);
        // 10 ms after the last frame completed: its first sample + 960 + 480 ticks.
        let i = o.info(1_030_000_000, 0).unwrap();
        assert_eq!((i.rtp_timestamp, i.packets, i.octets), (1960 + 960 + 480, 2, 180));
    }

    #[test]
    fn first_report_is_due_within_the_initial_interval() {
        let o = out();
        let first = o.timeout(0).as_secs_f64();
        assert!((2.5 * 0.5 / 1.2183..=2.5 * 1.5 / 1.2183).contains(&first), "{first}");
    }
}
