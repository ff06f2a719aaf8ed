//! Codecs: mono i16 frame in → RTP payload out, without allocating.
//!
//! Opus goes through libopus (audiopus). G.711 and L16 are a few lines of arithmetic each, so
//! they are written here rather than pulled in as crates.

pub mod g711;
pub mod opus;

use crate::config::{Codec, Config};

/// Why a frame could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("opus: {0}")]
    Opus(#[from] audiopus::Error),
    #[error("payload buffer too small")]
    BufferTooSmall,
}

/// Any of the codecs rtpmic sends; an enum so the encoder thread dispatches without boxing.
pub enum Encoder {
    Opus(opus::OpusEncoder),
    Pcmu,
    Pcma,
    L16,
}

/// Encoder settings that may change while the stream runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    pub bitrate: u32,
    pub complexity: u8,
    /// Expected packet loss (%) the Opus FEC plans for.
    pub loss_percent: u8,
}

impl Encoder {
    /// Builds the encoder for `config` (allocates: call before the hot path starts).
    pub fn new(config: &Config) -> Result<Encoder, EncodeError> {
        Ok(match config.codec {
            Codec::Opus => Encoder::Opus(opus::OpusEncoder::new(&opus::OpusSettings::from_config(config))?),
            Codec::Pcmu => Encoder::Pcmu,
            Codec::Pcma => Encoder::Pcma,
            Codec::L16 => Encoder::L16,
        })
    }

    /// Changes the bitrate and complexity of a running encoder (Opus; the fixed-rate codecs
    /// have neither and ignore it).
    pub fn tune(&mut self, t: Tuning) -> Result<(), EncodeError> {
        match self {
            Encoder::Opus(e) => e.tune(t),
            _ => Ok(()),
        }
    }

    /// Encodes one frame of mono samples into `out`; returns the payload length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Encoder::Opus(e) => e.encode(pcm, out),
            Encoder::Pcmu => map_samples(pcm, out, 1, |s, o| o[0] = g711::linear_to_ulaw(s)),
            Encoder::Pcma => map_samples(pcm, out, 1, |s, o| o[0] = g711::linear_to_alaw(s)),
            // RFC 3551 §4.5.11: L16 samples are in network byte order.
            Encoder::L16 => map_samples(pcm, out, 2, |s, o| o.copy_from_slice(&s.to_be_bytes())),
        }
    }
}

/// Writes `width` bytes per sample with `f`.
fn map_samples(pcm: &[i16], out: &mut [u8], width: usize, f: impl Fn(i16, &mut [u8])) -> Result<usize, EncodeError> {
    let len = pcm.len() * width;
    let out = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall)?;
    for (s, o) in pcm.iter().zip(out.chunks_exact_mut(width)) {
        f(*s, o);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l16_is_big_endian() {
        let mut out = [0u8; 4];
        let n = Encoder::L16.encode(&[0x0102, -2], &mut out).unwrap();
        assert_eq!((n, out), (4, [1, 2, 0xff, 0xfe]));
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let mut out = [0u8; 3];
        assert!(matches!(
            Encoder::L16.encode(&[1, 2], &mut out),
            Err(EncodeError::BufferTooSmall)
        ));
    }
}
