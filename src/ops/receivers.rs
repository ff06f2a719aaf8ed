//! What receivers report, on the main thread: a table kept from the send session's events
//! ([`ReceiverTable`]), turned into a summary for the stats line and warnings when a
//! receiver's loss or jitter crosses its threshold. Both are bounded, so a flood of
//! receivers (real or forged) cannot flood the log:
//!
//! * the summary names at most [`LISTED_RECEIVERS`] receivers, the worst first, then says
//!   how many more there are;
//! * a receiver is warned about at most once per [`WARN_INTERVAL_NS`], and all receivers
//!   together at most [`WARN_BURST`] times in a row, then once per
//!   `WARN_INTERVAL_NS / WARN_BURST` (a token bucket); the warnings held back are counted in
//!   one line at most once per [`WARN_INTERVAL_NS`].
//!
//! Pure: time is an argument.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use crate::net::sender::RtcpInCounters;
use crate::rtp::session::{Event, ReceiverInfo};

/// Shortest time between two warnings about the same receiver.
pub const WARN_INTERVAL_NS: u64 = 60_000_000_000;
/// Receiver warnings that may come in a row; after that one per `WARN_INTERVAL_NS /
/// WARN_BURST`, however many receivers cross their thresholds.
pub const WARN_BURST: u32 = 4;
/// Receivers the stats line names.
pub const LISTED_RECEIVERS: usize = 8;

/// Warning thresholds (RTPMIC_RR_LOSS_WARN_PERCENT, RTPMIC_RR_JITTER_WARN_MS).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub loss_percent: f64,
    pub jitter_ms: f64,
}

pub struct ReceiverWatch {
    /// When each receiver was last warned about (entries older than WARN_INTERVAL_NS are
    /// dropped, so this holds at most the receivers warned about in one interval).
    warned_at: HashMap<u32, u64>,
    /// Warnings that may still go out now, and when the bucket was last refilled.
    tokens: u32,
    refilled_at: Option<u64>,
    /// When the last "held back" line went out.
    noted_at: Option<u64>,
}

impl Default for ReceiverWatch {
    fn default() -> ReceiverWatch {
        ReceiverWatch {
            warned_at: HashMap::new(),
            tokens: WARN_BURST,
            refilled_at: None,
            noted_at: None,
        }
    }
}

/// Worst first: higher fraction lost, then higher jitter, then by SSRC (a stable order).
fn worst_first(a: &ReceiverInfo, b: &ReceiverInfo) -> Ordering {
    b.fraction_lost
        .total_cmp(&a.fraction_lost)
        .then(b.jitter_ms.total_cmp(&a.jitter_ms))
        .then(a.ssrc.cmp(&b.ssrc))
}

impl ReceiverWatch {
    fn refill(&mut self, now_ns: u64) {
        let every = WARN_INTERVAL_NS / u64::from(WARN_BURST);
        let since = *self.refilled_at.get_or_insert(now_ns);
        let earned = now_ns.saturating_sub(since) / every;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(WARN_BURST)) as u32;
            self.refilled_at = Some(if self.tokens == WARN_BURST {
                now_ns
            } else {
                since + earned * every
            });
        }
    }

    /// Warnings due at `now_ns` for `receivers`, worst receiver first.
    pub fn poll(&mut self, receivers: &[ReceiverInfo], t: Thresholds, now_ns: u64) -> Vec<String> {
        self.refill(now_ns);
        self.warned_at
            .retain(|_, at| now_ns.saturating_sub(*at) < WARN_INTERVAL_NS);
        let mut due: Vec<&ReceiverInfo> = receivers
            .iter()
            .filter(|r| r.fraction_lost * 100.0 > t.loss_percent || r.jitter_ms > t.jitter_ms)
            .filter(|r| !self.warned_at.contains_key(&r.ssrc))
            .collect();
        due.sort_by(|a, b| worst_first(a, b));
        let mut out = Vec::new();
        let mut held = 0usize;
        for r in due {
            if self.tokens == 0 {
                held += 1;
                continue;
            }
            self.tokens -= 1;
            self.warned_at.insert(r.ssrc, now_ns);
            out.push(format!(
                "receiver {:#010x} at {} reports {:.1} % loss, {:.1} ms jitter (thresholds {} %, {} ms)",
                r.ssrc,
                r.from,
                r.fraction_lost * 100.0,
                r.jitter_ms,
                t.loss_percent,
                t.jitter_ms
            ));
        }
        if held > 0
            && self
                .noted_at
                .is_none_or(|at| now_ns.saturating_sub(at) >= WARN_INTERVAL_NS)
        {
            self.noted_at = Some(now_ns);
            out.push(format!(
                "{held} more receiver(s) over the thresholds; warnings held back (the rtcp_in: line lists the worst)"
            ));
        }
        out
    }
}

/// The receivers' latest reports, as the send session announced them (it bounds and
/// expires the receivers; this follows).
#[derive(Default)]
pub struct ReceiverTable {
    receivers: Vec<ReceiverInfo>,
}

impl ReceiverTable {
    /// Takes one event of the send session.
    pub fn apply(&mut self, e: &Event) {
        match *e {
            Event::Report(info) => match self
                .receivers
                .iter_mut()
                .find(|r| r.ssrc == info.ssrc && r.peer == info.peer)
            {
                Some(r) => *r = info,
                None => self.receivers.push(info),
            },
            Event::ReceiverLeft { ssrc, peer, .. } => self.receivers.retain(|r| !(r.ssrc == ssrc && r.peer == peer)),
            Event::ExpectedLoss(_) => {}
        }
    }

    pub fn receivers(&self) -> &[ReceiverInfo] {
        &self.receivers
    }

    /// How many receivers report, and the worst fraction lost (0..1) among their latest
    /// reports.
    pub fn worst_loss(&self) -> (usize, f64) {
        (
            self.receivers.len(),
            self.receivers.iter().map(|r| r.fraction_lost).fold(0.0, f64::max),
        )
    }

    /// `reports=… malformed=… … receivers=N [ssrc from loss jitter rtt] … … and K more`: the
    /// counters, then the [`LISTED_RECEIVERS`] worst receivers.
    pub fn summary(&self, c: &RtcpInCounters) -> String {
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let mut line = format!(
            "reports={} malformed={} foreign={} unrelated={} unauthenticated={} replayed={} untracked={} expired={} dropped={}",
            n(&c.reports),
            n(&c.malformed),
            n(&c.foreign),
            n(&c.unrelated),
            n(&c.unauthenticated),
            n(&c.replayed),
            n(&c.untracked),
            n(&c.expired),
            n(&c.dropped),
        );
        let _ = write!(line, " receivers={}", self.receivers.len());
        let mut listed: Vec<&ReceiverInfo> = self.receivers.iter().collect();
        listed.sort_by(|a, b| worst_first(a, b));
        for r in listed.iter().take(LISTED_RECEIVERS) {
            let rtt = r.rtt_ms.map_or("-".to_string(), |v| format!("{v:.1}"));
            let _ = write!(
                line,
                " [ssrc={:#010x} from={} fraction_lost={:.3} cumulative_lost={} expected={} jitter_ms={:.2} rtt_ms={rtt}]",
                r.ssrc, r.from, r.fraction_lost, r.cumulative_lost, r.expected, r.jitter_ms
            );
        }
        if self.receivers.len() > LISTED_RECEIVERS {
            let _ = write!(line, " … and {} more", self.receivers.len() - LISTED_RECEIVERS);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::session::send::Left;
    use crate::rtp::session::PeerId;

    const S: u64 = 1_000_000_000;

    fn r(ssrc: u32, loss: f64, jitter: f64) -> ReceiverInfo {
        ReceiverInfo {
            ssrc,
            peer: PeerId::new(0, 1),
            from: "10.0.0.2:5005".parse().unwrap(),
            fraction_lost: loss,
            cumulative_lost: 0,
            expected: 0,
            jitter_ms: jitter,
            rtt_ms: None,
            reports: 1,
            last_heard_ns: 0,
        }
    }

    const T: Thresholds = Thresholds {
        loss_percent: 5.0,
        jitter_ms: 30.0,
    };

    #[test]
    fn warns_over_threshold_once_per_interval() {
        let mut w = ReceiverWatch::default();
        assert!(w.poll(&[r(1, 0.01, 5.0)], T, 0).is_empty());
        let first = w.poll(&[r(1, 0.10, 5.0)], T, 1);
        assert_eq!(first.len(), 1);
        assert!(first[0].contains("10.0 % loss"), "{first:?}");
        assert!(w.poll(&[r(1, 0.10, 5.0)], T, 2).is_empty(), "rate-limited");
        assert_eq!(w.poll(&[r(1, 0.0, 50.0)], T, 2 + WARN_INTERVAL_NS).len(), 1);
    }

    #[test]
    fn a_flood_of_receivers_gives_a_handful_of_lines() {
        let mut w = ReceiverWatch::default();
        let many: Vec<ReceiverInfo> = (0..1000).map(|i| r(i, 0.5 + f64::from(i) / 4000.0, 5.0)).collect();
        // One poll a second for ten minutes, in simulated time.
        let mut lines = Vec::new();
        for s in 0..600 {
            lines.extend(w.poll(&many, T, s * S));
        }
        let warnings = lines.iter().filter(|l| l.starts_with("receiver ")).count();
        let notes = lines.iter().filter(|l| l.contains("held back")).count();
        // A burst of 4, then one per 15 s; a note at most once a minute.
        assert_eq!(warnings, 43, "4 at once, then one at 15, 30, … 585 s");
        assert_eq!(notes, 10);
        // The burst names the worst receivers first.
        assert!(lines[0].contains("0x000003e7"), "{}", lines[0]);
        assert!(lines[4].contains("996 more receiver(s)"), "{}", lines[4]);
        assert!(w.warned_at.len() <= 8, "the per-receiver memory stays small");
        // A receiver over its threshold after the flood is still warned about in time.
        let mut lone = ReceiverWatch::default();
        assert_eq!(lone.poll(&many[..1], T, 0).len(), 1);
    }

    #[test]
    fn the_table_follows_the_session_events() {
        let mut t = ReceiverTable::default();
        t.apply(&Event::Report(r(1, 0.1, 1.0)));
        t.apply(&Event::Report(r(2, 0.3, 1.0)));
        t.apply(&Event::Report(r(1, 0.2, 1.0)));
        assert_eq!(t.worst_loss(), (2, 0.3));
        t.apply(&Event::ReceiverLeft {
            ssrc: 2,
            peer: PeerId::new(0, 1),
            why: Left::Timeout,
        });
        assert_eq!(t.worst_loss(), (1, 0.2));
    }

    #[test]
    fn the_summary_names_the_worst_eight() {
        let mut t = ReceiverTable::default();
        for i in 0..1000 {
            t.apply(&Event::Report(r(i, if i == 500 { 0.9 } else { 0.01 }, 1.0)));
        }
        let line = t.summary(&RtcpInCounters::default());
        assert!(line.len() < 1500, "{} bytes", line.len());
        assert_eq!(line.matches("[ssrc=").count(), 8, "{line}");
        assert!(
            line.contains("receivers=1000 [ssrc=0x000001f4"),
            "the worst first: {line}"
        );
        assert!(line.ends_with(" … and 992 more"), "{line}");
        assert!(line.starts_with("reports=0 malformed=0 foreign=0 unrelated=0 unauthenticated=0"));
        assert!(ReceiverTable::default()
            .summary(&RtcpInCounters::default())
            .ends_with("dropped=0 receivers=0"));
    }
}
