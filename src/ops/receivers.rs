//! What receivers report, turned into log text on the main thread: a summary for the stats
//! line, and warnings when a receiver's loss or jitter crosses its threshold, at most once per
//! receiver per [`WARN_INTERVAL_NS`]. Time is an argument.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crate::net::rtcp_in::{ReceiverState, RtcpInStats};

/// Shortest time between two warnings about the same receiver.
pub const WARN_INTERVAL_NS: u64 = 60_000_000_000;

/// Warning thresholds (RTPMIC_RR_LOSS_WARN_PERCENT, RTPMIC_RR_JITTER_WARN_MS).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub loss_percent: f64,
    pub jitter_ms: f64,
}

#[derive(Default)]
pub struct ReceiverWatch {
    warned_at: HashMap<u32, u64>,
}

impl ReceiverWatch {
    /// Warnings due at `now_ns` for `receivers`.
    pub fn poll(&mut self, receivers: &[ReceiverState], t: Thresholds, now_ns: u64) -> Vec<String> {
        let mut out = Vec::new();
        for r in receivers {
            let loss = r.fraction_lost * 100.0;
            if loss <= t.loss_percent && r.jitter_ms <= t.jitter_ms {
                continue;
            }
            if self
                .warned_at
                .get(&r.ssrc)
                .is_some_and(|&w| now_ns.saturating_sub(w) < WARN_INTERVAL_NS)
            {
                continue;
            }
            self.warned_at.insert(r.ssrc, now_ns);
            out.push(format!(
                "receiver {:#010x} at {} reports {loss:.1} % loss, {:.1} ms jitter (thresholds {} %, {} ms)",
                r.ssrc, r.from, r.jitter_ms, t.loss_percent, t.jitter_ms
            ));
        }
        out
    }
}

/// `rtcp_in: reports=… malformed=… foreign=… unrelated=… [ssrc from loss jitter rtt] …`
/// How many receivers report, and the worst fraction lost (0..1) among their latest reports.
pub fn worst_loss(s: &RtcpInStats) -> (usize, f64) {
    s.receivers
        .lock()
        .map(|t| (t.len(), t.iter().map(|r| r.fraction_lost).fold(0.0, f64::max)))
        .unwrap_or((0, 0.0))
}

pub fn summary(s: &RtcpInStats) -> String {
    let mut line = format!(
        "reports={} malformed={} foreign={} unrelated={}",
        s.reports.load(Relaxed),
        s.malformed.load(Relaxed),
        s.foreign.load(Relaxed),
        s.unrelated.load(Relaxed)
    );
    if let Ok(t) = s.receivers.lock() {
        for r in t.iter() {
            let rtt = r.rtt_ms.map_or("-".to_string(), |v| format!("{v:.1}"));
            let _ = write!(
                line,
                " [ssrc={:#010x} from={} fraction_lost={:.3} cumulative_lost={} expected={} jitter_ms={:.2} rtt_ms={rtt}]",
                r.ssrc, r.from, r.fraction_lost, r.cumulative_lost, r.expected, r.jitter_ms
            );
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(loss: f64, jitter: f64) -> ReceiverState {
        ReceiverState {
            ssrc: 1,
            from: "10.0.0.2:5005".parse().unwrap(),
            fraction_lost: loss,
            cumulative_lost: 0,
            expected: 0,
            jitter_ms: jitter,
            rtt_ms: None,
            reports: 1,
        }
    }

    #[test]
    fn warns_over_threshold_once_per_interval() {
        let t = Thresholds {
            loss_percent: 5.0,
            jitter_ms: 30.0,
        };
        let mut w = ReceiverWatch::default();
        assert!(w.poll(&[r(0.01, 5.0)], t, 0).is_empty());
        assert_eq!(w.poll(&[r(0.10, 5.0)], t, 1).len(), 1);
        assert!(w.poll(&[r(0.10, 5.0)], t, 2).is_empty(), "rate-limited");
        assert_eq!(w.poll(&[r(0.0, 50.0)], t, 2 + WARN_INTERVAL_NS).len(), 1);
    }
}
