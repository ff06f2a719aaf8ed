//! When the audio of an RTP timestamp was captured, for the NTP/RTP pair of sender reports
//! (RFC 3550 §6.4.1: the RTP timestamp "corresponds to the same time as the NTP timestamp").
//! Pure: times are arguments.
//!
//! A frame's capture time as the capture thread sees it is when the read that completed it
//! returned. That read can be late (the thread was not scheduled, or one read returned several
//! periods) but never early, so the best estimate is the *lower envelope* of those times on
//! the media clock: a packet that maps earlier than the estimate moves it there at once; a
//! later one only lets it creep up by [`CREEP_PPM`] of the media time in between, which
//! follows a sound card clock running slower than CLOCK_MONOTONIC without following
//! scheduling delays. A packet more than [`REANCHOR_NS`] later than the estimate (a reopen
//! whose timestamps did not follow real time, a suspend) re-anchors it.

/// How fast the estimate may drift later than the media clock: 200 ppm, more than any sound
/// card's crystal is off.
pub const CREEP_PPM: u64 = 200;
/// A packet this much later than the estimate re-anchors it.
pub const REANCHOR_NS: u64 = 500_000_000;

/// The capture time of one RTP timestamp, updated packet by packet.
#[derive(Clone, Copy, Debug)]
pub struct CaptureClock {
    clock_rate: u64,
    /// RTP timestamp and estimated capture time (CLOCK_MONOTONIC ns) of the newest packet.
    anchor: Option<(u32, u64)>,
}

impl CaptureClock {
    pub fn new(clock_rate: u32) -> CaptureClock {
        CaptureClock {
            clock_rate: u64::from(clock_rate.max(1)),
            anchor: None,
        }
    }

    /// A packet with RTP timestamp `ts` whose audio was read at `read_ns`; returns the
    /// estimated capture time of that audio.
    pub fn observe(&mut self, ts: u32, read_ns: u64) -> u64 {
        let Some((prev_ts, prev_ns)) = self.anchor else {
            self.anchor = Some((ts, read_ns));
            return read_ns;
        };
        // Timestamps only move forward (RFC 3550 §5.1); the wrapping difference is the step.
        let media_ns = u64::from(ts.wrapping_sub(prev_ts)) * 1_000_000_000 / self.clock_rate;
        let expected = prev_ns + media_ns;
        let estimate = if read_ns <= expected || read_ns - expected > REANCHOR_NS {
            read_ns
        } else {
            (expected + media_ns * CREEP_PPM / 1_000_000).min(read_ns)
        };
        self.anchor = Some((ts, estimate));
        estimate
    }

    /// The RTP timestamp at `now_ns` extrapolated from the newest packet, whose audio ends
    /// `ticks_per_frame` after its timestamp; `None` before the first packet.
    pub fn rtp_at(&self, now_ns: u64, ticks_per_frame: u32) -> Option<u32> {
        let (ts, captured) = self.anchor?;
        let since = now_ns.saturating_sub(captured);
        let ticks = u64::from(ticks_per_frame) + since * self.clock_rate / 1_000_000_000;
        Some(ts.wrapping_add(ticks as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn late_reads_do_not_move_the_clock() {
        let mut c = CaptureClock::new(48_000);
        c.observe(0, 1000 * MS);
        // Frames of 960 ticks (20 ms); the third read comes 40 ms late.
        c.observe(960, 1020 * MS);
        c.observe(1920, 1080 * MS);
        // 40 ms after the frame's expected end, less the 4 µs creep: not 40 ms of lateness.
        let at = c.rtp_at(1080 * MS, 960).unwrap();
        assert!((1920 + 960 + 48 * 40 - 1..=1920 + 960 + 48 * 40).contains(&at), "{at}");
        // Back on time: the same mapping.
        c.observe(2880, 1060 * MS);
        assert_eq!(c.rtp_at(1060 * MS, 960), Some(2880 + 960));
    }

    #[test]
    fn an_early_read_pulls_the_clock_at_once() {
        let mut c = CaptureClock::new(48_000);
        c.observe(0, 1000 * MS);
        c.observe(960, 1015 * MS);
        assert_eq!(c.rtp_at(1015 * MS, 960), Some(960 + 960));
    }

    #[test]
    fn a_slow_sound_card_is_followed_by_the_creep() {
        // The card runs 100 ppm slow: each 20 ms frame arrives 2 µs later than the last.
        let mut c = CaptureClock::new(48_000);
        let mut ts = 0u32;
        let mut t = 1000 * MS;
        for _ in 0..100_000 {
            c.observe(ts, t);
            ts = ts.wrapping_add(960);
            t += 20 * MS + 2_000;
        }
        // After 2000 s (0.2 s of drift) the estimate is still on the reads.
        let (last_ts, last_t) = (ts.wrapping_sub(960), t - 20 * MS - 2_000);
        assert_eq!(c.rtp_at(last_t, 960), Some(last_ts.wrapping_add(960)));
    }

    #[test]
    fn a_big_jump_reanchors_and_timestamps_wrap() {
        let mut c = CaptureClock::new(8000);
        c.observe(u32::MAX - 79, 1000 * MS);
        c.observe(80, 1020 * MS);
        assert_eq!(c.rtp_at(1020 * MS, 160), Some(80 + 160));
        c.observe(240, 3000 * MS);
        assert_eq!(c.rtp_at(3000 * MS, 160), Some(240 + 160));
        assert!(CaptureClock::new(8000).rtp_at(0, 160).is_none());
    }
}
