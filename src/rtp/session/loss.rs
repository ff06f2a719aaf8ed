//! `RTPMIC_OPUS_LOSS_PERCENT=auto`: the expected loss the Opus FEC plans for follows what
//! receivers report. Pure: the caller passes the RTCP report count and the worst fraction
//! lost (RFC 3550 §6.4.1) of the latest reports.

/// Weight of a new report in the running estimate (an exponential moving average, so one bad
/// report interval does not double the bitrate spent on FEC).
const ALPHA: f64 = 0.25;

/// Follows the worst receiver's loss.
pub struct LossAdapter {
    min: u8,
    max: u8,
    smoothed: Option<f64>,
    reports_seen: u64,
}

impl LossAdapter {
    pub fn new(min: u8, max: u8) -> LossAdapter {
        LossAdapter {
            min,
            max: max.max(min),
            smoothed: None,
            reports_seen: 0,
        }
    }

    /// Takes in the receivers' state; returns the expected loss (percent, within the bounds)
    /// when new reports arrived since the last call.
    pub fn update(&mut self, reports: u64, worst_fraction_lost: f64) -> Option<u8> {
        if reports == self.reports_seen {
            return None;
        }
        self.reports_seen = reports;
        let sample = (worst_fraction_lost * 100.0).clamp(0.0, 100.0);
        let s = match self.smoothed {
            None => sample,
            Some(prev) => prev + ALPHA * (sample - prev),
        };
        self.smoothed = Some(s);
        Some((s.round() as u8).clamp(self.min, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_reports_smoothed_and_bounded() {
        let mut a = LossAdapter::new(5, 30);
        assert_eq!(a.update(0, 0.5), None, "no report yet");
        assert_eq!(a.update(1, 0.10), Some(10));
        assert_eq!(a.update(1, 0.90), None, "the same report again");
        // 10 + 0.25 × (50 − 10) = 20.
        assert_eq!(a.update(2, 0.50), Some(20));
        assert_eq!(a.update(3, 1.0), Some(30), "capped at the maximum");
        let mut quiet = LossAdapter::new(5, 30);
        assert_eq!(quiet.update(1, 0.0), Some(5), "never below the minimum");
    }
}
