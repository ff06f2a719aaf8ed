//! Loss resilience with real peers: Opus in-band FEC decoded by GStreamer's opusdec behind
//! nftables random loss, DTX silence suppression, and RFC 2198 redundancy recovered by
//! GStreamer's rtpreddec.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A network namespace of its own (loopback only) whose output drops one datagram in
/// `every` (the 6th, 16th, 26th, …) to each of the UDP ports in `ports`, counted by nftables
/// (numgen inc: deterministic, so two streams meet the same loss). Removed on drop.
struct LossyNs {
    name: String,
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

impl LossyNs {
    fn create(every: u32, ports: &[u16]) -> LossyNs {
        let name = format!(
            "rtpmic-loss-{}-{}",
            std::process::id(),
            NS_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let ns = LossyNs { name };
        let mut cmds = vec![
            format!("ip netns add {}", ns.name),
            format!("ip -n {} link set lo up", ns.name),
            format!("ip netns exec {} nft add table inet rtpmic_loss", ns.name),
            format!(
                "ip netns exec {} nft 'add chain inet rtpmic_loss out {{ type filter hook output priority 0 ; }}'",
                ns.name
            ),
        ];
        for port in ports {
            cmds.push(format!(
                "ip netns exec {} nft add rule inet rtpmic_loss out udp dport {port} numgen inc mod {every} == 5 counter drop",
                ns.name
            ));
        }
        for cmd in cmds {
            let st = Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        ns
    }

    /// Datagrams dropped so far on the way to `port`.
    fn dropped(&self, port: u16) -> u64 {
        let out = self
            .command("nft")
            .args(["list", "chain", "inet", "rtpmic_loss", "out"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.contains(&format!("dport {port} ")))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != "packets").nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no counter for port {port}: {text}"))
    }

    /// `program` run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for LossyNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// GStreamer receiving RTP on `port` inside `ns`, decoding to raw S16LE mono 48 kHz in `out`.
/// `red_pt` puts rtpreddec in front.
fn gst_receiver(ns: &LossyNs, port: u16, red_pt: Option<u8>, out: &Path) -> Child {
    let encoding = if red_pt.is_some() { "RED" } else { "OPUS" };
    let pt = red_pt.unwrap_or(96);
    let mut desc = format!(
        "udpsrc port={port} caps=\"application/x-rtp,media=audio,clock-rate=48000,encoding-name={encoding},payload={pt}\" ! "
    );
    if let Some(pt) = red_pt {
        desc.push_str(&format!(
            "rtpreddec pt={pt} ! capssetter caps=\"application/x-rtp,encoding-name=OPUS,payload=96\" ! "
        ));
    }
    desc.push_str(&format!(
        "rtpjitterbuffer latency=100 do-lost=true ! rtpopusdepay ! opusdec use-inband-fec=true plc=true ! \
         audioconvert ! audio/x-raw,format=S16LE,channels=1,rate=48000 ! filesink location={}",
        out.display()
    ));
    ns.command("sh")
        .arg("-c")
        .arg(format!("exec gst-launch-1.0 -q -e {desc}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0 (Debian package gstreamer1.0-tools)")
}

/// Waits until `out` holds at least `bytes` (the receiver decoded that much), then ends the
/// GStreamer pipeline with EOS (SIGINT under -e) so the file is complete.
fn finish_gst(mut gst: Child, out: &Path, bytes: u64) -> Vec<i16> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(out).map_or(0, |m| m.len()) < bytes && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child (sh exec'd into gst-launch).
    unsafe { libc::kill(gst.id() as i32, libc::SIGINT) };
    let status = wait_for(&mut gst, Duration::from_secs(10)).expect("gst-launch ends on EOS");
    let mut err = String::new();
    std::io::Read::read_to_string(gst.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "gst-launch: {status}: {err}");
    let raw = std::fs::read(out).unwrap();
    raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// `rtpmic run --seconds N` inside `ns` with `keys`.
fn rtpmic_in(ns: &LossyNs, board: &SimBoard, infile: &Path, seconds: u32, keys: &[(&str, &str)]) -> Child {
    let mut c = ns.command(RTPMIC);
    board.apply_env(&mut c, infile);
    c.args(["run", "--seconds", &seconds.to_string()])
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_RTCP", "off")
        .stderr(Stdio::piped());
    for (k, v) in keys {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn finish_rtpmic(mut child: Child) -> String {
    let status = wait_for(&mut child, Duration::from_secs(20)).expect("rtpmic ends after --seconds");
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    log
}

/// Two streams of the same signal through the same 10 % random loss, one with Opus in-band
/// FEC: GStreamer's opusdec rebuilds lost frames from the FEC data, and the decoded audio is
/// measurably closer to the source.
#[test]
fn opus_fec_recovers_lost_packets_in_gstreamer() {
    let board = SimBoard::shared();
    let source = speechlike(6.0);
    let infile = board.infile("speech.raw", &source);
    let ns = LossyNs::create(10, &[5004, 5006]);
    let dir = tempfile::tempdir().unwrap();
    let (out_fec, out_plain) = (dir.path().join("fec.raw"), dir.path().join("plain.raw"));
    let gst_fec = gst_receiver(&ns, 5004, None, &out_fec);
    let gst_plain = gst_receiver(&ns, 5006, None, &out_plain);
    let fec = rtpmic_in(
        &ns,
        &board,
        &infile,
        5,
        &[
            ("RTPMIC_DEST", "127.0.0.1:5004"),
            ("RTPMIC_OPUS_FEC", "on"),
            ("RTPMIC_OPUS_LOSS_PERCENT", "10"),
        ],
    );
    let plain = rtpmic_in(&ns, &board, &infile, 5, &[("RTPMIC_DEST", "127.0.0.1:5006")]);
    finish_rtpmic(fec);
    finish_rtpmic(plain);
    let bytes = 4 * 48_000 * 2;
    let (with_fec, without) = (
        finish_gst(gst_fec, &out_fec, bytes),
        finish_gst(gst_plain, &out_plain, bytes),
    );
    let (lost_fec, lost_plain) = (ns.dropped(5004), ns.dropped(5006));
    assert!(
        lost_fec >= 20 && lost_plain >= 20,
        "10 % of 250 packets lost: {lost_fec}, {lost_plain}"
    );
    let snr_fec = aligned_snr(&source, &with_fec, 48_000, 4800);
    let snr_plain = aligned_snr(&source, &without, 48_000, 4800);
    println!("10 % loss: SNR with FEC {snr_fec:.1} dB, without {snr_plain:.1} dB");
    assert!(
        snr_fec > snr_plain + 2.0,
        "FEC {snr_fec:.1} dB vs plain {snr_plain:.1} dB"
    );
}

/// Speech-like: a glottal pulse train (pitch gliding 100-180 Hz) through two formant
/// resonators that move every 100 ms, in 300 ms syllables. Opus's SILK layer (which carries
/// the FEC) codes LBRR data only for frames its voice activity detector takes for speech,
/// which pure tones are not.
fn speechlike(seconds: f64) -> Vec<i16> {
    let n = (48_000.0 * seconds) as usize;
    let formants = [(700.0, 1200.0), (300.0, 2300.0), (500.0, 1500.0), (400.0, 900.0)];
    let mut out = Vec::with_capacity(n);
    let (mut y1a, mut y2a, mut y1b, mut y2b) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut next_pulse = 0usize;
    for i in 0..n {
        let frame = i / 960;
        let pitch = 100.0 + 80.0 * ((frame as f64 * 0.7).sin() * 0.5 + 0.5);
        let x = if i >= next_pulse {
            next_pulse = i + (48_000.0 / pitch) as usize;
            1.0
        } else {
            0.0
        };
        let (fa, fb) = formants[(i / 4800) % formants.len()];
        let res = |f: f64, y1: &mut f64, y2: &mut f64, x: f64| {
            let r = 0.995f64;
            let c = 2.0 * r * (2.0 * std::f64::consts::PI * f / 48_000.0).cos();
            let y = x + c * *y1 - r * r * *y2;
            *y2 = *y1;
            *y1 = y;
            y
        };
        let a = res(fa, &mut y1a, &mut y2a, x);
        let b = res(fb, &mut y1b, &mut y2b, x);
        let env = (std::f64::consts::PI * ((i % 14_400) as f64 / 14_400.0)).sin();
        out.push(((a + 0.5 * b) * env * 300.0).clamp(-32767.0, 32767.0) as i16);
    }
    out
}

/// RFC 2198 redundancy for 2.5 ms frames (CELT, where Opus FEC does not work): behind the
/// same loss, GStreamer's rtpreddec rebuilds every lost packet from the redundant copy in the
/// next one, so the decoded audio matches the source as closely as with no loss at all.
#[test]
fn red_redundancy_recovers_lost_packets_in_gstreamer() {
    let board = SimBoard::shared();
    let source = two_tone(48_000, 6.0);
    let infile = board.infile("tone.raw", &source);
    let ns = LossyNs::create(10, &[5008, 5010]);
    let dir = tempfile::tempdir().unwrap();
    let (out_red, out_plain) = (dir.path().join("red.raw"), dir.path().join("plain.raw"));
    let gst_red = gst_receiver(&ns, 5008, Some(121), &out_red);
    let gst_plain = gst_receiver(&ns, 5010, None, &out_plain);
    let common = [
        ("RTPMIC_FRAME_MS", "2.5"),
        ("RTPMIC_OPUS_APPLICATION", "lowdelay"),
        ("RTPMIC_BITRATE", "64000"),
    ];
    let mut red_keys = common.to_vec();
    red_keys.extend([("RTPMIC_DEST", "127.0.0.1:5008"), ("RTPMIC_REDUNDANCY", "1")]);
    let mut plain_keys = common.to_vec();
    plain_keys.push(("RTPMIC_DEST", "127.0.0.1:5010"));
    let red = rtpmic_in(&ns, &board, &infile, 5, &red_keys);
    let plain = rtpmic_in(&ns, &board, &infile, 5, &plain_keys);
    finish_rtpmic(red);
    finish_rtpmic(plain);
    let (lost_red, lost_plain) = (ns.dropped(5008), ns.dropped(5010));
    assert!(
        lost_red >= 150 && lost_plain >= 150,
        "10 % of 2000 packets: {lost_red}, {lost_plain}"
    );
    let bytes = 4 * 48_000 * 2;
    let (with_red, without) = (
        finish_gst(gst_red, &out_red, bytes),
        finish_gst(gst_plain, &out_plain, bytes),
    );
    let snr_red = aligned_snr(&source, &with_red, 48_000, 4800);
    let snr_plain = aligned_snr(&source, &without, 48_000, 4800);
    println!("10 % loss, 2.5 ms frames: SNR with RED {snr_red:.1} dB, without {snr_plain:.1} dB");
    assert!(snr_red >= 20.0, "the core SNR bar, despite the loss: {snr_red:.1} dB");
    assert!(
        snr_red > snr_plain + 6.0,
        "RED {snr_red:.1} dB vs plain {snr_plain:.1} dB"
    );
}

/// Opus DTX: with half the signal digital silence, far fewer packets go out; the first
/// packet of each talkspurt carries the marker; the speech decodes at its level.
#[test]
fn dtx_sends_nothing_in_silence_and_marks_talkspurts() {
    let board = SimBoard::shared();
    // 2 s of speech, 2 s of silence, twice. (Opus keeps sending for 200 ms into a silence
    // and then sends a comfort-noise update every 400 ms.)
    let speech = speechlike(2.0);
    let mut source = Vec::new();
    for _ in 0..2 {
        source.extend_from_slice(&speech);
        source.extend(std::iter::repeat_n(0i16, 96_000));
    }
    let infile = board.infile("talk.raw", &source);
    let (rx_dtx, rx_plain) = (Receiver::bind(), Receiver::bind());
    let run = |rx: &Receiver, dtx: &str| {
        board
            .rtpmic(&infile)
            .args(["run", "--seconds", "8"])
            .env("RTPMIC_DEVICE", "simfile")
            .env("RTPMIC_DEST", rx.dest())
            .env("RTPMIC_OPUS_DTX", dtx)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (dtx, plain) = (run(&rx_dtx, "on"), run(&rx_plain, "off"));
    // Read while they stream: 400 packets would overflow a socket's default receive buffer.
    let (with_dtx, without) = std::thread::scope(|s| {
        let a = s.spawn(|| rx_dtx.collect(1000, Duration::from_secs(5), Duration::from_secs(2)));
        let b = s.spawn(|| rx_plain.collect(1000, Duration::from_secs(5), Duration::from_secs(2)));
        (a.join().unwrap(), b.join().unwrap())
    });
    let log = finish_rtpmic(dtx);
    finish_rtpmic(plain);
    assert_eq!(without.len(), 400, "8 s of 20 ms packets without DTX");
    println!("DTX: {} packets instead of {}", with_dtx.len(), without.len());
    assert!(
        with_dtx.len() as f64 <= 0.6 * without.len() as f64,
        "at least 40 % fewer: {} vs {}",
        with_dtx.len(),
        without.len()
    );
    assert!(log.contains("dtx_frames="), "{log}");
    // Contiguous sequence numbers; timestamps jump over the silence, and the packet after
    // each jump carries the marker (RFC 7587 §3.3 / RFC 3551 §4.1).
    let ts0 = with_dtx[0].ts;
    let mut talkspurts = 0;
    for w in with_dtx.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "no sequence gaps");
        let step = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            step >= 960 && step % 960 == 0,
            "timestamps follow the audio clock: {step}"
        );
        if step > 960 {
            assert!(w[1].marker, "talkspurt start marked");
            talkspurts += 1;
        }
    }
    assert!(talkspurts >= 2, "{talkspurts} talkspurts after silences");
    // Decode every packet at its timestamp; each speech second keeps its level.
    let mut decoded = vec![0i16; source.len() + 48_000];
    let mut dec = audiopus::coder::Decoder::new(audiopus::SampleRate::Hz48000, audiopus::Channels::Mono).unwrap();
    let mut buf = vec![0i16; 5760];
    for p in &with_dtx {
        let n = dec
            .decode(Some(&p.payload[..]), &mut buf[..], false)
            .expect("every packet decodes");
        let at = p.ts.wrapping_sub(ts0) as usize;
        if at + n <= decoded.len() {
            decoded[at..at + n].copy_from_slice(&buf[..n]);
        }
    }
    for s in [0usize, 1, 4, 5] {
        let range = s * 48_000 + 4800..(s + 1) * 48_000 - 4800;
        let (want, got) = (rms_dbfs(&source[range.clone()], 0), rms_dbfs(&decoded[range], 0));
        assert!(
            (want - got).abs() <= 1.5,
            "second {s}: source {want:.1} dBFS, decoded {got:.1} dBFS"
        );
    }
}

/// `RTPMIC_OPUS_LOSS_PERCENT=auto`: a GStreamer receiver (rtpbin) behind 10 % loss reports it
/// by RTCP, and rtpmic's Opus encoder plans its FEC for that loss instead of the 5 % floor.
#[test]
fn fec_follows_the_loss_receivers_report() {
    let board = SimBoard::shared();
    let infile = board.infile("speech.raw", &speechlike(14.0));
    let ns = LossyNs::create(10, &[5012]);
    let caps = "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=96";
    let pipeline = format!(
        "rtpbin name=rb udpsrc port=5012 caps={caps} ! rb.recv_rtp_sink_0 udpsrc port=5013 ! rb.recv_rtcp_sink_0 \
         rb.send_rtcp_src_0 ! udpsink host=127.0.0.1 port=6001 bind-port=5013 sync=false async=false \
         rb. ! rtpopusdepay ! fakesink"
    );
    let mut gst = ns
        .command("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rtpmic = rtpmic_in(
        &ns,
        &board,
        &infile,
        12,
        &[
            ("RTPMIC_DEST", "127.0.0.1:5012"),
            ("RTPMIC_RTCP", "on"),
            ("RTPMIC_BIND", "127.0.0.1:6000"),
            ("RTPMIC_OPUS_FEC", "on"),
            ("RTPMIC_LOG_LEVEL", "debug"),
        ],
    );
    let log = finish_rtpmic(rtpmic);
    let _ = gst.kill();
    let _ = gst.wait();
    let planned: Vec<u32> = log
        .lines()
        .filter_map(|l| l.split("Opus FEC now planned for ").nth(1))
        .filter_map(|rest| rest.split('%').next()?.parse().ok())
        .collect();
    println!("FEC planned for {planned:?} % as reports came in");
    let last = *planned.last().expect("receiver reports changed the FEC loss target");
    assert!(
        (7..=13).contains(&last),
        "10 % loss reported, FEC planned for {last} %\n{log}"
    );
}
