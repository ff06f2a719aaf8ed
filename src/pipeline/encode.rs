//! The encoding half: frames → codec → RTP header → packets, in the `rtpmic-encode` thread
//! or, with `RTPMIC_THREADS=1`, in the capture thread.

use std::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::Frame;
use crate::codec::{Encoder, Tuning};
use crate::config::MAX_PAYLOAD;
use crate::net::sender::{Packet, SendStage, MAX_PARK};
use crate::ops::{hot_path, stats::Stats};
use crate::ring::{Consumer, Producer, Pushed, Ready};
use crate::rt::now_ns;
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

/// Where the encoder's packets go.
pub enum PacketOut {
    /// Into the ring the `rtpmic-send` thread reads; `no_drop` waits for room instead of
    /// dropping (unpaced file input only).
    Ring { ring: Producer<Packet>, no_drop: bool },
    /// Straight to the network from the encoding thread (`RTPMIC_THREADS` 1 or 2).
    Direct { send: Box<SendStage>, packet: Box<Packet> },
}

impl PacketOut {
    /// Sending from the encoding thread through `send`, with the one packet buffer it needs.
    pub fn direct(send: SendStage) -> PacketOut {
        PacketOut::Direct {
            send: Box::new(send),
            packet: Box::new(Packet::empty()),
        }
    }
}

/// The encoding half as the thread that runs it holds it: codec, packetizer, the settings
/// to follow, where packets go, and every buffer, allocated before the first frame.
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

    /// Encodes one frame and hands its packet on (ring or network). False when the packet
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
                let ts = self.stage.packetizer.timestamp_of(frame.sample_index);
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
        let (packetizer, srtp) = (&mut self.stage.packetizer, &mut self.stage.srtp);
        let mut fill = |slot: &mut Packet| {
            slot.captured_ns = frame.captured_ns;
            slot.ready_ns = now_ns();
            slot.payload_len = body.len();
            let written = packetizer
                .write(frame.sample_index, discontinuity, body, &mut slot.data)
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
        match &mut self.out {
            PacketOut::Ring { ring, no_drop: true } => return ring.push_waiting(fill),
            PacketOut::Ring { ring, no_drop: false } => {
                if ring.push(fill) != Pushed::Stored {
                    stats.packet_drops.fetch_add(1, Relaxed);
                }
            }
            PacketOut::Direct { send, packet } => {
                fill(packet);
                send.send_one(packet, stats);
            }
        }
        true
    }

    /// Timed work while no frame comes (RTCP reports, address changes), and how long the
    /// thread may wait for the next frame before calling this again.
    pub fn idle(&mut self, stats: &Stats) -> Duration {
        match &mut self.out {
            PacketOut::Ring { .. } => MAX_PARK,
            PacketOut::Direct { send, .. } => {
                let now = now_ns();
                send.poll(now, stats);
                send.park(now)
            }
        }
    }

    /// The stream is over: close the packet ring (the sender drains it and says BYE), or
    /// say BYE here.
    pub fn finish(&mut self, stats: &Stats) {
        match &mut self.out {
            PacketOut::Ring { ring, .. } => ring.close(),
            PacketOut::Direct { send, .. } => send.finish(stats),
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
