//! systemd service notifications (sd_notify(3)): `READY=1`, `STATUS=`, `WATCHDOG=1`.
//!
//! The rules are plain functions of counters and time ([`Watchdog`], [`state`], [`status_line`]);
//! [`ServiceManager`] only sends. Outside systemd (no `NOTIFY_SOCKET`) sending does nothing.
//!
//! Decisions, where the issue left room:
//! * `READY=1` goes out once the sender has handed on its first packet, or as soon as the
//!   capture device is found absent: an intercom whose microphone is unplugged at boot must
//!   finish starting (STATUS says "waiting for device") rather than be killed by
//!   `TimeoutStartSec=` and restarted in a loop that cannot help.
//! * `WATCHDOG=1` goes out every `WATCHDOG_USEC / 2` (sd_watchdog_enabled(3) advises pinging
//!   at half the timeout) only when, since the previous check, the capture thread delivered
//!   periods **and** the sender handed on packets, or the capture thread is alive waiting for
//!   an absent device. A device that opens but gives nothing, a read or an open that never
//!   returns, or a stuck encoder or sender stops the pings, and systemd restarts the service.

use std::time::Duration;

use crate::ops::stats::DeviceState;

/// What the watchdog looks at, read from the pipeline's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Capture periods read.
    pub periods: u64,
    /// Packets the sender handed on.
    pub packets_out: u64,
    /// Ticks of the capture thread waiting for an absent device.
    pub absent_heartbeat: u64,
}

impl Progress {
    /// Whether `self` (now) shows the pipeline working since `before`.
    pub fn advanced_since(&self, before: &Progress) -> bool {
        let streaming = self.periods > before.periods && self.packets_out > before.packets_out;
        let waiting_alive = self.absent_heartbeat > before.absent_heartbeat;
        streaming || waiting_alive
    }
}

/// Decides when to send `WATCHDOG=1`. Time is an argument; no I/O.
pub struct Watchdog {
    interval_ns: u64,
    next_ns: u64,
    last: Progress,
}

/// What [`Watchdog::poll`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not time to check yet.
    NotDue,
    /// Progress since the last check: ping.
    Ping,
    /// No progress since the last check: withhold the ping.
    Withhold,
}

impl Watchdog {
    /// A watchdog for systemd's `WATCHDOG_USEC` (`timeout`), first check half of it from `now_ns`.
    pub fn new(timeout: Duration, now_ns: u64, progress: Progress) -> Watchdog {
        let interval_ns = (timeout.as_nanos() / 2).clamp(1_000_000, u128::from(u64::MAX)) as u64;
        Watchdog {
            interval_ns,
            next_ns: now_ns + interval_ns,
            last: progress,
        }
    }

    /// How often the caller should call [`Watchdog::poll`] (at least).
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// Starts comparing from `progress` (a new pipeline whose counters start at zero).
    pub fn rebase(&mut self, progress: Progress) {
        self.last = progress;
    }

    pub fn poll(&mut self, now_ns: u64, progress: Progress) -> Verdict {
        if now_ns < self.next_ns {
            return Verdict::NotDue;
        }
        self.next_ns = now_ns + self.interval_ns;
        let advanced = progress.advanced_since(&self.last);
        self.last = progress;
        if advanced {
            Verdict::Ping
        } else {
            Verdict::Withhold
        }
    }
}

/// What the service is doing, in a few words for STATUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Starting,
    Streaming,
    /// The device failed to open; retrying.
    WaitingForDevice,
    /// The device is open (or being opened) but no audio came since the last look.
    Stalled,
}

impl State {
    pub fn describe(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Streaming => "streaming",
            State::WaitingForDevice => "waiting for device",
            State::Stalled => "stalled (no audio from the device)",
        }
    }
}

/// The state from the device state and whether periods arrived since the previous look.
pub fn state(device: DeviceState, periods_advanced: bool, any_period_ever: bool) -> State {
    match device {
        DeviceState::Absent => State::WaitingForDevice,
        _ if periods_advanced => State::Streaming,
        _ if !any_period_ever => State::Starting,
        _ => State::Stalled,
    }
}

/// What one STATUS line says.
pub struct StatusFacts<'a> {
    pub state: State,
    pub device: &'a str,
    pub codec: &'a str,
    pub destinations_resolved: usize,
    pub destinations: usize,
    pub packets: u64,
    /// Receivers reporting by RTCP, and the worst fraction lost (0..1) among them.
    pub receivers: usize,
    pub worst_loss: f64,
    /// RTSP clients playing now; `None` without the RTSP server.
    pub rtsp_clients: Option<usize>,
}

/// `STATUS=` text: one line, short enough for `systemctl status`.
pub fn status_line(f: &StatusFacts<'_>) -> String {
    let mut s = format!(
        "{}: {} {} → {}/{} destinations, {} packets",
        f.state.describe(),
        f.device,
        f.codec,
        f.destinations_resolved,
        f.destinations,
        f.packets
    );
    if let Some(n) = f.rtsp_clients {
        s.push_str(&format!(", {n} RTSP client(s)"));
    }
    if f.receivers > 0 {
        s.push_str(&format!(
            ", {} receiver(s) reporting, worst loss {:.1}%",
            f.receivers,
            f.worst_loss * 100.0
        ));
    }
    s
}

/// Sends notifications to systemd when `NOTIFY_SOCKET` is set; otherwise does nothing.
pub struct ServiceManager {
    enabled: bool,
    ready_sent: bool,
    last_status: String,
}

impl ServiceManager {
    /// Reads `NOTIFY_SOCKET` once.
    pub fn from_env() -> ServiceManager {
        ServiceManager {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            ready_sent: false,
            last_status: String::new(),
        }
    }

    /// systemd's watchdog timeout (`WATCHDOG_USEC`, for this process), if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        if self.enabled {
            sd_notify::watchdog_enabled()
        } else {
            None
        }
    }

    /// `READY=1` (once) with the current STATUS.
    pub fn ready(&mut self, status: &str) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.send(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
            self.last_status = status.to_string();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready_sent
    }

    /// `STATUS=` when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.send(&[sd_notify::NotifyState::Status(status)]);
            self.last_status = status.to_string();
        }
    }

    pub fn watchdog(&self) {
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }

    /// `RELOADING=1` with the monotonic time systemd ≥ 253 wants alongside it.
    pub fn reloading(&self) {
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(t) => self.send(&[sd_notify::NotifyState::Reloading, t]),
            Err(_) => self.send(&[sd_notify::NotifyState::Reloading]),
        }
    }

    /// `READY=1` again after a reload.
    pub fn reloaded(&self) {
        self.send(&[sd_notify::NotifyState::Ready]);
    }

    pub fn stopping(&self) {
        self.send(&[sd_notify::NotifyState::Stopping]);
    }

    fn send(&self, states: &[sd_notify::NotifyState<'_>]) {
        if self.enabled {
            // A lost notification is not worth failing for; systemd will notice the silence.
            let _ = sd_notify::notify(states);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn p(periods: u64, packets_out: u64, absent_heartbeat: u64) -> Progress {
        Progress {
            periods,
            packets_out,
            absent_heartbeat,
        }
    }

    #[test]
    fn pings_at_half_the_timeout_while_streaming() {
        let mut w = Watchdog::new(Duration::from_secs(4), 0, p(0, 0, 0));
        assert_eq!(w.interval(), Duration::from_secs(2));
        assert_eq!(w.poll(S, p(50, 50, 0)), Verdict::NotDue);
        assert_eq!(w.poll(2 * S, p(100, 100, 0)), Verdict::Ping);
        assert_eq!(w.poll(3 * S, p(150, 150, 0)), Verdict::NotDue);
        assert_eq!(w.poll(4 * S, p(200, 200, 0)), Verdict::Ping);
    }

    #[test]
    fn a_stalled_capture_or_sender_withholds_the_ping() {
        let mut w = Watchdog::new(Duration::from_secs(2), 0, p(0, 0, 0));
        assert_eq!(w.poll(S, p(50, 50, 0)), Verdict::Ping);
        // Capture stuck: nothing read, nothing sent.
        assert_eq!(w.poll(2 * S, p(50, 50, 0)), Verdict::Withhold);
        // Capture reads but the sender is stuck.
        assert_eq!(w.poll(3 * S, p(100, 50, 0)), Verdict::Withhold);
        // Back to work.
        assert_eq!(w.poll(4 * S, p(150, 100, 0)), Verdict::Ping);
    }

    #[test]
    fn waiting_for_an_absent_device_is_alive() {
        let mut w = Watchdog::new(Duration::from_secs(2), 0, p(10, 10, 0));
        assert_eq!(w.poll(S, p(10, 10, 40)), Verdict::Ping);
        // The open itself hangs: the heartbeat stops too.
        assert_eq!(w.poll(2 * S, p(10, 10, 40)), Verdict::Withhold);
    }

    #[test]
    fn state_names_what_the_operator_must_know() {
        assert_eq!(state(DeviceState::Opening, false, false), State::Starting);
        assert_eq!(state(DeviceState::Open, true, true), State::Streaming);
        assert_eq!(state(DeviceState::Open, false, true), State::Stalled);
        assert_eq!(state(DeviceState::Opening, false, true), State::Stalled);
        assert_eq!(state(DeviceState::Absent, false, true), State::WaitingForDevice);
    }

    #[test]
    fn status_line_is_one_line_with_the_facts() {
        let mut f = StatusFacts {
            state: State::WaitingForDevice,
            device: "hw:1",
            codec: "opus",
            destinations_resolved: 2,
            destinations: 3,
            packets: 0,
            receivers: 0,
            worst_loss: 0.0,
            rtsp_clients: None,
        };
        assert_eq!(
            status_line(&f),
            "waiting for device: hw:1 opus → 2/3 destinations, 0 packets"
        );
        f.receivers = 2;
        f.worst_loss = 0.012;
        assert!(status_line(&f).ends_with(", 2 receiver(s) reporting, worst loss 1.2%"));
        assert!(!status_line(&f).contains('\n'));
        f.rtsp_clients = Some(3);
        assert!(
            status_line(&f).contains(" 0 packets, 3 RTSP client(s), 2 receiver(s)"),
            "{}",
            status_line(&f)
        );
    }
}
