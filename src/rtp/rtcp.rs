//! RTCP for a sender (RFC 3550 §6), sans I/O: the compound SR + SDES(CNAME) [+ BYE] packets
//! and the transmission interval of §6.3 / Appendix A.7.
//!
//! The packets are laid out once, at start-up, by rtcp-types' builders (which allocate). On
//! the hot path only the four SR fields that change are rewritten in place, at the fixed
//! offsets of the SR wire format (§6.4.1): a builder per report would allocate every time.

use rtcp_types::{Bye, RtcpPacketWriter, RtcpPacketWriterExt, Sdes, SdesChunk, SdesItem, SenderReport};

/// §6.4.1: NTP timestamp at bytes 8..16, RTP timestamp 16..20, sender's packet count 20..24,
/// sender's octet count 24..28 of the SR.
const SR_NTP: usize = 8;
const SR_RTP: usize = 16;
const SR_PACKETS: usize = 20;
const SR_OCTETS: usize = 24;
/// Length of an SR without report blocks (§6.4.1).
const SR_LEN: usize = 28;

/// Preformatted RTCP packets of one sender.
pub struct RtcpPackets {
    /// SR + SDES(CNAME), the regular report.
    report: Vec<u8>,
    /// SR + SDES(CNAME) + BYE, sent once at shutdown (§6.6).
    bye: Vec<u8>,
}

/// What a sender report says at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds since 1900 << 32 | fraction) of the instant.
    pub ntp: u64,
    /// The RTP timestamp of the same instant on the media clock.
    pub rtp_timestamp: u32,
    pub packets: u32,
    /// Payload octets sent (headers excluded, §6.4.1).
    pub octets: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("RTCP layout: {0:?}")]
pub struct LayoutError(rtcp_types::RtcpWriteError);

impl RtcpPackets {
    /// Lays out the packets for `ssrc` and `cname` (allocates: call at start-up).
    pub fn new(ssrc: u32, cname: &str) -> Result<RtcpPackets, LayoutError> {
        let sr = SenderReport::builder(ssrc);
        let sdes =
            Sdes::builder().add_chunk(SdesChunk::builder(ssrc).add_item(SdesItem::builder(SdesItem::CNAME, cname)));
        let bye = Bye::builder().add_source(ssrc).reason("shutdown");
        let mut report = vec![0u8; SR_LEN + sdes.calculate_size().map_err(LayoutError)?];
        let n = sr.write_into(&mut report).map_err(LayoutError)?;
        debug_assert_eq!(n, SR_LEN);
        sdes.write_into(&mut report[n..]).map_err(LayoutError)?;
        let mut with_bye = report.clone();
        let start = with_bye.len();
        with_bye.resize(start + bye.calculate_size().map_err(LayoutError)?, 0);
        bye.write_into(&mut with_bye[start..]).map_err(LayoutError)?;
        Ok(RtcpPackets { report, bye: with_bye })
    }

    /// The report as last written.
    pub fn last_report(&self) -> &[u8] {
        &self.report
    }

    /// The goodbye as last written.
    pub fn last_bye(&self) -> &[u8] {
        &self.bye
    }

    /// The regular compound report with `info` written in. No allocation.
    pub fn report(&mut self, info: SenderInfo) -> &[u8] {
        write_sender_info(&mut self.report, info);
        &self.report
    }

    /// The goodbye compound with `info` written in. No allocation.
    pub fn bye(&mut self, info: SenderInfo) -> &[u8] {
        write_sender_info(&mut self.bye, info);
        &self.bye
    }
}

fn write_sender_info(buf: &mut [u8], i: SenderInfo) {
    buf[SR_NTP..SR_NTP + 8].copy_from_slice(&i.ntp.to_be_bytes());
    buf[SR_RTP..SR_RTP + 4].copy_from_slice(&i.rtp_timestamp.to_be_bytes());
    buf[SR_PACKETS..SR_PACKETS + 4].copy_from_slice(&i.packets.to_be_bytes());
    buf[SR_OCTETS..SR_OCTETS + 4].copy_from_slice(&i.octets.to_be_bytes());
}

/// Wall-clock time as a 64-bit NTP timestamp (RFC 5905 §6: seconds since 1900).
pub fn ntp_from_unix(secs: u64, nanos: u32) -> u64 {
    let s = secs + 2_208_988_800;
    let frac = (u64::from(nanos) << 32) / 1_000_000_000;
    (s << 32) | frac
}

/// The wall clock (CLOCK_REALTIME) now, as an NTP timestamp; no allocation.
pub fn ntp_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ntp_from_unix(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The RTCP transmission interval of RFC 3550 §6.3.1 / Appendix A.7 for a session where we are
/// the only sender. Pure: the random factor and the time are arguments.
pub struct RtcpScheduler {
    /// Session bandwidth in octets per second (RTP payload + headers).
    session_bw: f64,
    avg_rtcp_size: f64,
    initial: bool,
}

/// §6.2: the minimum interval, halved before the first report (§6.3.1 "initial").
pub const T_MIN_S: f64 = 5.0;

impl RtcpScheduler {
    /// `session_bw` in octets/s; `packet_size` is our compound report's size in octets.
    pub fn new(session_bw: f64, packet_size: usize) -> RtcpScheduler {
        // §6.3.1: avg_rtcp_size includes UDP and IP headers (28 for IPv4).
        RtcpScheduler {
            session_bw,
            avg_rtcp_size: (packet_size + 28) as f64,
            initial: true,
        }
    }

    /// The delay in nanoseconds until the next report, given `members` participants (≥ 1,
    /// us included) and a uniform random number `r` in [0, 1).
    pub fn next_interval_ns(&mut self, members: usize, r: f64) -> u64 {
        let td = self.deterministic_s(members, self.initial);
        self.initial = false;
        // §6.3.1: randomise to [0.5, 1.5] × Td, then divide by e − 3/2 to compensate for
        // timer reconsideration converging below the intended average.
        let t = td * (0.5 + r.clamp(0.0, 1.0)) / (std::f64::consts::E - 1.5);
        (t * 1e9) as u64
    }

    /// Our deterministic interval Td as a sender (§6.3.1, no randomisation, not the initial
    /// halving) for `members`: what [`RtcpScheduler::next_interval_ns`] randomises around.
    #[cfg(test)]
    pub(crate) fn deterministic_interval_ns(&self, members: usize) -> u64 {
        (self.deterministic_s(members, false) * 1e9) as u64
    }

    fn deterministic_s(&self, members: usize, initial: bool) -> f64 {
        // §6.3.1: while the senders (just us) are at most a quarter of the members, the
        // senders share 25 % of the RTCP bandwidth (5 % of the session) and n counts the
        // senders; otherwise everyone shares all of it and n counts the members.
        let members = members.max(1) as f64;
        let (rtcp_bw, n) = if 1.0 <= 0.25 * members {
            (0.05 * self.session_bw * 0.25, 1.0)
        } else {
            (0.05 * self.session_bw, members)
        };
        let t_min = if initial { T_MIN_S / 2.0 } else { T_MIN_S };
        t_min.max(self.avg_rtcp_size * n / rtcp_bw.max(1.0))
    }

    /// Folds the size of a report we sent into the average (§6.3.3).
    pub fn sent(&mut self, packet_size: usize) {
        self.avg_rtcp_size = (1.0 / 16.0) * (packet_size + 28) as f64 + (15.0 / 16.0) * self.avg_rtcp_size;
    }
}

/// RFC 3550 §6.3.5: a participant silent for this many deterministic intervals times out.
pub const TIMEOUT_MULTIPLIER: f64 = 5.0;

/// The deterministic reporting interval Td of a receiver (§6.3.1 with `we_sent` false, no
/// randomisation, no halving for a first report), in nanoseconds: what §6.3.5 multiplies by
/// [`TIMEOUT_MULTIPLIER`] to time receivers out. `session_bw` in octets/s, `avg_rtcp_size`
/// in octets (UDP and IP headers included, §6.3.3), `members` counting us, `senders` the
/// members that send RTP. Pure.
pub fn receiver_interval_ns(session_bw: f64, avg_rtcp_size: f64, members: usize, senders: usize) -> u64 {
    let rtcp_bw = 0.05 * session_bw;
    let members = members.max(1) as f64;
    let senders = senders as f64;
    // While senders are at most a quarter of the members, receivers share 75 % of the RTCP
    // bandwidth among themselves; otherwise everyone shares all of it.
    let (bw, n) = if senders > 0.0 && senders <= 0.25 * members {
        (0.75 * rtcp_bw, members - senders)
    } else {
        (rtcp_bw, members)
    };
    let td = T_MIN_S.max(avg_rtcp_size.max(0.0) * n / bw.max(1.0));
    (td * 1e9) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcp_types::{Compound, Packet};

    #[test]
    fn report_parses_back_with_the_fields_written_in() {
        let mut p = RtcpPackets::new(0xdead_beef, "rtpmic@pi").unwrap();
        let info = SenderInfo {
            ntp: 0x1122_3344_5566_7788,
            rtp_timestamp: 960_000,
            packets: 50,
            octets: 5000,
        };
        let bytes = p.report(info).to_vec();
        let compound = Compound::parse(&bytes).unwrap();
        let packets: Vec<Packet> = compound.collect::<Result<_, _>>().unwrap();
        assert_eq!(packets.len(), 2);
        let Packet::Sr(sr) = &packets[0] else {
            panic!("SR first (§6.1)")
        };
        assert_eq!(
            (sr.ssrc(), sr.ntp_timestamp(), sr.rtp_timestamp()),
            (0xdead_beef, info.ntp, 960_000)
        );
        assert_eq!((sr.packet_count(), sr.octet_count()), (50, 5000));
        let Packet::Sdes(sdes) = &packets[1] else {
            panic!("SDES second")
        };
        let chunk = sdes.chunks().next().unwrap();
        let item = chunk.items().next().unwrap();
        assert_eq!(
            (chunk.ssrc(), item.type_(), item.value()),
            (0xdead_beef, SdesItem::CNAME, &b"rtpmic@pi"[..])
        );
    }

    #[test]
    fn bye_is_last_in_its_compound() {
        let mut p = RtcpPackets::new(7, "x").unwrap();
        let bytes = p
            .bye(SenderInfo {
                ntp: 1,
                rtp_timestamp: 2,
                packets: 3,
                octets: 4,
            })
            .to_vec();
        let packets: Vec<Packet> = Compound::parse(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert!(matches!(packets.last(), Some(Packet::Bye(b)) if b.ssrcs().collect::<Vec<_>>() == vec![7]));
        assert!(matches!(packets[0], Packet::Sr(_)));
    }

    #[test]
    fn ntp_epoch_and_fraction() {
        assert_eq!(ntp_from_unix(0, 0) >> 32, 2_208_988_800);
        assert_eq!(ntp_from_unix(0, 500_000_000) & 0xffff_ffff, 1 << 31);
    }

    #[test]
    fn a_big_session_spreads_reports_beyond_the_minimum() {
        let mut s = RtcpScheduler::new(8000.0, 2000);
        s.next_interval_ns(8, 0.5);
        // rtcp_bw = 0.05 × 8000 × 0.25 = 100 B/s; Td = 2028 / 100 = 20.28 s > 5 s.
        let t = s.next_interval_ns(8, 0.5) as f64 / 1e9;
        assert!((t - 20.28 / (std::f64::consts::E - 1.5)).abs() < 1e-3, "{t}");
    }

    #[test]
    fn receivers_report_every_five_seconds_unless_the_session_is_large() {
        // 32 kb/s Opus in 20 ms packets: 6000 B/s; two members, one of them a sender.
        assert_eq!(receiver_interval_ns(6000.0, 100.0, 2, 1), 5_000_000_000);
        // 300 receivers of 100-byte reports share 75 % of 300 B/s: 299 × 100 / 225 s.
        let td = receiver_interval_ns(6000.0, 100.0, 300, 1) as f64 / 1e9;
        assert!((td - 299.0 * 100.0 / 225.0).abs() < 1e-6, "{td}");
        // Three members, one sender (more than a quarter): all share 300 B/s, n = 3.
        let small = receiver_interval_ns(6000.0, 1000.0, 3, 1) as f64 / 1e9;
        assert!((small - 10.0).abs() < 1e-6, "{small}");
    }

    #[test]
    fn interval_is_randomised_around_five_seconds_and_first_is_shorter() {
        // 32 kb/s Opus: ~4 kB/s session bandwidth, so T_MIN dominates.
        let mut s = RtcpScheduler::new(4000.0, 60);
        let first = s.next_interval_ns(2, 0.5) as f64 / 1e9;
        assert!((first - 2.5 / (std::f64::consts::E - 1.5)).abs() < 1e-6, "{first}");
        let lo = s.next_interval_ns(2, 0.0) as f64 / 1e9;
        let hi = s.next_interval_ns(2, 0.999_999) as f64 / 1e9;
        assert!(
            (lo - 2.5 / 1.218_281_828).abs() < 1e-3 && (hi - 7.5 / 1.218_281_828).abs() < 1e-3,
            "{lo} {hi}"
        );
    }
}
