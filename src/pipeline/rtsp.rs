//! The RTSP server's part of a pipeline: what is set up before the stream threads start
//! (the listening socket, so a port in use is a start error naming `RTPMIC_RTSP_LISTEN`; the
//! TCP sinks and the RTCP ring the sending thread reads), and the context the `rtpmic-rtsp`
//! thread runs with.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::StartError;
use crate::config::{Codec, Config, RtspAuth};
use crate::net::control::{Control, InDatagram, SessionView};
use crate::net::rtsp::{RtspContext, RtspCounters, StreamFacts};
use crate::net::socket::SocketError;
use crate::net::tcp_sink::{self, TcpSinks};
use crate::ops::stats::Stats;
use crate::ring::{ring, Consumer, Producer};
use crate::rtp::sdp::{self, StreamDescription, Target};
use crate::rtsp::server::{REFUSING_SLOTS, SPARE_CONNECTIONS};
use crate::rtsp::{AuthConfig, AuthMode, MulticastGroup, Server, ServerConfig};

/// The SDP's track name, `a=control:` (RFC 2326 Appendix C.1.1).
pub const TRACK: &str = "trackID=0";
/// The running `rtpmic-rtsp` thread, with its own stop flag (a reload restarts it alone).
pub struct Running {
    handle: JoinHandle<RtspContext>,
    stop: Arc<AtomicBool>,
}

impl Running {
    pub fn spawn(ctx: RtspContext) -> Result<Running, StartError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rtpmic-rtsp".into())
            .stack_size(crate::rt::HELPER_STACK)
            .spawn(move || crate::net::rtsp::run(ctx, &flag))
            .map_err(|e| StartError::Io("spawn", e))?;
        Ok(Running { handle, stop })
    }

    /// Ends every client session (BYE to each) and the thread; its context back.
    fn finish(self) -> Option<RtspContext> {
        self.stop.store(true, Relaxed);
        self.handle.join().ok()
    }

    pub fn stop(self) {
        let _ = self.finish();
    }

    /// Stops the server and starts one with `config`'s RTSP settings over the same rings
    /// and stream; when that cannot start, one with the settings it had.
    pub fn restart(self, config: &Config) -> (Option<Running>, Result<(), String>) {
        let Some(mut ctx) = self.finish() else {
            return (None, Err("the RTSP thread had ended".into()));
        };
        let old_addr = ctx.listener.as_ref().and_then(|l| l.local_addr().ok());
        // The address is freed first: the new one may be the same.
        ctx.listener = None;
        let new = config
            .rtsp
            .listen
            .ok_or_else(|| "RTPMIC_RTSP_LISTEN: not set".to_string())
            .and_then(|listen| bind(listen).map_err(|e| e.to_string()))
            .and_then(|listener| {
                let server = server(config, ctx.max_connections, ctx.peer_first).map_err(|e| e.to_string())?;
                Ok((listener, server))
            });
        let result = match new {
            Ok((listener, server)) => {
                ctx.listener = Some(listener);
                ctx.replace_server(server);
                ctx.facts.multicast = multicast(config);
                ctx.tcp_stall_ns = u64::from(config.rtsp.tcp_stall_ms) * 1_000_000;
                Ok(())
            }
            Err(e) => {
                ctx.listener = old_addr.and_then(|a| std::net::TcpListener::bind(a).ok());
                Err(e)
            }
        };
        if ctx.listener.is_none() {
            return (None, result);
        }
        match Running::spawn(ctx) {
            Ok(r) => (Some(r), result),
            Err(e) => (None, Err(e.to_string())),
        }
    }
}

/// Binds the RTSP listening socket; an error names `RTPMIC_RTSP_LISTEN`.
fn bind(listen: std::net::SocketAddr) -> Result<std::net::TcpListener, StartError> {
    Ok(std::net::TcpListener::bind(listen).map_err(|source| SocketError {
        key: "RTPMIC_RTSP_LISTEN",
        what: "bind",
        source,
    })?)
}

/// The multicast group RTSP clients share (`RTPMIC_RTSP_MULTICAST`).
fn multicast(config: &Config) -> Option<MulticastGroup> {
    config.rtsp.multicast.map(|group| MulticastGroup {
        group,
        ttl: config.multicast_ttl,
    })
}

/// The RTSP server (sans I/O) for `config`'s settings, handing out the peer slots from
/// `peer_first` on.
fn server(config: &Config, max_connections: usize, peer_first: usize) -> Result<Server, StartError> {
    let r = &config.rtsp;
    let auth = match (&r.user, &r.password) {
        (Some(user), Some(password)) => {
            let mut a = AuthConfig::new(user.clone(), password.clone());
            a.mode = match r.auth {
                RtspAuth::Digest => AuthMode::Digest,
                RtspAuth::Basic => AuthMode::Basic,
            };
            Some(a)
        }
        _ => None,
    };
    Server::new(
        ServerConfig {
            path: r.path.clone(),
            track: TRACK.into(),
            session_timeout_s: r.session_timeout_s,
            max_connections,
            peer_first,
            peer_count: r.max_clients,
            auth,
            limits: Default::default(),
        },
        rand::random(),
    )
    .map_err(|e| StartError::Io("RTPMIC_RTSP", std::io::Error::other(e.to_string())))
}

/// Set up before the stream threads start.
pub struct Prepared {
    listener: std::net::TcpListener,
    pub sinks: Arc<TcpSinks>,
    rtcp_tx: Producer<InDatagram>,
    /// The RTCP ring's reader, for the sending thread (taken when its shell is built).
    pub rtcp_rx: Option<Consumer<InDatagram>>,
    max_connections: usize,
}

/// The most bytes a second the stream puts on one TCP-interleaved connection, for the size
/// of its ring: each frame's payload (with RFC 2198 redundancy, the earlier frames it
/// repeats), and per packet the RTP header (12), the longest SRTP tag (10, RFC 3711 §4.2),
/// the `$` framing (4, RFC 2326 §10.12) and RED's block headers (4 per redundant block and
/// 1, RFC 2198 §3). Opus at its target bitrate (`RTPMIC_BITRATE`): a VBR frame may be
/// larger, the ring's second and its rounding up leave room for that.
fn stream_bytes_per_second(config: &Config) -> u64 {
    let frame_us = u64::from(config.frame_us.max(1));
    let samples = u64::from(config.rate) * frame_us / 1_000_000;
    let payload = match config.codec {
        Codec::Opus => u64::from(config.bitrate) * frame_us / 8_000_000,
        Codec::Pcmu | Codec::Pcma => samples,
        Codec::L16 => samples * 2,
    };
    let redundancy = u64::from(config.redundancy);
    let packet = payload * (1 + redundancy) + 12 + 10 + 4 + 4 * redundancy + 1;
    (packet * 1_000_000).div_ceil(frame_us)
}

/// What the pipeline shares with the RTSP thread.
pub struct Shared {
    pub controls: Producer<Control>,
    /// The destinations' peer slots: the clients' come after.
    pub slots: usize,
    pub server_ports: (u16, u16),
    pub ssrc: u32,
    pub view: Arc<SessionView>,
    pub stats: Arc<Stats>,
    pub counters: Arc<RtspCounters>,
    pub rtcp_counters: Arc<crate::net::sender::RtcpInCounters>,
}

impl Prepared {
    pub fn new(config: &Config) -> Result<Prepared, StartError> {
        let listen = config
            .rtsp
            .listen
            .ok_or(StartError::Io("RTPMIC_RTSP_LISTEN", std::io::Error::other("not set")))?;
        let listener = bind(listen)?;
        let max_connections = config.rtsp.max_clients + SPARE_CONNECTIONS;
        let ring_bytes = tcp_sink::ring_bytes(stream_bytes_per_second(config));
        let sinks = Arc::new(
            TcpSinks::new(max_connections + REFUSING_SLOTS, ring_bytes).map_err(|e| StartError::Io("eventfd", e))?,
        );
        let (rtcp_tx, rtcp_rx) =
            ring(super::RTCP_IN_RING, InDatagram::empty).map_err(|e| StartError::Io("eventfd", e))?;
        Ok(Prepared {
            listener,
            sinks,
            rtcp_tx,
            rtcp_rx: Some(rtcp_rx),
            max_connections,
        })
    }

    /// The RTSP thread's context: the server (sans I/O) configured from `config`, and the
    /// stream's facts.
    pub fn context(self, config: &Config, shared: Shared) -> Result<RtspContext, StartError> {
        let server = server(config, self.max_connections, shared.slots)?;
        let origin = self
            .listener
            .local_addr()
            .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let facts = StreamFacts {
            sdp: sdp::describe(
                &StreamDescription::from_config(config),
                &Target::Rtsp { control: TRACK },
                origin,
                sdp::session_id_now(),
            ),
            server_ports: shared.server_ports,
            ssrc: shared.ssrc,
            multicast: multicast(config),
            srtp: config.srtp.is_some(),
        };
        Ok(RtspContext {
            server,
            listener: Some(self.listener),
            max_connections: self.max_connections,
            peer_first: shared.slots,
            facts,
            controls: shared.controls,
            rtcp: self.rtcp_tx,
            sinks: self.sinks,
            view: shared.view,
            stats: shared.stats,
            counters: shared.counters,
            rtcp_counters: shared.rtcp_counters,
            tcp_stall_ns: u64::from(config.rtsp.tcp_stall_ms) * 1_000_000,
            earlier: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_for(pairs: &[(&str, &str)]) -> usize {
        let mut all = vec![("RTPMIC_RTSP_LISTEN", "127.0.0.1:8554")];
        all.extend_from_slice(pairs);
        tcp_sink::ring_bytes(stream_bytes_per_second(&Config::from_pairs(all).unwrap()))
    }

    /// A TCP client's ring holds about a second of the stream it gets, whatever the codec.
    #[test]
    fn a_tcp_client_ring_is_sized_by_the_stream() {
        // 32 kb/s Opus in 20 ms packets: (80 + 27) bytes × 50 a second: the floor.
        assert_eq!(ring_for(&[("RTPMIC_BITRATE", "32000")]), 16 * 1024);
        // The same in 2.5 ms packets: (10 + 27) × 400 = 14,800 bytes a second.
        assert_eq!(
            ring_for(&[("RTPMIC_BITRATE", "32000"), ("RTPMIC_FRAME_MS", "2.5")]),
            16 * 1024
        );
        // 510 kb/s Opus: (1275 + 27) × 50 = 65,100.
        assert_eq!(ring_for(&[("RTPMIC_BITRATE", "510000")]), 64 * 1024);
        // 48 kHz L16 in 10 ms packets: (960 + 27) × 100 = 98,700.
        assert_eq!(
            ring_for(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_FRAME_MS", "10")]),
            128 * 1024
        );
        // PCMU repeating two frames (RFC 2198): (3 × 160 + 27 + 8) × 50 = 25,750.
        assert_eq!(
            ring_for(&[("RTPMIC_CODEC", "pcmu"), ("RTPMIC_REDUNDANCY", "2")]),
            32 * 1024
        );
    }
}
