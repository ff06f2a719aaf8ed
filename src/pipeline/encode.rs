//! The `rtpmic-encode` thread: frames → codec → RTP header → packets.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::capture::Frame;
use crate::codec::Encoder;
use crate::config::MAX_PAYLOAD;
use crate::net::sender::Packet;
use crate::ops::{hot_path, stats::Stats};
use crate::ring::{Consumer, Producer, Pushed, Ready};
use crate::rtp::Packetizer;

/// Encoder settings the main thread may change while the stream runs (SIGHUP): a version
/// number the encoder compares once per frame, and the values. No lock: a torn read of two
/// values written together is impossible because the version is stored last (Release) and
/// read first (Acquire).
#[derive(Default)]
pub struct EncoderTuning {
    version: AtomicU64,
    bitrate: AtomicU32,
    complexity: AtomicU32,
}

impl EncoderTuning {
    /// Asks the encoder to use `bitrate` and `complexity` from its next frame on.
    pub fn set(&self, bitrate: u32, complexity: u8) {
        self.bitrate.store(bitrate, Relaxed);
        self.complexity.store(u32::from(complexity), Relaxed);
        self.version.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The settings when they changed since `seen` (which is updated).
    fn changed(&self, seen: &mut u64) -> Option<(u32, u8)> {
        let v = self.version.load(std::sync::atomic::Ordering::Acquire);
        if v == *seen {
            return None;
        }
        *seen = v;
        let complexity = self.complexity.load(Relaxed).min(10) as u8;
        Some((self.bitrate.load(Relaxed), complexity))
    }
}

/// Body of the encoder thread; returns when the capture closed its ring and all is encoded.
/// Dropping `output` on return closes the sender's ring in turn.
pub fn run(
    mut input: Consumer<Frame>,
    mut output: Producer<Packet>,
    mut encoder: Encoder,
    mut packetizer: Packetizer,
    stats: &Stats,
    tuning: &EncoderTuning,
    no_drop: bool,
) {
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut tuning_seen = 0;
    // A frame that failed to encode leaves a gap the next packet must mark.
    let mut lost_frame = false;
    let mut warmed_up = false;
    loop {
        if let Some((bitrate, complexity)) = tuning.changed(&mut tuning_seen) {
            // libopus CTLs: no allocation. A refused value keeps the previous one.
            if encoder.tune(bitrate, complexity).is_err() {
                stats.encode_errors.fetch_add(1, Relaxed);
            }
        }
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
            lost_frame = true;
            continue;
        };
        let discontinuity = gap || lost_frame;
        lost_frame = false;
        let fill = |slot: &mut Packet| {
            slot.captured_ns = captured_ns;
            slot.payload_len = n;
            slot.len = match packetizer.write(index, discontinuity, &payload[..n], &mut slot.data) {
                Ok((len, stamp)) => {
                    slot.rtp_timestamp = stamp.timestamp;
                    len
                }
                Err(_) => {
                    stats.encode_errors.fetch_add(1, Relaxed);
                    0
                }
            };
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
