//! Interleaved device samples → the mono i16 signal we send, without allocating.

use crate::config::ChannelSelect;

/// A sample format the device may deliver.
pub trait Sample: Copy {
    /// The sample scaled to i32 full range (S16 shifted up, S32 as is).
    fn to_i32_full(self) -> i32;
}

impl Sample for i16 {
    fn to_i32_full(self) -> i32 {
        i32::from(self) << 16
    }
}

impl Sample for i32 {
    fn to_i32_full(self) -> i32 {
        self
    }
}

/// Writes one mono sample per interleaved input frame of `raw` into `out`.
/// S32 sources keep their top 16 bits (I2S MEMS microphones put 18–24 significant bits
/// left-justified in a 32-bit slot). `mix` averages all channels.
pub fn to_mono<S: Sample>(raw: &[S], channels: usize, select: ChannelSelect, out: &mut [i16]) {
    let frames = raw.chunks_exact(channels).zip(out.iter_mut());
    match select {
        ChannelSelect::Index(c) => {
            let c = c as usize;
            for (frame, o) in frames {
                *o = (frame[c].to_i32_full() >> 16) as i16;
            }
        }
        ChannelSelect::Mix => {
            let n = channels as i64;
            for (frame, o) in frames {
                let sum: i64 = frame.iter().map(|s| i64::from(s.to_i32_full())).sum();
                *o = ((sum / n) >> 16) as i16;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_channel() {
        let raw: [i16; 6] = [1, -1, 2, -2, 3, -3];
        let mut out = [0i16; 3];
        to_mono(&raw, 2, ChannelSelect::Index(1), &mut out);
        assert_eq!(out, [-1, -2, -3]);
    }

    #[test]
    fn s32_keeps_the_top_bits_and_mix_averages() {
        let raw: [i32; 4] = [0x1234_5678, 0x0200_0000, -0x0100_0000, -0x0300_0000];
        let mut out = [0i16; 2];
        to_mono(&raw, 1, ChannelSelect::Index(0), &mut out[..]);
        assert_eq!(out, [0x1234, 0x0200]);
        to_mono(&raw, 2, ChannelSelect::Mix, &mut out[..]);
        assert_eq!(
            out,
            [((0x1234_5678i64 + 0x0200_0000) as i32 / 2) >> 16, -0x0200].map(|v| v as i16)
        );
    }

    #[test]
    fn mix_does_not_overflow_at_full_scale() {
        let raw: [i16; 4] = [i16::MAX, i16::MAX, i16::MIN, i16::MIN];
        let mut out = [0i16; 2];
        to_mono(&raw, 2, ChannelSelect::Mix, &mut out);
        assert_eq!(out, [i16::MAX, i16::MIN]);
    }
}
