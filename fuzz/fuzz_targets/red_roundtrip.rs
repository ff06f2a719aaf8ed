//! `RedEncoder` → `red::parse`: what the encoder writes parses back to the frames it was given.
//!
//! Input: a redundancy depth (0..=3), an output buffer size, then frames, each a length byte
//! (×6: 0..1530 bytes), a timestamp step byte (×120 ticks; 0xff = a jump of 2^20, beyond a
//! 14-bit offset; 0xfe = reset the encoder first) and the frame's first byte (the rest is
//! derived from it).
//!
//! Checks: never panics; `write` succeeds whenever the primary alone fits (1 + len ≤ buffer);
//! its output parses; the last block is the primary frame; each redundant block is one of the
//! previous `depth` frames written since the last reset, oldest first, with the right timestamp
//! offset and payload type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtpmic::rtp::red::{parse, RedEncoder, MAX_REDUNDANCY};

const PT: u8 = 121;

fuzz_target!(|data: &[u8]| {
    let [depth, size, rest @ ..] = data else { return };
    let depth = usize::from(*depth) % (MAX_REDUNDANCY + 1);
    let size = usize::from(*size) * 6 + 1;
    let mut red = RedEncoder::new(PT, depth);
    let mut out = vec![0u8; size];
    let mut history: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut ts = 0x1234_5678u32;
    for f in rest.chunks_exact(3) {
        let len = usize::from(f[0]) * 6;
        let step = match f[1] {
            0xff => 1 << 20,
            0xfe => {
                red.reset();
                history.clear();
                120
            }
            s => u32::from(s) * 120,
        };
        ts = ts.wrapping_add(step);
        let frame: Vec<u8> = (0..len).map(|i| f[2].wrapping_add(i as u8)).collect();
        let result = red.write(&frame, ts, &mut out);
        let written = result.is_ok();
        if 1 + len > size {
            // The primary alone does not fit: an error, and nothing written is trusted.
            assert!(result.is_err(), "wrote a payload larger than its buffer");
        } else {
            let n = result.expect("the primary fits, so write succeeds");
            assert!(n <= size);
            let blocks: Vec<_> = parse(&out[..n]).expect("own payload parses").collect();
            let (primary, redundant) = blocks.split_last().unwrap();
            assert_eq!((primary.payload_type, primary.data), (PT, &frame[..]));
            assert!(redundant.len() <= depth);
            // Redundant blocks: a subsequence of the remembered frames, oldest first.
            let recent = &history[history.len().saturating_sub(depth)..];
            let mut from = 0;
            for b in redundant {
                assert_eq!(b.payload_type, PT);
                let i = recent[from..]
                    .iter()
                    .position(|(t, d)| ts.wrapping_sub(*t) == b.timestamp_offset && d[..] == *b.data)
                    .unwrap_or_else(|| panic!("block {b:?} is no remembered frame"));
                from += i + 1;
            }
        }
        // The encoder remembers a frame it wrote that fits a history slot (MAX_PAYLOAD).
        if written && len <= rtpmic::config::MAX_PAYLOAD {
            history.push((ts, frame));
        }
    }
});
