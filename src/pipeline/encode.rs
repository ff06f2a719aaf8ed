//! The encoding half: frames → codec (→ RFC 2198 RED) → encoded payloads for the send
//! session, in the `rtpmic-encode` thread or, with `RTPMIC_THREADS=1`, in the capture
//! thread.

use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::Frame;
use crate::codec::{Encoder, Tuning};
use crate::config::MAX_PAYLOAD;
use crate::net::sender::{EncodedPacket, SendShell, MAX_PARK};
use crate::ops::{hot_path, stats::Stats};
use crate::ring::{Consumer, Producer, Pushed, Ready};
use crate::rt::now_ns;
use crate::rtp::packetizer::RtpClock;
use crate::rtp::red::RedEncoder;
use crate::rtp::session::EncodedFrame;

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

/// What the encoding thread turns frames into encoded payloads with.
pub struct EncodeStage {
    pub encoder: Encoder,
    /// RFC 2198 redundancy, when configured.
    pub red: Option<RedEncoder>,
    /// Sample index → RTP ticks, for RED's timestamp offsets (only differences count).
    pub clock: RtpClock,
    /// Opus DTX on: frames the encoder marks as silence (≤ 2 bytes) are not sent.
    pub dtx: bool,
}

/// Opus DTX frames are at most this long (a TOC byte, maybe one more): RFC 7587 §3.3 says
/// not to send them.
const DTX_FRAME_MAX: usize = 2;

/// Where the encoder's payloads go.
pub enum PacketOut {
    /// Into the ring the `rtpmic-send` thread reads; `no_drop` waits for room instead of
    /// dropping (unpaced file input only).
    Ring {
        ring: Producer<EncodedPacket>,
        no_drop: bool,
    },
    /// Straight to the send session in this thread (`RTPMIC_THREADS` 1 or 2).
    Direct(Box<SendShell>),
}

impl PacketOut {
    /// Sending from the encoding thread through `shell`.
    pub fn direct(shell: SendShell) -> PacketOut {
        PacketOut::Direct(Box::new(shell))
    }
}

/// The encoding half as the thread that runs it holds it: codec, the settings to follow,
/// where payloads go, and every buffer, allocated before the first frame.
pub struct Encoding {
    stage: EncodeStage,
    tuning: Arc<EncoderTuning>,
    out: PacketOut,
    tuning_seen: u64,
    /// A frame that failed to encode, or silence not sent, leaves a gap the next packet marks
    /// (RFC 3551 §4.1: the first packet of a talkspurt carries the marker).
    gap_pending: bool,
    payload: [u8; MAX_PAYLOAD],
    red_payload: [u8; MAX_PAYLOAD],
}

impl Encoding {
    pub fn new(stage: EncodeStage, tuning: Arc<EncoderTuning>, out: PacketOut) -> Box<Encoding> {
        Box::new(Encoding {
            stage,
            tuning,
            out,
            tuning_seen: 0,
            gap_pending: false,
            payload: [0; MAX_PAYLOAD],
            red_payload: [0; MAX_PAYLOAD],
        })
    }

    /// Encodes one frame and hands its payload on (ring or send session). False when the
    /// ring's reader is gone, which ends the stream.
    pub fn process(&mut self, frame: &Frame, stats: &Stats) -> bool {
        if let Some(t) = self.tuning.changed(&mut self.tuning_seen) {
            // libopus CTLs: no allocation. A refused value keeps the previous one.
            if self.stage.encoder.tune(t).is_err() {
                stats.encode_errors.fetch_add(1, Relaxed);
            }
        }
        let Ok(n) = self
            .stage
            .encoder
            .encode(&frame.samples[..frame.len], &mut self.payload)
        else {
            stats.encode_errors.fetch_add(1, Relaxed);
            self.gap_pending = true;
            return true;
        };
        if self.stage.dtx && n <= DTX_FRAME_MAX {
            stats.dtx_frames.fetch_add(1, Relaxed);
            self.gap_pending = true;
            return true;
        }
        let discontinuity = frame.discontinuity || self.gap_pending;
        self.gap_pending = false;
        let body = match self.stage.red.as_mut() {
            None => &self.payload[..n],
            Some(red) => {
                if discontinuity {
                    red.reset();
                }
                let ts = self.stage.clock.ticks(frame.sample_index);
                match red.write(&self.payload[..n], ts, &mut self.red_payload) {
                    Ok(m) => &self.red_payload[..m],
                    Err(_) => {
                        stats.encode_errors.fetch_add(1, Relaxed);
                        self.gap_pending = true;
                        return true;
                    }
                }
            }
        };
        let encoded = EncodedFrame {
            payload: body,
            sample_index: frame.sample_index,
            discontinuity,
            captured_ns: frame.captured_ns,
            encoded_ns: now_ns(),
        };
        stats.packets.fetch_add(1, Relaxed);
        match &mut self.out {
            PacketOut::Ring { ring, no_drop: true } => return ring.push_waiting(|slot| slot.fill(&encoded)),
            PacketOut::Ring { ring, no_drop: false } => {
                if ring.push(|slot| slot.fill(&encoded)) != Pushed::Stored {
                    stats.packet_drops.fetch_add(1, Relaxed);
                }
            }
            PacketOut::Direct(shell) => shell.send_frame(&encoded, stats),
        }
        true
    }

    /// Timed work while no frame comes (RTCP, peers), and how long the thread may wait for
    /// the next frame before calling this again.
    pub fn idle(&mut self, stats: &Stats) -> Duration {
        match &mut self.out {
            PacketOut::Ring { .. } => MAX_PARK,
            PacketOut::Direct(shell) => {
                shell.poll(stats);
                shell.park(now_ns())
            }
        }
    }

    /// The stream is over: close the ring (the sender drains it and says BYE), or say BYE
    /// here.
    pub fn finish(&mut self, stats: &Stats) {
        match &mut self.out {
            PacketOut::Ring { ring, .. } => ring.close(),
            PacketOut::Direct(shell) => shell.finish(stats),
        }
    }
}

/// Body of the `rtpmic-encode` thread; returns when the capture closed its ring and all is
/// encoded (and sent, or handed to the sender, whose ring is then closed).
pub fn run(mut input: Consumer<Frame>, mut encoding: Box<Encoding>, stats: &Stats) {
    let mut warmed_up = false;
    loop {
        let Some(more) = input.pop(|f| encoding.process(f, stats)) else {
            let park = encoding.idle(stats);
            match input.wait(Some(park)) {
                Ready::Closed => break,
                Ready::Data | Ready::Timeout => continue,
            }
        };
        if !more {
            break;
        }
        if !warmed_up {
            warmed_up = true;
            hot_path::enter();
        }
    }
    hot_path::leave();
    encoding.finish(stats);
}
