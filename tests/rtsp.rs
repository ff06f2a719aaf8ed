//! The RTSP server (RFC 2326) end to end: the real binary on the simulated board, pulled by
//! real players (ffmpeg, GStreamer `rtspsrc`) that must decode the two-tone at its level, and
//! by the test's own client (`common/rtsp_client.rs`), which counts every RTP packet, while a
//! push receiver (`RTPMIC_DEST`) checks that the stream itself never has a gap. Rules are
//! asserted (every packet arrives, nothing pauses, sessions end when they should), not
//! speeds.

mod common;
#[path = "common/rtsp_client.rs"]
mod rtsp_client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rtsp_client::*;

/// The signal the board plays: longer than any test runs.
const SIGNAL_SECONDS: f64 = 70.0;
const RATE: usize = 48_000;
/// Opus coding the waveform (CELT), so the SNR is a fair measure of what a player decodes.
const OPUS: [(&str, &str); 3] = [
    ("RTPMIC_CODEC", "opus"),
    ("RTPMIC_OPUS_APPLICATION", "lowdelay"),
    ("RTPMIC_BITRATE", "32000"),
];
const USER: &str = "intercom";
const PASSWORD: &str = "Pw7f2a-s3cr3t-Xq";

/// `rtpmic run` serving RTSP on a free port of loopback, with a push receiver.
struct Rtpmic {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    log_thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
    push: Option<UdpRecorder>,
    source: Vec<i16>,
    board: SimBoard,
}

/// What a stopped `rtpmic` left.
struct Stopped {
    status: ExitStatus,
    log: String,
    /// Everything the push receiver got.
    push: Vec<Packet>,
}

impl Rtpmic {
    /// Starts and waits until the RTSP port accepts and the push receiver has a packet. A
    /// port taken by someone else between `free_tcp_port` and rtpmic's bind: another port.
    fn start(keys: &[(&str, &str)]) -> Rtpmic {
        let board = SimBoard::shared();
        let source = two_tone(RATE as u32, SIGNAL_SECONDS);
        let infile = board.infile("in.raw", &source);
        let mut board = Some(board);
        for _ in 0..3 {
            match Rtpmic::try_start(board.take().unwrap(), &source, &infile, keys) {
                Ok(server) => return server,
                Err((b, log)) => {
                    println!("the RTSP port was taken, another one:\n{log}");
                    board = Some(b);
                }
            }
        }
        panic!("no free RTSP port in three tries");
    }

    fn try_start(
        board: SimBoard,
        source: &[i16],
        infile: &Path,
        keys: &[(&str, &str)],
    ) -> Result<Rtpmic, (SimBoard, String)> {
        let push = UdpRecorder::bind();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let mut cmd = board.rtpmic(infile);
        cmd.arg("run")
            .env("RTPMIC_DEVICE", "simfile")
            .env("RTPMIC_DEST", push.addr().to_string())
            .env("RTPMIC_RTSP_LISTEN", addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in keys {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_thread = {
            let (err, log) = (child.stderr.take().unwrap(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            })
        };
        let mut server = Rtpmic {
            child,
            log,
            log_thread: Some(log_thread),
            addr,
            push: Some(push),
            source: source.to_vec(),
            board,
        };
        // Ours once it says it serves, and then the port accepts.
        let serving = format!("RTSP: serving rtsp://{addr}/mic");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                if let Some(t) = server.log_thread.take() {
                    t.join().unwrap();
                }
                let log = server.log();
                if log.contains("RTPMIC_RTSP_LISTEN: bind") {
                    let board = std::mem::replace(&mut server.board, SimBoard::shared());
                    return Err((board, log));
                }
                panic!("rtpmic exited ({status}) before serving RTSP:\n{log}");
            }
            if server.log().contains(&serving) && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "RTSP port never accepted:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            server.push().wait_for(1, Duration::from_secs(20)),
            "the push receiver got nothing:\n{}",
            server.log()
        );
        Ok(server)
    }

    fn push(&self) -> &UdpRecorder {
        self.push.as_ref().unwrap()
    }

    fn url(&self) -> String {
        format!("rtsp://{}/mic", self.addr)
    }

    fn url_with(&self, user: &str, password: &str) -> String {
        format!("rtsp://{user}:{password}@{}/mic", self.addr)
    }

    fn dir(&self) -> &Path {
        self.board.dir.path()
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (at most `limit`) until `n` log lines satisfy `want`; returns them.
    fn wait_lines(&self, n: usize, limit: Duration, want: impl Fn(&str) -> bool) -> Vec<String> {
        let mut found = Vec::new();
        wait_until(limit, || {
            found = self.lines().into_iter().filter(|l| want(l)).collect();
            found.len() >= n
        });
        found
    }

    /// The end-of-session line of `client`'s session, waiting for it (at most `limit`).
    fn done_line(&self, client: &Client, limit: Duration) -> Option<String> {
        let needle = format!("done: session {} (", client.session_short());
        self.wait_lines(1, limit, |l| l.contains(&needle)).into_iter().next()
    }

    /// SIGTERM, the exit, the whole log, and what the push receiver got.
    fn stop(mut self) -> Stopped {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_for(&mut self.child, Duration::from_secs(15)).expect("rtpmic exits on SIGTERM");
        if let Some(t) = self.log_thread.take() {
            t.join().unwrap();
        }
        let push = self.push.take().unwrap().finish(Duration::from_millis(300));
        Stopped {
            status,
            log: self.log(),
            push,
        }
    }
}

impl Drop for Rtpmic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `done:` line's reason, packets sent and packets dropped.
fn done_fields(line: &str) -> (String, u64, u64) {
    let why = line
        .split_once(" (")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(w, _)| w.to_string())
        .unwrap_or_default();
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[1].trim_end_matches(',') == word)
            .and_then(|w| w[0].parse().ok())
            .unwrap_or_else(|| panic!("no '{word}' count in {line}"))
    };
    (why, number_before("packets"), number_before("dropped"))
}

/// A real player (ffmpeg or gst-launch) writing what it decodes to a file; killed on drop.
struct Player {
    what: String,
    child: Child,
    out: PathBuf,
}

impl Player {
    /// Waits (at most `limit`) for the player to exit; its status and stderr.
    fn finish(mut self, limit: Duration) -> (Option<ExitStatus>, String) {
        let status = wait_for(&mut self.child, limit);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }

    /// Waits for a successful exit, then checks what it decoded.
    fn assert_decodes(self, source: &[i16], seconds: f64) {
        let (what, out) = (self.what.clone(), self.out.clone());
        let (status, err) = self.finish(Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "{what}: exit {status:?}, stderr:\n{err}"
        );
        assert_decoded(source, &read_s16(&out), &what, seconds);
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ffmpeg pulling `url` over `transport` (`tcp`, `udp`): `seconds` decoded to raw s16le mono
/// 48 kHz in `out`.
fn ffmpeg_pull(url: &str, transport: &str, seconds: u32, out: &Path) -> Player {
    let child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
        ])
        .args([
            "-t",
            &seconds.to_string(),
            "-ac",
            "1",
            "-ar",
            "48000",
            "-f",
            "s16le",
            "-y",
        ])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg (Debian package ffmpeg) must be installed");
    Player {
        what: format!("ffmpeg {transport}"),
        child,
        out: out.to_path_buf(),
    }
}

/// GStreamer `rtspsrc` pulling `url` with `protocols` (`tcp`, `udp`, `udp-mcast`): `seconds`
/// of Opus decoded (by `opusdec`) to raw s16le mono 48 kHz in `out`.
fn gst_pull(url: &str, protocols: &str, seconds: u32, out: &Path, extra: &[&str]) -> Player {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(["-q", "rtspsrc"])
        .arg(format!("location={url}"))
        .arg(format!("protocols={protocols}"))
        .arg("latency=300")
        .args(extra)
        .args(["!", "rtpopusdepay", "!", "opusdec", "!", "identity"])
        .arg(format!("eos-after={}", seconds * 50))
        .args(["!", "audioconvert", "!", "audioresample", "!"])
        .arg("audio/x-raw,format=S16LE,rate=48000,channels=1")
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0 (Debian packages gstreamer1.0-tools, -plugins-good) must be installed");
    Player {
        what: format!("gst rtspsrc protocols={protocols}"),
        child,
        out: out.to_path_buf(),
    }
}

fn read_s16(path: &Path) -> Vec<i16> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A player's output is the two-tone: at least `seconds` long, SNR ≥ 20 dB at the best
/// alignment (the signal repeats every 1200 samples, so a lag of one period finds it
/// wherever the player joined), and the level within 1.5 dB of the source.
fn assert_decoded(source: &[i16], decoded: &[i16], what: &str, seconds: f64) {
    assert!(
        decoded.len() as f64 >= seconds * RATE as f64 * 0.95,
        "{what}: decoded only {} samples",
        decoded.len()
    );
    let skip = RATE / 5;
    let snr = aligned_snr(source, decoded, skip, 1200);
    let (src, dec) = (rms_dbfs(&source[..RATE * 10], 0), rms_dbfs(decoded, skip));
    println!("{what}: SNR {snr:.1} dB, level {dec:.2} dBFS (source {src:.2})");
    assert!(snr >= 20.0, "{what}: SNR {snr:.1} dB");
    assert!(
        (src - dec).abs() < 1.5,
        "{what}: level {dec:.2} dBFS, source {src:.2} dBFS"
    );
}

/// A client's stream is whole: no gap, it starts at the packet PLAY announced (or a few
/// after: the RTSP thread, not a real-time one, reads the stream's position and then queues
/// the peer; the stream may make packets in between), and every packet is one the push
/// receiver got too (same SSRC, sequence number, timestamp and payload).
fn assert_whole(c: &Played, pkts: &[Packet], push: &[Packet], what: &str) {
    assert_no_gap(pkts, what);
    let announced = c.rtp_info_seq.expect("RTP-Info seq in the PLAY answer");
    let late = pkts[0].seq.wrapping_sub(announced);
    if late > 0 {
        println!("{what}: first packet {late} after the one PLAY announced");
    }
    assert!(
        late <= 25,
        "{what}: first packet {} but PLAY announced {announced}",
        pkts[0].seq
    );
    if let Some(ssrc) = c.ssrc {
        assert_eq!(pkts[0].ssrc, ssrc, "{what}: the SSRC SETUP announced");
    }
    assert_eq!(pkts[0].ssrc, push[0].ssrc, "{what}: the push stream's SSRC");
    let start = push
        .iter()
        .position(|p| p.seq == pkts[0].seq)
        .unwrap_or_else(|| panic!("{what}: seq {} not in the push stream", pkts[0].seq));
    for (i, p) in pkts.iter().enumerate() {
        let q = push
            .get(start + i)
            .unwrap_or_else(|| panic!("{what}: packet {i} beyond the push stream"));
        assert!(
            p.seq == q.seq && p.ts == q.ts && p.payload == q.payload,
            "{what}: packet {i} differs from the push stream's"
        );
    }
}

/// What PLAY and SETUP announced to a client.
#[derive(Clone, Copy, Debug)]
struct Played {
    rtp_info_seq: Option<u16>,
    ssrc: Option<u32>,
}

impl From<&Client> for Played {
    fn from(c: &Client) -> Played {
        Played {
            rtp_info_seq: c.rtp_info_seq,
            ssrc: c.ssrc,
        }
    }
}

/// TEARDOWN (answered 200), then what arrived until the stream went quiet.
fn teardown(mut c: Client, what: &str) -> (Client, Vec<Packet>) {
    let r = c.teardown().unwrap_or_else(|e| panic!("{what}: TEARDOWN: {e}"));
    assert_eq!(r.status, 200, "{what}: TEARDOWN answered {}", r.status);
    c.settle(Duration::from_millis(200));
    let pkts = c.packets();
    (c, pkts)
}

/// The end-of-session line of `c` says `why` and that nothing was dropped for it; the
/// packets it counts are those the client got (give or take the last one or two: the line
/// is written as the peer leaves the session).
fn assert_done(server: &Rtpmic, c: &Client, got: usize, why: &str, what: &str) {
    let line = server
        .done_line(c, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{what}: no end-of-session line:\n{}", server.log()));
    let (reason, sent, dropped) = done_fields(&line);
    if sent as usize != got {
        println!("{what}: the server counts {sent} packets, the client got {got}");
    }
    assert_eq!(reason, why, "{what}: {line}");
    assert_eq!(dropped, 0, "{what}: {line}");
    assert!(
        (sent as usize) <= got && got - sent as usize <= 2,
        "{what}: the server counts {sent} packets, the client got {got}: {line}"
    );
}

/// The push receiver got one stream without a gap.
fn assert_push_whole(stopped: &Stopped, min_packets: usize) {
    assert!(
        stopped.status.success(),
        "rtpmic exit {}:\n{}",
        stopped.status,
        stopped.log
    );
    assert!(
        stopped.push.len() >= min_packets,
        "push receiver got {} packets",
        stopped.push.len()
    );
    assert_no_gap(&stopped.push, "push receiver");
}

/// Neither a panic nor the password in the log.
fn assert_log_clean(log: &str) {
    assert!(!log.contains("panic"), "{log}");
    assert!(!log.contains(PASSWORD), "the password appears in the log:\n{log}");
}

/// A multicast group of the administratively scoped range and a free port pair for it.
fn multicast_group() -> String {
    let (a, b) = (rand::random_range(1..255u8), rand::random_range(1..255u8));
    format!("239.255.{a}.{b}:{}", free_even_port())
}

/// ffmpeg over TCP and UDP, GStreamer over TCP, UDP and UDP multicast (on loopback: the
/// group is sent through `lo` with loopback on, rtspsrc joins it on `lo`) each decode the
/// two-tone; our own multicast member counts every packet of the group.
#[test]
fn ffmpeg_and_gstreamer_pull_over_tcp_udp_and_multicast() {
    let group = multicast_group();
    let mut keys = OPUS.to_vec();
    keys.extend([
        ("RTPMIC_RTSP_MULTICAST", group.as_str()),
        ("RTPMIC_MULTICAST_IF", "lo"),
        ("RTPMIC_MULTICAST_LOOP", "on"),
    ]);
    let server = Rtpmic::start(&keys);
    let url = server.url();
    let member = Client::play_session(server.addr, "/mic", Transport::Multicast);
    let players = [
        ffmpeg_pull(&url, "tcp", 3, &server.dir().join("ff-tcp.raw")),
        ffmpeg_pull(&url, "udp", 3, &server.dir().join("ff-udp.raw")),
        gst_pull(&url, "tcp", 3, &server.dir().join("gst-tcp.raw"), &[]),
        gst_pull(&url, "udp", 3, &server.dir().join("gst-udp.raw"), &[]),
        gst_pull(
            &url,
            "udp-mcast",
            3,
            &server.dir().join("gst-mcast.raw"),
            &["multicast-iface=lo"],
        ),
    ];
    for p in players {
        p.assert_decodes(&server.source, 3.0);
    }
    let (member, pkts) = teardown(member, "multicast member");
    assert!(pkts.len() >= 150, "multicast member got {} packets", pkts.len());
    let lines = server.lines();
    let playing = |how: &str| {
        lines
            .iter()
            .filter(|l| l.contains(" playing: session ") && l.contains(how))
            .count()
    };
    assert_eq!(playing("TCP interleaved"), 2, "{}", server.log());
    assert_eq!(playing("UDP to 127.0.0.1"), 2, "{}", server.log());
    assert_eq!(playing(&format!("multicast {group}")), 2, "{}", server.log());
    let done: Vec<&String> = lines.iter().filter(|l| l.contains(" done: session ")).collect();
    assert_eq!(done.len(), 6, "{}", server.log());
    for l in done {
        let (why, _, dropped) = done_fields(l);
        assert_eq!((why.as_str(), dropped), ("Teardown", 0), "{l}");
    }
    let stopped = server.stop();
    assert_push_whole(&stopped, 150);
    assert_whole(&(&member).into(), &pkts, &stopped.push, "multicast member");
    assert_log_clean(&stopped.log);
}

/// A visit of the churn: a session that plays a few packets and leaves.
struct Visit {
    transport: Transport,
    result: Result<(Played, Vec<Packet>), String>,
}

/// A client that sets up, plays until it has 5 packets, and leaves: by TEARDOWN, or by
/// closing its connection.
fn visit(addr: SocketAddr, transport: Transport, by_teardown: bool) -> Visit {
    let result = (|| {
        let mut c = Client::connect(addr, "/mic").map_err(|e| format!("connect: {e}"))?;
        c.start(transport)?;
        if !c.wait_for_packets(5, Duration::from_secs(10)) {
            return Err(format!("only {} packets in 10 s", c.count()));
        }
        if by_teardown {
            let r = c.teardown().map_err(|e| format!("TEARDOWN: {e}"))?;
            if r.status != 200 {
                return Err(format!("TEARDOWN answered {}", r.status));
            }
        }
        let played = Played::from(&c);
        Ok((played, c.close()))
    })();
    Visit { transport, result }
}

/// Clients joining and leaving at `per_second` for `span`, alternately over UDP and TCP,
/// alternately by TEARDOWN and by closing the connection.
fn churn(addr: SocketAddr, span: Duration, per_second: u32) -> Vec<Visit> {
    let start = Instant::now();
    let mut visits = Vec::new();
    let mut k = 0u32;
    while start.elapsed() < span {
        let transport = if k.is_multiple_of(2) {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let by_teardown = (k / 2).is_multiple_of(2);
        visits.push(std::thread::spawn(move || visit(addr, transport, by_teardown)));
        k += 1;
        let next = start + Duration::from_secs(1) * k / per_second;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    visits.into_iter().map(|h| h.join().unwrap()).collect()
}

/// 16 real players (6 ffmpeg over TCP, 6 over UDP, 2 GStreamer over TCP, 2 over UDP) and 16
/// of our clients (8 TCP, 8 UDP) at once, while clients join and leave at 10 per second for
/// 20 s: every player decodes the two-tone, each of our clients (the steady ones and every
/// visitor) gets every packet from the one PLAY announced on, the push receiver's stream has
/// no gap, and the server drops nothing for anyone.
#[test]
fn thirty_two_clients_at_once_and_churn_get_every_packet() {
    let mut keys = OPUS.to_vec();
    keys.push(("RTPMIC_RTSP_MAX_CLIENTS", "64"));
    let server = Rtpmic::start(&keys);
    let (addr, url) = (server.addr, server.url());
    let steady: Vec<Client> = (0..16u32)
        .map(|i| {
            let t = if i.is_multiple_of(2) {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            Client::play_session(addr, "/mic", t)
        })
        .collect();
    let mut players = Vec::new();
    for i in 0..6 {
        players.push(ffmpeg_pull(
            &url,
            "tcp",
            4,
            &server.dir().join(format!("ff-tcp-{i}.raw")),
        ));
        players.push(ffmpeg_pull(
            &url,
            "udp",
            4,
            &server.dir().join(format!("ff-udp-{i}.raw")),
        ));
    }
    for i in 0..2 {
        players.push(gst_pull(
            &url,
            "tcp",
            4,
            &server.dir().join(format!("gst-tcp-{i}.raw")),
            &[],
        ));
        players.push(gst_pull(
            &url,
            "udp",
            4,
            &server.dir().join(format!("gst-udp-{i}.raw")),
            &[],
        ));
    }
    let churning = std::thread::spawn(move || churn(addr, Duration::from_secs(20), 10));
    for p in players {
        p.assert_decodes(&server.source, 4.0);
    }
    let visits = churning.join().unwrap();
    let steady: Vec<(Client, Vec<Packet>)> = steady
        .into_iter()
        .enumerate()
        .map(|(i, c)| teardown(c, &format!("steady client {i}")))
        .collect();
    for (i, (c, pkts)) in steady.iter().enumerate() {
        assert_done(&server, c, pkts.len(), "Teardown", &format!("steady client {i}"));
    }
    let log_lines = server.lines();
    let stopped = server.stop();
    assert_push_whole(&stopped, 900);
    assert_log_clean(&stopped.log);
    for (i, (c, pkts)) in steady.iter().enumerate() {
        let what = format!("steady client {i} ({:?})", c.transport.unwrap());
        assert!(pkts.len() >= 900, "{what}: {} packets over the 20 s", pkts.len());
        assert_whole(&c.into(), pkts, &stopped.push, &what);
    }
    assert!(visits.len() >= 190, "{} visits in 20 s", visits.len());
    let mut by = [0usize; 2];
    for (i, v) in visits.iter().enumerate() {
        let what = format!("visitor {i} ({:?})", v.transport);
        let (c, pkts) = v.result.as_ref().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_whole(c, pkts, &stopped.push, &what);
        by[usize::from(v.transport == Transport::Tcp)] += 1;
    }
    println!("{} visits ({} UDP, {} TCP)", visits.len(), by[0], by[1]);
    // Every session that played ended, nothing dropped for anyone.
    let sessions = 16 + 16 + visits.len();
    let playing = log_lines.iter().filter(|l| l.contains(" playing: session ")).count();
    let done: Vec<&String> = log_lines.iter().filter(|l| l.contains(" done: session ")).collect();
    assert_eq!(playing, sessions, "{}", stopped.log);
    assert_eq!(done.len(), sessions, "{}", stopped.log);
    for l in done {
        let (why, _, dropped) = done_fields(l);
        assert!(why == "Teardown" || why == "ConnectionClosed", "{l}");
        assert_eq!(dropped, 0, "{l}");
    }
    assert!(!stopped.log.contains("peer ring was full"), "{}", stopped.log);
}

/// A TCP client that stops reading (our client, with a small receive buffer, and an ffmpeg
/// frozen by SIGSTOP) is disconnected `RTPMIC_RTSP_TCP_STALL_MS` after its queue filled, with
/// a log line naming it, within seconds (L16, 96 kB/s, fills the connection's small send
/// buffer and its queue in about a second); the other clients and the push receiver see no
/// gap.
#[test]
fn a_tcp_client_that_stops_reading_is_dropped_and_nobody_else_notices() {
    stalled_clients_are_dropped(Duration::from_secs(10));
}

/// Stalls two TCP clients; both must be dropped within `limit`.
fn stalled_clients_are_dropped(limit: Duration) {
    let server = Rtpmic::start(&[("RTPMIC_CODEC", "l16"), ("RTPMIC_RTSP_TCP_STALL_MS", "300")]);
    let addr = server.addr;
    let good_tcp = Client::play_session(addr, "/mic", Transport::Tcp);
    let good_udp = Client::play_session(addr, "/mic", Transport::Udp);
    let mut staller = Client::connect_with(addr, "/mic", Some(4096)).unwrap();
    staller.start(Transport::Tcp).unwrap();
    let mut ffmpeg = Player {
        what: "ffmpeg tcp".into(),
        child: Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(server.url())
            .args(["-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        out: PathBuf::new(),
    };
    let playing = server.wait_lines(4, Duration::from_secs(20), |l| l.contains(" playing: session "));
    assert_eq!(playing.len(), 4, "{}", server.log());
    assert!(staller.wait_for_packets(10, Duration::from_secs(10)));
    let ffmpeg_client = playing
        .iter()
        .find_map(|l| {
            let client = l.split_whitespace().skip_while(|w| *w != "client").nth(1)?;
            let mine = [good_tcp.local_addr(), good_udp.local_addr(), staller.local_addr()];
            (!mine.iter().any(|a| a.to_string() == client)).then(|| client.to_string())
        })
        .expect("ffmpeg's session");
    staller.pause_reading();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(ffmpeg.child.id() as i32, libc::SIGSTOP) };
    let stalled_at = Instant::now();
    let stalls = server.wait_lines(2, limit, |l| {
        l.contains("not reading for 300 ms") && l.contains("disconnected")
    });
    let took = stalled_at.elapsed();
    unsafe { libc::kill(ffmpeg.child.id() as i32, libc::SIGCONT) };
    assert_eq!(stalls.len(), 2, "{}", server.log());
    println!("both stalled clients dropped {took:?} after they stopped reading:\n{stalls:#?}");
    for who in [staller.local_addr().to_string(), ffmpeg_client] {
        assert!(
            stalls.iter().any(|l| l.contains(&format!("RTSP client {who}:"))),
            "no stall line for {who}: {stalls:#?}"
        );
    }
    let _ = ffmpeg.child.kill();
    // The others go on for a while after the drops.
    let after = good_tcp.count() + 50;
    assert!(good_tcp.wait_for_packets(after, Duration::from_secs(10)));
    let (good_tcp, tcp_pkts) = teardown(good_tcp, "good TCP client");
    let (good_udp, udp_pkts) = teardown(good_udp, "good UDP client");
    assert_done(&server, &good_tcp, tcp_pkts.len(), "Teardown", "good TCP client");
    assert_done(&server, &good_udp, udp_pkts.len(), "Teardown", "good UDP client");
    let line = server
        .done_line(&staller, Duration::from_secs(5))
        .expect("staller's end line");
    let (why, _, dropped) = done_fields(&line);
    assert_eq!(why, "ConnectionClosed", "{line}");
    assert!(dropped > 0, "{line}");
    // What was on its way is still there, then the end of the connection.
    staller.resume_reading();
    assert!(
        wait_until(Duration::from_secs(10), || staller.closed_by_server()),
        "the stalled client's connection was not closed"
    );
    let stopped = server.stop();
    assert_push_whole(&stopped, 100);
    assert_log_clean(&stopped.log);
    assert!(stopped.log.contains("stalled=2"), "{}", stopped.log);
    // The stalled clients' losses are theirs, not a network fault.
    assert!(stopped_counter(&stopped.log, "tcp_client_drops") > 0, "{}", stopped.log);
    assert_eq!(stopped_counter(&stopped.log, "send_would_block"), 0, "{}", stopped.log);
    assert_whole(&(&good_tcp).into(), &tcp_pkts, &stopped.push, "good TCP client");
    assert_whole(&(&good_udp).into(), &udp_pkts, &stopped.push, "good UDP client");
    let staller_pkts = staller.packets();
    assert_no_gap(&staller_pkts, "stalled client before it stalled");
}

/// `rtpmic check-config` with `keys` (RTPMIC_DEST and the board's environment set), through
/// the environment and through an env file: the password is never shown.
fn assert_check_config_hides_the_password(server: &Rtpmic, keys: &[(&str, &str)]) {
    let infile = server.dir().join("in.raw");
    let mut all = vec![
        ("RTPMIC_DEST", "127.0.0.1:5004"),
        ("RTPMIC_RTSP_LISTEN", "127.0.0.1:8554"),
    ];
    all.extend_from_slice(keys);
    let by_env = server
        .board
        .rtpmic(&infile)
        .arg("check-config")
        .envs(all.iter().copied())
        .output()
        .unwrap();
    let env_file = server.dir().join("rtpmic.env");
    let text: String = all.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    let by_file = server
        .board
        .rtpmic(&infile)
        .args(["check-config", "--env-file"])
        .arg(&env_file)
        .output()
        .unwrap();
    for out in [by_env, by_file] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("RTPMIC_RTSP_PASSWORD=(set)"), "{text}");
        assert!(!text.contains(PASSWORD), "check-config shows the password:\n{text}");
    }
}

/// The challenges of a 401.
fn challenges(addr: SocketAddr) -> Vec<String> {
    let mut c = Client::connect(addr, "/mic").unwrap();
    let r = c.describe().unwrap();
    assert_eq!(r.status, 401, "DESCRIBE without credentials:\n{}", r.head);
    r.headers("WWW-Authenticate")
}

/// A player that must fail with 401.
fn assert_refused(p: Player, says: &str) {
    let what = p.what.clone();
    let (status, err) = p.finish(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| !s.success()),
        "{what} with a wrong password: exit {status:?}"
    );
    assert!(err.contains(says), "{what}: {err}");
}

/// Digest (the default): ffmpeg and GStreamer with the right password in the URL play, with a
/// wrong one they fail on 401; Basic is not taken; the password is in no log line and not
/// in check-config's output.
#[test]
fn digest_credentials_in_the_url_with_ffmpeg_and_gstreamer() {
    let mut keys = OPUS.to_vec();
    keys.extend([("RTPMIC_RTSP_USER", USER), ("RTPMIC_RTSP_PASSWORD", PASSWORD)]);
    let server = Rtpmic::start(&keys);
    let ch = challenges(server.addr);
    assert!(
        ch.iter().any(|c| c.starts_with("Digest") && c.contains("SHA-256"))
            && ch.iter().any(|c| c.starts_with("Digest") && c.contains("MD5")),
        "{ch:#?}"
    );
    assert!(!ch.iter().any(|c| c.starts_with("Basic")), "{ch:#?}");
    let good = server.url_with(USER, PASSWORD);
    let players = [
        ffmpeg_pull(&good, "tcp", 3, &server.dir().join("ff.raw")),
        gst_pull(&good, "udp", 3, &server.dir().join("gst.raw"), &[]),
    ];
    for p in players {
        p.assert_decodes(&server.source, 3.0);
    }
    // Basic with the right password is refused when only Digest is allowed.
    let mut basic = Client::connect(server.addr, "/mic").unwrap();
    basic.basic_auth(USER, PASSWORD);
    assert_eq!(basic.describe().unwrap().status, 401);
    drop(basic);
    let bad = server.url_with(USER, "wrong-password");
    assert_refused(ffmpeg_pull(&bad, "tcp", 3, &server.dir().join("x.raw")), "401");
    assert_refused(
        gst_pull(&bad, "tcp", 3, &server.dir().join("y.raw"), &[]),
        "Unauthorized",
    );
    assert_check_config_hides_the_password(&server, &keys);
    let stopped = server.stop();
    assert_push_whole(&stopped, 100);
    assert_log_clean(&stopped.log);
    let playing: Vec<&str> = stopped
        .log
        .lines()
        .filter(|l| l.contains(" playing: session "))
        .collect();
    assert_eq!(playing.len(), 2, "{}", stopped.log);
    assert!(playing.iter().all(|l| l.ends_with("user intercom")), "{playing:#?}");
    assert!(stopped.log.contains("Digest authentication"), "{}", stopped.log);
    let failures = stopped
        .log
        .lines()
        .rev()
        .find_map(|l| l.split("auth_failures=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok())
        .expect("auth_failures in the rtsp line");
    assert!(failures >= 2, "{}", stopped.log);
}

/// `RTPMIC_RTSP_AUTH=basic`: the 401 offers Basic too; our client with Basic credentials plays,
/// with a wrong password gets 401; ffmpeg and GStreamer (which pick Digest) play too; the
/// password is in no log line and not in check-config's output.
#[test]
fn basic_auth_when_configured() {
    let mut keys = OPUS.to_vec();
    keys.extend([
        ("RTPMIC_RTSP_USER", USER),
        ("RTPMIC_RTSP_PASSWORD", PASSWORD),
        ("RTPMIC_RTSP_AUTH", "basic"),
    ]);
    let server = Rtpmic::start(&keys);
    let ch = challenges(server.addr);
    assert!(ch.iter().any(|c| c.starts_with("Basic realm=")), "{ch:#?}");
    assert!(ch.iter().any(|c| c.starts_with("Digest")), "{ch:#?}");
    let mut c = Client::connect(server.addr, "/mic").unwrap();
    c.basic_auth(USER, PASSWORD);
    c.start(Transport::Tcp).unwrap();
    assert!(
        c.wait_for_packets(50, Duration::from_secs(10)),
        "Basic client got no stream"
    );
    let (c, pkts) = teardown(c, "Basic client");
    assert_done(&server, &c, pkts.len(), "Teardown", "Basic client");
    let good = server.url_with(USER, PASSWORD);
    let players = [
        ffmpeg_pull(&good, "udp", 3, &server.dir().join("ff.raw")),
        gst_pull(&good, "tcp", 3, &server.dir().join("gst.raw"), &[]),
    ];
    for p in players {
        p.assert_decodes(&server.source, 3.0);
    }
    let mut wrong = Client::connect(server.addr, "/mic").unwrap();
    wrong.basic_auth(USER, "wrong-password");
    let r = wrong.describe().unwrap();
    assert_eq!(r.status, 401, "{}", r.head);
    drop(wrong);
    let bad = server.url_with(USER, "wrong-password");
    assert_refused(ffmpeg_pull(&bad, "tcp", 3, &server.dir().join("x.raw")), "401");
    assert_check_config_hides_the_password(&server, &keys);
    let stopped = server.stop();
    assert_push_whole(&stopped, 100);
    assert_log_clean(&stopped.log);
    assert!(
        stopped.log.contains("Digest or Basic authentication"),
        "{}",
        stopped.log
    );
    assert_whole(&(&c).into(), &pkts, &stopped.push, "Basic client");
    let playing = stopped.log.lines().filter(|l| l.contains(" playing: session ")).count();
    assert_eq!(playing, 3, "{}", stopped.log);
}

/// `RTPMIC_RTSP_SESSION_TIMEOUT_S=10`: clients that play and then say nothing (over UDP, over
/// TCP) are reaped at the timeout, not before, and their packets stop; one that sends
/// GET_PARAMETER every 3 s, and ones that send RTCP receiver reports every 2 s (over UDP to
/// the server's RTCP port, on their TCP RTCP channel, to the multicast group) live on past it.
#[test]
fn silent_sessions_end_at_the_timeout_and_keepalives_keep_them() {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let group = multicast_group();
    let server = Rtpmic::start(&[
        ("RTPMIC_CODEC", "pcmu"),
        ("RTPMIC_RTSP_SESSION_TIMEOUT_S", "10"),
        ("RTPMIC_RTSP_MULTICAST", group.as_str()),
        ("RTPMIC_MULTICAST_IF", "lo"),
        ("RTPMIC_MULTICAST_LOOP", "on"),
    ]);
    let addr = server.addr;
    let silent_udp = Client::play_session(addr, "/mic", Transport::Udp);
    let silent_tcp = Client::play_session(addr, "/mic", Transport::Tcp);
    let mut by_request = Client::play_session(addr, "/mic", Transport::Udp);
    let mut rr_udp = Client::play_session(addr, "/mic", Transport::Udp);
    let mut rr_tcp = Client::play_session(addr, "/mic", Transport::Tcp);
    let mut rr_mcast = Client::play_session(addr, "/mic", Transport::Multicast);
    let start = Instant::now();
    let mut next_rr = start;
    let mut next_request = start + Duration::from_secs(3);
    // Keepalives until 5 s past the timeout; the silent ones end meanwhile.
    while start.elapsed() < TIMEOUT + Duration::from_secs(5) {
        if Instant::now() >= next_rr {
            rr_udp.send_receiver_report().unwrap();
            rr_tcp.send_receiver_report().unwrap();
            rr_mcast.send_receiver_report().unwrap();
            next_rr += Duration::from_secs(2);
        }
        if Instant::now() >= next_request {
            let r = by_request.get_parameter().unwrap();
            assert_eq!(r.status, 200, "GET_PARAMETER: {}", r.head);
            assert!(r.header("Session").is_some_and(|s| s.contains(";timeout=10")));
            next_request += Duration::from_secs(3);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (c, what) in [(&silent_udp, "silent UDP client"), (&silent_tcp, "silent TCP client")] {
        let line = server
            .done_line(c, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: never reaped:\n{}", server.log()));
        assert_eq!(done_fields(&line).0, "Timeout", "{what}: {line}");
        // The last packet came no earlier than the timeout after PLAY.
        let pkts = c.packets();
        let last = pkts.last().unwrap().at.duration_since(c.played_at.unwrap());
        println!("{what}: last packet {last:?} after PLAY");
        // (less a frame or so: the last packet was made just before the session ended)
        assert!(
            last >= TIMEOUT - Duration::from_millis(250),
            "{what}: reaped {last:?} after PLAY"
        );
        assert_no_gap(&pkts, what);
    }
    // Reaped: no more packets (once those on their way are in), and the TCP one's
    // connection is closed.
    silent_udp.settle(Duration::from_millis(200));
    silent_tcp.settle(Duration::from_millis(200));
    let counts = (silent_udp.count(), silent_tcp.count());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        (silent_udp.count(), silent_tcp.count()),
        counts,
        "packets after the timeout"
    );
    assert!(
        silent_tcp.closed_by_server(),
        "the silent TCP client's connection stays open"
    );
    for (c, what) in [
        (&by_request, "GET_PARAMETER client"),
        (&rr_udp, "RTCP over UDP client"),
        (&rr_tcp, "RTCP over TCP client"),
        (&rr_mcast, "RTCP to the group client"),
    ] {
        let n = c.count();
        assert!(
            c.wait_for_packets(n + 10, Duration::from_secs(5)),
            "{what}: no packets {:?} after PLAY:\n{}",
            start.elapsed(),
            server.log()
        );
    }
    let mut ended = Vec::new();
    for (c, what) in [
        (by_request, "GET_PARAMETER client"),
        (rr_udp, "RTCP over UDP client"),
        (rr_tcp, "RTCP over TCP client"),
        (rr_mcast, "RTCP to the group client"),
    ] {
        let (c, pkts) = teardown(c, what);
        assert_done(&server, &c, pkts.len(), "Teardown", what);
        ended.push((c, pkts, what));
    }
    // The RTCP keepalives were taken as receiver reports.
    for (c, _, what) in &ended[1..] {
        let line = server.done_line(c, Duration::from_secs(1)).unwrap();
        assert!(line.contains("last report"), "{what}: {line}");
    }
    let stopped = server.stop();
    assert_push_whole(&stopped, 500);
    for (c, pkts, what) in &ended {
        assert!(pkts.len() >= 700, "{what}: {} packets", pkts.len());
        assert_whole(&c.into(), pkts, &stopped.push, what);
    }
}

/// What a hostile connection did and saw.
struct Hostile {
    kind: &'static str,
    /// What the server sent back (the first bytes).
    answer: Vec<u8>,
    /// The server closed the connection (within the test's bound).
    closed: bool,
}

/// Opens a connection and misbehaves as `kind` says, then reads until the server closes it or
/// 20 s pass.
fn hostile(addr: SocketAddr, kind: &'static str, seed: u64, connected: &AtomicUsize) -> Hostile {
    let attempt = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
    connected.fetch_add(1, Relaxed);
    let Ok(mut s) = attempt else {
        return Hostile {
            kind,
            answer: Vec::new(),
            closed: true,
        };
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let junk = |n: usize| -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let host = addr.to_string();
    let _ = match kind {
        // Random bytes (that do not begin a frame).
        "random" => {
            let mut j = junk(4096);
            j[0] = b'X';
            s.write_all(&j)
        }
        // An interleaved frame header announcing 64 KiB, then junk, then nothing.
        "frame" => {
            let mut j = vec![b'$', 1, 0xff, 0xff];
            j.extend(junk(2000));
            s.write_all(&j)
        }
        // A request whose head is 100 KB.
        "huge" => {
            let mut r = format!("OPTIONS rtsp://{host}/mic RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ").into_bytes();
            r.extend(std::iter::repeat_n(b'a', 100 * 1024));
            r.extend_from_slice(b"\r\n\r\n");
            s.write_all(&r)
        }
        // Half a request, then nothing (slowloris).
        "half" => s.write_all(format!("DESCRIBE rtsp://{host}/mic RTSP/1.0\r\nCSeq: 1\r\nAcc").as_bytes()),
        // A request a byte every 200 ms.
        "drip" => {
            let r = format!("DESCRIBE rtsp://{host}/mic RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n");
            for b in r.bytes() {
                if s.write_all(&[b]).is_err() || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        }
        // Not RTSP at all.
        "http" => s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Requests without reading the answers.
        "unread" => {
            let r = format!("DESCRIBE rtsp://{host}/mic RTSP/1.0\r\nCSeq: 1\r\n\r\n").repeat(2000);
            s.write_all(r.as_bytes())
        }
        // Connects and says nothing.
        _ => Ok(()),
    };
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                if answer.len() < 256 {
                    answer.extend_from_slice(&buf[..n.min(256)]);
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    Hostile { kind, answer, closed }
}

/// 50 hostile connections at once (random bytes, oversized frames, a 100 KB head, half
/// requests left open, requests dripped a byte at a time, HTTP, requests never read) and a
/// flood of 60 idle connections beyond the connection limit: every one is answered or closed
/// by the server in bounded time; a good client completes OPTIONS→PLAY meanwhile (retrying
/// while the slots are full), the clients that were playing get every packet, and the push
/// stream never pauses (no gap, no 200 ms without a packet).
#[test]
fn garbage_floods_and_slowloris_do_not_stop_the_stream_or_good_clients() {
    let server = Rtpmic::start(&[("RTPMIC_CODEC", "pcmu")]);
    let addr = server.addr;
    let playing_tcp = Client::play_session(addr, "/mic", Transport::Tcp);
    let playing_udp = Client::play_session(addr, "/mic", Transport::Udp);
    let kinds = ["random", "frame", "huge", "half", "drip", "http", "unread"];
    let connected = Arc::new(AtomicUsize::new(0));
    let attack_start = Instant::now();
    let mut attackers: Vec<JoinHandle<Hostile>> = (0..50)
        .map(|i| {
            let (kind, connected) = (kinds[i % kinds.len()], connected.clone());
            std::thread::spawn(move || hostile(addr, kind, i as u64 + 1, &connected))
        })
        .collect();
    attackers.extend((0..60).map(|i| {
        let connected = connected.clone();
        std::thread::spawn(move || hostile(addr, "idle", i, &connected))
    }));
    // A good client gets through while the attack goes on (once every attacker is connected,
    // and the slots are full).
    assert!(wait_until(Duration::from_secs(20), || connected.load(Relaxed) == 110));
    let mut tries = 0;
    let good = loop {
        tries += 1;
        let attempt = Client::connect(addr, "/mic")
            .map_err(|e| e.to_string())
            .and_then(|mut c| c.start(Transport::Tcp).map(|()| c));
        match attempt {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    attack_start.elapsed() < Duration::from_secs(30),
                    "no good session in 30 s ({tries} tries), last: {e}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    println!(
        "a good client played after {tries} tries, {:?} into the attack",
        attack_start.elapsed()
    );
    assert!(
        good.wait_for_packets(20, Duration::from_secs(10)),
        "the good client got no stream"
    );
    let results: Vec<Hostile> = attackers.into_iter().map(|h| h.join().unwrap()).collect();
    for h in &results {
        assert!(h.closed, "a '{}' connection was never closed by the server", h.kind);
        let text = String::from_utf8_lossy(&h.answer);
        match h.kind {
            // (or closed unanswered: beyond the connection slots)
            "huge" => assert!(text.is_empty() || text.starts_with("RTSP/1.0 431"), "huge head: {text}"),
            "http" => assert!(
                text.is_empty() || text.starts_with("RTSP/1.0 4") || text.starts_with("RTSP/1.0 5"),
                "HTTP: {text}"
            ),
            _ => assert!(text.is_empty() || text.starts_with("RTSP/1.0 "), "{}: {text}", h.kind),
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for h in &results {
        let text = String::from_utf8_lossy(&h.answer);
        let status = text.lines().next().unwrap_or("(closed, no answer)").to_string();
        *seen.entry((h.kind, status)).or_insert(0) += 1;
    }
    println!("hostile connections, by what they got: {seen:#?}");
    let attack_took = attack_start.elapsed();
    // After the attack, alone, each kind gets its answer.
    for (kind, status) in [("huge", "RTSP/1.0 431"), ("http", "RTSP/1.0 400")] {
        let h = hostile(addr, kind, 7, &AtomicUsize::new(0));
        let text = String::from_utf8_lossy(&h.answer);
        assert!(h.closed && text.starts_with(status), "{kind} alone: {text}");
    }
    // After the attack, a new client gets through at once.
    let fresh = Client::play_session(addr, "/mic", Transport::Udp);
    assert!(fresh.wait_for_packets(10, Duration::from_secs(10)));
    let (fresh, fresh_pkts) = teardown(fresh, "client after the attack");
    let (good, good_pkts) = teardown(good, "client during the attack");
    let (playing_tcp, tcp_pkts) = teardown(playing_tcp, "TCP client playing through the attack");
    let (playing_udp, udp_pkts) = teardown(playing_udp, "UDP client playing through the attack");
    let stopped = server.stop();
    assert_push_whole(&stopped, 100);
    assert_log_clean(&stopped.log);
    println!(
        "{}",
        stopped
            .log
            .lines()
            .rfind(|l| l.contains(" rtsp: clients="))
            .unwrap_or_default()
    );
    let worst = longest_interval(&stopped.push);
    println!("attack over in {attack_took:?}; longest push interval {worst:?}");
    assert!(
        worst < Duration::from_millis(200),
        "the push stream paused for {worst:?}"
    );
    for (c, pkts, what) in [
        (&fresh, &fresh_pkts, "client after the attack"),
        (&good, &good_pkts, "client during the attack"),
        (&playing_tcp, &tcp_pkts, "TCP client playing through the attack"),
        (&playing_udp, &udp_pkts, "UDP client playing through the attack"),
    ] {
        assert_whole(&c.into(), pkts, &stopped.push, what);
    }
    // Interleaved packets go out through the RTSP thread, which the attack keeps busy, and
    // are stamped when the test's reader thread gets them: a looser bound.
    let tcp_worst = longest_interval(&tcp_pkts);
    println!("longest interval of the TCP client playing through the attack: {tcp_worst:?}");
    assert!(
        tcp_worst < Duration::from_secs(1),
        "the TCP client's stream paused for {tcp_worst:?}"
    );
}
