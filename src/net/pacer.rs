//! Paced release (`RTPMIC_PACING=on`): each packet leaves at a fixed offset after its frame's
//! capture time instead of as soon as it is encoded, so the interval between packets does
//! not wobble with the encode time (which varies with the signal). Pure: times are
//! arguments.
//!
//! * The capture time is the send session's
//!   [`CaptureClock`](crate::rtp::capture_clock::CaptureClock) estimate: the lower envelope of the read times on the
//!   media clock. Reads can be late (scheduling, several periods in one read) but never
//!   early, so a late read moves neither the clock nor the following releases; DTX silence
//!   and overrun gaps show in the RTP timestamp and need nothing special.
//! * The offset covers how long after that capture time packets are usually ready (read
//!   lateness + hand-over + encoding): a high quantile of it, tracked without storing
//!   samples: a packet readier later than the quantile raises it by at most
//!   [`Pacer::new`]'s step (1/64 of a frame), any other lowers it by 1/[`DOWN_RATIO`] of
//!   that, so it settles where about one packet in [`DOWN_RATIO`] is later (≈ p99.8) and a
//!   one-off slow frame costs almost no lasting latency. [`MARGIN_NS`] is added on top, and
//!   the offset never exceeds half a frame. A packet ready after its release time goes at
//!   once.

/// Added to the tracked quantile.
pub const MARGIN_NS: u64 = 50_000;
/// Downward steps per upward step of the quantile tracker.
pub const DOWN_RATIO: u64 = 512;

/// Release-time calculator for one stream.
pub struct Pacer {
    period_ns: u64,
    /// Largest upward step of the quantile per packet.
    step_ns: u64,
    /// The tracked quantile of "ready − capture"; `None` before the first packet.
    quantile_ns: Option<u64>,
}

impl Pacer {
    /// For frames of `period_ns`.
    pub fn new(period_ns: u64) -> Pacer {
        Pacer {
            period_ns,
            step_ns: (period_ns / 64).max(DOWN_RATIO),
            quantile_ns: None,
        }
    }

    /// When to send a packet whose audio was captured at `estimate` (the capture clock's
    /// estimate) and that became ready at `ready_ns` (both CLOCK_MONOTONIC).
    pub fn release_after(&mut self, estimate: u64, ready_ns: u64) -> u64 {
        let lateness = ready_ns.saturating_sub(estimate);
        let q = match self.quantile_ns {
            None => lateness,
            Some(q) if lateness > q => q + (lateness - q).min(self.step_ns),
            Some(q) => q.saturating_sub(self.step_ns / DOWN_RATIO),
        };
        self.quantile_ns = Some(q);
        estimate + self.offset_ns()
    }

    /// The current hold after the estimated capture time.
    pub fn offset_ns(&self) -> u64 {
        // Never more than half a frame: beyond that pacing costs more than it smooths.
        (self.quantile_ns.unwrap_or(0) + MARGIN_NS).min(self.period_ns / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::capture_clock::CaptureClock;

    const MS: u64 = 1_000_000;

    /// The pacer with the capture clock the send session keeps beside it.
    struct Paced {
        pacer: Pacer,
        clock: CaptureClock,
    }

    impl Paced {
        fn new(period_ns: u64) -> Paced {
            Paced {
                pacer: Pacer::new(period_ns),
                clock: CaptureClock::new(48_000),
            }
        }

        /// The packet with RTP timestamp `rtp_ts`, read at `captured_ns`, ready at `ready_ns`.
        fn release_at(&mut self, rtp_ts: u32, captured_ns: u64, ready_ns: u64) -> u64 {
            let estimate = self.clock.observe(rtp_ts, captured_ns);
            self.pacer.release_after(estimate, ready_ns)
        }
    }

    #[test]
    fn release_times_are_evenly_spaced_despite_capture_and_encode_jitter() {
        let mut p = Paced::new(20 * MS);
        let mut releases = Vec::new();
        for k in 0..2000u64 {
            // Reads come 0..200 µs late, encoding takes 200..400 µs.
            let captured = 1_000 * MS + k * 20 * MS + (k % 3) * 100_000;
            let ready = captured + 200_000 + (k % 5) * 50_000;
            let at = p.release_at((k * 960) as u32, captured, ready);
            releases.push(at.max(ready));
        }
        let steady = &releases[1000..];
        for w in steady.windows(2) {
            let d = w[1] as i64 - w[0] as i64 - (20 * MS) as i64;
            // The quantile moves by fractions of a microsecond per packet.
            assert!(d.abs() < 20_000, "interval off by {d} ns");
        }
        // The hold covers the slowest (a 400 µs encode after a read 200 µs late).
        let offset = p.pacer.offset_ns();
        assert!((600_000..700_000).contains(&offset), "{offset}");
    }

    #[test]
    fn a_late_read_costs_its_own_packet_not_the_next_ones() {
        let mut p = Paced::new(20 * MS);
        let t0 = 1_000 * MS;
        let mut release = |k: u64, late: u64| {
            let captured = t0 + k * 20 * MS + late;
            p.release_at((k * 960) as u32, captured, captured + 300_000)
        };
        for k in 0..100 {
            release(k, 0);
        }
        let before = release(100, 0) - (t0 + 100 * 20 * MS);
        // A read 8 ms late: that packet is late; the hold grows by one step at most.
        release(101, 8 * MS);
        let after = release(102, 0) - (t0 + 102 * 20 * MS);
        assert!(after <= before + 20 * MS / 64, "{before} -> {after}");
    }

    #[test]
    fn dtx_gaps_need_nothing_and_the_offset_is_capped() {
        let mut p = Paced::new(2_500_000);
        let t = 10 * MS;
        assert_eq!(p.release_at(0, t, t + 100_000), t + 150_000);
        // 200 ms of DTX silence: the timestamp says so, the clock follows.
        let later = t + 200 * MS;
        let at = p.release_at(9600, later, later + 100_000);
        assert!(at.abs_diff(later + 150_000) < 1_000, "{at}");
        // Very slow frames: the hold stops at half a frame.
        let mut at = 0;
        for k in 1..2000u32 {
            let c = later + u64::from(k) * 2_500_000;
            at = p.release_at(9600 + 120 * k, c, c + 5 * MS) - c;
        }
        assert_eq!(at, 1_250_000);
    }
}
