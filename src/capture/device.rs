//! Opening the ALSA PCM with explicit hardware and software parameters.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use crate::config::{Config, SampleFormat};

/// What the device is opened with: the capture keys, so that opening a device needs no
/// whole [`Config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSettings {
    /// The ALSA PCM name (`RTPMIC_DEVICE`).
    pub device: String,
    /// Frames per second (`RTPMIC_RATE`); a device that offers another rate is refused.
    pub rate: u32,
    /// Channels the device is opened with (`RTPMIC_CHANNELS`).
    pub channels: u32,
    pub sample_format: SampleFormat,
    /// The frame duration (µs) and length (frames) the stream uses: the period asked for
    /// follows them.
    pub frame_us: u32,
    pub frame_samples: usize,
}

impl DeviceSettings {
    pub fn from_config(c: &Config) -> DeviceSettings {
        DeviceSettings {
            device: c.device.clone(),
            rate: c.rate,
            channels: c.channels,
            sample_format: c.sample_format,
            frame_us: c.frame_us,
            frame_samples: c.frame_samples(),
        }
    }
}

/// Why the device could not be opened as configured.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("capture device {device:?}: {step}: {source}")]
    Alsa {
        device: String,
        step: &'static str,
        source: alsa::Error,
    },
    #[error("capture device {device:?} offers {got} Hz, not RTPMIC_RATE={want} (use a plug device, e.g. plughw:CARD or default)")]
    Rate { device: String, want: u32, got: u32 },
    #[error("capture device {device:?} offers neither S16_LE nor S32_LE (use a plug device)")]
    Format { device: String },
}

impl OpenError {
    /// The errno behind an ALSA call that failed (none for a rate or format mismatch).
    pub fn errno(&self) -> Option<i32> {
        match self {
            OpenError::Alsa { source, .. } => Some(source.errno()),
            _ => None,
        }
    }
}

/// The sample format actually in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceFormat {
    S16,
    S32,
}

/// An open, prepared and started capture PCM.
pub struct Device {
    pub pcm: PCM,
    pub format: DeviceFormat,
    /// Frames per period as negotiated.
    pub period: usize,
    /// Frames in the ring buffer as negotiated.
    pub buffer: usize,
}

/// Frames per period we ask for: the whole frame up to 20 ms, else the largest even share of
/// it that is at most 20 ms (40 ms → 2 × 20, 60 ms → 3 × 20, 30 ms → 2 × 15). Reads never
/// assume the device honoured it.
pub fn wanted_period(s: &DeviceSettings) -> usize {
    let parts = s.frame_us.div_ceil(20_000).max(1) as usize;
    s.frame_samples / parts
}

impl Device {
    /// Opens `s.device` non-blocking, interleaved, at the configured rate, channels and
    /// format, with a buffer of at least 4 periods and 100 ms; then prepares and starts it.
    pub fn open(s: &DeviceSettings) -> Result<Device, OpenError> {
        let device = s.device.clone();
        let err = |step: &'static str| {
            let device = device.clone();
            move |source| OpenError::Alsa { device, step, source }
        };
        let pcm = PCM::new(&s.device, Direction::Capture, true).map_err(err("open"))?;
        let format = {
            let hw = HwParams::any(&pcm).map_err(err("hw_params_any"))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(err("set interleaved access"))?;
            let format = match s.sample_format {
                SampleFormat::S16Le => DeviceFormat::S16,
                SampleFormat::S32Le => DeviceFormat::S32,
                SampleFormat::Auto if hw.test_format(Format::S16LE).is_ok() => DeviceFormat::S16,
                SampleFormat::Auto if hw.test_format(Format::S32LE).is_ok() => DeviceFormat::S32,
                SampleFormat::Auto => return Err(OpenError::Format { device }),
            };
            let alsa_format = match format {
                DeviceFormat::S16 => Format::S16LE,
                DeviceFormat::S32 => Format::S32LE,
            };
            hw.set_format(alsa_format).map_err(err("set RTPMIC_SAMPLE_FORMAT"))?;
            hw.set_channels(s.channels).map_err(err("set RTPMIC_CHANNELS"))?;
            let got = hw
                .set_rate_near(s.rate, ValueOr::Nearest)
                .map_err(err("set RTPMIC_RATE"))?;
            if got != s.rate {
                return Err(OpenError::Rate {
                    device,
                    want: s.rate,
                    got,
                });
            }
            let period = wanted_period(s) as alsa::pcm::Frames;
            let period = hw
                .set_period_size_near(period, ValueOr::Nearest)
                .map_err(err("set period size"))?;
            // Capture latency does not grow with the buffer (a period is read as soon as it is
            // complete), so take room to ride out scheduling hiccups: ≥ 4 periods, ≥ 100 ms.
            let min_frames = (s.rate / 10) as alsa::pcm::Frames;
            let periods = (min_frames + period - 1) / period.max(1);
            hw.set_buffer_size_near(period * periods.max(4))
                .map_err(err("set buffer size"))?;
            pcm.hw_params(&hw).map_err(err("hw_params"))?;
            format
        };
        let (period, buffer) = {
            let hw = pcm.hw_params_current().map_err(err("hw_params_current"))?;
            let period = hw.get_period_size().map_err(err("get period size"))?;
            let buffer = hw.get_buffer_size().map_err(err("get buffer size"))?;
            (period as usize, buffer as usize)
        };
        {
            let sw = pcm.sw_params_current().map_err(err("sw_params_current"))?;
            sw.set_avail_min(period as alsa::pcm::Frames)
                .map_err(err("set avail_min"))?;
            pcm.sw_params(&sw).map_err(err("sw_params"))?;
        }
        pcm.prepare().map_err(err("prepare"))?;
        pcm.start().map_err(err("start"))?;
        Ok(Device {
            pcm,
            format,
            period,
            buffer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_48k(frame_us: u32) -> DeviceSettings {
        DeviceSettings {
            device: "sim".into(),
            rate: 48_000,
            channels: 1,
            sample_format: SampleFormat::Auto,
            frame_us,
            frame_samples: (48 * frame_us / 1000) as usize,
        }
    }

    #[test]
    fn the_period_is_the_frame_up_to_20_ms_else_an_even_share() {
        let periods: Vec<usize> = [2500, 10_000, 20_000, 30_000, 40_000, 60_000]
            .into_iter()
            .map(|us| wanted_period(&at_48k(us)))
            .collect();
        assert_eq!(periods, [120, 480, 960, 720, 960, 960]);
        let c = Config::from_pairs([("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_FRAME_MS", "40")]).unwrap();
        let settings = DeviceSettings {
            device: "default".into(),
            ..at_48k(40_000)
        };
        assert_eq!(DeviceSettings::from_config(&c), settings);
    }
}
