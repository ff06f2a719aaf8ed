//! The receiving side of an RTP session, sans I/O: one source followed (RFC 3550 A.1, A.3,
//! A.8, in [`super::source`]), its sender reports tracked, receiver reports written (§6.4.2)
//! and sent where the sender's reports come from. `rtpmic probe` runs on it; talkback will.
//! Time is an argument of every call.
//!
//! * **Which source.** The first source whose payload the caller can play is followed; while
//!   it is still on probation (A.1), a packet of another SSRC replaces it, so a stray packet
//!   cannot capture the receiver.
//! * **Where reports go.** To the address the source's sender reports come from (a sender
//!   whose RTP and RTCP leave from unrelated ports is still reached, as RFC 3550 §6 receivers
//!   answer the session); until an SR was heard, to the RTP source port + 1 (§11).
//! * **When.** The first report [`FIRST_REPORT_NS`] after the first packet, then every
//!   [`REPORT_INTERVAL_NS`] (a single receiver of a low-rate stream: §6.3's minimum of 5 s).
//!   Only once the source is valid (no report about a source on probation).
//! * LSR/DLSR (§6.4.1): the middle 32 bits of the last SR's NTP timestamp, and the time since
//!   it arrived in units of 1/65536 s.
//!
//! Writing a report uses rtcp-types' builders, which allocate: fine for the probe, a thread
//! of its own.

use std::net::SocketAddr;

use rtcp_types::{Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt};

use super::source::{SeqVerdict, SourceStats};

/// The first receiver report goes this long after the first packet.
pub const FIRST_REPORT_NS: u64 = 2_000_000_000;
/// Then one report per interval (§6.3.1's minimum).
pub const REPORT_INTERVAL_NS: u64 = 5_000_000_000;

/// The source followed.
#[derive(Clone, Debug)]
pub struct Followed {
    pub stats: SourceStats,
    /// Its RTP clock rate (what arrival times are counted in for jitter, A.8).
    pub clock_rate: u32,
    /// Where its RTP comes from, and its sender reports (once heard).
    pub rtp_from: SocketAddr,
    pub rtcp_from: Option<SocketAddr>,
}

/// One receiver's session. See the module docs.
pub struct RecvSession {
    followed: Option<Followed>,
    /// Middle 32 bits of the last SR's NTP timestamp, and when it arrived (ns).
    last_sr: Option<(u32, u64)>,
    next_report_ns: Option<u64>,
}

/// What `handle_rtp` made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A packet of the followed source, and what A.1 made of it.
    Followed(SeqVerdict),
    /// A new source is followed from this packet on (the first, or one that replaced a source
    /// still on probation).
    NewSource(SeqVerdict),
    /// Another source's packet: not followed.
    Other,
}

impl Default for RecvSession {
    fn default() -> RecvSession {
        RecvSession::new()
    }
}

impl RecvSession {
    pub fn new() -> RecvSession {
        RecvSession {
            followed: None,
            last_sr: None,
            next_report_ns: None,
        }
    }

    pub fn followed(&self) -> Option<&Followed> {
        self.followed.as_ref()
    }

    /// Takes an RTP packet's header fields, received at `now_ns` from `from`. `playable`:
    /// the clock rate of its payload type when the caller can play it (a source is followed
    /// only then), `None` otherwise.
    pub fn handle_rtp(
        &mut self,
        now_ns: u64,
        from: SocketAddr,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        playable: Option<u32>,
    ) -> Received {
        let adopt = self
            .followed
            .as_ref()
            .is_none_or(|f| f.stats.ssrc != ssrc && !f.stats.is_valid());
        let mut new = false;
        if adopt {
            if let Some(clock_rate) = playable {
                self.followed = Some(Followed {
                    stats: SourceStats::new(ssrc),
                    clock_rate,
                    rtp_from: from,
                    rtcp_from: None,
                });
                self.last_sr = None;
                self.next_report_ns = Some(now_ns + FIRST_REPORT_NS);
                new = true;
            }
        }
        let Some(f) = self.followed.as_mut().filter(|f| f.stats.ssrc == ssrc) else {
            return Received::Other;
        };
        let ticks = (u128::from(now_ns) * u128::from(f.clock_rate) / 1_000_000_000) as i64;
        let verdict = f.stats.on_packet(seq, timestamp, ticks);
        if verdict != SeqVerdict::Rejected {
            f.rtp_from = from;
        }
        if new {
            Received::NewSource(verdict)
        } else {
            Received::Followed(verdict)
        }
    }

    /// Takes an RTCP datagram received at `now_ns` from `from`: a sender report of the
    /// followed source sets LSR and where reports go. Anything else is ignored.
    pub fn handle_rtcp(&mut self, now_ns: u64, from: SocketAddr, datagram: &[u8]) {
        let Some(f) = self.followed.as_mut() else { return };
        let Ok(mut compound) = Compound::parse(datagram) else {
            return;
        };
        // §6.1: an SR, if any, comes first in a compound packet.
        if let Some(Ok(Packet::Sr(sr))) = compound.next() {
            if sr.ssrc() == f.stats.ssrc {
                self.last_sr = Some(((sr.ntp_timestamp() >> 16) as u32, now_ns));
                f.rtcp_from = Some(from);
            }
        }
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_report_ns
    }

    /// The receiver report due at `now_ns`, if any, and where it goes.
    pub fn poll_report(&mut self, now_ns: u64) -> Option<(Vec<u8>, SocketAddr)> {
        let due = self.next_report_ns.filter(|&t| now_ns >= t)?;
        self.next_report_ns = Some(due + REPORT_INTERVAL_NS);
        let f = self.followed.as_mut().filter(|f| f.stats.is_valid())?;
        let (lsr, dlsr) = self.last_sr.map_or((0, 0), |(lsr, at)| {
            let since = now_ns.saturating_sub(at);
            (
                lsr,
                ((u128::from(since) << 16) / 1_000_000_000).min(u128::from(u32::MAX)) as u32,
            )
        });
        let s = &mut f.stats;
        let rb = ReportBlock::builder(s.ssrc)
            .fraction_lost(s.fraction_lost_since_last())
            // §6.4.1: a signed 24-bit count, clamped to its range.
            .cumulative_lost((s.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff)
            .extended_sequence_number(s.extended_max_seq())
            .interarrival_jitter(s.jitter())
            .last_sender_report_timestamp(lsr)
            .delay_since_last_sender_report_timestamp(dlsr);
        // Our own SSRC as a receiver: derived from the source's, so it is stable per run.
        let me = s.ssrc ^ 0x5a5a_5a5a;
        let mut out = vec![0u8; 64];
        let n = ReceiverReport::builder(me)
            .add_report_block(rb)
            .write_into(&mut out)
            .ok()?;
        out.truncate(n);
        let to = f.rtcp_from.unwrap_or_else(|| {
            let mut a = f.rtp_from;
            a.set_port(a.port().wrapping_add(1));
            a
        });
        Some((out, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{RtcpPacketWriterExt, SenderReport};

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn sender() -> SocketAddr {
        "10.0.0.2:40000".parse().unwrap()
    }

    fn sr(ssrc: u32, ntp: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 64];
        let n = SenderReport::builder(ssrc)
            .ntp_timestamp(ntp)
            .write_into(&mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    fn block(report: &[u8]) -> (u32, u32, u32, u8) {
        let Some(Ok(Packet::Rr(rr))) = Compound::parse(report).unwrap().next() else {
            panic!("an RR");
        };
        let rb = rr.report_blocks().next().unwrap();
        (
            rb.ssrc(),
            rb.last_sender_report_timestamp(),
            rb.delay_since_last_sender_report_timestamp(),
            rb.fraction_lost(),
        )
    }

    #[test]
    fn reports_start_two_seconds_in_then_every_five_and_go_where_srs_come_from() {
        let mut r = RecvSession::new();
        let t0 = 100 * S;
        for k in 0..400u64 {
            let now = t0 + k * 20 * MS;
            // Packet 50 is lost.
            if k != 50 {
                r.handle_rtp(now, sender(), 7, k as u16, (k * 960) as u32, Some(48_000));
            }
        }
        assert_eq!(r.poll_timeout(), Some(t0 + 2 * S));
        assert!(r.poll_report(t0 + 2 * S - 1).is_none());
        let (first, to) = r.poll_report(t0 + 2 * S).unwrap();
        assert_eq!(
            to,
            "10.0.0.2:40001".parse().unwrap(),
            "RTP source port + 1 before any SR"
        );
        let (ssrc, lsr, _, lost) = block(&first);
        assert_eq!((ssrc, lsr), (7, 0));
        assert_eq!(lost, ((1u32 << 8) / 400) as u8, "one of 400 lost");
        // An SR from another port: reports follow it, with LSR and DLSR.
        let rtcp_from: SocketAddr = "10.0.0.2:40555".parse().unwrap();
        r.handle_rtcp(t0 + 3 * S, rtcp_from, &sr(7, 0x1122_3344_5566_7788));
        // An SR of another source changes nothing.
        r.handle_rtcp(t0 + 3 * S, "10.0.0.9:1".parse().unwrap(), &sr(8, 1));
        assert!(r.poll_report(t0 + 6 * S).is_none(), "5 s after the first");
        let (second, to) = r.poll_report(t0 + 7 * S).unwrap();
        assert_eq!(to, rtcp_from);
        let (_, lsr, dlsr, _) = block(&second);
        assert_eq!(lsr, 0x3344_5566);
        assert_eq!(dlsr, 4 << 16, "4 s since the SR, in 1/65536 s");
    }

    #[test]
    fn a_stray_packet_does_not_capture_the_receiver() {
        let mut r = RecvSession::new();
        // One packet of SSRC 1, then SSRC 2's stream: 2 replaces 1, which never validated.
        assert!(matches!(
            r.handle_rtp(0, sender(), 1, 500, 0, Some(8000)),
            Received::NewSource(_)
        ));
        assert!(matches!(
            r.handle_rtp(MS, sender(), 2, 10, 0, Some(8000)),
            Received::NewSource(_)
        ));
        assert_eq!(
            r.handle_rtp(2 * MS, sender(), 2, 11, 160, Some(8000)),
            Received::Followed(SeqVerdict::Validated)
        );
        // Once valid, another SSRC is only counted as other.
        assert_eq!(r.handle_rtp(3 * MS, sender(), 1, 501, 160, Some(8000)), Received::Other);
        assert_eq!(r.followed().unwrap().stats.ssrc, 2);
        // A payload the caller cannot play is not followed.
        let mut r = RecvSession::new();
        assert_eq!(r.handle_rtp(0, sender(), 3, 1, 0, None), Received::Other);
        assert!(r.followed().is_none() && r.poll_timeout().is_none());
    }
}
