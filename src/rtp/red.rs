//! RTP payload for redundant audio data (RFC 2198): each packet carries the current frame
//! (the primary encoding) and up to [`MAX_REDUNDANCY`] previous frames, so a receiver rebuilds
//! a lost packet from the next one. Meant for 2.5–5 ms Opus frames, where Opus's own in-band
//! FEC does not work (it needs SILK, so frames of 10 ms or more).
//!
//! Hand-written: no crate writes RFC 2198 payloads, and the format is four header fields.
//! No allocation: the history is a fixed array of frame buffers.
//!
//! Payload layout (§3), redundant blocks oldest first, then the primary:
//! ```text
//!  0                   1                   2                   3
//! |F|   block PT  |  timestamp offset         |   block length    |  × redundant blocks (F=1)
//! |0|   block PT  |                                                  primary header (F=0)
//! redundant data … primary data
//! ```

use crate::config::MAX_PAYLOAD;

/// Most previous frames one packet repeats.
pub const MAX_REDUNDANCY: usize = 3;

/// Largest timestamp offset a block header holds (14 bits, §3).
const MAX_TS_OFFSET: u32 = (1 << 14) - 1;
/// Largest block a header describes (10 bits, §3).
const MAX_BLOCK_LEN: usize = (1 << 10) - 1;

/// Why a RED payload could not be written.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("RED payload does not fit the packet buffer")]
    TooLong,
}

/// One remembered frame.
struct Past {
    data: [u8; MAX_PAYLOAD],
    len: usize,
    timestamp: u32,
}

/// Builds RED payloads from consecutive primary frames.
pub struct RedEncoder {
    payload_type: u8,
    depth: usize,
    /// Ring of previous frames; `count` valid, newest at `(next + depth - 1) % depth`.
    past: Box<[Past]>,
    next: usize,
    count: usize,
}

impl RedEncoder {
    /// `depth` previous frames (≤ [`MAX_REDUNDANCY`]) of payload type `payload_type`.
    pub fn new(payload_type: u8, depth: usize) -> RedEncoder {
        let depth = depth.min(MAX_REDUNDANCY);
        RedEncoder {
            payload_type,
            depth,
            past: (0..depth.max(1))
                .map(|_| Past {
                    data: [0; MAX_PAYLOAD],
                    len: 0,
                    timestamp: 0,
                })
                .collect(),
            next: 0,
            count: 0,
        }
    }

    /// Forgets the history (after a gap: old frames would not help and their offsets could
    /// overflow 14 bits).
    pub fn reset(&mut self) {
        self.count = 0;
    }

    /// Writes the RED payload for `primary` (RTP timestamp `timestamp`) into `out`, then
    /// remembers `primary`. Blocks that cannot be described (offset or length beyond the
    /// header fields) or that would not fit are left out, oldest first.
    pub fn write(&mut self, primary: &[u8], timestamp: u32, out: &mut [u8]) -> Result<usize, RedError> {
        let room = out.len();
        // Oldest usable block first: skip blocks while the whole payload would not fit.
        let mut skip = 0;
        while skip < self.count {
            let blocks = self.blocks(skip, timestamp);
            let need = 1 + primary.len() + blocks.clone().map(|p| 4 + p.len).sum::<usize>();
            if need <= room {
                break;
            }
            skip += 1;
        }
        let mut at = 0;
        let put = |out: &mut [u8], at: &mut usize, bytes: &[u8]| -> Result<(), RedError> {
            out.get_mut(*at..*at + bytes.len())
                .ok_or(RedError::TooLong)?
                .copy_from_slice(bytes);
            *at += bytes.len();
            Ok(())
        };
        for p in self.blocks(skip, timestamp) {
            let offset = timestamp.wrapping_sub(p.timestamp);
            let word = (1u32 << 31) | (u32::from(self.payload_type & 0x7f) << 24) | (offset << 10) | p.len as u32;
            put(out, &mut at, &word.to_be_bytes())?;
        }
        put(out, &mut at, &[self.payload_type & 0x7f])?;
        for p in self.blocks(skip, timestamp) {
            put(out, &mut at, &p.data[..p.len])?;
        }
        put(out, &mut at, primary)?;
        self.remember(primary, timestamp);
        Ok(at)
    }

    /// Remembered frames from the `skip`-th oldest on, that a header can describe.
    fn blocks(&self, skip: usize, timestamp: u32) -> impl Iterator<Item = &Past> + Clone {
        let depth = self.depth.max(1);
        let oldest = (self.next + depth - self.count) % depth;
        (skip..self.count)
            .map(move |i| &self.past[(oldest + i) % depth])
            .filter(move |p| timestamp.wrapping_sub(p.timestamp) <= MAX_TS_OFFSET && p.len <= MAX_BLOCK_LEN)
    }

    fn remember(&mut self, frame: &[u8], timestamp: u32) {
        if self.depth == 0 || frame.len() > MAX_PAYLOAD {
            return;
        }
        let slot = &mut self.past[self.next];
        slot.data[..frame.len()].copy_from_slice(frame);
        slot.len = frame.len();
        slot.timestamp = timestamp;
        self.next = (self.next + 1) % self.depth;
        self.count = (self.count + 1).min(self.depth);
    }
}

/// One block of a parsed RED payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Block<'a> {
    pub payload_type: u8,
    /// How much earlier than the packet's timestamp this block's audio is (0 for the primary).
    pub timestamp_offset: u32,
    pub data: &'a [u8],
}

/// Splits a RED payload into its blocks, oldest first, the primary last (§3). `None` when the
/// headers do not describe the payload (a hostile or truncated packet).
pub fn parse(payload: &[u8]) -> Option<impl Iterator<Item = Block<'_>>> {
    let mut headers = [(0u8, 0u32, 0usize); MAX_REDUNDANCY + 1];
    let mut n = 0;
    let mut at = 0;
    loop {
        let first = *payload.get(at)?;
        if first & 0x80 == 0 {
            *headers.get_mut(n)? = (first & 0x7f, 0, usize::MAX);
            n += 1;
            at += 1;
            break;
        }
        let word = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?);
        *headers.get_mut(n)? = (
            ((word >> 24) & 0x7f) as u8,
            (word >> 10) & MAX_TS_OFFSET,
            (word & 0x3ff) as usize,
        );
        n += 1;
        at += 4;
    }
    let redundant: usize = headers[..n - 1].iter().map(|h| h.2).sum();
    if at + redundant > payload.len() {
        return None;
    }
    let mut offset = at;
    Some((0..n).map(move |i| {
        let (pt, ts, len) = headers[i];
        let len = if i == n - 1 { payload.len() - offset } else { len };
        let data = &payload[offset..offset + len];
        offset += len;
        Block {
            payload_type: pt,
            timestamp_offset: ts,
            data,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(payload: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
        parse(payload)
            .expect("valid RED")
            .map(|b| (b.payload_type, b.timestamp_offset, b.data.to_vec()))
            .collect()
    }

    #[test]
    fn first_packet_has_only_the_primary() {
        let mut red = RedEncoder::new(96, 2);
        let mut out = [0u8; 64];
        let n = red.write(&[1, 2, 3], 1000, &mut out).unwrap();
        assert_eq!(&out[..n], &[96, 1, 2, 3]);
    }

    #[test]
    fn later_packets_repeat_the_previous_frames_oldest_first() {
        let mut red = RedEncoder::new(96, 2);
        let mut out = [0u8; 64];
        red.write(&[1], 1000, &mut out).unwrap();
        red.write(&[2, 2], 1120, &mut out).unwrap();
        let n = red.write(&[3, 3, 3], 1240, &mut out).unwrap();
        // RFC 2198 §3 headers: F=1, PT 96, offset 240 / 120, lengths 1 / 2; then F=0 PT 96.
        assert_eq!(&out[..9], &[0xe0, 0x03, 0xc0, 0x01, 0xe0, 0x01, 0xe0, 0x02, 0x60]);
        assert_eq!(
            blocks(&out[..n]),
            vec![(96, 240, vec![1]), (96, 120, vec![2, 2]), (96, 0, vec![3, 3, 3])]
        );
        // Depth 2: the fourth packet drops the first frame.
        let n = red.write(&[4], 1360, &mut out).unwrap();
        assert_eq!(
            blocks(&out[..n]),
            vec![(96, 240, vec![2, 2]), (96, 120, vec![3, 3, 3]), (96, 0, vec![4])]
        );
    }

    #[test]
    fn reset_and_oversized_history_are_left_out() {
        let mut red = RedEncoder::new(96, 1);
        let mut out = [0u8; 8];
        red.write(&[9; 4], 0, &mut out).unwrap();
        // 1 + 4 + 4 + 3 = 12 bytes would not fit in 8: the redundant block is dropped.
        let n = red.write(&[7; 3], 120, &mut out).unwrap();
        assert_eq!(blocks(&out[..n]), vec![(96, 0, vec![7; 3])]);
        red.reset();
        let n = red.write(&[5], 240, &mut out).unwrap();
        assert_eq!(blocks(&out[..n]), vec![(96, 0, vec![5])]);
        // An offset beyond 14 bits cannot be described.
        let n = red.write(&[6], 240 + 20_000, &mut out).unwrap();
        assert_eq!(blocks(&out[..n]), vec![(96, 0, vec![6])]);
    }

    #[test]
    fn parse_rejects_truncated_payloads() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[0xe0, 0x00]).is_none(), "cut inside a header");
        assert!(
            parse(&[0xe0, 0x00, 0x3c, 0x05, 0x60, 1]).is_none(),
            "block longer than the data"
        );
        assert!(
            parse(&[0xe0, 0, 0, 0, 0xe0, 0, 0, 0, 0xe0, 0, 0, 0, 0xe0, 0, 0, 0, 0x60]).is_none(),
            "more blocks than we ever send"
        );
    }
}
