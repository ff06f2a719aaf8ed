//! Shared test harness: the simulated board (a private jackd + board/sim/asound.conf), test
//! signals, an RTP receiver on a real socket, decoders and the aligned SNR measure.
#![allow(dead_code)]

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rtp_types::RtpPacket;

pub const RTPMIC: &str = env!("CARGO_BIN_EXE_rtpmic");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The simulated board: a jackd (dummy driver, real-time paced) that the sim PCMs read
/// through, and a temp dir for infiles.
///
/// `shared()` boards use one jackd per test binary (jackd allows only a few servers at once);
/// it is started by a keeper thread that lives as long as the process, with
/// PR_SET_PDEATHSIG = SIGTERM, so jackd ends cleanly with the test binary. `private()` boards
/// own their jackd (for tests that kill it) and stop it with SIGTERM on drop.
pub struct SimBoard {
    jackd: Option<Child>,
    pub server: String,
    pub dir: tempfile::TempDir,
}

static BOARD_COUNTER: AtomicU32 = AtomicU32::new(0);
static SHARED: OnceLock<String> = OnceLock::new();

fn spawn_jackd() -> (Child, String) {
    let server = format!(
        "rtpmic-test-{}-{}",
        std::process::id(),
        BOARD_COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    (spawn_jackd_named(&server), server)
}

/// Starts jackd as `server` and returns once it runs. JACK allows about eight servers per
/// machine; when another suite holds them, jackd exits at once ("Too many servers already
/// active") and is tried again, for up to 30 s.
fn spawn_jackd_named(server: &str) -> Child {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cmd = Command::new("jackd");
        cmd.args([
            "-n", server, "-d", "dummy", "-r", "48000", "-p", "240", "-C", "1", "-P", "1",
        ])
        .env("JACK_NO_AUDIO_RESERVATION", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .expect("jackd (Debian package jackd2) must be installed: run `make test`");
        loop {
            if jack_running(server) {
                return child;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() >= deadline {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let _ = child.wait();
                panic!("jackd {server} did not come up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            Instant::now() < deadline,
            "jackd {server} could not start for 30 s (too many JACK servers on this machine?)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether the JACK server `server` answers (`jack_wait -c` prints "running" or "not
/// running" and exits 0 either way).
fn jack_running(server: &str) -> bool {
    Command::new("jack_wait")
        .args(["-s", server, "-c"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "running")
}

impl SimBoard {
    /// The test binary's shared board.
    pub fn shared() -> SimBoard {
        let server = SHARED
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let (_child, server) = spawn_jackd();
                    tx.send(server).unwrap();
                    // Parent-death is per thread: this one must outlive every test.
                    loop {
                        std::thread::park();
                    }
                });
                rx.recv().expect("shared jackd")
            })
            .clone();
        SimBoard {
            jackd: None,
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A board with its own jackd, stopped (SIGTERM) on drop.
    pub fn private() -> SimBoard {
        let (child, server) = spawn_jackd();
        SimBoard {
            jackd: Some(child),
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Stops this private board's jackd (SIGTERM): its ALSA devices go silent, as a pulled
    /// USB microphone does.
    pub fn unplug(&mut self) {
        if let Some(mut c) = self.jackd.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Freezes this private board's jackd (SIGSTOP): the device stays open but gives nothing,
    /// and opening it again blocks, as with a wedged driver.
    pub fn freeze(&self) {
        let c = self.jackd.as_ref().expect("a private, running board");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGSTOP) };
    }

    /// Lets a frozen jackd run again (SIGCONT).
    pub fn thaw(&self) {
        if let Some(c) = self.jackd.as_ref() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
    }

    /// Starts this private board's jackd again under the same server name.
    pub fn replug(&mut self) {
        assert!(self.jackd.is_none(), "unplug first");
        self.jackd = Some(spawn_jackd_named(&self.server));
    }

    /// `rtpmic` with the environment of this board: ALSA config, jack server, infile; no
    /// RTPMIC_* key inherited from the caller. Real-time priority stays at its default (the
    /// tests run as root in CI; elsewhere rtpmic warns and runs at normal priority).
    pub fn rtpmic(&self, infile: &Path) -> Command {
        let mut c = Command::new(RTPMIC);
        self.apply_env(&mut c, infile);
        c
    }

    /// Gives `c` this board's environment (for commands that wrap rtpmic, e.g. `ip netns exec`).
    pub fn apply_env(&self, c: &mut Command, infile: &Path) {
        for (k, _) in std::env::vars() {
            if k.starts_with("RTPMIC_") {
                c.env_remove(k);
            }
        }
        c.env("JACK_DEFAULT_SERVER", &self.server)
            .env("ALSA_CONFIG_PATH", alsa_config_path())
            .env("SIM_INFILE", infile)
            .stdin(Stdio::null());
    }

    /// Writes `samples` as raw S16_LE into a file in this board's temp dir.
    pub fn infile(&self, name: &str, samples: &[i16]) -> PathBuf {
        let p = self.dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        f.write_all(&bytes).unwrap();
        p
    }
}

impl Drop for SimBoard {
    fn drop(&mut self) {
        self.thaw();
        if let Some(mut c) = self.jackd.take() {
            // SIGTERM, not SIGKILL: a killed jackd leaves its slot in jack's server registry.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

pub fn alsa_config_path() -> String {
    format!(
        "/usr/share/alsa/alsa.conf:{}",
        repo().join("board/sim/asound.conf").display()
    )
}

/// 440 Hz + 1000 Hz (common period 1200 samples at 48 kHz, 200 at 8 kHz), about −9 dBFS peak.
pub fn two_tone(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let v = 0.25 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.12 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin();
            (v * 32767.0).round() as i16
        })
        .collect()
}

/// One received RTP packet, parsed by rtp-types.
#[derive(Clone, Debug)]
pub struct Rtp {
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub pt: u8,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// A UDP socket on loopback that collects RTP.
pub struct Receiver {
    pub socket: UdpSocket,
}

impl Receiver {
    pub fn bind() -> Receiver {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Receiver { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    pub fn dest(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// Collects packets until `idle` passes with none (the stream ended) or `max` arrived.
    pub fn collect(&self, max: usize, first_timeout: Duration, idle: Duration) -> Vec<Rtp> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        self.socket.set_read_timeout(Some(first_timeout)).unwrap();
        while out.len() < max {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let p = RtpPacket::parse(&buf[..n]).expect("valid RTP");
                    out.push(Rtp {
                        seq: p.sequence_number(),
                        ts: p.timestamp(),
                        ssrc: p.ssrc(),
                        pt: p.payload_type(),
                        marker: p.marker_bit(),
                        payload: p.payload().to_vec(),
                    });
                    self.socket.set_read_timeout(Some(idle)).unwrap();
                }
                Err(_) => break,
            }
        }
        out
    }
}

/// Counter `name` from rtpmic's final `stopped:` line in `log`.
pub fn stopped_counter(log: &str, name: &str) -> u64 {
    log.lines()
        .rfind(|l| l.contains("stopped: "))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}="))?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no {name}= in the stopped line:\n{log}"))
}

/// Asserts the RFC 3550 invariants of one uninterrupted stream.
pub fn assert_clean_stream(pkts: &[Rtp], pt: u8, ts_step: u32) {
    assert!(pkts.len() > 10, "only {} packets", pkts.len());
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap after packet {i}");
        assert_eq!(
            w[1].ts.wrapping_sub(w[0].ts),
            ts_step,
            "timestamp step after packet {i}"
        );
        assert_eq!(w[1].ssrc, w[0].ssrc, "SSRC changed at packet {i}");
        assert!(!w[1].marker, "marker on packet {}", i + 1);
    }
    assert!(pkts[0].marker, "first packet must carry the marker");
    assert!(pkts.iter().all(|p| p.pt == pt), "payload type");
}

/// Decodes Opus payloads (48 kHz mono) with real libopus.
pub fn decode_opus(pkts: &[Rtp]) -> Vec<i16> {
    use audiopus::{coder::Decoder, Channels, SampleRate};
    let mut dec = Decoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0i16; 5760];
    for p in pkts {
        let n = dec.decode(Some(&p.payload[..]), &mut buf[..], false).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// SNR (dB) of `decoded` against `source` at the best alignment. The shift (in
/// `-max_lag..=max_lag`, `decoded[i]` ~ `source[i + shift]`) is chosen on a 100 ms window after
/// `skip`, then the SNR is taken over everything after `skip` that overlaps.
pub fn aligned_snr(source: &[i16], decoded: &[i16], skip: usize, max_lag: usize) -> f64 {
    let err = |shift: i64, range: std::ops::Range<usize>| {
        let (mut sig, mut noise) = (0f64, 0f64);
        for i in range {
            let j = i as i64 + shift;
            if j < 0 || j as usize >= source.len() || i >= decoded.len() {
                continue;
            }
            let s = f64::from(source[j as usize]);
            sig += s * s;
            noise += (s - f64::from(decoded[i])).powi(2);
        }
        (sig, noise)
    };
    let window = skip..skip + 4800;
    let shift = (-(max_lag as i64)..=(max_lag as i64))
        .min_by(|a, b| err(*a, window.clone()).1.total_cmp(&err(*b, window.clone()).1))
        .unwrap();
    let (sig, noise) = err(shift, skip..decoded.len());
    assert!(sig > 0.0, "no overlap between decoded and source");
    10.0 * (sig / noise.max(1e-9)).log10()
}

/// RMS level in dBFS of `x[skip..]`.
pub fn rms_dbfs(x: &[i16], skip: usize) -> f64 {
    let x = &x[skip.min(x.len())..];
    let ms = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * (ms / (32768.0f64 * 32768.0)).log10()
}

/// Waits up to `limit` for `child` to exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A free even UDP port whose successor is free too (RTP + RTCP pair on loopback).
pub fn free_even_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p.is_multiple_of(2) && p < 65534 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// A TCP port on loopback that was free a moment ago (bound, read and released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tshark` with `args` (run through `prefix`, e.g. `ip netns exec NS`) and returns
/// once it captures: its dumpcap's packet socket has the capture filter (`-f`) attached.
/// tshark's own "Capturing on" comes before it even starts dumpcap, and libpcap drains what
/// arrives while it sets the filter up, so on a busy machine a capture timed by that line
/// missed the first packets.
pub fn start_tshark(prefix: &[&str], args: &[&str]) -> Child {
    use std::io::BufRead;
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg("tshark");
            c
        }
        None => Command::new("tshark"),
    };
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark (Debian package tshark) must be installed: run `make test`");
    let err = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(err).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("Capturing on"))),
        "tshark did not start"
    );
    std::thread::spawn(move || for _ in lines {});
    let filtered = args.contains(&"-f");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dumpcap_capturing(prefix, child.id(), filtered) {
        assert!(
            Instant::now() < deadline,
            "tshark's dumpcap did not start capturing in 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Whether the dumpcap that tshark `tshark_pid` started has its packet socket open and, when
/// `filtered`, the capture filter on it (`ss -0 -b -p` run through `prefix`, in tshark's
/// network namespace). libpcap puts a one-instruction reject-all filter there while it sets
/// up: that one does not count.
fn dumpcap_capturing(prefix: &[&str], tshark_pid: u32, filtered: bool) -> bool {
    let Some(dumpcap) = std::fs::read_dir("/proc").ok().and_then(|procs| {
        procs.flatten().find_map(|p| {
            let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
            // pid (comm) state ppid …
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (comm == "dumpcap" && ppid == tshark_pid).then(|| p.file_name().to_string_lossy().into_owned())
        })
    }) else {
        return false;
    };
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg("ss");
            c
        }
        None => Command::new("ss"),
    };
    let Ok(out) = cmd.args(["-0", "-b", "-p", "-a"]).stderr(Stdio::null()).output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let owner = format!("pid={dumpcap},");
    while let Some(line) = lines.next() {
        if !line.contains(&owner) {
            continue;
        }
        if !filtered {
            return true;
        }
        // The socket's filter, when it has one, is on the next line: "bpf filter (N): …".
        let instructions = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("bpf filter ("))
            .and_then(|l| l.split(')').next()?.parse::<u32>().ok());
        if instructions.is_some_and(|n| n > 1) {
            return true;
        }
    }
    false
}

/// Stops a capture started by `start_tshark` and returns what it printed.
pub fn stop_tshark(child: Child) -> String {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The row of tshark's `-z rtp,streams` table whose payload column says `payload`, split into
/// its whitespace-separated fields (8 = packets, 9 = lost, last = "X" when tshark saw problems).
pub fn rtp_stream_row(streams: &str, payload: &str) -> Vec<String> {
    streams
        .lines()
        .find(|l| l.contains(payload))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// ffmpeg decoding the stream an SDP file describes: 2 s, mono, `rate` Hz, raw s16le into
/// `out`. Returns once ffmpeg has bound the SDP's port, so it gets the stream from its first
/// packet even when it starts slowly (a receiver that joins SRTP after a sequence wrap cannot
/// know the rollover counter).
pub fn spawn_ffmpeg(sdp: &Path, rate: u32, out: &Path) -> Child {
    let port: u16 = std::fs::read_to_string(sdp)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("m=audio ")?.split_whitespace().next()?.parse().ok())
        .expect("m=audio in the SDP");
    let mut child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-protocol_whitelist",
            "file,udp,rtp,srtp",
            "-i",
        ])
        .arg(sdp)
        .args(["-t", "2", "-ac", "1", "-ar", &rate.to_string(), "-f", "s16le", "-y"])
        .arg(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg (Debian package ffmpeg) must be installed: run `make test`");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !udp_port_bound(port) {
        if child.try_wait().unwrap().is_some() || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ffmpeg did not open UDP port {port}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Whether a UDP socket (IPv4 or IPv6) of this network namespace is bound to local `port`.
pub fn udp_port_bound(port: u16) -> bool {
    udp_bound_in("/proc/net", port)
}

/// Whether a UDP socket of process `pid`'s network namespace is bound to local `port`.
pub fn udp_port_bound_by(pid: u32, port: u16) -> bool {
    udp_bound_in(&format!("/proc/{pid}/net"), port)
}

fn udp_bound_in(net: &str, port: u16) -> bool {
    let want = format!(":{port:04X} ");
    ["udp", "udp6"].iter().any(|table| {
        std::fs::read_to_string(format!("{net}/{table}")).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| format!("{local} ").ends_with(&want))
            })
        })
    })
}

/// Waits up to `limit` for `child` (ffmpeg) to end by itself; otherwise asks it to stop
/// (SIGINT: it finishes the file it writes) and then kills it. Whether it ended by itself,
/// successfully.
pub fn finish_ffmpeg(child: &mut Child, limit: Duration) -> bool {
    if let Some(status) = wait_for(child, limit) {
        return status.success();
    }
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    if wait_for(child, Duration::from_secs(2)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    false
}

/// Asks the kernel to stamp every datagram `socket` receives with its arrival time
/// (SO_TIMESTAMPNS). Timing judged from when the test's own thread got round to `recv` would
/// include that thread's lateness on a busy machine; the stamp is when the packet arrived.
pub fn stamp_arrivals(socket: &UdpSocket) {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
}

/// Receives one datagram into `buf`: its length and its arrival time as the kernel stamped it
/// (CLOCK_REALTIME, comparable with `SystemTime::now()`; see `stamp_arrivals`). `None` when
/// the socket's read timeout passes.
pub fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, std::time::SystemTime)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).ok()?;
    let at = msg
        .cmsgs()
        .ok()?
        .find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                Some(std::time::UNIX_EPOCH + Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
            }
            _ => None,
        })
        .expect("an arrival stamp: call stamp_arrivals first");
    Some((msg.bytes, at))
}

/// Writes an env file with the simulated board's device and `pairs` (write then rename, as
/// an editor or config tool would: never a half-written file).
pub fn write_env(path: &Path, pairs: &[(&str, &str)]) {
    let mut text = String::from("RTPMIC_DEVICE=simfile\nRTPMIC_STATS_INTERVAL_S=0\n");
    for (k, v) in pairs {
        text.push_str(&format!("{k}={v}\n"));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `rtpmic run --env-file env` on `board` with a minute of the two-tone, stderr piped.
pub fn run_with_env_file(board: &SimBoard, env: &Path) -> Child {
    let infile = board.infile("in.raw", &two_tone(48_000, 60.0));
    board
        .rtpmic(&infile)
        .args(["run", "--env-file"])
        .arg(env)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `sig` to `child`.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Stops `child` with SIGTERM and returns its exit status and log (its piped stderr).
pub fn stop(child: &mut Child) -> (std::process::ExitStatus, String) {
    signal(child, libc::SIGTERM);
    let status = wait_for(child, Duration::from_secs(10)).expect("rtpmic must exit after SIGTERM");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    (status, log)
}
