//! The probe's receive statistics, `rtpmic::rtp::session::source::SourceStats` (RFC 3550 A.1, A.3,
//! A.8), on a hostile packet sequence.
//!
//! Input: 8-byte records: sequence number (2 bytes), RTP timestamp (4), arrival step (2, in
//! RTP clock ticks; arrival time only moves forward, as the probe's clock does). A record
//! whose step is 0xffff asks for a receiver report's fraction lost instead.
//!
//! Checks: never panics (arithmetic overflow included: fuzz builds keep overflow checks);
//! each verdict counts as A.1 says: a rejected packet changes no count, a probation packet
//! leaves the source uncounted, validation counts MIN_SEQUENTIAL packets, a resync starts
//! again at 1, any other packet adds one; expected ≤ 2^32; an in-order packet becomes the
//! highest sequence number; jitter never exceeds the largest transit difference (modulo
//! 2^32, as A.8 computes it) between counted packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtpmic::rtp::session::source::{SeqVerdict, SourceStats, MIN_SEQUENTIAL};

fuzz_target!(|data: &[u8]| {
    let mut s = SourceStats::new(0x1234);
    let mut arrival: i64 = 0;
    let mut last_transit: Option<u32> = None;
    let mut max_d: u64 = 0;
    for r in data.chunks_exact(8) {
        let seq = u16::from_be_bytes([r[0], r[1]]);
        let ts = u32::from_be_bytes([r[2], r[3], r[4], r[5]]);
        let step = u16::from_be_bytes([r[6], r[7]]);
        if step == 0xffff {
            let _fraction = s.fraction_lost_since_last();
            continue;
        }
        arrival += i64::from(step);
        let (received, rejected) = (s.received, s.rejected);
        let verdict = s.on_packet(seq, ts, arrival);
        let transit = (arrival as u32).wrapping_sub(ts);
        match verdict {
            SeqVerdict::Rejected => assert_eq!((s.received, s.rejected), (received, rejected + 1)),
            SeqVerdict::Probation => assert_eq!(s.received, 0),
            SeqVerdict::Validated => assert_eq!(s.received, u64::from(MIN_SEQUENTIAL)),
            SeqVerdict::Restarted => assert_eq!(s.received, 1),
            _ => assert_eq!(s.received, received + 1),
        }
        match verdict {
            SeqVerdict::Rejected => {}
            SeqVerdict::Probation | SeqVerdict::Restarted => last_transit = Some(transit),
            _ => {
                if let Some(l) = last_transit {
                    max_d = max_d.max(u64::from((transit.wrapping_sub(l) as i32).unsigned_abs()));
                }
                last_transit = Some(transit);
            }
        }
        if matches!(verdict, SeqVerdict::InOrder | SeqVerdict::Validated | SeqVerdict::Restarted) {
            assert_eq!(s.extended_max_seq() & 0xffff, u32::from(seq), "the new highest");
        }
        assert!(s.expected() <= 1 << 32);
        assert!(s.lost() <= s.expected());
        assert!(
            u64::from(s.jitter()) <= max_d,
            "jitter {} above the largest |D| {max_d}",
            s.jitter()
        );
    }
});
