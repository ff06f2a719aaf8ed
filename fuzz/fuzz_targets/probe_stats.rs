//! The probe's receive statistics, `rtpmic::probe::stats::SourceStats` (RFC 3550 A.1, A.3,
//! A.8), on a hostile packet sequence.
//!
//! Input: 8-byte records: sequence number (2 bytes), RTP timestamp (4), arrival step (2, in
//! RTP clock ticks; arrival time only moves forward, as the probe's clock does). A record
//! whose step is 0xffff asks for a receiver report's fraction lost instead.
//!
//! Checks: never panics (arithmetic overflow included: fuzz builds keep overflow checks);
//! every packet is counted once, as received or as a duplicate; reordered ≤ received;
//! lost ≤ expected; the extended highest sequence number ends in the newest in-order
//! sequence number; jitter never exceeds the largest transit difference seen.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtpmic::probe::stats::SourceStats;

fuzz_target!(|data: &[u8]| {
    let mut s = SourceStats::new(0x1234);
    let mut arrival: i64 = 0;
    let mut packets = 0u64;
    let mut last_transit: Option<i64> = None;
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
        let (received, duplicates, reordered) = (s.received, s.duplicates, s.reordered);
        s.on_packet(seq, ts, arrival);
        packets += 1;
        if s.received > received {
            // Counted: the jitter's transit difference was taken.
            let transit = arrival - i64::from(ts);
            if let Some(l) = last_transit {
                max_d = max_d.max((transit - l).unsigned_abs());
            }
            last_transit = Some(transit);
        }
        assert_eq!(
            (s.received - received) + (s.duplicates - duplicates),
            1,
            "a packet is received or a duplicate"
        );
        assert_eq!(s.received + s.duplicates, packets);
        if s.received > received && s.reordered == reordered {
            assert_eq!(
                s.extended_max_seq() & 0xffff,
                u32::from(seq),
                "in order: the new highest"
            );
        }
        assert!(s.reordered < s.received.max(1), "{s:?}");
        assert!(s.lost() <= s.expected());
        assert!(s.expected() >= 1 && s.expected() <= 1 << 32);
        assert!(
            u64::from(s.jitter()) <= max_d,
            "jitter {} above the largest |D| {max_d}",
            s.jitter()
        );
    }
});
