//! RTP header stamping (RFC 3550 §5.1), written with rtp-types into a caller's buffer.
//!
//! * Sequence number, timestamp and SSRC start random (§5.1: "SHOULD be random").
//! * The timestamp follows the audio clock: it is derived from the index of the frame's first
//!   sample, so samples lost in an overrun advance it by exactly the time lost (§5.1).
//! * The marker bit is set on the first packet and on the first packet after any
//!   discontinuity (RFC 3551 §4.1: first packet of a talkspurt).

use rtp_types::RtpPacketBuilder;

/// Sample indices at the capture rate → RTP clock ticks (Opus at 16 kHz: × 48000/16000),
/// modulo 2^32 (§5.1).
#[derive(Clone, Copy, Debug)]
pub struct RtpClock {
    num: u64,
    den: u64,
}

impl RtpClock {
    pub fn new(clock_rate: u32, sample_rate: u32) -> RtpClock {
        let g = gcd(u64::from(clock_rate), u64::from(sample_rate)).max(1);
        RtpClock {
            num: u64::from(clock_rate) / g,
            den: (u64::from(sample_rate) / g).max(1),
        }
    }

    /// The ticks since sample 0 of the sample with index `sample_index`.
    pub fn ticks(self, sample_index: u64) -> u32 {
        (u128::from(sample_index) * u128::from(self.num) / u128::from(self.den)) as u32
    }
}

/// Stamps RTP headers onto encoded payloads. No I/O, no allocation.
pub struct Packetizer {
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    ts_base: u32,
    clock: RtpClock,
    first: bool,
}

/// The header fields of one packet, as stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
}

impl Packetizer {
    /// `seq0` and `ts_base` are the random initial values; `sample_rate` is the capture rate.
    pub fn new(ssrc: u32, payload_type: u8, seq0: u16, ts_base: u32, clock_rate: u32, sample_rate: u32) -> Packetizer {
        Packetizer {
            ssrc,
            payload_type,
            next_seq: seq0,
            ts_base,
            clock: RtpClock::new(clock_rate, sample_rate),
            first: true,
        }
    }

    /// The sequence number the next packet gets.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// The RTP timestamp of the sample with index `sample_index` (modulo 2^32, §5.1).
    pub fn timestamp_of(&self, sample_index: u64) -> u32 {
        self.ts_base.wrapping_add(self.clock.ticks(sample_index))
    }

    /// Writes header + `payload` into `out` for the frame starting at `sample_index`;
    /// `discontinuity` marks a gap before this frame. Returns the packet length and the stamp.
    pub fn write(
        &mut self,
        sample_index: u64,
        discontinuity: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, Stamp), rtp_types::RtpWriteError> {
        let stamp = Stamp {
            seq: self.next_seq,
            timestamp: self.timestamp_of(sample_index),
            marker: self.first || discontinuity,
        };
        let len = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.payload_type)
            .sequence_number(stamp.seq)
            .timestamp(stamp.timestamp)
            .ssrc(self.ssrc)
            .marker_bit(stamp.marker)
            .payload(payload)
            .write_into(out)?;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.first = false;
        Ok((len, stamp))
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_types::RtpPacket;

    #[test]
    fn header_round_trips_through_rtp_types() {
        let mut p = Packetizer::new(0xdead_beef, 96, 65535, 4_294_967_000, 48_000, 48_000);
        let mut buf = [0u8; 64];
        let (n, s) = p.write(0, false, &[1, 2, 3], &mut buf).unwrap();
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(
            (pkt.version(), pkt.payload_type(), pkt.ssrc(), pkt.marker_bit()),
            (2, 96, 0xdead_beef, true)
        );
        assert_eq!(
            (pkt.sequence_number(), pkt.timestamp(), pkt.payload()),
            (65535, 4_294_967_000, &[1u8, 2, 3][..])
        );
        assert!(s.marker);
        // Next packet: sequence wraps, timestamp wraps, no marker.
        let (n, s) = p.write(960, false, &[4], &mut buf).unwrap();
        let pkt = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(
            (s.seq, s.timestamp, s.marker),
            (0, 4_294_967_000u32.wrapping_add(960), false)
        );
        assert!(!pkt.marker_bit());
    }

    #[test]
    fn discontinuity_sets_marker_and_keeps_the_audio_clock() {
        let mut p = Packetizer::new(1, 0, 100, 0, 8000, 8000);
        let mut buf = [0u8; 64];
        p.write(0, false, &[0], &mut buf).unwrap();
        p.write(160, false, &[0], &mut buf).unwrap();
        // 1000 samples lost in an overrun: the timestamp jumps by them, the sequence does not.
        let (_, s) = p.write(1320, true, &[0], &mut buf).unwrap();
        assert_eq!(
            s,
            Stamp {
                seq: 102,
                timestamp: 1320,
                marker: true
            }
        );
    }

    #[test]
    fn opus_clock_runs_at_48k_for_lower_rates() {
        let p = Packetizer::new(1, 96, 0, 10, 48_000, 16_000);
        assert_eq!(p.timestamp_of(320), 10 + 960);
    }

    #[test]
    fn too_small_output_is_an_error_not_a_panic() {
        let mut p = Packetizer::new(1, 96, 0, 0, 48_000, 48_000);
        let mut buf = [0u8; 13];
        assert!(p.write(0, false, &[0; 8], &mut buf).is_err());
    }
}
