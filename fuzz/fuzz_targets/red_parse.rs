//! The RFC 2198 parser, `rtpmic::rtp::red::parse`, on a hostile RTP payload.
//!
//! Checks: never panics; on `Some`, the blocks (1..=4, the primary last with timestamp offset
//! 0, payload types 0..127) are consecutive slices of the input that, after the 4-byte
//! headers and the 1-byte primary header, cover it exactly: nothing outside the input, nothing
//! skipped. On `None` the input is not a well-formed payload of at most 3 redundant blocks:
//! checked against a straightforward reading of the headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtpmic::rtp::red::{parse, MAX_REDUNDANCY};

/// Whether `payload` is a RED payload with at most MAX_REDUNDANCY redundant blocks whose
/// lengths fit (RFC 2198 §3), by a separate reading.
fn well_formed(payload: &[u8]) -> bool {
    let mut at = 0;
    let mut lengths = 0usize;
    for _ in 0..=MAX_REDUNDANCY {
        match payload.get(at) {
            None => return false,
            Some(b) if b & 0x80 == 0 => return at + 1 + lengths <= payload.len(),
            Some(_) => {
                let Some(h) = payload.get(at..at + 4) else { return false };
                lengths += usize::from(u16::from_be_bytes([h[2], h[3]]) & 0x3ff);
                at += 4;
            }
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let Some(blocks) = parse(data) else {
        assert!(!well_formed(data), "parse refused a well-formed payload");
        return;
    };
    assert!(well_formed(data), "parse accepted a malformed payload");
    let blocks: Vec<_> = blocks.collect();
    let n = blocks.len();
    assert!((1..=MAX_REDUNDANCY + 1).contains(&n), "{n} blocks");
    let range = data.as_ptr_range();
    let mut next = unsafe { data.as_ptr().add(4 * (n - 1) + 1) };
    for (i, b) in blocks.iter().enumerate() {
        assert!(b.payload_type <= 127);
        let r = b.data.as_ptr_range();
        assert!(
            range.start <= r.start && r.end <= range.end,
            "block {i} outside the input"
        );
        assert_eq!(r.start, next, "block {i} is not where the previous one ended");
        next = r.end;
        if i + 1 < n {
            assert!(b.timestamp_offset < 1 << 14 && b.data.len() < 1 << 10);
            assert_eq!(data[4 * i] & 0x80, 0x80);
            assert_eq!(b.payload_type, data[4 * i] & 0x7f);
        } else {
            assert_eq!(b.timestamp_offset, 0, "the primary has no offset");
            assert_eq!(data[4 * i] & 0x80, 0, "the primary header has F=0");
            assert_eq!(b.payload_type, data[4 * i]);
        }
    }
    assert_eq!(next, range.end, "the blocks do not cover the payload");
});
