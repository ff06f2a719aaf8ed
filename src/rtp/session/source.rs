//! What a receiver knows about one RTP source, sans I/O: RFC 3550 Appendix A.1 (sequence
//! number validation and extension), A.3 (expected and lost packets, fraction lost since the
//! last report) and A.8 (interarrival jitter). Time is an argument (`arrival_ticks`, the
//! arrival time in RTP timestamp units), so tests drive it with any clock.
//!
//! # Source validation (A.1)
//!
//! A packet counts only when its sequence number fits the source's recent history:
//!
//! * **Probation.** A new source is not believed until [`MIN_SEQUENTIAL`] packets with
//!   consecutive sequence numbers arrived ([`SeqVerdict::Probation`], then
//!   [`SeqVerdict::Validated`]). A stray packet (a spoofed SSRC, a sender's last packet
//!   before a restart) does not create a source.
//! * **In order.** A sequence number ahead of the highest one by less than [`MAX_DROPOUT`]
//!   is taken ([`SeqVerdict::InOrder`]), the gap counted as loss; passing 65535 → 0 adds a
//!   cycle to the extended sequence number.
//! * **Late.** Less than [`MAX_MISORDER`] behind the highest is a late (reordered) packet, or
//!   a repeat of the highest one: counted as received ([`SeqVerdict::Late`],
//!   [`SeqVerdict::Duplicate`]). A.1 counts them, so `lost` can go negative (§6.4.1).
//! * **Very large jump.** Anything else is not believed ([`SeqVerdict::Rejected`]): one
//!   packet with a far sequence number (a forged one, or one from another sender of the same
//!   SSRC) changes nothing. Only when the *next* packet carries the sequence number right
//!   after it does the receiver assume the sender restarted and resynchronise
//!   ([`SeqVerdict::Restarted`]: every count starts again from that packet).
//!
//! One refinement of A.1's code: when probation ends, A.1 starts counting at the validating
//! packet, so the first [`MIN_SEQUENTIAL`] − 1 packets are neither received nor expected.
//! Here they are both, so a clean 150-packet stream reads `received = expected = 150`; loss
//! and fraction lost are the same either way.

/// A.1: consecutive packets needed before a new source is believed.
pub const MIN_SEQUENTIAL: u32 = 2;
/// A.1: the largest forward jump taken as loss rather than as a new sequence (3000 packets:
/// a minute of 20 ms packets).
pub const MAX_DROPOUT: u16 = 3000;
/// A.1: a packet this far or further behind the highest sequence number is a jump, not a
/// late (reordered) one.
pub const MAX_MISORDER: u16 = 100;
/// A.1: the sequence number space.
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`SourceStats::on_packet`] made of one packet (RFC 3550 A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The source is not valid yet; the packet is not counted (yet).
    Probation,
    /// This packet ended probation: it and the [`MIN_SEQUENTIAL`] − 1 before it count.
    Validated,
    /// Ahead of the highest sequence number (by less than [`MAX_DROPOUT`]).
    InOrder,
    /// A repeat of the highest sequence number.
    Duplicate,
    /// Behind the highest sequence number by less than [`MAX_MISORDER`].
    Late,
    /// A very large jump: not counted, and nothing changed but the resync candidate.
    Rejected,
    /// The packet after a rejected one, in sequence with it: the sender restarted its
    /// sequence; every count starts again from this packet.
    Restarted,
}

impl SeqVerdict {
    /// Whether the packet belongs to the validated stream (play it out, count it).
    pub fn is_valid(self) -> bool {
        !matches!(self, SeqVerdict::Probation | SeqVerdict::Rejected)
    }
}

/// One source as a receiver sees it: A.1's `source` structure plus the receiver-side
/// counters a probe shows.
#[derive(Clone, Debug)]
pub struct SourceStats {
    pub ssrc: u32,
    /// A.1 `max_seq`: the highest sequence number seen.
    max_seq: u16,
    /// A.1 `cycles`: sequence number wraps, shifted left 16 (added to `max_seq` it gives the
    /// extended highest sequence number).
    cycles: u32,
    /// A.1 `base_seq`: the extended sequence number counting starts at.
    base_seq: u32,
    /// A.1 `bad_seq`: after a very large jump, the sequence number that would confirm it
    /// (`RTP_SEQ_MOD + 1`, which no packet carries, when there is none).
    bad_seq: u32,
    /// A.1 `probation`: sequential packets still needed before the source is valid.
    probation: u32,
    /// No packet seen yet.
    fresh: bool,
    /// A.1 `received`: packets counted (late ones and repeats included).
    pub received: u64,
    /// A.3 `expected_prior` / `received_prior`: the counts at the previous report.
    expected_prior: u64,
    received_prior: u64,
    /// A.8: the previous packet's relative transit time (RTP units, modulo 2^32 as A.8's
    /// 32-bit arithmetic keeps it, so a timestamp wrap cancels out), and the jitter ×16.
    transit: Option<u32>,
    jitter_q4: u64,
    /// Late packets (see [`SeqVerdict::Late`]).
    pub reordered: u64,
    /// Repeats of the highest sequence number.
    pub duplicates: u64,
    /// Packets not believed: very large jumps.
    pub rejected: u64,
    /// Times the source was resynchronised after a jump was confirmed.
    pub restarts: u64,
}

impl SourceStats {
    pub fn new(ssrc: u32) -> SourceStats {
        SourceStats {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            fresh: true,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            reordered: 0,
            duplicates: 0,
            rejected: 0,
            restarts: 0,
        }
    }

    /// A.1 `init_seq`: counting starts at `seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Whether the source has passed probation (A.1).
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    /// Takes one packet of this source: its sequence number, its RTP timestamp and its
    /// arrival time in RTP timestamp units. Returns what A.1 made of it; only valid packets
    /// ([`SeqVerdict::is_valid`]) are counted and enter the jitter.
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival_ticks: i64) -> SeqVerdict {
        let verdict = self.update_seq(seq);
        let transit = (arrival_ticks as u32).wrapping_sub(rtp_ts);
        match verdict {
            SeqVerdict::Rejected => {}
            SeqVerdict::Probation | SeqVerdict::Restarted => self.transit = Some(transit),
            _ => {
                // A.8: D(i−1, i) = (Rj − Ri) − (Sj − Si); J += (|D| − J) / 16, kept ×16.
                if let Some(last) = self.transit {
                    let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
                    self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
                }
                self.transit = Some(transit);
            }
        }
        verdict
    }

    /// A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        if self.fresh {
            // A.1, a new source: init_seq(seq); max_seq = seq − 1; probation = MIN_SEQUENTIAL.
            self.fresh = false;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    // The refinement in the module docs: the probation packets count too.
                    let run = MIN_SEQUENTIAL - 1;
                    self.base_seq = u32::from(seq).wrapping_sub(run);
                    self.received = u64::from(MIN_SEQUENTIAL);
                    return SeqVerdict::Validated;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        let verdict = if udelta < MAX_DROPOUT {
            if udelta == 0 {
                self.duplicates += 1;
                SeqVerdict::Duplicate
            } else {
                if seq < self.max_seq {
                    // The sequence number wrapped: one more 64K cycle.
                    self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
                }
                self.max_seq = seq;
                SeqVerdict::InOrder
            }
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the other side restarted without telling us.
                self.init_seq(seq);
                self.restarts += 1;
                self.transit = None;
                SeqVerdict::Restarted
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                self.rejected += 1;
                return SeqVerdict::Rejected;
            }
        } else {
            self.reordered += 1;
            SeqVerdict::Late
        };
        self.received += 1;
        verdict
    }

    /// A.1: the extended highest sequence number (cycles + max_seq), as an RR carries it.
    pub fn extended_max_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// A.3: packets expected, from the first counted one to the highest (0 on probation).
    pub fn expected(&self) -> u64 {
        if !self.is_valid() {
            return 0;
        }
        u64::from(self.extended_max_seq().wrapping_sub(self.base_seq)) + 1
    }

    /// A.3: cumulative packets lost, expected − received; negative when late copies and
    /// repeats outnumber the losses (§6.4.1).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Packets lost so far, never below zero (for display).
    pub fn lost(&self) -> u64 {
        self.cumulative_lost().max(0) as u64
    }

    /// A.8: interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// A.3: the fraction lost since the previous call, as the 8-bit fixed point of §6.4.1
    /// (0 when packets arrived beyond those expected); the interval counters advance.
    pub fn fraction_lost_since_last(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected as i64 - self.expected_prior as i64;
        let received_interval = self.received as i64 - self.received_prior as i64;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval - received_interval;
        if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeqVerdict::*;

    /// Feeds `seqs` at 160 ticks a packet, timestamps matching arrival (no jitter).
    fn feed(s: &mut SourceStats, seqs: &[u16]) -> Vec<SeqVerdict> {
        seqs.iter()
            .map(|&q| s.on_packet(q, u32::from(q) * 160, i64::from(q) * 160))
            .collect()
    }

    #[test]
    fn a_new_source_needs_two_sequential_packets() {
        let mut s = SourceStats::new(1);
        assert_eq!(feed(&mut s, &[100]), [Probation]);
        assert!(!s.is_valid());
        assert_eq!((s.expected(), s.received), (0, 0));
        // Not in sequence: probation starts over from this packet.
        assert_eq!(feed(&mut s, &[500, 501, 502]), [Probation, Validated, InOrder]);
        assert!(s.is_valid());
        // The probation packet counts: 500..=502.
        assert_eq!((s.expected(), s.received, s.lost()), (3, 3, 0));
        // Probation across the wrap.
        let mut w = SourceStats::new(2);
        assert_eq!(feed(&mut w, &[65535, 0, 1]), [Probation, Validated, InOrder]);
        assert_eq!((w.expected(), w.received, w.extended_max_seq()), (3, 3, 1));
    }

    #[test]
    fn loss_reorder_duplicate_and_wrap() {
        let mut s = SourceStats::new(1);
        let v = feed(&mut s, &[65532, 65533, 65534, 65535, 1, 0, 0, 2]);
        assert_eq!(
            v,
            [Probation, Validated, InOrder, InOrder, InOrder, Late, Late, InOrder]
        );
        // 65532..=2 across the wrap is 7 numbers. 0 came late, twice: A.1 counts late copies
        // as received, so the count exceeds what was expected.
        assert_eq!((s.expected(), s.received, s.cumulative_lost(), s.lost()), (7, 8, -1, 0));
        assert_eq!((s.reordered, s.duplicates), (2, 0));
        assert_eq!(s.extended_max_seq(), 0x1_0002);
        assert_eq!(feed(&mut s, &[2]), [Duplicate]);
        assert_eq!((s.received, s.duplicates), (9, 1));
        let mut g = SourceStats::new(2);
        feed(&mut g, &[10, 11, 14, 15]);
        assert_eq!((g.expected(), g.lost()), (6, 2));
        assert_eq!(g.fraction_lost_since_last(), ((2u32 << 8) / 6) as u8);
        assert_eq!(g.fraction_lost_since_last(), 0, "nothing new since");
        feed(&mut g, &[17]);
        assert_eq!(
            g.fraction_lost_since_last(),
            128,
            "one of the two since the last report"
        );
    }

    #[test]
    fn one_far_packet_is_rejected_and_changes_nothing() {
        let mut s = SourceStats::new(1);
        feed(&mut s, &(1000..1050).collect::<Vec<_>>());
        // A forged packet 30 000 ahead, then the stream goes on.
        assert_eq!(feed(&mut s, &[31_050]), [Rejected]);
        let v = feed(&mut s, &(1050..1100).collect::<Vec<_>>());
        assert!(v.iter().all(|&v| v == InOrder), "{v:?}");
        assert_eq!((s.expected(), s.received, s.lost()), (100, 100, 0));
        assert_eq!((s.reordered, s.rejected, s.restarts), (0, 1, 0));
        // MAX_MISORDER behind is a jump as well; one less is a late packet.
        assert_eq!(feed(&mut s, &[1099 - MAX_MISORDER]), [Rejected]);
        assert_eq!(feed(&mut s, &[1099 - MAX_MISORDER + 1]), [Late]);
        // A gap just under MAX_DROPOUT is loss, not a jump: 1000..=4098 expected, 102 came.
        assert_eq!(feed(&mut s, &[1099 + MAX_DROPOUT - 1]), [InOrder]);
        assert_eq!((s.expected(), s.received, s.lost()), (3099, 102, 2997));
    }

    #[test]
    fn two_sequential_packets_after_a_jump_resynchronise() {
        let mut s = SourceStats::new(1);
        feed(&mut s, &[1, 2, 3]);
        // The sender restarted at 40 000: the first packet is doubted, the second confirms.
        assert_eq!(feed(&mut s, &[40_000, 40_001, 40_002]), [Rejected, Restarted, InOrder]);
        assert_eq!((s.expected(), s.received, s.lost(), s.restarts), (2, 2, 0, 1));
        assert_eq!(s.extended_max_seq(), 40_002);
        // A jump confirmed only later (not the very next number) is still rejected.
        assert_eq!(feed(&mut s, &[9, 40_003, 11]), [Rejected, InOrder, Rejected]);
    }

    #[test]
    fn jitter_follows_rfc3550_a8() {
        let mut s = SourceStats::new(1);
        // Perfectly paced: no jitter.
        feed(&mut s, &(0..50).collect::<Vec<_>>());
        assert_eq!(s.jitter(), 0);
        // Alternating ±40 ticks of arrival noise converges towards 80 (|D| is 80 each time).
        for i in 50..400u16 {
            let noise = if i % 2 == 0 { 40 } else { -40 };
            s.on_packet(i, u32::from(i) * 160, i64::from(i) * 160 + noise);
        }
        assert!((75..=80).contains(&s.jitter()), "{}", s.jitter());
        // A rejected packet with an absurd timestamp does not enter the jitter.
        let before = s.jitter();
        s.on_packet(30_000, 7, 1 << 40);
        assert_eq!(s.jitter(), before);
        // The RTP timestamp wrapping (A.8's arithmetic is modulo 2^32) is no jitter.
        let mut w = SourceStats::new(2);
        for i in 0..20u16 {
            let ts = (u32::MAX - 1600).wrapping_add(u32::from(i) * 160);
            w.on_packet(i, ts, 1_000_000 + i64::from(i) * 160);
        }
        assert_eq!(w.jitter(), 0);
    }

    #[test]
    fn hostile_sequences_never_panic_and_stay_consistent() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut s = SourceStats::new(9);
        let mut arrival = 0i64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            arrival += (x >> 48) as i64 % 500;
            let seq = if x & 3 == 0 {
                x as u16
            } else {
                (s.extended_max_seq() as u16).wrapping_add((x >> 20) as u16 % 8)
            };
            let (received, rejected) = (s.received, s.rejected);
            let v = s.on_packet(seq, (x >> 16) as u32, arrival);
            if x.is_multiple_of(97) {
                s.fraction_lost_since_last();
            }
            assert!(s.expected() <= 1 << 32);
            match v {
                Rejected => assert_eq!((s.received, s.rejected), (received, rejected + 1)),
                Probation => assert_eq!(s.received, 0),
                Validated => assert_eq!(s.received, u64::from(MIN_SEQUENTIAL)),
                Restarted => assert_eq!(s.received, 1),
                _ => assert_eq!(s.received, received + 1),
            }
        }
    }
}
