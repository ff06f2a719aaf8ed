//! A small blocking RTSP/1.0 client (RFC 2326) for the tests: OPTIONS, DESCRIBE, SETUP (UDP,
//! TCP-interleaved or multicast), PLAY, GET_PARAMETER, TEARDOWN, Basic credentials, and RTCP
//! receiver reports; it records every RTP packet it gets (sequence number, SSRC, arrival),
//! which real players (ffmpeg, GStreamer) cannot tell a test.
//!
//! One reader thread per connection splits what the server sends into responses (handed to
//! the caller through a channel) and interleaved frames (RTP recorded); it can be told to
//! stop reading (a client that stalls). UDP and multicast RTP are recorded by a thread per
//! socket ([`UdpRecorder`]). Included with `#[path]` by the tests that use it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One RTP packet received.
#[derive(Clone, Debug)]
pub struct Packet {
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub pt: u8,
    pub marker: bool,
    pub at: Instant,
    pub payload: Vec<u8>,
}

/// `bytes` as an RTP packet (version 2, not RTCP), or `None`.
pub fn parse_rtp(bytes: &[u8], at: Instant) -> Option<Packet> {
    if bytes.len() < 12 || bytes[0] >> 6 != 2 || (200..=204).contains(&bytes[1]) {
        return None;
    }
    let cc = usize::from(bytes[0] & 0x0f);
    let mut start = 12 + 4 * cc;
    if bytes[0] & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([*bytes.get(start + 2)?, *bytes.get(start + 3)?]));
        start += 4 + 4 * words;
    }
    let mut end = bytes.len();
    if bytes[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*bytes.last()?))?;
    }
    Some(Packet {
        seq: u16::from_be_bytes([bytes[2], bytes[3]]),
        ts: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        ssrc: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        pt: bytes[1] & 0x7f,
        marker: bytes[1] & 0x80 != 0,
        at,
        payload: bytes.get(start..end)?.to_vec(),
    })
}

/// Asserts `pkts` is one stream with no sequence gap (each number the one before plus one,
/// one SSRC). `what` names the receiver in the message.
pub fn assert_no_gap(pkts: &[Packet], what: &str) {
    assert!(!pkts.is_empty(), "{what}: no packet at all");
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{what}: sequence gap after packet {i} of {} (seq {} then {})",
            pkts.len(),
            w[0].seq,
            w[1].seq
        );
        assert_eq!(w[1].ssrc, w[0].ssrc, "{what}: SSRC changed at packet {i}");
    }
}

/// The longest time between two consecutive packets.
pub fn longest_interval(pkts: &[Packet]) -> Duration {
    pkts.windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default()
}

/// Records the RTP arriving on a UDP socket, from a thread, until stopped.
pub struct UdpRecorder {
    socket: UdpSocket,
    packets: Arc<Mutex<Vec<Packet>>>,
    /// Datagrams that were not RTP (RTCP, junk).
    pub other: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpRecorder {
    /// A recorder on a fresh loopback socket.
    pub fn bind() -> UdpRecorder {
        UdpRecorder::start(UdpSocket::bind("127.0.0.1:0").unwrap())
    }

    /// Records what arrives on `socket`, each packet stamped with when the kernel received
    /// it (`SO_TIMESTAMPNS`), so a busy test process does not make the stream look paused.
    pub fn start(socket: UdpSocket) -> UdpRecorder {
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(1 << 20);
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true).unwrap();
        let packets = Arc::new(Mutex::new(Vec::with_capacity(4096)));
        let other = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (socket, packets, other, stop) = (
                socket.try_clone().unwrap(),
                packets.clone(),
                other.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
                while !stop.load(Relaxed) {
                    if let Some((n, at)) = recv_stamped(&socket, &mut buf, &mut cmsg) {
                        match parse_rtp(&buf[..n], at) {
                            Some(p) => packets.lock().unwrap().push(p),
                            None => {
                                other.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            })
        };
        UdpRecorder {
            socket,
            packets,
            other,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// What was recorded so far.
    pub fn packets(&self) -> Vec<Packet> {
        self.packets.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.packets.lock().unwrap().len()
    }

    /// Waits until `n` packets were recorded (false at `limit`).
    pub fn wait_for(&self, n: usize, limit: Duration) -> bool {
        wait_until(limit, || self.count() >= n)
    }

    /// Waits until nothing arrived for `idle` (at most 10 s), stops, and returns everything.
    pub fn finish(mut self, idle: Duration) -> Vec<Packet> {
        settle(idle, || self.count());
        self.stop_thread();
        self.packets()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for UdpRecorder {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// One datagram into `buf`: its length and when the kernel received it.
fn recv_stamped(socket: &UdpSocket, buf: &mut [u8], cmsg: &mut [u8]) -> Option<(usize, Instant)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    use std::os::fd::AsRawFd;
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(cmsg), MsgFlags::empty()).ok()?;
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let stamp = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(ts) => Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)),
        _ => None,
    });
    let age = stamp
        .and_then(|s| wall.duration_since(std::time::UNIX_EPOCH).ok()?.checked_sub(s))
        .unwrap_or_default();
    Some((msg.bytes, now.checked_sub(age).unwrap_or(now)))
}

/// Polls `cond` every 10 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `count` stops growing for `idle` (at most 10 s).
pub fn settle(idle: Duration, mut count: impl FnMut() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut last, mut since) = (count(), Instant::now());
    while Instant::now() < deadline && since.elapsed() < idle {
        std::thread::sleep(Duration::from_millis(20));
        let n = count();
        if n != last {
            (last, since) = (n, Instant::now());
        }
    }
}

/// A response from the server.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, as received.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every header called `name`, in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// How a client asks to get the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Multicast,
}

/// What the reader thread shares with the client.
struct Shared {
    packets: Mutex<Vec<Packet>>,
    /// Interleaved frames on channels other than the RTP one (RTCP).
    other_frames: AtomicUsize,
    rtp_channel: AtomicUsize,
    paused: AtomicBool,
    stop: AtomicBool,
    /// The server closed the connection (or it failed).
    eof: AtomicBool,
    bytes: AtomicU64,
}

/// A blocking RTSP client over one TCP connection.
pub struct Client {
    /// The stream's URL, `rtsp://host:port/path`.
    pub url: String,
    stream: TcpStream,
    responses: Receiver<Response>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    cseq: u32,
    /// The session id (16 hex digits) once SETUP succeeded.
    pub session: Option<String>,
    /// Sent as `Authorization:` with every request.
    pub authorization: Option<String>,
    pub transport: Option<Transport>,
    /// UDP RTP (unicast or the multicast group) and the RTCP socket.
    udp: Option<UdpRecorder>,
    rtcp: Option<UdpSocket>,
    /// Where RTCP goes: the server's RTCP port, or the group's.
    rtcp_to: Option<SocketAddr>,
    pub server_ports: Option<(u16, u16)>,
    /// The server's SSRC, from the SETUP answer.
    pub ssrc: Option<u32>,
    /// `RTP-Info: seq=` from the PLAY answer.
    pub rtp_info_seq: Option<u16>,
    pub channels: (u8, u8),
    our_ssrc: u32,
    /// How long to wait for a response.
    pub timeout: Duration,
    /// When the PLAY that was answered 200 was sent.
    pub played_at: Option<Instant>,
}

impl Client {
    /// Connects to `addr`; the stream is `rtsp://addr{path}`.
    pub fn connect(addr: SocketAddr, path: &str) -> io::Result<Client> {
        Client::connect_with(addr, path, None)
    }

    /// Connects with the socket's receive buffer set to `rcvbuf` bytes first (the kernel
    /// doubles it): a small one makes a client that stops reading fill up fast.
    pub fn connect_with(addr: SocketAddr, path: &str, rcvbuf: Option<usize>) -> io::Result<Client> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n)?;
        }
        socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        let shared = Arc::new(Shared {
            packets: Mutex::new(Vec::with_capacity(4096)),
            other_frames: AtomicUsize::new(0),
            rtp_channel: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            eof: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
        });
        let (tx, responses) = channel();
        let reader = {
            let (s, shared) = (stream.try_clone()?, shared.clone());
            std::thread::spawn(move || read_loop(s, &shared, &tx))
        };
        Ok(Client {
            url: format!("rtsp://{addr}{path}"),
            stream,
            responses,
            shared,
            reader: Some(reader),
            cseq: 0,
            session: None,
            authorization: None,
            transport: None,
            udp: None,
            rtcp: None,
            rtcp_to: None,
            server_ports: None,
            ssrc: None,
            rtp_info_seq: None,
            channels: (0, 1),
            our_ssrc: rand::random::<u32>() | 1,
            timeout: Duration::from_secs(10),
            played_at: None,
        })
    }

    /// OPTIONS, DESCRIBE, SETUP with `t`, PLAY; panics unless each is answered 200.
    pub fn play_session(addr: SocketAddr, path: &str, t: Transport) -> Client {
        let mut c = Client::connect(addr, path).expect("connect to the RTSP server");
        c.start(t).unwrap_or_else(|e| panic!("{e}"));
        c
    }

    /// OPTIONS, DESCRIBE, SETUP, PLAY on this connection: `Err` names the step that was not
    /// answered 200 (or not answered).
    pub fn start(&mut self, t: Transport) -> Result<(), String> {
        check("OPTIONS", self.options())?;
        check("DESCRIBE", self.describe())?;
        check("SETUP", self.setup(t))?;
        check("PLAY", self.play())?;
        Ok(())
    }

    /// Sends a request and waits for its response (matched by CSeq).
    pub fn send(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        self.cseq += 1;
        let mut req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: rtpmic-test-client\r\n",
            self.cseq
        );
        if let Some(s) = &self.session {
            req.push_str(&format!("Session: {s}\r\n"));
        }
        if let Some(a) = &self.authorization {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes())?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.responses.recv_timeout(left) {
                Ok(r) => {
                    let cseq = r.header("CSeq").and_then(|v| v.parse::<u32>().ok());
                    if cseq.is_none() || cseq == Some(self.cseq) {
                        return Ok(r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer to {method}"),
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("connection closed before the answer to {method}"),
                    ))
                }
            }
        }
    }

    pub fn options(&mut self) -> io::Result<Response> {
        let url = self.url.clone();
        self.send("OPTIONS", &url, &[])
    }

    pub fn describe(&mut self) -> io::Result<Response> {
        let url = self.url.clone();
        self.send("DESCRIBE", &url, &[("Accept", "application/sdp")])
    }

    /// SETUP of the track with transport `t`: binds the UDP sockets it needs first.
    pub fn setup(&mut self, t: Transport) -> io::Result<Response> {
        let transport = match t {
            Transport::Udp => {
                let (rtp, rtcp) = udp_pair();
                let port = rtp.local_addr()?.port();
                self.udp = Some(UdpRecorder::start(rtp));
                self.rtcp = Some(rtcp);
                format!("RTP/AVP;unicast;client_port={}-{}", port, port + 1)
            }
            Transport::Tcp => "RTP/AVP/TCP;unicast;interleaved=0-1".to_string(),
            Transport::Multicast => "RTP/AVP;multicast".to_string(),
        };
        let url = format!("{}/trackID=0", self.url);
        let r = self.send("SETUP", &url, &[("Transport", &transport)])?;
        if r.status != 200 {
            return Ok(r);
        }
        self.transport = Some(t);
        self.session = r
            .header("Session")
            .map(|s| s.split(';').next().unwrap_or_default().trim().to_string());
        let granted = r.header("Transport").unwrap_or_default();
        let param = |name: &str| {
            granted
                .split(';')
                .filter_map(|p| p.split_once('='))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let pair = |v: String| {
            let (a, b) = v.split_once('-').unwrap_or((&v, ""));
            let a: u16 = a.parse().ok()?;
            Some((a, b.parse().unwrap_or(a + 1)))
        };
        self.ssrc = param("ssrc").and_then(|v| u32::from_str_radix(&v, 16).ok());
        self.server_ports = param("server_port").and_then(pair);
        let server_ip = self.stream.peer_addr()?.ip();
        match t {
            Transport::Udp => {
                self.rtcp_to = self.server_ports.map(|(_, b)| SocketAddr::new(server_ip, b));
            }
            Transport::Tcp => {
                if let Some((a, b)) = param("interleaved").and_then(pair) {
                    self.channels = (a as u8, b as u8);
                    self.shared.rtp_channel.store(usize::from(a as u8), Relaxed);
                }
            }
            Transport::Multicast => {
                let group: Ipv4Addr = param("destination")
                    .and_then(|d| d.parse().ok())
                    .expect("a multicast group in the answer");
                let (port, rtcp_port) = param("port").and_then(pair).expect("the group's ports");
                self.udp = Some(UdpRecorder::start(join_group(group, port)));
                self.rtcp_to = Some(SocketAddr::new(IpAddr::V4(group), rtcp_port));
                // Reports to the group go out on loopback too.
                let rtcp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
                rtcp.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
                rtcp.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
                rtcp.set_multicast_loop_v4(true)?;
                self.rtcp = Some(rtcp.into());
            }
        }
        Ok(r)
    }

    /// PLAY (the aggregate URL); records `RTP-Info: seq=`.
    pub fn play(&mut self) -> io::Result<Response> {
        let url = self.url.clone();
        let sent = Instant::now();
        let r = self.send("PLAY", &url, &[("Range", "npt=0.000-")])?;
        if r.status == 200 {
            self.played_at = Some(sent);
            self.rtp_info_seq = r.header("RTP-Info").and_then(|v| {
                v.split(';')
                    .find_map(|p| p.trim().strip_prefix("seq=").and_then(|s| s.parse().ok()))
            });
        }
        Ok(r)
    }

    /// GET_PARAMETER with no body: a keepalive.
    pub fn get_parameter(&mut self) -> io::Result<Response> {
        let url = self.url.clone();
        self.send("GET_PARAMETER", &url, &[])
    }

    pub fn teardown(&mut self) -> io::Result<Response> {
        let url = self.url.clone();
        self.send("TEARDOWN", &url, &[])
    }

    /// Sends `Authorization: Basic …` with every request from now on.
    pub fn basic_auth(&mut self, user: &str, password: &str) {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {token}"));
    }

    /// An RTCP receiver report about the server's SSRC, with an SDES CNAME: over UDP from
    /// our RTCP port to the server's (or to the group), over TCP on the RTCP channel.
    pub fn send_receiver_report(&mut self) -> io::Result<()> {
        let media = self.ssrc.unwrap_or(0);
        let highest = self.packets().last().map_or(0, |p| u32::from(p.seq));
        let rr = receiver_report(self.our_ssrc, media, highest);
        match self.transport {
            Some(Transport::Tcp) => {
                let mut frame = vec![b'$', self.channels.1];
                frame.extend_from_slice(&(rr.len() as u16).to_be_bytes());
                frame.extend_from_slice(&rr);
                self.stream.write_all(&frame)
            }
            Some(_) => {
                let (Some(s), Some(to)) = (&self.rtcp, self.rtcp_to) else {
                    return Err(io::Error::other("no RTCP socket"));
                };
                s.send_to(&rr, to).map(|_| ())
            }
            None => Err(io::Error::other("no transport set up")),
        }
    }

    /// Every RTP packet received so far (UDP, multicast or interleaved).
    pub fn packets(&self) -> Vec<Packet> {
        match &self.udp {
            Some(u) => u.packets(),
            None => self.shared.packets.lock().unwrap().clone(),
        }
    }

    pub fn count(&self) -> usize {
        match &self.udp {
            Some(u) => u.count(),
            None => self.shared.packets.lock().unwrap().len(),
        }
    }

    /// Waits until `n` packets arrived (false at `limit`).
    pub fn wait_for_packets(&self, n: usize, limit: Duration) -> bool {
        wait_until(limit, || self.count() >= n)
    }

    /// Waits until no packet arrived for `idle` (at most 10 s).
    pub fn settle(&self, idle: Duration) {
        settle(idle, || self.count());
    }

    /// Stops reading the connection (its kernel buffers fill: a stalled client).
    pub fn pause_reading(&self) {
        self.shared.paused.store(true, Relaxed);
    }

    pub fn resume_reading(&self) {
        self.shared.paused.store(false, Relaxed);
    }

    /// The server closed the connection.
    pub fn closed_by_server(&self) -> bool {
        self.shared.eof.load(Relaxed)
    }

    /// Interleaved frames received on channels other than RTP's (the server's RTCP).
    pub fn other_frames(&self) -> usize {
        self.shared.other_frames.load(Relaxed)
    }

    /// Our end of the RTSP connection (what the server logs as the client).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// The first 6 hex digits of the session id: how the server's log names it.
    pub fn session_short(&self) -> String {
        self.session.as_deref().unwrap_or("------").chars().take(6).collect()
    }

    /// Writes raw bytes on the connection.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Closes the connection without a TEARDOWN; returns what was received.
    pub fn close(mut self) -> Vec<Packet> {
        self.stop();
        self.packets()
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(step: &str, r: io::Result<Response>) -> Result<Response, String> {
    match r {
        Ok(r) if r.status == 200 => Ok(r),
        Ok(r) => Err(format!("{step} answered {}:\n{}", r.status, r.head)),
        Err(e) => Err(format!("{step}: {e}")),
    }
}

/// Two UDP sockets on loopback, an even port and the next one.
pub fn udp_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p.is_multiple_of(2) && p < 65534 {
            if let Ok(b) = UdpSocket::bind(("127.0.0.1", p + 1)) {
                return (a, b);
            }
        }
    }
}

/// A socket on `port` (shared with other receivers on this host) joined to `group` on the
/// loopback interface.
pub fn join_group(group: Ipv4Addr, port: u16) -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::new(IpAddr::V4(group), port).into()).unwrap();
    s.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
    s.into()
}

/// An RTCP compound: a receiver report (one block about `media`) and an SDES CNAME.
pub fn receiver_report(ours: u32, media: u32, highest_seq: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ours.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // fraction lost, cumulative lost
    p.extend_from_slice(&highest_seq.to_be_bytes());
    p.extend_from_slice(&[0; 12]); // jitter, LSR, DLSR
    let cname = b"rtsp-test@127.0.0.1";
    let mut sdes = vec![0x81, 202, 0, 0];
    sdes.extend_from_slice(&ours.to_be_bytes());
    sdes.push(1);
    sdes.push(cname.len() as u8);
    sdes.extend_from_slice(cname);
    sdes.push(0);
    while sdes.len() % 4 != 0 {
        sdes.push(0);
    }
    let words = (sdes.len() / 4 - 1) as u16;
    sdes[2..4].copy_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&sdes);
    p
}

/// The reader thread: responses to the channel, RTP frames recorded, until EOF or stop.
fn read_loop(mut s: TcpStream, shared: &Shared, tx: &Sender<Response>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut closed = false;
    while !shared.stop.load(Relaxed) {
        if shared.paused.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                shared.bytes.fetch_add(n as u64, Relaxed);
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                closed = true;
                break;
            }
        }
        let now = Instant::now();
        loop {
            match buf.first() {
                None => break,
                Some(b'$') => {
                    if buf.len() < 4 {
                        break;
                    }
                    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                    if buf.len() < 4 + len {
                        break;
                    }
                    if usize::from(buf[1]) == shared.rtp_channel.load(Relaxed) {
                        if let Some(p) = parse_rtp(&buf[4..4 + len], now) {
                            shared.packets.lock().unwrap().push(p);
                        }
                    } else {
                        shared.other_frames.fetch_add(1, Relaxed);
                    }
                    buf.drain(..4 + len);
                }
                Some(b'\r' | b'\n') => {
                    buf.remove(0);
                }
                Some(_) => {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        break;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let body_len = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + body_len {
                        break;
                    }
                    let body = buf[end + 4..end + 4 + body_len].to_vec();
                    buf.drain(..end + 4 + body_len);
                    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                    let _ = tx.send(Response { status, head, body });
                }
            }
        }
    }
    shared.eof.store(closed, Relaxed);
}
