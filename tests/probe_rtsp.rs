//! `rtpmic probe rtsp://…` against a real RTSP server, gst-rtsp-server
//! (benches/gst_rtsp_server.py): the stream pulled over TCP (interleaved) and UDP arrives
//! whole with the tone's level, receiver reports go back, keepalives keep the session, and
//! Digest and Basic credentials are answered — while a wrong password, a missing path, a
//! transport the server does not offer, SRTP and a closed port are each one clear line and
//! exit status 1, never showing the password.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The server's tone: audiotestsrc's sine at volume 0.25, i.e. 20·log10(0.25) − 3.01 dBFS.
const TONE_DBFS: f64 = -15.05;

/// benches/gst_rtsp_server.py on a free port of 127.0.0.1, stopped (SIGTERM) on drop.
struct GstServer {
    child: Child,
    port: u16,
    /// What it printed on stdout (`request …` lines with --log-requests).
    lines: Arc<Mutex<Vec<String>>>,
}

impl GstServer {
    fn start(args: &[&str]) -> GstServer {
        // A port taken by someone else between our probe of it and the server's bind makes the
        // server exit at once: try another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new("/usr/bin/python3")
                .arg(repo().join("benches/gst_rtsp_server.py"))
                .args(["--port", &port.to_string(), "--path", "/test"])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("/usr/bin/python3 must be installed: run `make test`");
            let lines = Arc::new(Mutex::new(Vec::new()));
            let out = child.stdout.take().unwrap();
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
            // Listening once a TCP connect succeeds (bounded; the first start on a busy
            // machine loads GStreamer's plugin registry).
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return GstServer { child, port, lines };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
                    assert!(
                        err.contains("cannot listen"),
                        "gst_rtsp_server.py exited ({status}): {err}\n\
                         (it needs gir1.2-gst-rtsp-server-1.0 and python3-gi: run `make test`)"
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "gst_rtsp_server.py did not listen within 60 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("gst_rtsp_server.py found no free port");
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }

    /// The requests it handled, in order, once `done` says they are all there (its lines
    /// reach us a little after the probe got its answers), or after 10 s.
    fn requests(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let requests: Vec<String> = {
                let lines = self.lines.lock().unwrap();
                lines
                    .iter()
                    .filter_map(|l| l.strip_prefix("request "))
                    .map(str::to_string)
                    .collect()
            };
            if done(&requests) || Instant::now() >= deadline {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Requests ending with the `n`th TEARDOWN.
fn teardowns(n: usize) -> impl Fn(&[String]) -> bool {
    move |r| r.iter().filter(|m| *m == "TEARDOWN").count() >= n
}

impl Drop for GstServer {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if wait_for(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `rtpmic probe ARGS…`, bounded: a probe that does not end by itself fails the test.
fn probe(args: &[&str]) -> (Output, String, String) {
    let mut child = Command::new(RTPMIC)
        .arg("probe")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    if wait_for(&mut child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        panic!("probe {args:?} did not end");
    }
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    (output, stdout, stderr)
}

/// `name=N` from the summary line.
fn field(summary: &str, name: &str) -> u64 {
    summary
        .lines()
        .rfind(|l| l.starts_with("probe: ssrc="))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}="))?.parse().ok())
        })
        .unwrap_or_else(|| panic!("{name}= in {summary}"))
}

/// The levels of the once-a-second lines after the first (decoder start-up), which all carry
/// a full second of packets.
fn levels(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter(|l| l.contains("ssrc="))
        .skip(1)
        .filter_map(|l| l.split("level=").nth(1)?.trim_end_matches("dBFS").parse().ok())
        .collect()
}

/// A clean pull: every packet, no loss, the tone's level, receiver reports sent.
fn assert_clean_pull(out: &Output, stdout: &str, stderr: &str, transport: &str, codec: &str) {
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let status = stderr.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("probe: connected to rtsp://127.0.0.1:")
            && status.contains(&format!("transport {transport}"))
            && status.contains(codec),
        "{stderr}"
    );
    // 4 s of 20 ms packets: about 200, whatever the machine's load did to the start.
    assert!(field(stderr, "received") >= 100, "{stderr}\n{stdout}");
    for k in ["lost", "reordered", "duplicates", "invalid"] {
        assert_eq!(field(stderr, k), 0, "{k}: {stderr}\n{stdout}");
    }
    assert!(field(stderr, "rr_sent") >= 1, "{stderr}");
    let levels = levels(stdout);
    assert!(levels.len() >= 2, "{stdout}");
    assert!(
        levels.iter().all(|l| (l - TONE_DBFS).abs() < 1.5),
        "levels {levels:?}, tone {TONE_DBFS} dBFS\n{stdout}"
    );
}

#[test]
fn pulls_opus_over_tcp_and_udp() {
    let server = GstServer::start(&["--codec", "opus", "--log-requests"]);
    let url = server.url();
    let (out, stdout, stderr) = probe(&[&url, "--seconds", "4"]);
    assert_clean_pull(&out, &stdout, &stderr, "TCP (interleaved 0-1)", "OPUS/48000/2 (pt 96)");
    let (out, stdout, stderr) = probe(&[&url, "--seconds", "4", "--udp"]);
    assert_clean_pull(&out, &stdout, &stderr, "UDP (client ports ", "OPUS/48000/2 (pt 96)");
    assert!(stderr.contains("server ports "), "{stderr}");
    // Each pull was a whole RTSP session, ended by TEARDOWN.
    let session = ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"];
    assert_eq!(server.requests(teardowns(2)), [session, session].concat());
}

/// A session timeout of 4 s: a keepalive every 2 s, over TCP and UDP.
#[test]
fn keepalives_follow_the_session_timeout() {
    let server = GstServer::start(&["--session-timeout", "4", "--log-requests"]);
    for transport in [None, Some("--udp")] {
        let mut args = vec![server.url(), "--seconds".into(), "7".into()];
        args.extend(transport.map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, stdout, stderr) = probe(&args);
        assert!(out.status.success(), "{stderr}\n{stdout}");
        assert!(stderr.contains("session timeout 4 s"), "{stderr}");
        assert_eq!(field(&stderr, "lost"), 0, "{stderr}");
    }
    let requests = server.requests(teardowns(2));
    let per_session: Vec<usize> = requests
        .split(|r| r == "TEARDOWN")
        .filter(|s| !s.is_empty())
        .map(|s| s.iter().filter(|r| *r == "GET_PARAMETER").count())
        .collect();
    assert_eq!(per_session.len(), 2, "{requests:?}");
    assert!(per_session.iter().all(|&n| n >= 2), "{requests:?}");
}

#[test]
fn digest_credentials_from_the_url() {
    // A password that needs percent-encoding in a URL.
    let password = "s3cr:t@pw";
    let server = GstServer::start(&["--user", "installer", "--password", password, "--codec", "opus"]);
    let right = format!("rtsp://installer:s3cr%3At%40pw@127.0.0.1:{}/test", server.port);
    let (out, stdout, stderr) = probe(&[&right, "--seconds", "4"]);
    assert_clean_pull(&out, &stdout, &stderr, "TCP", "OPUS/48000/2");
    assert!(!stdout.contains("s3cr") && !stderr.contains("s3cr"), "{stderr}");

    let wrong = format!("rtsp://installer:n0tthep4ss@127.0.0.1:{}/test", server.port);
    let (out, stdout, stderr) = probe(&[&wrong, "--seconds", "4"]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "probe: rtsp: DESCRIBE rtsp://127.0.0.1:{}/test: 401 Unauthorized: user name or password not accepted (user \"installer\")",
            server.port
        )
    );
    assert!(!stdout.contains("n0tthep4ss") && !stderr.contains("n0tthep4ss"));

    let (out, _, stderr) = probe(&[&server.url(), "--seconds", "4"]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401 Unauthorized: the server asks for a user name and password"),
        "{stderr}"
    );
}

#[test]
fn basic_credentials_pcmu_over_udp() {
    let server = GstServer::start(&["--user", "u", "--password", "pw", "--auth", "basic", "--codec", "pcmu"]);
    let url = format!("rtsp://u:pw@127.0.0.1:{}/test", server.port);
    let (out, stdout, stderr) = probe(&[&url, "--seconds", "4", "--udp"]);
    assert_clean_pull(&out, &stdout, &stderr, "UDP", "PCMU/8000 (pt 0)");
    let url = format!("rtsp://u:pwx@127.0.0.1:{}/test", server.port);
    let (out, _, stderr) = probe(&[&url, "--seconds", "4", "--udp"]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("password not accepted") && !stderr.contains("pwx"),
        "{stderr}"
    );
}

/// Each refusal is one line on stderr, exit status 1, and nothing on stdout.
#[test]
fn refusals_are_one_clear_line() {
    let check = |args: &[&str], expected: &str| {
        let (out, stdout, stderr) = probe(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    };
    let udp_only = GstServer::start(&["--protocols", "udp"]);
    let port = udp_only.port;
    check(
        &[&format!("rtsp://127.0.0.1:{port}/nothing-here")],
        &format!("DESCRIBE rtsp://127.0.0.1:{port}/nothing-here: 404 Not Found"),
    );
    check(
        &[&udp_only.url()],
        &format!("SETUP rtsp://127.0.0.1:{port}/test/stream=0: 461 Unsupported transport (the server does not offer RTP over TCP: try --udp)"),
    );
    let srtp = GstServer::start(&["--srtp"]);
    check(&[&srtp.url()], "SRTP is not supported by the probe");
    // Nothing listens on a port just freed.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    check(
        &[&format!("rtsp://127.0.0.1:{closed}/test")],
        &format!("probe: rtsp: cannot connect to 127.0.0.1:{closed}: Connection refused"),
    );
}

#[test]
fn bad_targets_are_usage_errors_that_do_not_echo_the_url() {
    for (args, expected) in [
        (&["rtsps://u:hunter2@h/x"][..], "not supported"),
        (&["rtsp://u:hunter2@/x"], "not a valid rtsp:// URL"),
        (&["nonsense:hunter2"], "expected ADDR:PORT"),
        (&["127.0.0.1:5004", "--udp"], "--udp is for rtsp:// URLs"),
    ] {
        let (out, _, stderr) = probe(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("hunter2"), "{stderr}");
    }
}

/// SIGTERM while the stream plays: the probe ends the session (TEARDOWN), prints its
/// summary and exits 0, as with --seconds.
#[test]
fn sigterm_tears_the_session_down() {
    let server = GstServer::start(&["--log-requests"]);
    let mut child = Command::new(RTPMIC)
        .args(["probe", &server.url()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line with packets (the probe gives up by itself after --timeout otherwise).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("packets="))), "no stream line");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_for(&mut child, Duration::from_secs(10)).expect("the probe stops at SIGTERM");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(field(&err, "received") > 0, "{err}");
    let requests = server.requests(teardowns(1));
    assert_eq!(requests.last().map(String::as_str), Some("TEARDOWN"), "{requests:?}");
}

/// A hostile or broken server (a plain TCP socket here, answering what each case says):
/// bounded reads and waits, one line, exit status 1, no panic.
#[test]
fn hostile_servers_get_one_line_and_exit_1() {
    type Answer = fn(method: &str, cseq: &str) -> Option<Vec<u8>>;
    let cases: [(&str, Answer, &str); 8] = [
        ("silent", |_, _| None, "no answer to OPTIONS rtsp://127.0.0.1:"),
        (
            "flood",
            |_, _| Some(b"FLOOD".to_vec()),
            "no answer to OPTIONS rtsp://127.0.0.1:",
        ),
        (
            "huge head",
            |_, cseq| {
                let mut r = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nX-Pad: ").into_bytes();
                r.extend(std::iter::repeat_n(b'a', 20_000));
                Some(r)
            },
            "response head larger than 16 KiB",
        ),
        (
            "huge body",
            |_, cseq| Some(format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: 10000000\r\n\r\n").into_bytes()),
            "response body larger than 64 KiB",
        ),
        (
            "http",
            |_, _| Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
            "cannot be read",
        ),
        ("close", |_, _| Some(Vec::new()), "the server closed the connection"),
        (
            "no session",
            |method, cseq| {
                let sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:track1\r\n";
                let (extra, body) = match method {
                    "DESCRIBE" => ("Content-Type: application/sdp\r\n", sdp),
                    _ => ("", ""),
                };
                Some(
                    format!(
                        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes(),
                )
            },
            "SETUP rtsp://127.0.0.1:PORT/x/track1: no Session in the answer",
        ),
        (
            // Every request answered, a session timeout of 2^64 - 1 s, and never a packet.
            "endless session",
            |method, cseq| {
                let sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:track1\r\n";
                let (extra, body) = match method {
                    "DESCRIBE" => ("Content-Type: application/sdp\r\n".to_string(), sdp),
                    "SETUP" => (
                        "Session: 1;timeout=18446744073709551615\r\n\
                         Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                            .to_string(),
                        "",
                    ),
                    _ => (String::new(), ""),
                };
                Some(
                    format!(
                        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes(),
                )
            },
            "no RTP arrived from rtsp://127.0.0.1:PORT/x within 2 s",
        ),
    ];
    for (name, answer, expected) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else { return };
            let mut input = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let Ok(n) = std::io::Read::read(&mut conn, &mut buf) else {
                    return;
                };
                if n == 0 {
                    return;
                }
                input.extend_from_slice(&buf[..n]);
                while let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&input[..end]).into_owned();
                    input.drain(..end + 4);
                    let method = head.split_whitespace().next().unwrap_or("").to_string();
                    let cseq = head
                        .lines()
                        .find_map(|l| l.strip_prefix("CSeq: "))
                        .unwrap_or("0")
                        .to_string();
                    match answer(&method, &cseq) {
                        None => {}
                        Some(r) if r.is_empty() => return,
                        // Interleaved frames on a channel nobody set up, and never an answer.
                        Some(r) if r == b"FLOOD" => {
                            let frames: Vec<u8> = [b'$', 5, 0, 12]
                                .iter()
                                .chain(&[0u8; 12])
                                .copied()
                                .cycle()
                                .take(64 * 1024)
                                .collect();
                            while std::io::Write::write_all(&mut conn, &frames).is_ok() {}
                            return;
                        }
                        Some(r) if std::io::Write::write_all(&mut conn, &r).is_err() => return,
                        Some(_) => {}
                    }
                }
            }
        });
        let url = format!("rtsp://127.0.0.1:{port}/x");
        let started = Instant::now();
        let (out, stdout, stderr) = probe(&[&url, "--timeout", "2"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        // One line for the failure (after the status line, for a server that answered all).
        let failures = stderr.lines().filter(|l| !l.starts_with("probe: connected to "));
        assert_eq!(failures.count(), 1, "{name}: {stderr}");
        let expected = expected.replace("PORT", &port.to_string());
        assert!(stderr.contains(&expected), "{name}: {stderr}");
        assert!(
            stdout.lines().all(|l| l.contains(" waiting for RTP ")),
            "{name}: {stdout}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: took {:?}",
            started.elapsed()
        );
        let _ = server.join();
    }
}
