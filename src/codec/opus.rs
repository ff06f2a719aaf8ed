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

/// What the encoder is opened with: the part of the configuration libopus needs, so the
/// encoder can be built (in tests, benchmarks) without a whole [`Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusSettings {
    /// Input rate (Hz): 8000, 12000, 16000, 24000 or 48000 (`RTPMIC_RATE`).
    pub rate: u32,
    pub application: OpusApplication,
    /// Target bits per second (`RTPMIC_BITRATE`).
    pub bitrate: u32,
    /// 0..10 (`RTPMIC_OPUS_COMPLEXITY`).
    pub complexity: u8,
    /// In-band FEC (`RTPMIC_OPUS_FEC`).
    pub fec: bool,
    /// Discontinuous transmission (`RTPMIC_OPUS_DTX`).
    pub dtx: bool,
    /// Expected packet loss (%) to start with ([`initial_loss_percent`]).
    pub loss_percent: u8,
}

impl OpusSettings {
    pub fn from_config(c: &Config) -> OpusSettings {
        OpusSettings {
            rate: c.rate,
            application: c.opus_application,
            bitrate: c.bitrate,
            complexity: c.opus_complexity,
            fec: c.opus_fec,
            dtx: c.opus_dtx,
            loss_percent: initial_loss_percent(c),
        }
    }
}

/// A configured libopus encoder for mono input.
pub struct OpusEncoder {
    inner: Encoder,
}

impl OpusEncoder {
    /// Creates and configures the encoder: bitrate, complexity, application, constrained VBR
    /// (the libopus default for VOIP, set explicitly so all applications behave alike).
    pub fn new(s: &OpusSettings) -> Result<OpusEncoder, EncodeError> {
        let rate = match s.rate {
            8000 => SampleRate::Hz8000,
            12000 => SampleRate::Hz12000,
            16000 => SampleRate::Hz16000,
            24000 => SampleRate::Hz24000,
            _ => SampleRate::Hz48000,
        };
        let app = match s.application {
            OpusApplication::Voip => Application::Voip,
            OpusApplication::Audio => Application::Audio,
            OpusApplication::LowDelay => Application::LowDelay,
        };
        let mut inner = Encoder::new(rate, Channels::Mono, app)?;
        inner.set_bitrate(Bitrate::BitsPerSecond(s.bitrate as i32))?;
        inner.set_complexity(s.complexity)?;
        inner.set_vbr(true)?;
        inner.set_vbr_constraint(true)?;
        inner.set_inband_fec(s.fec)?;
        inner.set_packet_loss_perc(s.loss_percent)?;
        inner.set_encoder_ctl_request(OPUS_SET_DTX_REQUEST, i32::from(s.dtx))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder is built from its settings alone; the settings follow the configuration.
    #[test]
    fn opens_from_settings_and_encodes_a_frame() {
        let c = Config::from_pairs([
            ("RTPMIC_DEST", "127.0.0.1:5004"),
            ("RTPMIC_RATE", "16000"),
            ("RTPMIC_OPUS_LOSS_PERCENT", "12"),
            ("RTPMIC_OPUS_DTX", "on"),
        ])
        .unwrap();
        let s = OpusSettings::from_config(&c);
        assert_eq!(
            s,
            OpusSettings {
                rate: 16000,
                application: OpusApplication::Voip,
                bitrate: 32_000,
                complexity: 10,
                fec: false,
                dtx: true,
                loss_percent: 12,
            }
        );
        let mut e = OpusEncoder::new(&OpusSettings { rate: 48_000, ..s }).unwrap();
        let mut out = [0u8; 1500];
        let n = e.encode(&[0i16; 960], &mut out).unwrap();
        assert!(n > 0 && n < 100, "{n} bytes for 20 ms of silence");
    }
}
