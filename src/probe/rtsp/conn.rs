//! The RTSP connection: requests out (written by rtsp-types), and what comes back split into
//! responses and interleaved `$` frames (RFC 2326 §10.12), which share the connection once
//! the stream plays.
//!
//! What arrives is framed by [`crate::rtsp::framing::next`] (the server core's splitter: it
//! knows `$` frames, finds a message's head within a limit and reads its `Content-Length`),
//! with the client's limits: a response head of at most [`MAX_HEAD`], a body of at most
//! [`MAX_BODY`]. Only a complete response is handed to `rtsp_types::Message::parse`. The
//! socket is non-blocking; every wait is a `poll(2)` with a deadline.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rtsp_types::{headers, HeaderName, Message, Method, Request, Response, StatusCode, Url, Version};

use super::auth::{self, Answerer, Challenge, Credentials};
use super::sdp::printable;
use crate::probe::wait_readable;
use crate::rtsp::framing::{self, FramingError, Item, Limits, Scan};
use crate::rtsp::interleaved;

/// The longest response head taken.
pub const MAX_HEAD: usize = 16 * 1024;
/// The longest response body taken (an SDP).
pub const MAX_BODY: usize = 64 * 1024;
/// The input buffer: the largest response, which also holds the largest frame.
const CAPACITY: usize = MAX_HEAD + MAX_BODY;
/// Frames that arrived while a response was awaited, kept for the stream: at most this
/// many, of at most this many bytes in all (beyond, they are dropped).
const MAX_QUEUED_FRAMES: usize = 256;
const MAX_QUEUED_BYTES: usize = 256 * 1024;

const LIMITS: Limits = Limits {
    head_bytes: MAX_HEAD,
    headers: 128,
    body_bytes: MAX_BODY,
    // Not used by the splitter.
    request_timeout_ns: 0,
    output_bytes: 0,
};

/// What went wrong on the connection; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("{0}")]
    Io(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("no answer to {0} within {1} s")]
    NoAnswer(String, u64),
    #[error("interrupted")]
    Interrupted,
    #[error("the server's answer cannot be read ({0})")]
    Malformed(&'static str),
    #[error("{method} {url}: 401 Unauthorized: the server asks for a user name and password (rtsp://USER:PASSWORD@host/path)")]
    AuthNeeded { method: String, url: String },
    #[error("{method} {url}: 401 Unauthorized: user name or password not accepted (user {user:?})")]
    AuthRejected { method: String, url: String, user: String },
    #[error("{method} {url}: 401 Unauthorized: no authentication scheme the probe knows (offered: {offered})")]
    AuthUnsupported {
        method: String,
        url: String,
        offered: String,
    },
}

/// An item at the front of the input.
pub enum Incoming {
    Response(Response<Vec<u8>>),
    /// A complete frame: its packet is [`Inbound::frame`] until the next call.
    Frame {
        channel: u8,
        len: usize,
    },
    /// A request from the server (RFC 2326 lets it send some): answered 501.
    Request {
        cseq: Option<String>,
    },
}

/// Bytes read from the connection, not yet taken.
#[derive(Default)]
pub struct Inbound {
    buf: Vec<u8>,
    scan: Scan,
    /// Bytes to drop from the front before the next item (the frame last handed out).
    taken: usize,
    /// Bytes of a frame too long for the buffer still to drop as they arrive.
    skip: usize,
}

impl Inbound {
    /// Room to read into: at most what the buffer may still hold.
    fn room(&self) -> usize {
        CAPACITY.saturating_sub(self.buf.len() - self.taken.min(self.buf.len()))
    }

    fn push(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        self.drop_taken();
        if self.skip > 0 {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
    }

    fn drop_taken(&mut self) {
        if self.taken > 0 {
            self.buf.drain(..self.taken.min(self.buf.len()));
            self.taken = 0;
            self.scan = Scan::default();
        }
    }

    /// The packet of the frame [`Inbound::take`] returned last.
    pub fn frame(&self, len: usize) -> &[u8] {
        let end = (interleaved::HEADER_LEN + len).min(self.buf.len());
        &self.buf[interleaved::HEADER_LEN.min(end)..end]
    }

    /// The next complete item, `None` when more bytes are needed.
    pub fn take(&mut self) -> Result<Option<Incoming>, ConnError> {
        self.drop_taken();
        loop {
            match framing::next(&self.buf, &LIMITS, CAPACITY, &mut self.scan) {
                Item::Incomplete => return Ok(None),
                Item::Blank(n) => {
                    self.taken = n;
                    self.drop_taken();
                }
                Item::Frame { channel, len } => {
                    self.taken = interleaved::HEADER_LEN + len;
                    return Ok(Some(Incoming::Frame { channel, len }));
                }
                Item::Oversized { len, .. } => {
                    // Cannot happen with this capacity (a frame is at most 64 KiB + 4), but
                    // if it did: drop it as it arrives.
                    let total = interleaved::HEADER_LEN + len;
                    let have = total.min(self.buf.len());
                    self.skip = total - have;
                    self.taken = have;
                    self.drop_taken();
                }
                Item::Request { len } => {
                    self.taken = len;
                    return match Message::<Vec<u8>>::parse(&self.buf[..len]) {
                        Ok((Message::Response(r), _)) => Ok(Some(Incoming::Response(r))),
                        Ok((Message::Request(r), _)) => Ok(Some(Incoming::Request {
                            cseq: r.header(&headers::CSEQ).map(|v| v.as_str().to_string()),
                        })),
                        Ok((Message::Data(_), _)) | Err(_) => Err(ConnError::Malformed("not an RTSP/1.0 response")),
                    };
                }
                Item::Error(e) => {
                    return Err(ConnError::Malformed(match e {
                        FramingError::HeadTooLarge => "response head larger than 16 KiB",
                        FramingError::TooManyHeaders => "more than 128 header lines",
                        FramingError::BodyTooLarge => "response body larger than 64 KiB",
                        FramingError::BadContentLength => "bad Content-Length",
                    }))
                }
            }
        }
    }
}

/// A response's header as text (several of the same name joined with ", ").
pub fn header<'a>(r: &'a Response<Vec<u8>>, name: &HeaderName) -> Option<&'a str> {
    r.header(name).map(|v| v.as_str())
}

/// `404 Not Found`, the reason phrase made printable.
pub fn status_line(r: &Response<Vec<u8>>) -> String {
    format!("{} {}", u16::from(r.status()), printable(r.reason_phrase()))
}

/// One RTSP connection to the server (RFC 2326 client side).
pub struct Conn {
    stream: TcpStream,
    pub peer: SocketAddr,
    pub inbound: Inbound,
    cseq: u32,
    /// The session id (without `;timeout`), once SETUP gave one.
    pub session: Option<String>,
    creds: Option<Credentials>,
    answerer: Option<Answerer>,
    /// Frames that arrived while a response was awaited.
    pub queued: VecDeque<(u8, Vec<u8>)>,
    /// How long to wait for a response.
    pub response_timeout: Duration,
}

const USER_AGENT: &str = concat!("rtpmic-probe/", env!("CARGO_PKG_VERSION"));

impl Conn {
    /// Connects to `host:port` (each address it resolves to, in turn).
    pub fn connect(host: &str, port: u16, creds: Option<Credentials>, timeout: Duration) -> Result<Conn, ConnError> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| ConnError::Io(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, timeout) {
                Ok(stream) => {
                    stream
                        .set_nonblocking(true)
                        .map_err(|e| ConnError::Io(format!("socket: {e}")))?;
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn {
                        stream,
                        peer: *a,
                        inbound: Inbound::default(),
                        cseq: 0,
                        session: None,
                        creds,
                        answerer: None,
                        queued: VecDeque::new(),
                        response_timeout: timeout,
                    });
                }
                Err(e) => last = Some((*a, e)),
            }
        }
        Err(ConnError::Io(match last {
            Some((a, e)) if a.ip().to_string() == host => format!("cannot connect to {a}: {e}"),
            Some((a, e)) => format!("cannot connect to {host}:{port} ({a}): {e}"),
            None => format!("cannot resolve {host}: no address"),
        }))
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Writes all of `bytes`, waiting (bounded) while the socket is full.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let deadline = Instant::now() + self.response_timeout;
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.stream.write(rest) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ConnError::Io("the server does not read what the probe sends".into()));
                    }
                    let mut fds = [nix::poll::PollFd::new(
                        self.stream.as_fd(),
                        nix::poll::PollFlags::POLLOUT,
                    )];
                    let _ = nix::poll::poll(&mut fds, poll_ms(left));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ConnError::Io(format!("send: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads what the socket has (after waiting at most `wait` for it). `Ok(false)`: nothing
    /// arrived.
    pub fn read_some(&mut self, wait: Duration) -> Result<bool, ConnError> {
        if !wait.is_zero()
            && !wait_readable(&[self.stream.as_fd()], wait).map_err(|e| ConnError::Io(format!("poll: {e}")))?[0]
        {
            return Ok(false);
        }
        let mut chunk = [0u8; 16 * 1024];
        let room = self.inbound.room().min(chunk.len());
        if room == 0 {
            // The splitter refuses anything larger than the buffer before it fills.
            return Err(ConnError::Malformed("response larger than the limits"));
        }
        match self.stream.read(&mut chunk[..room]) {
            Ok(0) => Err(ConnError::Closed),
            Ok(n) => {
                self.inbound.push(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(false),
            Err(e) => Err(ConnError::Io(format!("receive: {e}"))),
        }
    }

    /// Sends a request; returns its CSeq. `Session` and `Authorization` are added when known.
    pub fn send(&mut self, method: Method, url: &Url, extra: &[(HeaderName, String)]) -> Result<u32, ConnError> {
        self.cseq += 1;
        let mut b = Request::builder(method.clone(), Version::V1_0)
            .request_uri(url.clone())
            .header(headers::CSEQ, self.cseq.to_string())
            .header(headers::USER_AGENT, USER_AGENT);
        if let Some(s) = &self.session {
            b = b.header(headers::SESSION, s.clone());
        }
        if let (Some(a), Some(c)) = (self.answerer.as_mut(), self.creds.as_ref()) {
            b = b.header(
                headers::AUTHORIZATION,
                a.authorization(c, (&method).into(), url.as_str()),
            );
        }
        for (name, value) in extra {
            b = b.header(name.clone(), value.clone());
        }
        let mut bytes = Vec::new();
        b.empty()
            .write(&mut bytes)
            .map_err(|_| ConnError::Io("cannot write the request".into()))?;
        self.write_all(&bytes)?;
        Ok(self.cseq)
    }

    /// Answers a request from the server: 501 (the probe serves nothing).
    pub fn refuse(&mut self, cseq: Option<String>) -> Result<(), ConnError> {
        let mut b = Response::builder(Version::V1_0, StatusCode::NotImplemented);
        if let Some(c) = cseq {
            b = b.header(headers::CSEQ, c);
        }
        let mut bytes = Vec::new();
        let _ = b.empty().write(&mut bytes);
        self.write_all(&bytes)
    }

    /// Waits for the response to `cseq` (a response without CSeq is taken as it), keeping
    /// frames that arrive meanwhile and skipping other responses.
    pub fn wait_response(&mut self, cseq: u32, what: &str, stop: &AtomicBool) -> Result<Response<Vec<u8>>, ConnError> {
        let deadline = Instant::now() + self.response_timeout;
        loop {
            // Checked at every item: a server flooding frames must not hold us past it.
            if stop.load(Relaxed) {
                return Err(ConnError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnError::NoAnswer(what.to_string(), self.response_timeout.as_secs()));
            }
            match self.inbound.take()? {
                Some(Incoming::Response(r)) => {
                    let theirs = header(&r, &headers::CSEQ).map(|c| c.trim().parse::<u32>());
                    if theirs.is_none() || theirs.is_some_and(|c| c == Ok(cseq)) {
                        return Ok(r);
                    }
                }
                Some(Incoming::Frame { channel, len }) => {
                    let queued_bytes: usize = self.queued.iter().map(|(_, d)| d.len()).sum();
                    if self.queued.len() < MAX_QUEUED_FRAMES && queued_bytes + len <= MAX_QUEUED_BYTES {
                        let data = self.inbound.frame(len).to_vec();
                        self.queued.push_back((channel, data));
                    }
                }
                Some(Incoming::Request { cseq }) => self.refuse(cseq)?,
                None => {
                    self.read_some(left.min(Duration::from_millis(100)))?;
                }
            }
        }
    }

    /// A request and its response, answering a 401 with the credentials (again once when the
    /// server says the nonce was stale). Any other status is the caller's.
    pub fn request(
        &mut self,
        method: Method,
        url: &Url,
        extra: &[(HeaderName, String)],
        stop: &AtomicBool,
    ) -> Result<Response<Vec<u8>>, ConnError> {
        let name: &str = (&method).into();
        let what = format!("{name} {url}");
        let mut tries = 0;
        loop {
            let cseq = self.send(method.clone(), url, extra)?;
            let r = self.wait_response(cseq, &what, stop)?;
            if r.status() != StatusCode::Unauthorized {
                return Ok(r);
            }
            tries += 1;
            let offered = header(&r, &headers::WWW_AUTHENTICATE).unwrap_or("");
            let Some(creds) = &self.creds else {
                return Err(ConnError::AuthNeeded {
                    method: name.to_string(),
                    url: url.to_string(),
                });
            };
            let chosen = auth::choose(auth::challenges(offered));
            let stale = matches!(chosen, Some(Challenge::Digest { stale: true, .. }));
            let answered = self.answerer.is_some();
            match chosen {
                None => {
                    return Err(ConnError::AuthUnsupported {
                        method: name.to_string(),
                        url: url.to_string(),
                        offered: printable(offered),
                    })
                }
                // First challenge, or a stale nonce: answer (at most three rounds in all).
                Some(c) if (!answered || stale) && tries < 3 => self.answerer = Some(Answerer::new(c)),
                Some(_) => {
                    return Err(ConnError::AuthRejected {
                        method: name.to_string(),
                        url: url.to_string(),
                        user: creds.user.clone(),
                    })
                }
            }
        }
    }

    /// After a 401 to a request sent without waiting (a keepalive): answer the new challenge
    /// from the next request on. `false` when there is nothing we can answer.
    pub fn rechallenge(&mut self, r: &Response<Vec<u8>>) -> bool {
        let offered = header(r, &headers::WWW_AUTHENTICATE).unwrap_or("");
        match (auth::choose(auth::challenges(offered)), &self.creds) {
            (Some(c), Some(_)) => {
                self.answerer = Some(Answerer::new(c));
                true
            }
            _ => false,
        }
    }
}

/// A wait in poll(2)'s milliseconds (rounded up, so a short wait still waits).
pub fn poll_ms(d: Duration) -> nix::poll::PollTimeout {
    let ms = d.as_micros().div_ceil(1000).min(u128::from(u16::MAX)) as u16;
    nix::poll::PollTimeout::from(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8]) -> Result<Vec<String>, ConnError> {
        let mut inb = Inbound::default();
        let mut out = Vec::new();
        // Bytes one at a time, as TCP may cut them.
        for b in input {
            inb.push(std::slice::from_ref(b));
            while let Some(i) = inb.take()? {
                out.push(match i {
                    Incoming::Response(r) => format!("response {}", status_line(&r)),
                    Incoming::Frame { channel, len } => format!("frame {channel} {:?}", inb.frame(len)),
                    Incoming::Request { cseq } => format!("request {cseq:?}"),
                });
            }
        }
        Ok(out)
    }

    #[test]
    fn responses_and_frames_interleave() {
        let input = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nContent-Length: 3\r\n\r\nabc$\x00\x00\x02\x80\x01\r\n\
                      $\x01\x00\x00RTSP/1.0 454 Session Not Found\r\nCSeq: 5\r\n\r\n\
                      GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n";
        assert_eq!(
            items(input).unwrap(),
            [
                "response 200 OK",
                "frame 0 [128, 1]",
                "frame 1 []",
                "response 454 Session Not Found",
                "request Some(\"9\")"
            ]
        );
    }

    #[test]
    fn limits_and_garbage() {
        let mut big = b"RTSP/1.0 200 OK\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(items(&big), Err(ConnError::Malformed(_))));
        let body = format!("RTSP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert!(matches!(items(body.as_bytes()), Err(ConnError::Malformed(_))));
        assert!(matches!(
            items(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ConnError::Malformed(_))
        ));
        // The largest frame fits.
        let mut frame = vec![b'$', 0, 0xff, 0xff];
        frame.extend(std::iter::repeat_n(7u8, 65_535));
        let mut inb = Inbound::default();
        inb.push(&frame);
        assert!(matches!(
            inb.take(),
            Ok(Some(Incoming::Frame {
                channel: 0,
                len: 65_535
            }))
        ));
        assert_eq!(inb.frame(65_535).len(), 65_535);
        assert!(matches!(inb.take(), Ok(None)));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let pieces: [&[u8]; 8] = [
            b"RTSP/1.0 ",
            b"200 OK\r\n",
            b"Content-Length: 5\r\n",
            b"\r\n",
            b"$\x00\x00\x05",
            b"\xff\xfe",
            b"CSeq: x\r\n",
            b"RTSP/1.0 401 \xc3\x28\r\n",
        ];
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                input.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            let _ = items(&input);
        }
    }
}
