//! Running under systemd: sd_notify (READY, STATUS, WATCHDOG) through a real NOTIFY_SOCKET,
//! native journald entries read back from a real systemd-journald, and the signals (SIGHUP
//! reload, SIGUSR1 stats).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The systemd side of sd_notify(3): a datagram socket rtpmic is pointed at.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// The next notification (its `KEY=value` lines) and when it arrived, or `None` at
    /// `deadline`.
    fn next(&self, deadline: Instant) -> Option<(Instant, Vec<String>)> {
        let left = deadline.checked_duration_since(Instant::now())?;
        self.socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        Some((Instant::now(), text.lines().map(str::to_string).collect()))
    }

    /// Waits until a notification has a line satisfying `want`; returns that line.
    fn wait_for(&self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some((_, lines)) = self.next(deadline) {
            if let Some(l) = lines.into_iter().find(|l| want(l)) {
                return Some(l);
            }
        }
        None
    }
}

fn live_run(board: &SimBoard, rx: &Receiver, notify: &NotifySocket, watchdog_usec: u64) -> Child {
    let infile = board.infile("in.raw", &two_tone(48_000, 60.0));
    board
        .rtpmic(&infile)
        .arg("run")
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest())
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", watchdog_usec.to_string())
        .env_remove("WATCHDOG_PID")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// READY=1 once packets flow, STATUS= with the facts, WATCHDOG=1 every WATCHDOG_USEC/2; a
/// frozen device stops the pings within WatchdogSec; they resume when it comes back.
#[test]
fn notify_ready_status_and_a_watchdog_that_stops_when_capture_stalls() {
    const WATCHDOG: Duration = Duration::from_secs(1);
    let board = SimBoard::private();
    let rx = Receiver::bind();
    let notify = NotifySocket::bind();
    let mut child = live_run(&board, &rx, &notify, WATCHDOG.as_micros() as u64);

    let first = notify
        .next(Instant::now() + Duration::from_secs(10))
        .expect("a first notification");
    assert!(first.1.iter().any(|l| l == "READY=1"), "READY=1 first: {:?}", first.1);
    let status = first
        .1
        .iter()
        .find(|l| l.starts_with("STATUS="))
        .expect("STATUS with READY");
    assert!(
        status.starts_with("STATUS=streaming: simfile opus → 1/1 destinations"),
        "{status}"
    );
    assert!(
        !rx.collect(1, Duration::from_secs(1), Duration::from_secs(1)).is_empty(),
        "packets flow when READY"
    );
    // Pings at about half the timeout.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut pings = Vec::new();
    while let Some((at, lines)) = notify.next(deadline) {
        if lines.iter().any(|l| l == "WATCHDOG=1") {
            pings.push(at);
        }
    }
    assert!(pings.len() >= 4, "{} pings in 3 s with WatchdogSec=1s", pings.len());
    for w in pings.windows(2) {
        assert!(w[1] - w[0] < WATCHDOG, "pings {:?} apart", w[1] - w[0]);
    }

    board.freeze();
    let frozen = Instant::now();
    let deadline = frozen + 3 * WATCHDOG;
    let mut last_ping = None;
    let mut stalled_status = None;
    while let Some((at, lines)) = notify.next(deadline) {
        if lines.iter().any(|l| l == "WATCHDOG=1") {
            last_ping = Some(at);
        }
        if let Some(s) = lines.iter().find(|l| l.starts_with("STATUS=stalled")) {
            stalled_status = Some(s.clone());
        }
    }
    let last = last_ping.unwrap_or(frozen);
    assert!(
        last - frozen <= WATCHDOG,
        "pings went on {:?} after the device froze",
        last - frozen
    );
    assert!(
        deadline - last >= WATCHDOG,
        "silence of {:?} after the last ping: systemd would not have fired",
        deadline - last
    );
    assert!(stalled_status.is_some(), "STATUS says the capture stalled");

    board.thaw();
    assert!(
        notify
            .wait_for(Duration::from_secs(10), |l| l == "WATCHDOG=1")
            .is_some(),
        "pings resume when the device comes back"
    );
    assert!(
        notify
            .wait_for(Duration::from_secs(10), |l| l.starts_with("STATUS=streaming"))
            .is_some(),
        "STATUS says streaming again"
    );
    let (status, log) = stop(&mut child);
    assert!(status.success(), "{status}\n{log}");
    assert!(
        notify.wait_for(Duration::from_secs(1), |l| l == "STOPPING=1").is_some(),
        "STOPPING=1 at exit"
    );
    assert!(log.contains("systemd watchdog: pinging every 500ms"), "{log}");
}

/// A microphone absent at boot: start-up still completes (READY=1, STATUS "waiting for
/// device") and the watchdog keeps pinging, since a restart could not help.
#[test]
fn an_absent_device_is_reported_ready_and_waiting_and_keeps_the_watchdog_fed() {
    let mut board = SimBoard::private();
    board.unplug();
    let rx = Receiver::bind();
    let notify = NotifySocket::bind();
    let mut child = live_run(&board, &rx, &notify, 1_000_000);
    let (_, lines) = notify
        .next(Instant::now() + Duration::from_secs(10))
        .expect("a notification");
    assert!(lines.iter().any(|l| l == "READY=1"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("STATUS=waiting for device: simfile opus → 1/1 destinations, 0 packets")),
        "{lines:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut pings = 0;
    while let Some((_, lines)) = notify.next(deadline) {
        pings += lines.iter().filter(|l| *l == "WATCHDOG=1").count();
    }
    assert!(pings >= 4, "{pings} pings in 3 s while waiting for the device");
    board.replug();
    assert!(
        notify
            .wait_for(Duration::from_secs(15), |l| l.starts_with("STATUS=streaming"))
            .is_some(),
        "streaming once the device appears"
    );
    let (status, _) = stop(&mut child);
    assert!(status.success());
}

/// Stopping while the capture thread is stuck inside the driver (opening a PCM whose server
/// is frozen) ends the process anyway, with a line saying so, instead of hanging.
#[test]
fn stop_does_not_hang_on_a_thread_stuck_in_the_driver() {
    let board = SimBoard::private();
    let rx = Receiver::bind();
    let notify = NotifySocket::bind();
    let mut child = live_run(&board, &rx, &notify, 1_000_000);
    assert!(notify.wait_for(Duration::from_secs(10), |l| l == "READY=1").is_some());
    board.freeze();
    // The capture thread gives up on the silent device and blocks reopening it.
    assert!(notify
        .wait_for(Duration::from_secs(10), |l| l.starts_with("STATUS=stalled"))
        .is_some());
    let t0 = Instant::now();
    let (status, log) = stop(&mut child);
    assert!(t0.elapsed() < Duration::from_secs(6), "exit took {:?}", t0.elapsed());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("did not stop within 3s"), "{log}");
    assert!(log.contains("stopped: periods="), "final counters still logged\n{log}");
}

/// One `journalctl -o json` line: an object whose values are strings (binary fields, which
/// are arrays, are not ours).
#[derive(Debug)]
struct Entry(serde_json::Map<String, serde_json::Value>);

impl Entry {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }
}

fn parse_entry(line: &str) -> Option<Entry> {
    match serde_json::from_str(line).ok()? {
        serde_json::Value::Object(m) => Some(Entry(m)),
        _ => None,
    }
}

/// The shell script that runs inside a private mount namespace: a fresh tmpfs /run and
/// journal directory, a real systemd-journald, then `$@` with stderr connected to the journal
/// the way systemd connects a service (systemd-cat, and JOURNAL_STREAM naming that stream).
const JOURNAL_SCRIPT: &str = r#"
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /var/log/journal
mount -t tmpfs tmpfs /var/log/journal
/usr/lib/systemd/systemd-journald &
JOURNALD=$!
i=0
while [ ! -S /run/systemd/journal/socket ] || [ ! -S /run/systemd/journal/stdout ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "journald did not start" >&2; exit 1; }
    sleep 0.05
done
systemd-cat -t rtpmic-stream sh -c 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"' sh "$@"
journalctl --sync
journalctl -o json --no-pager
echo "---" 
journalctl -o json --no-pager RTPMIC_EVENT=stats
kill $JOURNALD
"#;

#[test]
fn journald_gets_native_entries_with_fields_and_priorities() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(48_000, 4.0));
    let rx = Receiver::bind();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", JOURNAL_SCRIPT, "sh"])
        .args([RTPMIC, "run", "--seconds", "3"]);
    board.apply_env(&mut cmd, &infile);
    let out = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_DEST", rx.dest())
        .env("RTPMIC_STATS_INTERVAL_S", "1")
        // A warning to look for: the SDP file cannot be written there.
        .env("RTPMIC_SDP_FILE", "/nonexistent/dir/rtpmic.sdp")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (all, filtered) = stdout.split_once("---\n").expect("two listings");
    let entries: Vec<Entry> = all.lines().filter_map(parse_entry).collect();
    let ours: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.get("SYSLOG_IDENTIFIER") == Some("rtpmic"))
        .collect();
    assert!(!ours.is_empty(), "no rtpmic entries:\n{all}");
    for e in &ours {
        assert_eq!(
            e.get("_TRANSPORT"),
            Some("journal"),
            "native protocol, not the stream: {e:?}"
        );
        assert!(e.get("RTPMIC_EVENT").is_some(), "every entry has RTPMIC_EVENT: {e:?}");
    }
    assert!(
        !entries.iter().any(|e| e.get("_TRANSPORT") == Some("stdout")),
        "nothing written to stderr when the journal is native:\n{all}"
    );
    let event = |name: &str| ours.iter().find(|e| e.get("RTPMIC_EVENT") == Some(name)).copied();
    let starting = event("starting").expect("a starting entry");
    assert_eq!(starting.get("PRIORITY"), Some("6"), "info is priority 6");
    assert!(starting
        .get("MESSAGE")
        .unwrap_or("")
        .starts_with("starting: device=simfile"));
    let sdp = event("sdp").expect("the SDP warning");
    assert_eq!(sdp.get("PRIORITY"), Some("4"), "warning is priority 4");
    let stopped = event("stopped").expect("a stopped entry");
    let packets: u64 = stopped
        .get("RTPMIC_PACKETS")
        .and_then(|v| v.parse().ok())
        .expect("RTPMIC_PACKETS");
    assert!(packets >= 140, "3 s of 20 ms frames: {packets}");
    assert!(stopped.get("RTPMIC_XRUNS").is_some() && stopped.get("RTPMIC_DATAGRAMS").is_some());

    // journalctl's own field match selects exactly the periodic stats lines.
    let stats: Vec<Entry> = filtered.lines().filter_map(parse_entry).collect();
    assert!(stats.len() >= 2, "stats every second for 3 s: {}", stats.len());
    assert!(stats.iter().all(|e| e.get("RTPMIC_EVENT") == Some("stats")));
    let first: u64 = stats[0].get("RTPMIC_PERIODS").and_then(|v| v.parse().ok()).unwrap();
    let last: u64 = stats[stats.len() - 1]
        .get("RTPMIC_PERIODS")
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(last > first, "counters advance between stats lines");
}

fn mean_payload(pkts: &[Rtp]) -> f64 {
    pkts.iter().map(|p| p.payload.len() as f64).sum::<f64>() / pkts.len().max(1) as f64
}

fn assert_one_stream(pkts: &[Rtp]) {
    for (i, w) in pkts.windows(2).enumerate() {
        assert_eq!(w[1].ssrc, w[0].ssrc, "same SSRC at {i}");
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "no sequence gap at {i}");
    }
}

/// SIGHUP with a new bitrate: packet sizes follow, with no gap in the stream. A broken file
/// is rejected line by line and the stream goes on as it was. SIGUSR1 logs the stats.
#[test]
fn sighup_changes_bitrate_live_and_rejects_a_broken_file() {
    let board = SimBoard::shared();
    let rx = Receiver::bind();
    let env = board.dir.path().join("rtpmic.env");
    let dest = rx.dest();
    write_env(&env, &[("RTPMIC_DEST", &dest), ("RTPMIC_BITRATE", "12000")]);
    let mut child = run_with_env_file(&board, &env);
    let mut pkts = rx.collect(50, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(pkts.len(), 50, "stream started");

    write_env(&env, &[("RTPMIC_DEST", &dest), ("RTPMIC_BITRATE", "64000")]);
    signal(&child, libc::SIGHUP);
    let after = rx.collect(100, Duration::from_secs(2), Duration::from_secs(2));
    assert_eq!(after.len(), 100);
    pkts.extend(after);

    write_env(
        &env,
        &[
            ("RTPMIC_DEST", &dest),
            ("RTPMIC_CODEC", "mp3"),
            ("RTPMIC_BITRATE", "100"),
        ],
    );
    signal(&child, libc::SIGHUP);
    let broken = rx.collect(50, Duration::from_secs(2), Duration::from_secs(2));
    assert_eq!(broken.len(), 50);
    pkts.extend(broken);
    signal(&child, libc::SIGUSR1);
    let more = rx.collect(10, Duration::from_secs(2), Duration::from_secs(2));
    pkts.extend(more);
    let (status, log) = stop(&mut child);
    assert!(status.success(), "{log}");

    assert_one_stream(&pkts);
    let (low, high, kept) = (
        mean_payload(&pkts[..50]),
        mean_payload(&pkts[100..150]),
        mean_payload(&pkts[150..200]),
    );
    assert!(low < 45.0, "12 kb/s at 20 ms is about 30 bytes: {low}");
    assert!(high > 120.0, "64 kb/s at 20 ms is about 160 bytes: {high}");
    assert!(kept > 120.0, "the rejected file changed nothing: {kept}");
    assert!(log.contains("reload: applied live: RTPMIC_BITRATE"), "{log}");
    assert!(log.contains("RTPMIC_CODEC=\"mp3\""), "the problem is named: {log}");
    assert!(log.contains("RTPMIC_BITRATE=\"100\""), "every problem is named: {log}");
    assert!(
        log.contains("rejected (2 problem(s)); the running configuration stays"),
        "{log}"
    );
    let stats_line = log.lines().position(|l| l.contains(" stats: periods="));
    let stopped_line = log.lines().position(|l| l.contains("stopped: periods="));
    assert!(
        stats_line.is_some() && stats_line < stopped_line,
        "SIGUSR1 logged the stats\n{log}"
    );
}

/// SIGHUP with new destinations: a receiver added gets the same stream (same SSRC, the
/// sequence going on), one removed stops getting it, and the DSCP changes on the wire, all
/// without a gap for the receiver that stays.
#[test]
fn sighup_changes_destinations_and_dscp_live() {
    let board = SimBoard::shared();
    let (rx1, rx2) = (Receiver::bind(), Receiver::bind());
    let env = board.dir.path().join("rtpmic.env");
    let (d1, d2) = (rx1.dest(), rx2.dest());
    let tshark = start_tshark(
        &[],
        &[
            "-l",
            "-n",
            "-i",
            "lo",
            "-f",
            &format!("udp dst port {}", rx2.port()),
            "-d",
            &format!("udp.port=={},rtp", rx2.port()),
            "-T",
            "fields",
            "-e",
            "rtp.seq",
            "-e",
            "ip.dsfield.dscp",
        ],
    );
    write_env(&env, &[("RTPMIC_DEST", &d1)]);
    let mut child = run_with_env_file(&board, &env);
    assert_eq!(
        rx1.collect(25, Duration::from_secs(10), Duration::from_secs(2)).len(),
        25
    );

    let both = format!("{d1},{d2}");
    write_env(&env, &[("RTPMIC_DEST", &both)]);
    signal(&child, libc::SIGHUP);
    let at2 = rx2.collect(50, Duration::from_secs(5), Duration::from_secs(2));
    assert_eq!(at2.len(), 50, "the added receiver gets the stream");

    write_env(&env, &[("RTPMIC_DEST", &d2), ("RTPMIC_DSCP", "10")]);
    signal(&child, libc::SIGHUP);
    let later = rx2.collect(100, Duration::from_secs(5), Duration::from_secs(2));
    assert_eq!(later.len(), 100);
    let (status, log) = stop(&mut child);
    assert!(status.success(), "{log}");
    let at1 = rx1.collect(10_000, Duration::from_millis(200), Duration::from_millis(200));

    let mut at2_all = at2.clone();
    at2_all.extend(later.iter().cloned());
    assert_one_stream(&at2_all);
    assert_eq!(at2[0].ssrc, at1[0].ssrc, "the same stream at both");
    assert_one_stream(&at1);
    assert!(
        at1.iter().any(|p| p.seq == at2[0].seq),
        "an overlap: both got the same packets"
    );
    let last1 = at1.last().unwrap().seq;
    assert!(
        later[50..].iter().all(|p| p.seq.wrapping_sub(last1) < 0x8000),
        "the removed receiver stopped within a second"
    );
    assert!(log.contains("reload: applied live: RTPMIC_DEST\n"), "{log}");
    assert!(log.contains("reload: applied live: RTPMIC_DEST, RTPMIC_DSCP"), "{log}");

    // DSCP on the wire: 46 (EF) before the second reload, 10 after, switching once.
    let capture = stop_tshark(tshark);
    let dscp: Vec<(u16, u8)> = capture
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect();
    assert!(dscp.len() >= 140, "captured {} packets", dscp.len());
    let values: Vec<u8> = dscp.iter().map(|&(_, d)| d).collect();
    let switch = values.iter().position(|&d| d != 46).expect("the DSCP changed");
    assert!(switch >= 40, "EF before the change: {values:?}");
    assert!(
        values[switch..].iter().all(|&d| d == 10),
        "10 after the change: {values:?}"
    );
}

/// SIGHUP with a key that cannot change live (the codec): the pipeline restarts cleanly
/// (BYE, a new SSRC) and streams with the new codec.
#[test]
fn sighup_with_a_new_codec_restarts_the_pipeline() {
    let board = SimBoard::shared();
    let rx = Receiver::bind();
    let env = board.dir.path().join("rtpmic.env");
    let dest = rx.dest();
    write_env(&env, &[("RTPMIC_DEST", &dest)]);
    let mut child = run_with_env_file(&board, &env);
    let before = rx.collect(25, Duration::from_secs(10), Duration::from_secs(2));
    assert_eq!(before.len(), 25);
    write_env(&env, &[("RTPMIC_DEST", &dest), ("RTPMIC_CODEC", "pcmu")]);
    signal(&child, libc::SIGHUP);
    let mut after = Vec::new();
    while after.len() < 25 {
        let got = rx.collect(1, Duration::from_secs(5), Duration::from_secs(5));
        assert!(!got.is_empty(), "the stream came back");
        if got[0].pt == 0 {
            after.extend(got);
        }
    }
    let (status, log) = stop(&mut child);
    assert!(status.success(), "{log}");
    assert!(after.iter().all(|p| p.payload.len() == 160), "PCMU, 20 ms at 8 kHz");
    assert_ne!(after[0].ssrc, before[0].ssrc, "a new SSRC for a new stream");
    let restart = log
        .lines()
        .find(|l| l.contains("reload: restarting the pipeline for "))
        .expect(&log);
    assert!(restart.contains("RTPMIC_CODEC"), "{restart}");
    assert!(
        log.contains("restarted: periods="),
        "the old pipeline's counters: {log}"
    );
}
