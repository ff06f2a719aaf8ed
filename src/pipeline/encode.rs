//! The `rtpmic-encode` thread: frames → codec → RTP header → packets.

use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::time::Duration;

use crate::capture::Frame;
use crate::codec::{Encoder, Tuning};
use crate::config::MAX_PAYLOAD;
use crate::net::sender::Packet;
use crate::ops::{hot_path, stats::Stats};
use crate::ring::{Consumer, Producer, Pushed, Ready};
use crate::rtp::red::RedEncoder;
use crate::rtp::srtp::SrtpContext;
use crate::rtp::Packetizer;

/// Encoder settings the main thread may change while the stream runs (SIGHUP, RTCP loss
/// reports): a version number the encoder compares once per frame, and the values. No lock:
/// the values are stored before the version (Release) and read after it (Acquire).
#[derive(Default)]
pub struct EncoderTuning {
    version: AtomicU64,
    bitrate: AtomicU32,
    complexity: AtomicU32,
    loss_percent: AtomicU32,
}

impl EncoderTuning {
    /// The settings the encoder starts with (no change pending).
    pub fn new(t: Tuning) -> EncoderTuning {
        let e = EncoderTuning::default();
        e.store(t);
        e.version.store(0, Relaxed);
        e
    }

    /// Asks the encoder to use `t` from its next frame on.
    pub fn set(&self, t: Tuning) {
        self.store(t);
        self.version.fetch_add(1, Release);
    }

    /// The settings now in force (or about to be).
    pub fn get(&self) -> Tuning {
        Tuning {
            bitrate: self.bitrate.load(Relaxed),
            complexity: self.complexity.load(Relaxed).min(10) as u8,
            loss_percent: self.loss_percent.load(Relaxed).min(100) as u8,
        }
    }

    fn store(&self, t: Tuning) {
        self.bitrate.store(t.bitrate, Relaxed);
        self.complexity.store(u32::from(t.complexity), Relaxed);
        self.loss_percent.store(u32::from(t.loss_percent), Relaxed);
    }

    /// The settings when they changed since `seen` (which is updated).
    fn changed(&self, seen: &mut u64) -> Option<Tuning> {
        let v = self.version.load(Acquire);
        if v == *seen {
            return None;
        }
        *seen = v;
        Some(self.get())
    }
}

/// What the encoder thread turns frames into packets with.
pub struct EncodeStage {
    pub encoder: Encoder,
    pub packetizer: Packetizer,
    /// RFC 2198 redundancy, when configured.
    pub red: Option<RedEncoder>,
    /// Opus DTX on: frames the encoder marks as silence (≤ 2 bytes) are not sent.
    pub dtx: bool,
    /// SRTP (RFC 3711): each packet is protected in place once, whatever the destinations.
    pub srtp: Option<SrtpContext>,
}

/// Opus DTX frames are at most this long (a TOC byte, maybe one more): RFC 7587 §3.3 says
/// not to send them.
const DTX_FRAME_MAX: usize = 2;

/// Body of the encoder thread; returns when the capture closed its ring and all is encoded.
/// Dropping `output` on return closes the sender's ring in turn.
pub fn run(
    mut input: Consumer<Frame>,
    mut output: Producer<Packet>,
    mut stage: EncodeStage,
    stats: &Stats,
    tuning: &EncoderTuning,
    no_drop: bool,
) {
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut red_payload = [0u8; MAX_PAYLOAD];
    let mut tuning_seen = 0;
    // A frame that failed to encode, or silence not sent, leaves a gap the next packet marks
    // (RFC 3551 §4.1: the first packet of a talkspurt carries the marker).
    let mut gap_pending = false;
    let mut warmed_up = false;
    loop {
        if let Some(t) = tuning.changed(&mut tuning_seen) {
            // libopus CTLs: no allocation. A refused value keeps the previous one.
            if stage.encoder.tune(t).is_err() {
                stats.encode_errors.fetch_add(1, Relaxed);
            }
        }
        let encoder = &mut stage.encoder;
        let Some((encoded, index, gap, captured_ns)) = input.pop(|f| {
            (
                encoder.encode(&f.samples[..f.len], &mut payload),
                f.sample_index,
                f.discontinuity,
                f.captured_ns,
            )
        }) else {
            match input.wait(Some(Duration::from_millis(500))) {
                Ready::Closed => break,
                Ready::Data | Ready::Timeout => continue,
            }
        };
        let Ok(n) = encoded else {
            stats.encode_errors.fetch_add(1, Relaxed);
            gap_pending = true;
            continue;
        };
        if stage.dtx && n <= DTX_FRAME_MAX {
            stats.dtx_frames.fetch_add(1, Relaxed);
            gap_pending = true;
            continue;
        }
        let discontinuity = gap || gap_pending;
        gap_pending = false;
        let body = match stage.red.as_mut() {
            None => &payload[..n],
            Some(red) => {
                if discontinuity {
                    red.reset();
                }
                let ts = stage.packetizer.timestamp_of(index);
                match red.write(&payload[..n], ts, &mut red_payload) {
                    Ok(m) => &red_payload[..m],
                    Err(_) => {
                        stats.encode_errors.fetch_add(1, Relaxed);
                        gap_pending = true;
                        continue;
                    }
                }
            }
        };
        let (packetizer, srtp) = (&mut stage.packetizer, &mut stage.srtp);
        let fill = |slot: &mut Packet| {
            slot.captured_ns = captured_ns;
            slot.payload_len = body.len();
            let written = packetizer
                .write(index, discontinuity, body, &mut slot.data)
                .ok()
                .and_then(|(len, stamp)| {
                    slot.rtp_timestamp = stamp.timestamp;
                    match srtp.as_mut() {
                        None => Some(len),
                        Some(s) => s.protect_rtp(&mut slot.data, len).ok(),
                    }
                });
            slot.len = written.unwrap_or_else(|| {
                stats.encode_errors.fetch_add(1, Relaxed);
                0
            });
        };
        stats.packets.fetch_add(1, Relaxed);
        if no_drop {
            if !output.push_waiting(fill) {
                break;
            }
        } else if output.push(fill) != Pushed::Stored {
            stats.packet_drops.fetch_add(1, Relaxed);
        }
        if !warmed_up {
            warmed_up = true;
            hot_path::enter();
        }
    }
    hot_path::leave();
}
