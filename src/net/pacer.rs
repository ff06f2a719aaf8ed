//! Paced release (`RTPMIC_PACING=on`): each packet leaves at a fixed offset after its frame's
//! capture time instead of as soon as it is encoded, so the interval between packets does
//! not wobble with the encode time (which varies with the signal). Pure: times are
//! arguments.
//!
//! * The capture times themselves wobble by the device's and the scheduler's jitter (and
//!   frames completed by the same read share one), so the release follows a smoothed capture
//!   clock: each frame is expected as much later than the previous as its RTP timestamp says
//!   (so DTX silence and overrun gaps need nothing special), and the estimate moves 1/16 of
//!   the way to each actual capture time (a first-order loop: it follows the sound card's
//!   clock drift, it ignores its jitter). A capture time more than [`REANCHOR_NS`] off (a
//!   reopen, a clock jump) restarts the estimate there.
//! * The offset is the longest time from capture to "ready to send" seen lately (capture
//!   thread hand-over + encoding), plus [`MARGIN_NS`]; the peak decays by 1/512 per packet,
//!   so a one-off slow frame does not cost latency for ever. A packet ready after its
//!   release time goes at once.

/// A capture time this far from the estimate re-anchors it.
pub const REANCHOR_NS: i64 = 5_000_000;
/// Added to the observed readiness peak.
pub const MARGIN_NS: u64 = 50_000;

/// Release-time calculator for one stream.
pub struct Pacer {
    period_ns: u64,
    clock_rate: u64,
    /// Estimated capture time and RTP timestamp of the previous packet.
    estimate: Option<(u64, u32)>,
    peak_ns: u64,
}

impl Pacer {
    /// For frames of `period_ns` and an RTP clock of `clock_rate` Hz.
    pub fn new(period_ns: u64, clock_rate: u32) -> Pacer {
        Pacer {
            period_ns,
            clock_rate: u64::from(clock_rate.max(1)),
            estimate: None,
            peak_ns: 0,
        }
    }

    /// When to send the packet with RTP timestamp `rtp_ts`, whose frame was captured at
    /// `captured_ns` and that became ready at `ready_ns` (both CLOCK_MONOTONIC).
    pub fn release_at(&mut self, rtp_ts: u32, captured_ns: u64, ready_ns: u64) -> u64 {
        let estimate = match self.estimate {
            Some((prev, prev_ts)) => {
                let ticks = u64::from(rtp_ts.wrapping_sub(prev_ts));
                let expected = prev + ticks * 1_000_000_000 / self.clock_rate;
                let err = captured_ns as i64 - expected as i64;
                if err.abs() > REANCHOR_NS {
                    captured_ns
                } else {
                    (expected as i64 + err / 16) as u64
                }
            }
            None => captured_ns,
        };
        self.estimate = Some((estimate, rtp_ts));
        let lateness = ready_ns.saturating_sub(estimate);
        self.peak_ns = lateness.max(self.peak_ns - self.peak_ns / 512);
        // Never more than half a frame: beyond that pacing costs more than it smooths.
        let offset = (self.peak_ns + MARGIN_NS).min(self.period_ns / 2);
        estimate + offset
    }

    /// The current hold after the smoothed capture time (for the log).
    pub fn offset_ns(&self) -> u64 {
        (self.peak_ns + MARGIN_NS).min(self.period_ns / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn release_times_are_evenly_spaced_despite_capture_and_encode_jitter() {
        let mut p = Pacer::new(20 * MS, 48_000);
        let mut releases = Vec::new();
        for k in 0..200u64 {
            // Capture wobbles by ±100 µs, encoding takes 200..400 µs.
            let captured = 1_000 * MS + k * 20 * MS + (k % 3) * 100_000 - 100_000;
            let ready = captured + 200_000 + (k % 5) * 50_000;
            let at = p.release_at((k * 960) as u32, captured, ready);
            assert!(at + 1 >= ready.min(at), "never before ready unless late");
            releases.push(at);
        }
        let steady = &releases[100..];
        for w in steady.windows(2) {
            let d = w[1] as i64 - w[0] as i64 - (20 * MS) as i64;
            assert!(d.abs() < 20_000, "interval off by {d} ns");
        }
        // The hold covers the slowest encode (400 µs after a capture up to 100 µs late).
        assert!(p.offset_ns() >= 400_000 && p.offset_ns() < 700_000, "{}", p.offset_ns());
    }

    #[test]
    fn a_gap_reanchors_and_the_offset_is_capped() {
        let mut p = Pacer::new(2_500_000, 48_000);
        let t = 10 * MS;
        assert_eq!(p.release_at(0, t, t + 100_000), t + 150_000);
        // 200 ms of DTX silence: the timestamp says so, the estimate follows.
        let later = t + 200 * MS;
        assert_eq!(p.release_at(9600, later, later + 100_000), later + 150_000);
        // A reopen whose timestamp did not move as far as the clock: start again there.
        let much_later = later + 900 * MS;
        assert_eq!(
            p.release_at(9720, much_later, much_later + 100_000),
            much_later + 150_000
        );
        // A very slow frame: the hold stops at half a frame.
        let at = p.release_at(9840, much_later + 2_500_000, much_later + 2_500_000 + 5 * MS);
        assert_eq!(at, much_later + 2_500_000 + 1_250_000);
    }
}
