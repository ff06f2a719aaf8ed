//! RTP and RTCP on the RTSP connection itself (RFC 2326 §10.12, "embedded (interleaved)
//! binary data"): `$`, a one-byte channel, a two-byte big-endian length, then the packet.
//!
//! Both directions are written by hand rather than with `rtsp_types::Data`: the writer runs on
//! the real-time path (the shell's TCP sink frames every RTP packet for a TCP client), where it
//! must not allocate and should not go through `std::io::Write`; the reader must cope with a
//! frame cut anywhere by TCP and with frames longer than the connection's buffer (skipped as
//! they arrive, never buffered), which `rtsp_types::Message::parse` (whole messages in one
//! slice) cannot do.

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
    /// The output buffer cannot hold the frame.
    BufferTooSmall,
}

/// The four bytes that precede a `len`-byte packet on `channel` (for a shell that writes
/// header and packet with one `writev`, without copying the packet).
pub fn header(channel: u8, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    let len = u16::try_from(len).map_err(|_| FrameError::TooLong)?;
    let [hi, lo] = len.to_be_bytes();
    Ok([MAGIC, channel, hi, lo])
}

/// Writes `packet` as one frame on `channel` at the start of `out`; returns the frame's
/// length (`HEADER_LEN + packet.len()`). Never allocates.
pub fn write_frame(channel: u8, packet: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let head = header(channel, packet.len())?;
    let total = HEADER_LEN + packet.len();
    let out = out.get_mut(..total).ok_or(FrameError::BufferTooSmall)?;
    out[..HEADER_LEN].copy_from_slice(&head);
    out[HEADER_LEN..].copy_from_slice(packet);
    Ok(total)
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
        let mut out = [0u8; 64];
        let n = write_frame(1, &packet, &mut out).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&out[..4], &[b'$', 1, 0, 8]);
        assert_eq!(&out[4..n], &packet);
        assert_eq!(parse_header(&out[..n]), Some((1, 8)));
        assert_eq!(parse_header(&out[..3]), None, "an incomplete header");
        assert_eq!(parse_header(b"RTSP"), None, "not a frame");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut small = [0u8; 5];
        assert_eq!(write_frame(0, &[1, 2], &mut small), Err(FrameError::BufferTooSmall));
        let big = vec![0u8; MAX_PACKET + 1];
        let mut out = vec![0u8; MAX_PACKET + 8];
        assert_eq!(write_frame(0, &big, &mut out), Err(FrameError::TooLong));
        assert_eq!(write_frame(0, &big[..MAX_PACKET], &mut out), Ok(MAX_PACKET + 4));
        assert_eq!(header(3, MAX_PACKET), Ok([b'$', 3, 0xff, 0xff]));
    }
}
