//! Turns counter changes into log lines on the main thread: the real-time threads only count.
//!
//! Each watched counter is logged when it has grown, at most once per [`MIN_INTERVAL_NS`]
//! (the growth in between is summed into the next line), so an xrun storm gives a line every
//! few seconds, not one per xrun.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::ops::stats::Stats;

/// Shortest time between two lines about the same counter.
pub const MIN_INTERVAL_NS: u64 = 10_000_000_000;

/// A condition worth a warning when its counter grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Xrun,
    Suspend,
    Stall,
    DeviceError,
    FrameDrop,
    EncodeError,
    PacketDrop,
    SendWouldBlock,
    SendUnreachable,
    SendError,
}

impl Event {
    pub const ALL: [Event; 10] = [
        Event::Xrun,
        Event::Suspend,
        Event::Stall,
        Event::DeviceError,
        Event::FrameDrop,
        Event::EncodeError,
        Event::PacketDrop,
        Event::SendWouldBlock,
        Event::SendUnreachable,
        Event::SendError,
    ];

    /// The name operators filter on.
    pub fn name(self) -> &'static str {
        match self {
            Event::Xrun => "xrun",
            Event::Suspend => "suspend",
            Event::Stall => "stall",
            Event::DeviceError => "device_error",
            Event::FrameDrop => "frame_drop",
            Event::EncodeError => "encode_error",
            Event::PacketDrop => "packet_drop",
            Event::SendWouldBlock => "send_would_block",
            Event::SendUnreachable => "send_unreachable",
            Event::SendError => "send_error",
        }
    }

    fn counter(self, s: &Stats) -> &AtomicU64 {
        match self {
            Event::Xrun => &s.xruns,
            Event::Suspend => &s.suspends,
            Event::Stall => &s.stalls,
            Event::DeviceError => &s.device_errors,
            Event::FrameDrop => &s.frame_drops,
            Event::EncodeError => &s.encode_errors,
            Event::PacketDrop => &s.packet_drops,
            Event::SendWouldBlock => &s.send_would_block,
            Event::SendUnreachable => &s.send_unreachable,
            Event::SendError => &s.send_errors,
        }
    }
}

/// One line to log: `new` more since the last line, `total` in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub event: Event,
    pub new: u64,
    pub total: u64,
}

/// Remembers what was last reported per counter. Time is an argument (no clock inside).
#[derive(Default)]
pub struct EventWatch {
    reported: [u64; Event::ALL.len()],
    at_ns: [Option<u64>; Event::ALL.len()],
}

impl EventWatch {
    /// The reports due at `now_ns`.
    pub fn poll(&mut self, stats: &Stats, now_ns: u64) -> Vec<Report> {
        let mut out = Vec::new();
        for (i, e) in Event::ALL.iter().enumerate() {
            let total = e.counter(stats).load(Relaxed);
            let due = self.at_ns[i].is_none_or(|t| now_ns.saturating_sub(t) >= MIN_INTERVAL_NS);
            if total > self.reported[i] && due {
                out.push(Report {
                    event: *e,
                    new: total - self.reported[i],
                    total,
                });
                self.reported[i] = total;
                self.at_ns[i] = Some(now_ns);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storms_are_summarised() {
        let s = Stats::default();
        let mut w = EventWatch::default();
        assert!(w.poll(&s, 0).is_empty());
        s.xruns.fetch_add(1, Relaxed);
        assert_eq!(
            w.poll(&s, 1),
            vec![Report {
                event: Event::Xrun,
                new: 1,
                total: 1
            }]
        );
        s.xruns.fetch_add(50, Relaxed);
        assert!(w.poll(&s, 2).is_empty(), "rate-limited");
        assert_eq!(
            w.poll(&s, 1 + MIN_INTERVAL_NS),
            vec![Report {
                event: Event::Xrun,
                new: 50,
                total: 51
            }]
        );
    }
}
