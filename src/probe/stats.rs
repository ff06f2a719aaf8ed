//! Receiver-side statistics of one RTP source, sans I/O: sequence tracking and loss (RFC 3550
//! Appendix A.1 / A.3), interarrival jitter (A.8), and what a receiver report says (§6.4.1).

/// One source as a receiver sees it.
#[derive(Clone, Debug, Default)]
pub struct SourceStats {
    pub ssrc: u32,
    base_seq: u32,
    /// Highest sequence number seen, extended with the wrap count (A.1).
    max_ext_seq: u32,
    started: bool,
    pub received: u64,
    /// Packets older than the newest one seen (late; includes late copies).
    pub reordered: u64,
    /// Repeats of the newest packet.
    pub duplicates: u64,
    /// Interarrival jitter in RTP timestamp units, ×16 as A.8 keeps it.
    jitter_q4: u64,
    last_transit: Option<i64>,
    /// For the fraction lost since the previous report (A.3).
    expected_prior: u64,
    received_prior: u64,
}

impl SourceStats {
    pub fn new(ssrc: u32) -> SourceStats {
        SourceStats {
            ssrc,
            ..SourceStats::default()
        }
    }

    /// Takes one packet: its sequence number and RTP timestamp, and the arrival time expressed
    /// in the same clock units (`arrival_ticks`).
    pub fn on_packet(&mut self, seq: u16, rtp_ts: u32, arrival_ticks: i64) {
        let seq = u32::from(seq);
        if !self.started {
            self.started = true;
            self.base_seq = seq;
            self.max_ext_seq = seq;
        } else {
            let max16 = self.max_ext_seq & 0xffff;
            let delta = (seq.wrapping_sub(max16)) & 0xffff;
            if delta == 0 {
                self.duplicates += 1;
                return;
            } else if delta < 0x8000 {
                // In order (possibly after a gap); a wrap bumps the cycle count.
                let cycles = self.max_ext_seq & 0xffff_0000;
                let cycles = if seq < max16 {
                    cycles.wrapping_add(0x1_0000)
                } else {
                    cycles
                };
                self.max_ext_seq = cycles | seq;
            } else {
                self.reordered += 1;
            }
        }
        self.received += 1;
        // A.8: D = (Rj − Ri) − (Sj − Si); J += (|D| − J) / 16.
        let transit = arrival_ticks - i64::from(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            let j = self.jitter_q4 as i64;
            self.jitter_q4 = (j + d as i64 - ((j + 8) >> 4)).max(0) as u64;
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected so far (A.3).
    pub fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        u64::from(self.max_ext_seq.wrapping_sub(self.base_seq)) + 1
    }

    /// Packets lost so far (negative with duplicates, clamped at 0 here).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    pub fn extended_max_seq(&self) -> u32 {
        self.max_ext_seq
    }

    /// Fraction lost since the previous call, as the 8-bit fixed point of §6.4.1, and the
    /// interval counters advance (A.3).
    pub fn fraction_lost_since_last(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost = expected_interval.saturating_sub(received_interval);
        if expected_interval == 0 || lost == 0 {
            0
        } else {
            ((lost << 8) / expected_interval).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reorder_duplicate_and_wrap() {
        let mut s = SourceStats::new(1);
        for (i, seq) in [65533u16, 65534, 65535, 1, 0, 0, 2].iter().enumerate() {
            s.on_packet(*seq, i as u32 * 160, i as i64 * 160);
        }
        // 65533..=2 across the wrap is 6 numbers. 0 came late (twice): A.1 counts late
        // copies as received, so the count exceeds what was expected and nothing is lost.
        assert_eq!((s.expected(), s.received, s.lost()), (6, 7, 0));
        assert_eq!((s.reordered, s.duplicates), (2, 0));
        assert_eq!(s.extended_max_seq(), 0x1_0002);
        // A repeat of the newest packet is recognised as a duplicate.
        s.on_packet(2, 6 * 160, 6 * 160);
        assert_eq!((s.received, s.duplicates), (7, 1));
        let mut g = SourceStats::new(2);
        for seq in [10u16, 11, 14, 15] {
            g.on_packet(seq, u32::from(seq) * 160, i64::from(seq) * 160);
        }
        assert_eq!((g.expected(), g.lost()), (6, 2));
        assert_eq!(g.fraction_lost_since_last(), ((2u32 << 8) / 6) as u8);
        assert_eq!(g.fraction_lost_since_last(), 0, "nothing new since");
    }

    #[test]
    fn jitter_follows_rfc3550_a8() {
        let mut s = SourceStats::new(1);
        // Perfectly paced: no jitter.
        for i in 0..50 {
            s.on_packet(i, u32::from(i) * 160, i64::from(i) * 160);
        }
        assert_eq!(s.jitter(), 0);
        // Alternating ±40 ticks of arrival noise converges towards 80 (|D| is 80 each time).
        for i in 50..400u16 {
            let noise = if i % 2 == 0 { 40 } else { -40 };
            s.on_packet(i, u32::from(i) * 160, i64::from(i) * 160 + noise);
        }
        assert!((75..=80).contains(&s.jitter()), "{}", s.jitter());
    }
}
