//! Splits what a client sends on its RTSP connection into requests and interleaved frames,
//! before anything is parsed, so limits are enforced while bytes arrive.
//!
//! `rtsp_types::Message::parse` parses a whole message from one slice (answering "incomplete"
//! otherwise, from the start again each time) and knows no limits; it also reads `$` frames,
//! but only whole ones. So the framing is done here, by hand and cheaply: skip the CR/LF a
//! client may send between messages, recognise a `$` frame by its first byte (a request line
//! starts with a method token, never `$`, RFC 2326 §10.12), find the end of a request's head
//! (`CRLF CRLF`) within [`Limits::head_bytes`], count its header lines, read its
//! `Content-Length`, and wait for the body. Only a complete request is handed to `rtsp_types`.

use super::interleaved;

/// Bounds on what a client may send (hostile input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line and headers, up to and including the blank line.
    pub head_bytes: usize,
    /// Header lines in one request.
    pub headers: usize,
    /// A request's body (SET_PARAMETER, GET_PARAMETER).
    pub body_bytes: usize,
    /// A request (or an interleaved frame) must be complete this long after its first byte.
    pub request_timeout_ns: u64,
    /// Responses waiting for the shell to write them; beyond, the connection is closed (a
    /// client that sends requests without reading the answers).
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_bytes: 8 * 1024,
            headers: 32,
            body_bytes: 4 * 1024,
            request_timeout_ns: 5_000_000_000,
            output_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    /// The input buffer a connection needs: the largest request.
    pub fn input_bytes(&self) -> usize {
        self.head_bytes + self.body_bytes
    }
}

/// What the front of a connection's buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// Not enough bytes yet to know.
    Incomplete,
    /// CR/LF between messages: drop this many bytes.
    Blank(usize),
    /// A complete request, head and body, of this many bytes.
    Request { len: usize },
    /// A complete interleaved frame: the packet is `buf[HEADER_LEN..HEADER_LEN + len]`.
    Frame { channel: u8, len: usize },
    /// A frame longer than the buffer: drop its `HEADER_LEN + len` bytes as they arrive.
    Oversized { channel: u8, len: usize },
    /// The request breaks a limit or cannot be framed: answer and close.
    Error(FramingError),
}

/// A request that cannot be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// No end of head within [`Limits::head_bytes`].
    HeadTooLarge,
    /// More header lines than [`Limits::headers`].
    TooManyHeaders,
    /// `Content-Length` beyond [`Limits::body_bytes`].
    BodyTooLarge,
    /// `Content-Length` that is not a number, or two that differ.
    BadContentLength,
}

/// What [`next`] learnt of an incomplete request, so bytes that trickle in are not scanned
/// again and again (a client sending a byte at a time would cost O(n²) otherwise). Reset it
/// whenever bytes are taken from the front of the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes at the front known to hold no end of head.
    searched: usize,
    /// The head's end and the body's length, once known.
    head: Option<(usize, usize)>,
}

/// What starts `buf` (a connection's unprocessed input). `capacity`: the buffer's size, for
/// frames that cannot fit; `scan`: what earlier calls on the same front learnt.
pub fn next(buf: &[u8], limits: &Limits, capacity: usize, scan: &mut Scan) -> Item {
    let blank = buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    if blank > 0 {
        return Item::Blank(blank);
    }
    match buf.first() {
        None => Item::Incomplete,
        Some(&interleaved::MAGIC) => match interleaved::parse_header(buf) {
            None => Item::Incomplete,
            Some((channel, len)) if interleaved::HEADER_LEN + len > capacity => Item::Oversized { channel, len },
            Some((channel, len)) if buf.len() >= interleaved::HEADER_LEN + len => Item::Frame { channel, len },
            Some(_) => Item::Incomplete,
        },
        Some(_) => request(buf, limits, scan),
    }
}

fn request(buf: &[u8], limits: &Limits, scan: &mut Scan) -> Item {
    let (end, body) = match scan.head {
        Some(known) => known,
        None => {
            let window = &buf[..buf.len().min(limits.head_bytes)];
            let from = scan.searched.saturating_sub(3).min(window.len());
            let Some(end) = find(&window[from..], b"\r\n\r\n").map(|p| from + p) else {
                scan.searched = window.len();
                return if buf.len() >= limits.head_bytes {
                    Item::Error(FramingError::HeadTooLarge)
                } else {
                    Item::Incomplete
                };
            };
            // The head without its blank line: request line, then header lines.
            let head = &buf[..end];
            let lines = head.split(|&b| b == b'\n').count();
            if lines.saturating_sub(1) > limits.headers {
                return Item::Error(FramingError::TooManyHeaders);
            }
            let body = match content_length(head) {
                Ok(n) => n,
                Err(e) => return Item::Error(e),
            };
            if body > limits.body_bytes {
                return Item::Error(FramingError::BodyTooLarge);
            }
            scan.head = Some((end, body));
            (end, body)
        }
    };
    let len = end + 4 + body;
    if buf.len() >= len {
        Item::Request { len }
    } else {
        Item::Incomplete
    }
}

/// The body length a head announces (0 without `Content-Length`).
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::BadContentLength);
        }
        let n = value.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(FramingError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found.unwrap_or(0))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn next_of(buf: &[u8]) -> Item {
        next(buf, &limits(), limits().input_bytes(), &mut Scan::default())
    }

    #[test]
    fn a_request_that_trickles_in_is_found_with_the_scan_kept() {
        let req = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2\r\n\r\nhi";
        let mut scan = Scan::default();
        for cut in 1..req.len() {
            assert_eq!(
                next(&req[..cut], &limits(), 100, &mut scan),
                Item::Incomplete,
                "cut at {cut}"
            );
        }
        assert_eq!(next(req, &limits(), 100, &mut scan), Item::Request { len: req.len() });
    }

    #[test]
    fn a_request_is_complete_with_its_body() {
        let req = b"SET_PARAMETER rtsp://h/mic RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 5\r\n\r\nab: c";
        for cut in 0..req.len() {
            assert_eq!(next_of(&req[..cut]), Item::Incomplete, "cut at {cut}");
        }
        assert_eq!(next_of(req), Item::Request { len: req.len() });
        let mut two = req.to_vec();
        two.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n");
        assert_eq!(next_of(&two), Item::Request { len: req.len() });
    }

    #[test]
    fn blank_lines_and_frames_between_requests() {
        assert_eq!(next_of(b"\r\n\r\nOPTIONS"), Item::Blank(4));
        assert_eq!(next_of(b"$\x01\x00\x04abcdOPT"), Item::Frame { channel: 1, len: 4 });
        assert_eq!(next_of(b"$\x01\x00\x04abc"), Item::Incomplete);
        assert_eq!(next_of(b"$\x01"), Item::Incomplete);
        assert_eq!(
            next_of(b"$\x00\xff\xff"),
            Item::Oversized {
                channel: 0,
                len: 0xffff
            }
        );
    }

    #[test]
    fn limits_are_enforced_before_the_request_is_whole() {
        let mut head = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        head.resize(limits().head_bytes, b'a');
        assert_eq!(next_of(&head), Item::Error(FramingError::HeadTooLarge));
        head.truncate(limits().head_bytes - 1);
        assert_eq!(next_of(&head), Item::Incomplete);

        let mut flood = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        for _ in 0..=limits().headers {
            flood.extend_from_slice(b"X: y\r\n");
        }
        flood.extend_from_slice(b"\r\n");
        assert_eq!(next_of(&flood), Item::Error(FramingError::TooManyHeaders));

        let big = b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 4097\r\n\r\n";
        assert_eq!(next_of(big), Item::Error(FramingError::BodyTooLarge));
        for bad in [
            &b"SET_PARAMETER * RTSP/1.0\r\ncontent-length: -1\r\n\r\n"[..],
            b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"SET_PARAMETER * RTSP/1.0\r\nContent-Length:\r\n\r\n",
        ] {
            assert_eq!(next_of(bad), Item::Error(FramingError::BadContentLength));
        }
        let same_twice = b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 1\r\nCONTENT-LENGTH:  1 \r\n\r\nx";
        assert_eq!(next_of(same_twice), Item::Request { len: same_twice.len() });
    }
}
