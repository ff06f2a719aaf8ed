//! The capture thread: ALSA PCM → whole mono frames stamped with their first sample's index.
//!
//! * Reads whatever the device has, up to [`FRAMES_PER_READ`] frames in one non-blocking
//!   `readi` (parked in `snd_pcm_wait` between periods), and cuts it into frames; a frame
//!   leaves as soon as it is full.
//! * Overrun (EPIPE): re-prepare, count, drop the partial frame, and move the sample index
//!   forward by the time lost ([`clock::index_after_gap`]); the next frame is flagged as a
//!   discontinuity so its packet carries the marker bit.
//! * A read that comes later after the previous one than the ALSA buffer can cover is an
//!   overrun the driver did not report (ALSA's jack and pulse plugins never do): handled the
//!   same way, so the RTP timestamp keeps following real time.
//! * Suspend (ESTRPIPE): resume (or prepare when the driver cannot resume), same gap rule.
//! * Any other device error, or no audio at all for 500 ms (a device that died silently): count
//!   it, close, reopen with capped backoff. Never a panic.
//!   (Stall detection and the full unplug/replug story build on this.)
//!
//! No allocation, lock or logging once the loop runs; problems are counted in [`Stats`] and
//! the main thread logs them.

pub mod clock;
pub mod convert;
pub mod device;
pub mod jack;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use alsa::pcm::{IoFormat, IO, PCM};

use crate::config::Config;
use crate::ops::hot_path;
use crate::ops::stats::{DeviceState, Stats};
use crate::ring::{Producer, Pushed};
use crate::rt::now_ns;
use convert::Sample;
pub use device::{Device, DeviceFormat, DeviceSettings, OpenError};

/// Largest frame in samples: 60 ms at 48 kHz.
pub const MAX_FRAME_SAMPLES: usize = 2880;

/// Most frames one `readi` takes, when the device has them (an unpaced file, or a wake-up
/// that came late): through most plugins every call costs a syscall or two (the `file`
/// plugin a `read` and a `write`), so taking what is there at once saves them. A live device
/// woken per period still hands over one period per call: no added latency.
pub const FRAMES_PER_READ: usize = 8;

/// One frame of mono audio on its way to the encoder.
pub struct Frame {
    pub samples: [i16; MAX_FRAME_SAMPLES],
    pub len: usize,
    /// Index of the first sample since the stream started, at the capture rate.
    pub sample_index: u64,
    /// CLOCK_MONOTONIC when the read that completed this frame returned.
    pub captured_ns: u64,
    /// Samples were lost right before this frame.
    pub discontinuity: bool,
}

impl Frame {
    pub fn empty() -> Frame {
        Frame {
            samples: [0; MAX_FRAME_SAMPLES],
            len: 0,
            sample_index: 0,
            captured_ns: 0,
            discontinuity: false,
        }
    }
}

/// What the capture thread needs besides the config.
pub struct CaptureControl<'a> {
    pub stats: &'a Stats,
    pub stop: &'a AtomicBool,
    /// Stop by itself after this many samples (`run --seconds`).
    pub limit_samples: Option<u64>,
    /// Wait for room instead of dropping when the encoder is behind (`run --no-drop`).
    pub no_drop: bool,
}

/// Where the capture thread's frames go: the ring the `rtpmic-encode` thread reads, or
/// (`RTPMIC_THREADS=1`) an encoder and sender run right here.
pub trait FrameSink {
    /// Takes one full frame. False when its consumer is gone, which ends the capture.
    fn deliver(&mut self, frame: &Frame, ctl: &CaptureControl<'_>) -> bool;
    /// Called while no frame comes (between periods, or while the device is absent) for the
    /// sink's timed work; no allocation.
    fn idle(&mut self, _stats: &Stats) {}
    /// The capture has ended: nothing more will be delivered.
    fn close(&mut self, stats: &Stats);
}

impl FrameSink for Producer<Frame> {
    /// Copies the frame into the ring; when it is full, drops it (counted) or, with
    /// `--no-drop`, waits.
    fn deliver(&mut self, frame: &Frame, ctl: &CaptureControl<'_>) -> bool {
        let copy = |slot: &mut Frame| {
            slot.samples[..frame.len].copy_from_slice(&frame.samples[..frame.len]);
            slot.len = frame.len;
            slot.sample_index = frame.sample_index;
            slot.captured_ns = frame.captured_ns;
            slot.discontinuity = frame.discontinuity;
        };
        if ctl.no_drop {
            return self.push_waiting(copy);
        }
        if self.push(copy) != Pushed::Stored {
            ctl.stats.frame_drops.fetch_add(1, Relaxed);
        }
        true
    }

    fn close(&mut self, _stats: &Stats) {
        Producer::close(self);
    }
}

/// A device silent this long (no data, no error) is closed and reopened.
const STALL_REOPEN_NS: u64 = 500_000_000;

/// Longest back-off between reopen attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a read loop ended.
enum LoopEnd {
    Stopped,
    DeviceError,
}

/// The state that survives a reopen: where the audio clock stands.
struct Position {
    /// Index of the next sample if nothing is lost.
    next_index: u64,
    /// When the last good read returned (0 before the first).
    last_read_ns: u64,
    /// A gap happened; the next read re-anchors the clock and flags a discontinuity.
    gap: bool,
}

/// Body of the `rtpmic-capture` thread: runs until `stop`, the sample limit, or the encoder
/// going away; then closes `out` (the encoder drains its ring and ends).
pub fn run(config: &Config, mut out: impl FrameSink, ctl: CaptureControl<'_>) {
    let mut pos = Position {
        next_index: 0,
        last_read_ns: 0,
        gap: false,
    };
    let settings = DeviceSettings::from_config(config);
    let mut backoff = Duration::from_millis(100);
    while !ctl.stop.load(Relaxed) {
        // alsa-lib's own messages ("Unknown PCM …") go to a buffer that is folded into our
        // error line instead of stderr; a fresh buffer per attempt keeps it small.
        let alsa_messages = alsa::Output::local_error_handler().ok();
        // libjack's (board/sim) likewise, once an earlier attempt has loaded it.
        jack::quiet_libjack();
        let jack_messages = jack::collect();
        ctl.stats.set_device_state(DeviceState::Opening);
        let opened = Device::open(&settings);
        let jack_detail = jack_messages.take();
        let absent = opened.is_err();
        let end = match opened {
            Ok(dev) => {
                ctl.stats.set_device_state(DeviceState::Open);
                backoff = Duration::from_millis(100);
                match dev.format {
                    DeviceFormat::S16 => read_loop::<i16, _>(config, &dev, &mut out, &ctl, &mut pos),
                    DeviceFormat::S32 => read_loop::<i32, _>(config, &dev, &mut out, &ctl, &mut pos),
                }
            }
            Err(e) => {
                let detail = alsa_messages.map(|o| o.borrow().to_string()).unwrap_or_default();
                let detail = detail.trim().replace('\n', "; ");
                ctl.stats.device_errors.fetch_add(1, Relaxed);
                ctl.stats.set_device_state(DeviceState::Absent);
                let mut text = e.to_string();
                if !detail.is_empty() {
                    text.push_str(&format!(" [alsa-lib: {detail}]"));
                }
                let jack_detail = jack_detail.trim().replace('\n', "; ");
                if !jack_detail.is_empty() {
                    text.push_str(&format!(" [libjack: {jack_detail}]"));
                }
                // An allocation that failed because locked memory hit its limit.
                if let Some(hint) = e.errno().and_then(crate::rt::memory_lock_hint) {
                    text.push_str(&format!("; {hint}"));
                }
                ctl.stats.set_device_error(&text);
                LoopEnd::DeviceError
            }
        };
        hot_path::leave();
        match end {
            LoopEnd::Stopped => break,
            LoopEnd::DeviceError => {
                pos.gap = pos.last_read_ns != 0;
                // Only waiting for an absent device counts as a sign of life: a device that
                // opens and then gives nothing is a stall the watchdog must see.
                let heartbeat = absent.then_some(&ctl.stats.absent_heartbeat);
                sleep_unless_stopped(backoff, &ctl, heartbeat, &mut out);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    out.close(ctl.stats);
}

/// Sleeps `d` in 20 ms steps, ending early on `stop`; bumps `heartbeat` and lets `out` do its
/// timed work at every step.
fn sleep_unless_stopped(
    d: Duration,
    ctl: &CaptureControl<'_>,
    heartbeat: Option<&AtomicU64>,
    out: &mut impl FrameSink,
) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !ctl.stop.load(Relaxed) {
        out.idle(ctl.stats);
        std::thread::sleep(step.min(left));
        left = left.saturating_sub(step);
        if let Some(h) = heartbeat {
            h.fetch_add(1, Relaxed);
        }
    }
}

/// Reads until stopped or the device fails. Generic over the device's sample type so the
/// `IO` handle (whose creation allocates in alsa-lib) is made once, before the loop.
fn read_loop<S: IoFormat + Sample + Default, O: FrameSink>(
    config: &Config,
    dev: &Device,
    out: &mut O,
    ctl: &CaptureControl<'_>,
    pos: &mut Position,
) -> LoopEnd {
    let io = match dev.pcm.io_checked::<S>() {
        Ok(io) => io,
        Err(e) => {
            ctl.stats.device_errors.fetch_add(1, Relaxed);
            ctl.stats.set_device_error(&format!("capture device: {e}"));
            return LoopEnd::DeviceError;
        }
    };
    let channels = config.channels as usize;
    let frame_len = config.frame_samples();
    // Whole frames up to FRAMES_PER_READ, at least a period, never more than the buffer holds.
    let chunk = (frame_len * FRAMES_PER_READ)
        .max(dev.period)
        .min(dev.buffer.max(dev.period))
        .max(1);
    let mut raw = vec![S::default(); chunk * channels];
    let mut frame = Frame::empty();
    let mut filled = 0usize;
    let mut discontinuity = pos.gap;
    let timeout_ms = (4 * dev.period as u64 * 1000 / u64::from(config.rate)).clamp(50, 100) as u32;
    let mut warmed_up = false;
    let opened_ns = now_ns();
    let silent_overrun_ns = (dev.buffer + dev.period) as u64 * 1_000_000_000 / u64::from(config.rate);
    loop {
        if ctl.stop.load(Relaxed) {
            return LoopEnd::Stopped;
        }
        match read_some(&io, &mut raw) {
            Ok(0) => match wait_for_period(&dev.pcm, timeout_ms, out, ctl.stats) {
                Ok(true) => {}
                Ok(false) => {
                    ctl.stats.stalls.fetch_add(1, Relaxed);
                    // A device that stops delivering without an error (a USB microphone
                    // pulled behind a plugin, a dead sound server) is treated as gone.
                    let since = now_ns().saturating_sub(pos.last_read_ns.max(opened_ns));
                    if since > STALL_REOPEN_NS {
                        hot_path::leave();
                        ctl.stats.device_errors.fetch_add(1, Relaxed);
                        ctl.stats.set_device_error(&format!(
                            "capture device {:?}: no audio for {} ms; reopening",
                            config.device,
                            since / 1_000_000
                        ));
                        return LoopEnd::DeviceError;
                    }
                }
                Err(e) => {
                    if let Some(end) = recover(&dev.pcm, e, ctl, pos, &mut filled) {
                        return end;
                    }
                }
            },
            Ok(n) => {
                let now = now_ns();
                // With --no-drop the capture waits for the encoder on purpose (an unpaced
                // file read as fast as it goes): a late read there is not an overrun.
                if !ctl.no_drop && !pos.gap && pos.last_read_ns != 0 && now - pos.last_read_ns > silent_overrun_ns {
                    // Longer since the last read than the buffer can hold: the device
                    // overran without saying so (the jack and pulse plugins do not report
                    // EPIPE). Same treatment as a reported overrun.
                    ctl.stats.xruns.fetch_add(1, Relaxed);
                    ctl.stats.samples_lost.fetch_add(filled as u64, Relaxed);
                    filled = 0;
                    pos.gap = true;
                }
                if filled == 0 && pos.gap {
                    let at = clock::index_after_gap(pos.next_index, pos.last_read_ns, now, n as u64, config.rate);
                    ctl.stats.samples_lost.fetch_add(at - pos.next_index, Relaxed);
                    pos.next_index = at;
                    pos.gap = false;
                    discontinuity = true;
                }
                pos.last_read_ns = now;
                ctl.stats.periods.fetch_add(1, Relaxed);
                let mut taken = 0;
                while taken < n {
                    if filled == 0 {
                        frame.sample_index = pos.next_index;
                    }
                    let take = (n - taken).min(frame_len - filled);
                    convert::to_mono(
                        &raw[taken * channels..(taken + take) * channels],
                        channels,
                        config.channel,
                        &mut frame.samples[filled..filled + take],
                    );
                    filled += take;
                    taken += take;
                    pos.next_index += take as u64;
                    if filled < frame_len {
                        continue;
                    }
                    frame.len = frame_len;
                    frame.captured_ns = now;
                    frame.discontinuity = discontinuity;
                    discontinuity = false;
                    filled = 0;
                    ctl.stats.frames.fetch_add(1, Relaxed);
                    if !out.deliver(&frame, ctl) {
                        return LoopEnd::Stopped;
                    }
                    if !warmed_up {
                        warmed_up = true;
                        hot_path::enter();
                    }
                    if ctl.limit_samples.is_some_and(|l| pos.next_index >= l) {
                        return LoopEnd::Stopped;
                    }
                }
            }
            Err(e) => {
                if let Some(end) = recover(&dev.pcm, e, ctl, pos, &mut filled) {
                    return end;
                }
                discontinuity = discontinuity || pos.gap;
            }
        }
    }
}

/// Lets `out` do its timed work, then parks until the device has a period (true) or
/// `timeout_ms` passes (false).
fn wait_for_period(pcm: &PCM, timeout_ms: u32, out: &mut impl FrameSink, stats: &Stats) -> alsa::Result<bool> {
    out.idle(stats);
    pcm.wait(Some(timeout_ms))
}

/// `readi` with EAGAIN (nothing there yet, non-blocking mode) folded into `Ok(0)`.
fn read_some<S: IoFormat>(io: &IO<'_, S>, buf: &mut [S]) -> alsa::Result<usize> {
    match io.readi(buf) {
        Err(e) if e.errno() == libc::EAGAIN => Ok(0),
        r => r,
    }
}

/// Handles a read/wait error: overrun and suspend are recovered here (returns `None`),
/// anything else ends the loop for a reopen.
fn recover(
    pcm: &PCM,
    e: alsa::Error,
    ctl: &CaptureControl<'_>,
    pos: &mut Position,
    filled: &mut usize,
) -> Option<LoopEnd> {
    let restarted = match e.errno() {
        libc::EPIPE => {
            ctl.stats.xruns.fetch_add(1, Relaxed);
            pcm.prepare().and_then(|_| pcm.start())
        }
        libc::ESTRPIPE => {
            ctl.stats.suspends.fetch_add(1, Relaxed);
            resume(pcm, ctl.stop)
        }
        _ => Err(e),
    };
    match restarted {
        Ok(()) => {
            // The partial frame straddles the gap: its samples are lost too.
            ctl.stats.samples_lost.fetch_add(*filled as u64, Relaxed);
            *filled = 0;
            pos.gap = true;
            None
        }
        Err(e) => {
            // Leaving the hot path: formatting the message allocates.
            hot_path::leave();
            ctl.stats.device_errors.fetch_add(1, Relaxed);
            ctl.stats.set_device_error(&format!("capture device: {e}"));
            Some(LoopEnd::DeviceError)
        }
    }
}

/// Resumes a suspended PCM (retrying while the driver says EAGAIN), or re-prepares it when
/// the driver cannot resume.
fn resume(pcm: &PCM, stop: &AtomicBool) -> alsa::Result<()> {
    loop {
        match pcm.resume() {
            Ok(()) => return Ok(()),
            Err(e) if e.errno() == libc::EAGAIN && !stop.load(Relaxed) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return pcm.prepare().and_then(|_| pcm.start()),
        }
    }
}
