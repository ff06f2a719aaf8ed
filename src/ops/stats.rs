//! Pipeline counters: plain atomics written by the real-time threads (Relaxed, no locks), read
//! by the main thread for the periodic stats line and the exit summary.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use crate::rtp::session::{Kind, SendResult, Transmit};

/// Upper bounds (µs, exclusive) of the latency histogram buckets; the last bucket is open.
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    50, 100, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1_000_000,
];

/// Fixed-bucket histogram of software-added latency: period returned by `readi` → datagram
/// accepted by the kernel.
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    max_ns: AtomicU64,
    /// Of the slowest packet: how much of it passed before the encoder was done (capture →
    /// encoded, handoffs included); the rest was spent sending (pacing hold, packet ring,
    /// the send itself).
    max_encoded_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            max_ns: AtomicU64::new(0),
            max_encoded_ns: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    /// One packet: `ns` from capture to the kernel's send, `encoded_ns` of it until it was
    /// encoded. Called by the one thread that sends, so the maximum and its split agree.
    pub fn record(&self, ns: u64, encoded_ns: u64) {
        let us = ns / 1000;
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us < b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.store(ns, Relaxed);
            self.max_encoded_ns.store(encoded_ns.min(ns), Relaxed);
        }
    }

    pub fn counts(&self) -> [u64; LATENCY_BOUNDS_US.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns.load(Relaxed)
    }

    /// How much of the slowest packet's latency passed before it was encoded.
    pub fn max_encoded_ns(&self) -> u64 {
        self.max_encoded_ns.load(Relaxed)
    }

    /// The bucket bound (µs) below which fraction `q` of the samples fall; `None` when empty
    /// or when `q` falls in the open last bucket.
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return LATENCY_BOUNDS_US.get(i).copied();
            }
        }
        None
    }
}

/// Where the capture device stands, as the capture thread last set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DeviceState {
    /// Being opened (at start, and at each reopen).
    Opening = 0,
    /// Open; audio is expected.
    Open = 1,
    /// The last open failed (unplugged, or missing at start); retrying with back-off.
    Absent = 2,
}

impl DeviceState {
    fn from_u8(v: u8) -> DeviceState {
        match v {
            1 => DeviceState::Open,
            2 => DeviceState::Absent,
            _ => DeviceState::Opening,
        }
    }
}

/// Counters of one peer slot (an `RTPMIC_DEST` entry, later an RTSP client).
#[derive(Default)]
pub struct PeerCounters {
    /// RTP datagrams the kernel accepted for this peer.
    pub datagrams: AtomicU64,
    /// RTP datagrams that failed for this peer (any send error).
    pub errors: AtomicU64,
}

/// Every counter of one pipeline run.
#[derive(Default)]
pub struct Stats {
    /// `readi` calls that returned audio.
    pub periods: AtomicU64,
    /// Whole frames handed to the encoder.
    pub frames: AtomicU64,
    /// Overruns (EPIPE) recovered.
    pub xruns: AtomicU64,
    /// Samples lost to overruns (added to the RTP timestamp).
    pub samples_lost: AtomicU64,
    /// Suspends (ESTRPIPE) resumed.
    pub suspends: AtomicU64,
    /// Waits that timed out with no audio (device stalled).
    pub stalls: AtomicU64,
    /// Device errors that needed a reopen.
    pub device_errors: AtomicU64,
    /// Frames dropped by the capture → encoder ring.
    pub frame_drops: AtomicU64,
    pub encode_errors: AtomicU64,
    /// Opus DTX frames not sent (silence).
    pub dtx_frames: AtomicU64,
    pub packets: AtomicU64,
    /// Packets dropped by the encoder → sender ring.
    pub packet_drops: AtomicU64,
    /// RTP datagrams accepted by the kernel (packets × destinations).
    pub datagrams: AtomicU64,
    pub bytes: AtomicU64,
    /// Datagrams dropped because the socket buffer was full (EAGAIN/ENOBUFS).
    pub send_would_block: AtomicU64,
    /// Datagrams refused or unroutable (ECONNREFUSED/ENETUNREACH/EHOSTUNREACH/…).
    pub send_unreachable: AtomicU64,
    /// Any other send error.
    pub send_errors: AtomicU64,
    /// RTP packets an RTSP client over TCP did not get: its connection's buffer was full (a
    /// slow or stalled reader) or it was closing. That client's own, not a network fault:
    /// no warning (its session's end line and the stall line name it).
    pub tcp_client_drops: AtomicU64,
    /// RTCP compound packets made (each sent to every destination), BYEs included.
    pub rtcp_reports: AtomicU64,
    /// Packets the sender thread has handed on (once per packet, whatever the number of
    /// destinations, even none): the sender's progress, for the watchdog.
    pub packets_out: AtomicU64,
    /// Destinations with an address now (set at start and by the resolver thread).
    pub destinations_resolved: AtomicU64,
    /// Where the capture device stands ([`DeviceState`] as `u8`).
    pub device_state: AtomicU8,
    /// Ticks (every 20 ms) of the capture thread waiting to retry a device that failed to
    /// open: proof it is alive while there is no audio to count.
    pub absent_heartbeat: AtomicU64,
    pub latency: LatencyHistogram,
    /// Per peer slot; `RTPMIC_DEST` entries first, in their order.
    pub peers: Box<[PeerCounters]>,
    /// The last device error, for the log line the main thread writes (fault path only).
    last_device_error: std::sync::Mutex<String>,
}

impl Stats {
    /// Counters for `peers` peer slots (every slot a reload or a client may use).
    pub fn new(peers: usize) -> Stats {
        Stats {
            peers: (0..peers).map(|_| PeerCounters::default()).collect(),
            ..Stats::default()
        }
    }

    /// Counts what a backend reported for `batch`: the one place send outcomes become
    /// counters (RTP datagrams only; RTCP is periodic and its failures show in RTP's).
    /// No allocation, no lock.
    pub fn account(&self, batch: &[Transmit<'_>], results: &[SendResult]) {
        for (t, r) in batch.iter().zip(results) {
            if t.kind != Kind::Rtp {
                continue;
            }
            let peer = self.peers.get(t.peer.index());
            match *r {
                Ok(n) => {
                    self.datagrams.fetch_add(1, Relaxed);
                    self.bytes.fetch_add(n as u64, Relaxed);
                    if let Some(c) = peer {
                        c.datagrams.fetch_add(1, Relaxed);
                    }
                }
                Err(errno) => {
                    self.error_counter(errno).fetch_add(1, Relaxed);
                    if let Some(c) = peer {
                        c.errors.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    }

    /// Like [`Stats::account`] for a packet into an RTSP client's TCP sink: a packet it did not
    /// take is that client's loss (`tcp_client_drops` and its peer's errors), not a socket's.
    /// Not `ENOTCONN`: the connection closed and its peer has not left the session yet (the
    /// RTSP thread's leave is on its way through the control ring), so nobody lost it.
    pub fn account_tcp(&self, t: &Transmit<'_>, result: SendResult) {
        match result {
            Err(libc::ENOTCONN) => {}
            Err(_) if t.kind == Kind::Rtp => {
                self.tcp_client_drops.fetch_add(1, Relaxed);
                if let Some(c) = self.peers.get(t.peer.index()) {
                    c.errors.fetch_add(1, Relaxed);
                }
            }
            Err(_) => {}
            Ok(_) => self.account(std::slice::from_ref(t), &[result]),
        }
    }

    /// The counter a failed send's errno belongs to.
    fn error_counter(&self, errno: i32) -> &AtomicU64 {
        match errno {
            libc::EAGAIN | libc::ENOBUFS => &self.send_would_block,
            libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
                &self.send_unreachable
            }
            _ => &self.send_errors,
        }
    }

    /// One `dest=… datagrams=… errors=…` item per destination, for the stats log.
    pub fn destination_summary(&self, names: &[String]) -> String {
        let mut s = String::new();
        for (name, c) in names.iter().zip(self.peers.iter()) {
            let _ = write!(
                s,
                "[{name} datagrams={} errors={}] ",
                c.datagrams.load(Relaxed),
                c.errors.load(Relaxed)
            );
        }
        s.trim_end().to_string()
    }

    pub fn set_device_state(&self, state: DeviceState) {
        self.device_state.store(state as u8, Relaxed);
    }

    pub fn device_state(&self) -> DeviceState {
        DeviceState::from_u8(self.device_state.load(Relaxed))
    }

    /// Records the text of a device error (called outside the hot loop only).
    pub fn set_device_error(&self, text: &str) {
        if let Ok(mut s) = self.last_device_error.lock() {
            s.clear();
            s.push_str(text);
        }
    }

    /// The text of the last device error, if any.
    pub fn device_error(&self) -> String {
        self.last_device_error.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `key=value` pairs in one line, the format of the periodic and final stats lines.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let fields: [(&str, &AtomicU64); 19] = [
            ("periods", &self.periods),
            ("frames", &self.frames),
            ("xruns", &self.xruns),
            ("samples_lost", &self.samples_lost),
            ("suspends", &self.suspends),
            ("stalls", &self.stalls),
            ("device_errors", &self.device_errors),
            ("frame_drops", &self.frame_drops),
            ("encode_errors", &self.encode_errors),
            ("dtx_frames", &self.dtx_frames),
            ("packets", &self.packets),
            ("packet_drops", &self.packet_drops),
            ("datagrams", &self.datagrams),
            ("bytes", &self.bytes),
            ("send_would_block", &self.send_would_block),
            ("send_unreachable", &self.send_unreachable),
            ("send_errors", &self.send_errors),
            ("tcp_client_drops", &self.tcp_client_drops),
            ("rtcp_reports", &self.rtcp_reports),
        ];
        for (name, v) in fields {
            let _ = write!(s, "{name}={} ", v.load(Relaxed));
        }
        let q = |q| {
            self.latency
                .quantile_bound_us(q)
                .map_or("-".to_string(), |b| format!("<{b}us"))
        };
        let _ = write!(
            s,
            "latency_p50={} latency_p99={} latency_p999={} latency_max_us={} latency_max_encoded_us={}",
            q(0.5),
            q(0.99),
            q(0.999),
            self.latency.max_ns() / 1000,
            self.latency.max_encoded_ns() / 1000
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LatencyHistogram::default();
        for _ in 0..98 {
            h.record(30_000, 20_000); // 30 µs
        }
        h.record(700_000, 600_000); // 700 µs
        h.record(3_000_000_000, 1_000_000); // 3 s, open bucket
        assert_eq!(h.counts()[0], 98);
        assert_eq!(h.counts()[4], 1);
        assert_eq!(h.counts()[12], 1);
        assert_eq!(h.quantile_bound_us(0.5), Some(50));
        assert_eq!(h.quantile_bound_us(0.99), Some(1000));
        assert_eq!(h.quantile_bound_us(1.0), None);
        assert_eq!(h.max_ns(), 3_000_000_000);
        // The split belongs to the slowest packet, not to a later, faster one.
        h.record(2_000_000, 2_000_000);
        assert_eq!(h.max_encoded_ns(), 1_000_000);
    }

    #[test]
    fn send_outcomes_are_counted_per_peer_and_by_kind_of_error() {
        use crate::rtp::session::{Local, PeerId, Route};
        let s = Stats::new(2);
        let t = |peer: u32, kind| Transmit {
            peer: PeerId::new(peer, 1),
            route: Route::Udp("127.0.0.1:5004".parse().unwrap()),
            local: Local::Rtp,
            kind,
            bytes: &[],
        };
        let batch = [
            t(0, Kind::Rtp),
            t(1, Kind::Rtp),
            t(1, Kind::Rtp),
            t(1, Kind::Rtp),
            t(0, Kind::Rtcp),
        ];
        let results = [
            Ok(100),
            Err(libc::EAGAIN),
            Err(libc::ECONNREFUSED),
            Err(libc::EPERM),
            Err(libc::EPERM),
        ];
        s.account(&batch, &results);
        let c = |a: &AtomicU64| a.load(Relaxed);
        assert_eq!((c(&s.datagrams), c(&s.bytes)), (1, 100));
        assert_eq!(
            (c(&s.send_would_block), c(&s.send_unreachable), c(&s.send_errors)),
            (1, 1, 1),
            "RTCP is not counted"
        );
        assert_eq!((c(&s.peers[0].datagrams), c(&s.peers[1].errors)), (1, 3));
        // An RTSP client over TCP that did not take a packet: its loss, not the network's.
        s.account_tcp(&t(1, Kind::Rtp), Err(libc::ENOBUFS));
        s.account_tcp(&t(0, Kind::Rtp), Ok(50));
        // One whose connection just closed, before its peer left the session: nobody's loss.
        s.account_tcp(&t(1, Kind::Rtp), Err(libc::ENOTCONN));
        assert_eq!(c(&s.tcp_client_drops), 1);
        assert_eq!(c(&s.send_would_block), 1, "unchanged");
        assert_eq!((c(&s.peers[0].datagrams), c(&s.peers[1].errors)), (2, 4));
    }

    #[test]
    fn summary_names_every_counter() {
        let s = Stats::default();
        s.packets.fetch_add(3, Relaxed);
        let line = s.summary();
        assert!(line.contains("packets=3 "), "{line}");
        assert!(line.contains("latency_p50=- "), "{line}");
    }
}
