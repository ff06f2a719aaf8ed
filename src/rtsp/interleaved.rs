//! RTP and RTCP on the RTSP connection itself (RFC 2326 §10.12, "embedded (interleaved)
//! binary data"): `$`, a one-byte channel, a two-byte big-endian length, then the packet.
//!
//! Both directions are written by hand rather than with `rtsp_types::Data`: the header is
//! made on the real-time path (the sending thread's TCP sink copies it and the packet into the
//! connection's ring, see `net::tcp_sink`), where nothing may allocate; the reader must cope
//! with a frame cut anywhere by TCP and with frames longer than the connection's buffer
//! (skipped as they arrive, never buffered), which `rtsp_types::Message::parse` (whole
//! messages in one slice) cannot do.

/// Bytes before the packet: `$`, channel, length.
pub const HEADER_LEN: usize = 4;
/// The longest packet a frame can carry (its length field is 16 bits).
pub const MAX_PACKET: usize = u16::MAX as usize;
/// The byte that starts a frame where a request could start.
pub const MAGIC: u8 = b'$';

/// Why a packet could not be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The packet is longer than [`MAX_PACKET`].
    TooLong,
}

/// The four bytes that precede a `len`-byte packet on `channel`.
pub fn header(channel: u8, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    let len = u16::try_from(len).map_err(|_| FrameError::TooLong)?;
    let [hi, lo] = len.to_be_bytes();
    Ok([MAGIC, channel, hi, lo])
}

/// The channel and packet length of the frame whose header starts `buf` (which must start with
/// [`MAGIC`]); `None` until the four header bytes are there.
pub fn parse_header(buf: &[u8]) -> Option<(u8, usize)> {
    match buf {
        [MAGIC, channel, hi, lo, ..] => Some((*channel, usize::from(u16::from_be_bytes([*hi, *lo])))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_packet_and_reads_it_back() {
        let packet = [0x80u8, 0xc9, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let mut out = header(1, packet.len()).unwrap().to_vec();
        out.extend_from_slice(&packet);
        assert_eq!(&out[..4], &[b'$', 1, 0, 8]);
        assert_eq!(parse_header(&out), Some((1, 8)));
        assert_eq!(parse_header(&out[..3]), None, "an incomplete header");
        assert_eq!(parse_header(b"RTSP"), None, "not a frame");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(header(0, MAX_PACKET + 1), Err(FrameError::TooLong));
        assert_eq!(header(3, MAX_PACKET), Ok([b'$', 3, 0xff, 0xff]));
    }
}
