//! `rtpmic probe rtsp://[user:password@]host[:port]/path`: the probe as an RTSP/1.0 client
//! (RFC 2326), pulling the stream the way an NVR would.
//!
//! OPTIONS, DESCRIBE (the SDP: [`sdp`]), SETUP of the audio stream — RTP interleaved on the
//! RTSP connection (`RTP/AVP/TCP;unicast;interleaved=0-1`) by default, or over UDP to an
//! even/odd port pair of ours (`RTP/AVP;unicast;client_port=a-b`) — then PLAY. While the
//! stream plays, a keepalive (GET_PARAMETER, or OPTIONS when the server does not list it)
//! goes every half session timeout (the `Session` header's `timeout`, 60 s by default), and
//! receiver reports go back on the RTCP channel or to the server's RTCP port. TEARDOWN at the
//! end.
//!
//! * **URLs.** Requests name the URL without its credentials. The stream's control URL is the
//!   SDP's `a=control`, absolute or relative to the base (`Content-Base`, else
//!   `Content-Location`, else the DESCRIBE URL); a relative one is appended to the base with
//!   a `/` between them, as live555, ffmpeg and GStreamer do (RFC 3986 resolution would drop
//!   the last path segment of a base without a trailing `/`, which servers that send no
//!   `Content-Base` do not mean). PLAY, keepalives and TEARDOWN use the session-level
//!   `a=control` (`*`: the base), else the base.
//! * **Authentication** ([`auth`]): a 401 is answered once with the URL's credentials (again
//!   only when the server says the nonce was stale); a second 401 is a wrong password.
//! * **RTP-Info** `seq`: packets before it (sent before PLAY took effect) are ignored.
//! * Every response is bounded (head 16 KiB, body 64 KiB) and every wait has a deadline
//!   ([`conn`]); nothing the server sends can panic the probe.

pub mod auth;
pub mod conn;
pub mod sdp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rtsp_types::{headers, Method, Response, StatusCode, Url};

use self::auth::Credentials;
use self::conn::{header, status_line, Conn, ConnError, Incoming};
use self::sdp::printable;
use super::{wait_readable, Codec, Packet, ProbeError, Transport};
use crate::rtsp::interleaved;

/// RFC 2326 §12.37: a session's timeout when the server names none.
const DEFAULT_SESSION_TIMEOUT_S: u64 = 60;
/// How long TEARDOWN's answer is awaited at the end.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);

/// An `rtsp://` target: the URL without credentials, and the credentials.
#[derive(Clone, Debug)]
pub struct RtspTarget {
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub credentials: Option<Credentials>,
}

impl RtspTarget {
    /// Reads `rtsp://[user[:password]@]host[:port][/path]`. Errors never repeat the text (it
    /// may hold a password).
    pub fn parse(s: &str) -> Result<RtspTarget, String> {
        let scheme = s.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("rtsp") => {}
            Some("rtsps") => return Err("rtsps:// (RTSP over TLS) is not supported by the probe".into()),
            _ => return Err("not an rtsp:// URL".into()),
        }
        let mut url = Url::parse(s).map_err(|e| format!("not a valid rtsp:// URL ({e})"))?;
        let host = match url.host() {
            Some(rtsp_types::Host::Domain(d)) => d.to_string(),
            Some(rtsp_types::Host::Ipv4(a)) => a.to_string(),
            Some(rtsp_types::Host::Ipv6(a)) => a.to_string(),
            None => return Err("the rtsp:// URL names no host".into()),
        };
        if host.is_empty() {
            return Err("the rtsp:// URL names no host".into());
        }
        let port = url.port().unwrap_or(554);
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user =
                percent_decode(url.username()).ok_or("the user name in the URL is not valid percent-encoded UTF-8")?;
            let password = percent_decode(url.password().unwrap_or(""))
                .ok_or("the password in the URL is not valid percent-encoded UTF-8")?;
            Some(Credentials::new(user, password))
        };
        // Requests never carry the credentials.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        Ok(RtspTarget {
            url,
            host,
            port,
            credentials,
        })
    }
}

/// RFC 3986 percent-decoding (what the url crate leaves encoded in user and password).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL `control` names relative to `base` (see the module docs).
fn resolve(base: &Url, control: Option<&str>) -> Result<Url, String> {
    let c = control.map(str::trim).unwrap_or("");
    let bad = |e: &dyn std::fmt::Display| format!("bad control URL {:?} in the SDP ({e})", printable(c));
    if c.is_empty() || c == "*" {
        return Ok(base.clone());
    }
    if c.split_once("://").is_some_and(|(s, _)| s.eq_ignore_ascii_case("rtsp")) {
        return Url::parse(c).map_err(|e| bad(&e));
    }
    if c.starts_with('/') {
        return base.join(c).map_err(|e| bad(&e));
    }
    let b = base.as_str();
    let joined = if b.ends_with('/') {
        format!("{b}{c}")
    } else {
        format!("{b}/{c}")
    };
    Url::parse(&joined).map_err(|e| bad(&e))
}

/// The session id and timeout of a `Session` header (`id[;timeout=N]`).
fn session(value: &str) -> (String, Option<u64>) {
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or("").trim().to_string();
    let timeout = parts
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("timeout"))
        .and_then(|(_, v)| v.trim().parse().ok());
    (id, timeout)
}

/// A `Transport` reply's parameter `name` (`name=value`) of its first transport.
fn transport_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .split(',')
        .next()?
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// `a-b` (or `a`: then `a-(a+1)`).
fn pair<T: std::str::FromStr + Copy + TryFrom<u32>>(v: &str) -> Option<(T, T)>
where
    u32: From<T>,
{
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim().parse::<T>().ok()?, Some(b.trim().parse::<T>().ok()?)),
        None => (v.trim().parse::<T>().ok()?, None),
    };
    let b = match b {
        Some(b) => b,
        None => T::try_from(u32::from(a) + 1).ok()?,
    };
    Some((a, b))
}

/// The `seq` of an `RTP-Info` header (RFC 2326 §12.33): of the entry whose `url` is the
/// stream's, else of the first entry that has one.
fn rtp_info_seq(value: &str, stream: &Url) -> Option<u16> {
    let entries = value.split(',').map(|e| {
        let mut url = None;
        let mut seq = None;
        for p in e.split(';') {
            match p.trim().split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("url") => url = Some(v.trim().trim_matches('"')),
                Some((k, v)) if k.trim().eq_ignore_ascii_case("seq") => seq = v.trim().parse::<u16>().ok(),
                _ => {}
            }
        }
        (url, seq)
    });
    let entries: Vec<_> = entries.take(16).collect();
    let ours = entries.iter().find(|(u, s)| {
        s.is_some()
            && u.is_some_and(|u| {
                u.trim_end_matches('/') == stream.as_str().trim_end_matches('/') || stream.as_str().ends_with(u)
            })
    });
    ours.or_else(|| entries.iter().find(|(_, s)| s.is_some()))
        .and_then(|(_, s)| *s)
}

/// How far before RTP-Info's `seq` a packet may be and still be taken as sent before PLAY
/// (RFC 3550 A.1's MAX_MISORDER): a packet further off means the header was about something
/// else, and ends the check rather than dropping the stream.
const BEFORE_PLAY_WINDOW: u16 = 100;

/// Whether an RTP packet comes before RTP-Info's `seq` (`start`), and is dropped. The first
/// packet not dropped ends the check.
fn before_play(start: &mut Option<u16>, packet: &[u8]) -> bool {
    let (Some(first), Some(seq)) = (*start, packet.get(2..4)) else {
        return false;
    };
    let behind = first.wrapping_sub(u16::from_be_bytes([seq[0], seq[1]]));
    if (1..=BEFORE_PLAY_WINDOW).contains(&behind) {
        return true;
    }
    *start = None;
    false
}

/// How RTP reaches us.
enum Mode {
    Tcp {
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    Udp {
        rtp: UdpSocket,
        rtcp: UdpSocket,
        /// Where receiver reports go: the server's RTCP port (`server_port`), when given.
        server_rtcp: Option<SocketAddr>,
        /// Addresses media may come from: the server's (and its `source`, if named).
        sources: Vec<IpAddr>,
    },
}

/// A playing RTSP session, as the probe's [`Transport`].
pub struct RtspTransport {
    conn: Conn,
    mode: Mode,
    /// PLAY, keepalive and TEARDOWN go here.
    session_url: Url,
    /// The stream's formats (from the SDP).
    pub formats: Vec<(u8, Codec)>,
    keepalive: Method,
    keepalive_every: Duration,
    next_keepalive: Instant,
    keepalive_cseq: Option<u32>,
    /// RTP-Info's `seq`: until a packet at or after it arrives, earlier ones are dropped.
    start_seq: Option<u16>,
    buf: Vec<u8>,
    source: String,
    status: String,
}

/// A request's outcome as a one-line error: `DESCRIBE rtsp://…: 404 Not Found`.
fn refused(method: &str, url: &Url, r: &Response<Vec<u8>>, hint: &str) -> ProbeError {
    let location = match u16::from(r.status()) {
        300..=399 => header(r, &headers::LOCATION)
            .map(|l| format!(" (Location: {})", printable(l)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    ProbeError::Rtsp(format!("{method} {url}: {}{location}{hint}", status_line(r)))
}

fn rtsp_err(e: ConnError) -> ProbeError {
    match e {
        ConnError::Closed => ProbeError::Rtsp("the server closed the connection".into()),
        e => ProbeError::Rtsp(e.to_string()),
    }
}

fn is_success(r: &Response<Vec<u8>>) -> bool {
    (200..300).contains(&u16::from(r.status()))
}

/// An even local UDP port and the next one, on the wildcard address of `family`'s kind.
fn bind_pair(family: IpAddr) -> Result<(UdpSocket, UdpSocket), ProbeError> {
    let any: IpAddr = match family {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    for _ in 0..64 {
        let a = UdpSocket::bind((any, 0)).map_err(|e| ProbeError::Io("bind", e))?;
        let port = a.local_addr().map_err(|e| ProbeError::Io("bind", e))?.port();
        if port % 2 == 0 && port < u16::MAX {
            if let Ok(b) = UdpSocket::bind((any, port + 1)) {
                return Ok((a, b));
            }
        }
    }
    Err(ProbeError::Rtsp(
        "no free even/odd UDP port pair for RTP and RTCP".into(),
    ))
}

impl RtspTransport {
    /// Connects, describes, sets up and plays. `udp`: RTP over UDP instead of interleaved.
    pub fn open(t: &RtspTarget, udp: bool, timeout: Duration, stop: &AtomicBool) -> Result<RtspTransport, ProbeError> {
        let mut conn = Conn::connect(&t.host, t.port, t.credentials.clone(), timeout).map_err(rtsp_err)?;

        // OPTIONS: what the server offers (for the keepalive); only authentication and the
        // connection can fail here (some servers answer OPTIONS with an error and serve on).
        let r = conn.request(Method::Options, &t.url, &[], stop).map_err(rtsp_err)?;
        let public = header(&r, &headers::PUBLIC).map(str::to_ascii_uppercase);
        let keepalive = match public {
            Some(p) if !p.split(',').any(|m| m.trim() == "GET_PARAMETER") => Method::Options,
            _ => Method::GetParameter,
        };

        let r = conn
            .request(
                Method::Describe,
                &t.url,
                &[(headers::ACCEPT, "application/sdp".into())],
                stop,
            )
            .map_err(rtsp_err)?;
        if !is_success(&r) {
            return Err(refused("DESCRIBE", &t.url, &r, ""));
        }
        let base = header(&r, &headers::CONTENT_BASE)
            .or_else(|| header(&r, &headers::CONTENT_LOCATION))
            .and_then(|b| Url::parse(b.trim()).ok())
            .unwrap_or_else(|| t.url.clone());
        let text = String::from_utf8_lossy(r.body());
        let described = sdp::parse(&text).map_err(|e| ProbeError::Rtsp(e.to_string()))?;
        let stream_url = resolve(&base, described.control.as_deref()).map_err(ProbeError::Rtsp)?;
        let session_url = match described.session_control.as_deref() {
            Some(c) => resolve(&base, Some(c)).map_err(ProbeError::Rtsp)?,
            None => base.clone(),
        };

        let udp_pair = if udp { Some(bind_pair(conn.peer.ip())?) } else { None };
        let (spec, hint) = match &udp_pair {
            Some((rtp, _)) => {
                let p = rtp.local_addr().map_err(|e| ProbeError::Io("bind", e))?.port();
                (
                    format!("RTP/AVP;unicast;client_port={p}-{}", p + 1),
                    " (the server does not offer RTP over UDP: try without --udp)",
                )
            }
            None => (
                "RTP/AVP/TCP;unicast;interleaved=0-1".to_string(),
                " (the server does not offer RTP over TCP: try --udp)",
            ),
        };
        let r = conn
            .request(Method::Setup, &stream_url, &[(headers::TRANSPORT, spec)], stop)
            .map_err(rtsp_err)?;
        if !is_success(&r) {
            let hint = if r.status() == StatusCode::UnsupportedTransport {
                hint
            } else {
                ""
            };
            return Err(refused("SETUP", &stream_url, &r, hint));
        }
        let Some((id, timeout_s)) = header(&r, &headers::SESSION)
            .map(session)
            .filter(|(id, _)| !id.is_empty())
        else {
            return Err(ProbeError::Rtsp(format!(
                "SETUP {stream_url}: no Session in the answer"
            )));
        };
        conn.session = Some(id);
        let transport = header(&r, &headers::TRANSPORT).unwrap_or("");
        let (mode, how) = match udp_pair {
            None => {
                // The server may pick other channels than the ones asked for.
                let (rtp_channel, rtcp_channel) = transport_param(transport, "interleaved")
                    .and_then(pair::<u8>)
                    .unwrap_or((0, 1));
                (
                    Mode::Tcp {
                        rtp_channel,
                        rtcp_channel,
                    },
                    format!("TCP (interleaved {rtp_channel}-{rtcp_channel})"),
                )
            }
            Some((rtp, rtcp)) => {
                let server_ports = transport_param(transport, "server_port").and_then(pair::<u16>);
                let mut sources = vec![conn.peer.ip()];
                if let Some(ip) = transport_param(transport, "source").and_then(|s| s.parse::<IpAddr>().ok()) {
                    sources.push(ip);
                }
                let local = rtp.local_addr().map_err(|e| ProbeError::Io("bind", e))?.port();
                for s in [&rtp, &rtcp] {
                    s.set_nonblocking(true).map_err(|e| ProbeError::Io("socket", e))?;
                }
                let how = match server_ports {
                    Some((a, b)) => format!("UDP (client ports {local}-{}, server ports {a}-{b})", local + 1),
                    None => format!("UDP (client ports {local}-{})", local + 1),
                };
                (
                    Mode::Udp {
                        rtp,
                        rtcp,
                        server_rtcp: server_ports.map(|(_, b)| SocketAddr::new(conn.peer.ip(), b)),
                        sources,
                    },
                    how,
                )
            }
        };

        let range = [(headers::RANGE, "npt=0.000-".to_string())];
        let r = match conn.request(Method::Play, &session_url, &range, stop) {
            Ok(r) if is_success(&r) => r,
            failed => {
                // The session exists: end it (a UDP one would otherwise linger until its
                // timeout), without waiting for the answer.
                let _ = conn.send(Method::Teardown, &session_url, &[]);
                return Err(match failed {
                    Ok(r) => refused("PLAY", &session_url, &r, ""),
                    Err(e) => rtsp_err(e),
                });
            }
        };
        let start_seq = header(&r, &headers::RTP_INFO).and_then(|v| rtp_info_seq(v, &stream_url));
        // Whatever the server says (a hostile one may say 2^64 - 1): between 2 s and a day.
        let timeout_s = timeout_s.unwrap_or(DEFAULT_SESSION_TIMEOUT_S).clamp(2, 86_400);
        let keepalive_every = Duration::from_secs(timeout_s) / 2;
        let status = format!(
            "connected to {} ({}), transport {how}, {}, session timeout {timeout_s} s",
            t.url, conn.peer, described.encoding
        );
        Ok(RtspTransport {
            conn,
            mode,
            source: format!("from {}", t.url),
            session_url,
            formats: described.formats,
            keepalive,
            keepalive_every,
            next_keepalive: Instant::now() + keepalive_every,
            keepalive_cseq: None,
            start_seq,
            buf: vec![0u8; 65_536],
            status,
        })
    }

    /// One line for the user: where, how, what.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Ends the session (TEARDOWN, its answer awaited briefly); errors are of no interest
    /// any more.
    pub fn teardown(mut self) {
        if self.conn.session.is_none() {
            return;
        }
        self.conn.response_timeout = TEARDOWN_WAIT;
        let not_stopped = AtomicBool::new(false);
        if let Ok(cseq) = self.conn.send(Method::Teardown, &self.session_url, &[]) {
            let _ = self.conn.wait_response(cseq, "TEARDOWN", &not_stopped);
        }
    }

    /// A response on the connection while the stream plays (a keepalive's).
    fn on_response(&mut self, r: Response<Vec<u8>>) -> Result<(), ProbeError> {
        let cseq = header(&r, &headers::CSEQ).and_then(|c| c.trim().parse::<u32>().ok());
        if cseq.is_none() || cseq != self.keepalive_cseq {
            return Ok(());
        }
        self.keepalive_cseq = None;
        let method: &str = (&self.keepalive).into();
        match r.status() {
            _ if is_success(&r) => Ok(()),
            StatusCode::Unauthorized if self.conn.rechallenge(&r) => Ok(()),
            StatusCode::Unauthorized => Err(refused(method, &self.session_url, &r, "")),
            StatusCode::SessionNotFound => Err(refused(
                method,
                &self.session_url,
                &r,
                " (the server ended the session)",
            )),
            // A server that does not take GET_PARAMETER: keep the session alive with OPTIONS.
            _ if self.keepalive == Method::GetParameter => {
                self.keepalive = Method::Options;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes what is buffered on the connection: responses, requests; `Some` for a frame
    /// (channel, length) on one of our channels.
    fn next_frame(&mut self) -> Result<Option<(bool, usize)>, ProbeError> {
        loop {
            match self.conn.inbound.take().map_err(rtsp_err)? {
                None => return Ok(None),
                Some(Incoming::Response(r)) => self.on_response(r)?,
                Some(Incoming::Request { cseq }) => self.conn.refuse(cseq).map_err(rtsp_err)?,
                Some(Incoming::Frame { channel, len }) => {
                    let rtcp = match self.mode {
                        Mode::Tcp {
                            rtp_channel,
                            rtcp_channel,
                        } => match channel {
                            c if c == rtp_channel => false,
                            c if c == rtcp_channel => true,
                            _ => continue,
                        },
                        Mode::Udp { .. } => continue,
                    };
                    if !rtcp && before_play(&mut self.start_seq, self.conn.inbound.frame(len)) {
                        continue;
                    }
                    return Ok(Some((rtcp, len)));
                }
            }
        }
    }
}

impl Transport for RtspTransport {
    fn recv(&mut self, wait: Duration) -> Result<Option<Packet<'_>>, ProbeError> {
        let deadline = Instant::now() + wait;
        let from = self.conn.peer;
        // Frames that came while a response was awaited (around PLAY).
        while let Some((channel, data)) = self.conn.queued.pop_front() {
            if let Mode::Tcp {
                rtp_channel,
                rtcp_channel,
            } = self.mode
            {
                let rtcp = channel == rtcp_channel;
                let rtp = channel == rtp_channel && !before_play(&mut self.start_seq, &data);
                if rtp || rtcp {
                    let n = data.len().min(self.buf.len());
                    self.buf[..n].copy_from_slice(&data[..n]);
                    return Ok(Some(Packet {
                        from,
                        rtcp,
                        data: &self.buf[..n],
                    }));
                }
            }
        }
        loop {
            if let Some((rtcp, len)) = self.next_frame()? {
                return Ok(Some(Packet {
                    from,
                    rtcp,
                    data: self.conn.inbound.frame(len),
                }));
            }
            if let Mode::Udp { rtp, rtcp, sources, .. } = &self.mode {
                // RTCP first: it is rare, and RTP must not starve it.
                for (socket, is_rtcp) in [(rtcp, true), (rtp, false)] {
                    // Bounded: a flood of packets we drop must not hold the loop.
                    for _ in 0..64 {
                        let Ok((n, from)) = socket.recv_from(&mut self.buf) else {
                            break;
                        };
                        if !sources.contains(&from.ip()) {
                            continue;
                        }
                        if !is_rtcp && before_play(&mut self.start_seq, &self.buf[..n]) {
                            continue;
                        }
                        return Ok(Some(Packet {
                            from,
                            rtcp: is_rtcp,
                            data: &self.buf[..n],
                        }));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match &self.mode {
                Mode::Tcp { .. } => {
                    self.conn.read_some(left).map_err(rtsp_err)?;
                }
                Mode::Udp { rtp, rtcp, .. } => {
                    let ready = wait_readable(&[rtp.as_fd(), rtcp.as_fd(), self.conn.as_fd()], left)
                        .map_err(|e| ProbeError::Io("poll", e))?;
                    if ready[2] {
                        self.conn.read_some(Duration::ZERO).map_err(rtsp_err)?;
                    }
                }
            }
        }
    }

    fn send_rtcp(&mut self, report: &[u8], to: SocketAddr) -> bool {
        match &self.mode {
            Mode::Tcp { rtcp_channel, .. } => {
                let Ok(head) = interleaved::header(*rtcp_channel, report.len()) else {
                    return false;
                };
                let mut frame = head.to_vec();
                frame.extend_from_slice(report);
                self.conn.write_all(&frame).is_ok()
            }
            Mode::Udp { rtcp, server_rtcp, .. } => rtcp.send_to(report, server_rtcp.unwrap_or(to)).is_ok(),
        }
    }

    fn service(&mut self, now: Instant) -> Result<(), ProbeError> {
        if now < self.next_keepalive {
            return Ok(());
        }
        self.next_keepalive = now + self.keepalive_every;
        let cseq = self
            .conn
            .send(self.keepalive.clone(), &self.session_url, &[])
            .map_err(rtsp_err)?;
        self.keepalive_cseq = Some(cseq);
        Ok(())
    }

    fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = RtspTarget::parse("rtsp://us%40er:p%3Ass%20w@cam.local:8554/mic?x=1#frag").unwrap();
        assert_eq!(t.url.as_str(), "rtsp://cam.local:8554/mic?x=1");
        assert_eq!((t.host.as_str(), t.port), ("cam.local", 8554));
        let c = t.credentials.unwrap();
        assert_eq!(c.user, "us@er");
        assert!(!format!("{c:?}").contains("p:ss"));
        let t = RtspTarget::parse("RTSP://[::1]/mic").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 554));
        assert!(t.credentials.is_none());
        assert!(RtspTarget::parse("rtsp://user@h/x").unwrap().credentials.is_some());
        for bad in [
            "rtsps://u:secret@h/x",
            "http://u:secret@h/",
            "rtsp://u:secret@/x",
            "rtsp://u:%zz@h/x",
        ] {
            let e = RtspTarget::parse(bad).unwrap_err();
            assert!(!e.contains("secret") && !e.contains("%zz"), "{e}");
        }
    }

    #[test]
    fn control_urls() {
        let u = |s: &str| Url::parse(s).unwrap();
        let slash = u("rtsp://h:8554/test/");
        let bare = u("rtsp://h:8554/test");
        assert_eq!(
            resolve(&slash, Some("stream=0")).unwrap().as_str(),
            "rtsp://h:8554/test/stream=0"
        );
        assert_eq!(
            resolve(&bare, Some("stream=0")).unwrap().as_str(),
            "rtsp://h:8554/test/stream=0"
        );
        assert_eq!(resolve(&bare, Some("*")).unwrap(), bare);
        assert_eq!(resolve(&bare, None).unwrap(), bare);
        assert_eq!(
            resolve(&bare, Some("/other/t1")).unwrap().as_str(),
            "rtsp://h:8554/other/t1"
        );
        assert_eq!(
            resolve(&bare, Some("rtsp://10.0.0.1/x/trackID=1")).unwrap().as_str(),
            "rtsp://10.0.0.1/x/trackID=1"
        );
    }

    #[test]
    fn headers() {
        assert_eq!(session("1x7hRTfc8cAf2oVr"), ("1x7hRTfc8cAf2oVr".into(), None));
        assert_eq!(session(" abc ; timeout = 30"), ("abc".into(), Some(30)));
        let t = "RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=B55859A2;mode=\"PLAY\"";
        assert_eq!(transport_param(t, "interleaved").and_then(pair::<u8>), Some((2, 3)));
        assert_eq!(transport_param(t, "mode"), Some("PLAY"));
        let t = "RTP/AVP;unicast;client_port=40000-40001;server_port=6970-6971";
        assert_eq!(
            transport_param(t, "server_port").and_then(pair::<u16>),
            Some((6970, 6971))
        );
        assert_eq!(pair::<u16>("5000"), Some((5000, 5001)));
        assert_eq!(pair::<u8>("255"), None);
        assert_eq!(pair::<u16>("x-1"), None);
        let stream = Url::parse("rtsp://127.0.0.1:8554/test/stream=0").unwrap();
        assert_eq!(
            rtp_info_seq(
                "url=rtsp://127.0.0.1:8554/test/stream=0;seq=12813;rtptime=1768570163",
                &stream
            ),
            Some(12813)
        );
        assert_eq!(
            rtp_info_seq("url=rtsp://h/v;seq=1, url=stream=0;seq=2;rtptime=5", &stream),
            Some(2)
        );
        assert_eq!(rtp_info_seq("url=x;seq=7", &stream), Some(7));
        assert_eq!(rtp_info_seq("url=x;rtptime=7", &stream), None);
    }

    #[test]
    fn packets_before_rtp_info_seq_are_dropped() {
        let rtp = |seq: u16| {
            let [a, b] = seq.to_be_bytes();
            [0x80, 0, a, b]
        };
        let mut start = Some(5);
        assert!(before_play(&mut start, &rtp(3)));
        assert!(before_play(&mut start, &rtp(4)));
        assert!(!before_play(&mut start, &rtp(5)));
        assert_eq!(start, None, "the first packet at seq ends the check");
        assert!(
            !before_play(&mut start, &rtp(4)),
            "late packets after it are the stream's"
        );
        // Across the wrap.
        let mut start = Some(2);
        assert!(before_play(&mut start, &rtp(65_535)));
        assert!(!before_play(&mut start, &rtp(3)));
        // A seq far from the stream's: the header was about something else.
        let mut start = Some(30_000);
        assert!(!before_play(&mut start, &rtp(10)));
        assert_eq!(start, None);
        assert!(!before_play(&mut Some(1), &[0x80]), "too short to say");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2F%c3%a9").as_deref(), Some("a b/é"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
