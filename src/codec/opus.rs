//! Opus through libopus (audiopus). RFC 7587: the RTP payload is one Opus packet; the RTP
//! clock is 48 kHz whatever the input rate (the timestamp arithmetic lives in the packetizer).

use audiopus::coder::Encoder;
use audiopus::{Application, Bitrate, Channels, SampleRate};

use super::EncodeError;
use super::Tuning;
use crate::config::{Config, LossPercent, OpusApplication};

/// `OPUS_SET_DTX_REQUEST` from opus_defines.h (audiopus has no setter for it).
const OPUS_SET_DTX_REQUEST: i32 = 4016;

/// The expected loss the encoder starts with: the fixed value, or the lower bound of `auto`
/// until receivers report.
pub fn initial_loss_percent(config: &Config) -> u8 {
    match config.opus_loss {
        LossPercent::Fixed(p) => p,
        LossPercent::Auto { min, .. } => min,
    }
}

/// A configured libopus encoder for mono input.
pub struct OpusEncoder {
    inner: Encoder,
}

impl OpusEncoder {
    /// Creates and configures the encoder: bitrate, complexity, application, constrained VBR
    /// (the libopus default for VOIP, set explicitly so all applications behave alike).
    pub fn new(config: &Config) -> Result<OpusEncoder, EncodeError> {
        let rate = match config.rate {
            8000 => SampleRate::Hz8000,
            12000 => SampleRate::Hz12000,
            16000 => SampleRate::Hz16000,
            24000 => SampleRate::Hz24000,
            _ => SampleRate::Hz48000,
        };
        let app = match config.opus_application {
            OpusApplication::Voip => Application::Voip,
            OpusApplication::Audio => Application::Audio,
            OpusApplication::LowDelay => Application::LowDelay,
        };
        let mut inner = Encoder::new(rate, Channels::Mono, app)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(config.bitrate as i32))?;
        inner.set_complexity(config.opus_complexity)?;
        inner.set_vbr(true)?;
        inner.set_vbr_constraint(true)?;
        inner.set_inband_fec(config.opus_fec)?;
        inner.set_packet_loss_perc(initial_loss_percent(config))?;
        inner.set_encoder_ctl_request(OPUS_SET_DTX_REQUEST, i32::from(config.opus_dtx))?;
        Ok(OpusEncoder { inner })
    }

    /// Changes bitrate, complexity and expected loss between frames (opus_encoder_ctl; no
    /// allocation).
    pub fn tune(&mut self, t: Tuning) -> Result<(), EncodeError> {
        self.inner.set_bitrate(Bitrate::BitsPerSecond(t.bitrate as i32))?;
        self.inner.set_complexity(t.complexity)?;
        self.inner.set_packet_loss_perc(t.loss_percent)?;
        Ok(())
    }

    /// Encodes one frame (2.5–60 ms of mono samples at the configured rate).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, EncodeError> {
        Ok(self.inner.encode(pcm, out)?)
    }
}
