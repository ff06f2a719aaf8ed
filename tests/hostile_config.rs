//! Hostile configuration through the real process: env files that are not files, are huge, hide
//! a secret in a syntax error or repeat a destination thousands of times; values with control
//! characters, numbers too large for any key, IPv6 zone ids, a bind port with no room for RTCP.
//! Each is checked with `rtpmic check-config` / `run` / `sdp` as an installer or systemd runs
//! them, and the reload cases with SIGHUP on a streaming rtpmic.

mod common;

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A base64 SRTP master key (30 bytes) that must never be printed.
const SECRET_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

/// What one rtpmic run printed, and how long it took.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `rtpmic ARGS` with exactly `keys` as its RTPMIC_* environment. Output goes to files
/// (a pipe would stall a process that prints megabytes); a run that does not end within 20 s
/// is killed and reported as hung.
fn rtpmic(args: &[&std::ffi::OsStr], keys: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut c = Command::new(RTPMIC);
    for (k, _) in std::env::vars() {
        if k.starts_with("RTPMIC_") {
            c.env_remove(k);
        }
    }
    let start = Instant::now();
    let mut child = c
        .args(args)
        .envs(keys.iter().copied())
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let took = start.elapsed();
    if status.is_none() {
        kill(&mut child);
        panic!("rtpmic {args:?} hung for {took:?}");
    }
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: read(&out),
        stderr: read(&err),
        took,
    }
}

fn check_config(env: &Path) -> Outcome {
    rtpmic(&["check-config".as_ref(), "--env-file".as_ref(), env.as_os_str()], &[])
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

fn kill(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

/// Writes `bytes` as an env file in `dir` and returns its path.
fn env_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Exit 78 with exactly one `config:` line on stderr, nothing on stdout; returns the line.
fn one_config_error(o: &Outcome, what: &str) -> String {
    assert_eq!(o.code, Some(78), "{what}: {}", o.stderr);
    assert!(o.stdout.is_empty(), "{what}: {}", o.stdout);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line: {:?}", o.stderr);
    assert!(lines[0].starts_with("config: "), "{what}: {}", lines[0]);
    lines[0].to_string()
}

/// Item 1: text after an unquoted value (a note after the key) is a syntax error; the error
/// names the file, the line and the key, never the key's text, wherever it is printed.
#[test]
fn a_syntax_error_names_file_line_and_key_but_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# door A\nRTPMIC_DEST=127.0.0.1:5004\nRTPMIC_SRTP=AES_CM_128_HMAC_SHA1_80\n\nRTPMIC_SRTP_KEY={SECRET_KEY} rotated 2026-12-01\nRTPMIC_CNAME=door-a\n"
    );
    let env = env_file(dir.path(), "rtpmic.env", text.as_bytes());
    for cmd in ["check-config", "run", "sdp"] {
        let o = rtpmic(&[cmd.as_ref(), "--env-file".as_ref(), env.as_os_str()], &[]);
        let line = one_config_error(&o, cmd);
        assert!(
            line.contains(&env.display().to_string()),
            "{cmd}: names the file: {line}"
        );
        assert!(line.contains("line 5"), "{cmd}: names the line: {line}");
        assert!(line.contains("RTPMIC_SRTP_KEY"), "{cmd}: names the key: {line}");
        for secret in [&SECRET_KEY[..8], "rotated", "2026"] {
            assert!(
                !line.contains(secret),
                "{cmd}: shows the file's text ({secret}): {line}"
            );
        }
    }
    // An unterminated quote: the line it opened on, and nothing of what follows.
    let text = format!(
        "RTPMIC_DEST=127.0.0.1:5004\nRTPMIC_CNAME=\"door A\nRTPMIC_SRTP=AES_CM_128_HMAC_SHA1_80\nRTPMIC_SRTP_KEY={SECRET_KEY}\n"
    );
    let env = env_file(dir.path(), "quote.env", text.as_bytes());
    let line = one_config_error(&check_config(&env), "unterminated quote");
    assert!(line.contains("line 2") && line.contains("RTPMIC_CNAME"), "{line}");
    assert!(line.contains("quote"), "says what is wrong: {line}");
    assert!(!line.contains(&SECRET_KEY[..8]) && !line.contains("door"), "{line}");
}

/// Item 2: only a regular file of at most 64 KiB is read. /dev/zero (once a 4 GiB allocation
/// and an abort) and a FIFO (once a read that blocked forever) give one line at once.
#[test]
fn env_files_that_are_not_regular_files_or_too_big_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.env");
    mkfifo(&fifo);
    let zero_link = dir.path().join("zero.env");
    std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        ("/dev/zero".into(), "not a regular file"),
        (zero_link, "not a regular file"),
        (fifo, "not a regular file"),
        (dir.path().to_path_buf(), "not a regular file"),
    ];
    for (path, why) in &cases {
        let o = check_config(path);
        let line = one_config_error(&o, &path.display().to_string());
        assert!(
            line.contains(why) && line.contains(&path.display().to_string()),
            "{line}"
        );
        assert!(o.took < Duration::from_secs(5), "{}: took {:?}", path.display(), o.took);
    }
    // One byte over the limit: refused, naming the limit. At the limit: read.
    let mut big = b"RTPMIC_DEST=127.0.0.1:5004\n".to_vec();
    big.resize(64 * 1024, b'#');
    let at_limit = env_file(dir.path(), "limit.env", &big);
    let o = check_config(&at_limit);
    assert_eq!(o.code, Some(0), "a 64 KiB file is read: {}", o.stderr);
    big.push(b'#');
    let over = env_file(dir.path(), "over.env", &big);
    let line = one_config_error(&check_config(&over), "65537 bytes");
    assert!(line.contains("64 KiB"), "names the limit: {line}");
    // A symlinked env file is legitimate (/etc/default/rtpmic → a board profile).
    let target = env_file(dir.path(), "board.env", b"RTPMIC_DEST=127.0.0.1:5004\n");
    let link = dir.path().join("link.env");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(check_config(&link).code, Some(0));
}

/// Item 2: a destination listed 4000 times gives a few short lines, not one line per
/// duplicate each quoting the whole list (240 MB once); a long value is quoted in part only.
#[test]
fn many_problems_and_long_values_give_a_few_short_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dest = vec!["127.0.0.1:5004"; 4000].join(",");
    let env = env_file(dir.path(), "dups.env", format!("RTPMIC_DEST={dest}\n").as_bytes());
    let o = check_config(&env);
    assert_eq!(o.code, Some(78), "{}", &o.stderr[..o.stderr.len().min(2000)]);
    assert!(
        o.stderr.len() < 2000,
        "{} bytes of errors for one key: {}",
        o.stderr.len(),
        &o.stderr[..o.stderr.len().min(2000)]
    );
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert!(lines.len() <= 6, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("config: RTPMIC_DEST")), "{lines:#?}");
    assert!(o.stderr.contains("listed twice"), "{}", o.stderr);
    assert!(o.stderr.contains("more problems"), "the rest is counted: {}", o.stderr);

    // 100 000 bytes in one value (the most one environment string can hold is 128 KiB).
    let long = "x".repeat(100_000);
    for key in ["RTPMIC_CNAME", "RTPMIC_DEST", "RTPMIC_DEVICE", "RTPMIC_BITRATE"] {
        let mut keys = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        keys.retain(|(k, _)| *k != key);
        keys.push((key, long.as_str()));
        let o = rtpmic(&["check-config".as_ref()], &keys);
        if key == "RTPMIC_DEVICE" {
            // Any PCM name is allowed; it just must not be refused for its length.
            assert_eq!(o.code, Some(0), "{}", &o.stderr[..o.stderr.len().min(500)]);
            continue;
        }
        assert_eq!(o.code, Some(78));
        assert!(
            o.stderr.len() < 500,
            "{key}: {} bytes: {}",
            o.stderr.len(),
            &o.stderr[..500]
        );
        assert!(o.stderr.contains(key) && o.stderr.contains('…'), "{key}: {}", o.stderr);
    }
}

/// Item 3: an unknown key's value is never printed (it may be a password); the line names
/// the nearest known key instead of listing them all.
#[test]
fn an_unknown_key_is_named_with_the_nearest_known_key_and_its_value_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_file(
        dir.path(),
        "rtpmic.env",
        b"RTPMIC_DEST=127.0.0.1:5004\nRTPMIC_SIP_ACCOUNT_PASSWORD=\"hunter2-door\"\nRTPMIC_BITRAT=24000\n",
    );
    let o = check_config(&env);
    assert_eq!(o.code, Some(78), "{}", o.stderr);
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
    assert!(!o.stderr.contains("24000"), "{}", o.stderr);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    assert!(
        lines.contains(&"config: RTPMIC_BITRAT: unknown key; did you mean RTPMIC_BITRATE?"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("config: RTPMIC_SIP_ACCOUNT_PASSWORD: unknown key")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| l.len() < 160), "no list of every key: {lines:#?}");
}

/// Item 4: control characters (NUL, ESC, BEL …) in text keys are refused: an RTCP SDES CNAME
/// is text (RFC 3550 §6.5.1), a PCM name is printed in logs and STATUS= lines.
#[test]
fn control_characters_in_text_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8])] = &[
        ("RTPMIC_CNAME", b"RTPMIC_CNAME=door\0A\n"),
        ("RTPMIC_CNAME", b"RTPMIC_CNAME=\"door\x01A\"\n"),
        ("RTPMIC_DEVICE", b"RTPMIC_DEVICE=\x1b]0;pwned\x07\n"),
        ("RTPMIC_SDP_FILE", b"RTPMIC_SDP_FILE=/run/rtpmic/a\x7fb.sdp\n"),
    ];
    for (i, (key, line)) in cases.iter().enumerate() {
        let mut text = b"RTPMIC_DEST=127.0.0.1:5004\n".to_vec();
        text.extend_from_slice(line);
        let env = env_file(dir.path(), &format!("{i}.env"), &text);
        let o = check_config(&env);
        let err = one_config_error(&o, &String::from_utf8_lossy(line));
        assert!(err.starts_with(&format!("config: {key}=")), "{err}");
        assert!(err.contains("control character"), "{err}");
        assert!(
            !err.contains(['\0', '\x01', '\x1b', '\x07', '\x7f']),
            "escaped: {err:?}"
        );
    }
    // The same through the process environment.
    let o = rtpmic(
        &["check-config".as_ref()],
        &[("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_DEVICE", "hw:0\x1b[2J")],
    );
    let err = one_config_error(&o, "ESC in RTPMIC_DEVICE");
    assert!(
        err.starts_with("config: RTPMIC_DEVICE=") && !err.contains('\x1b'),
        "{err:?}"
    );
    // Ordinary text still passes.
    let o = rtpmic(
        &["check-config".as_ref()],
        &[("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_CNAME", "Tür A@intercom-7")],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

/// Item 5: IPv6 zone ids. A link-local destination with its interface is accepted and printed
/// back as written; the SDP `c=` line carries the address only (RFC 8866 has no zone syntax).
#[test]
fn ipv6_zone_ids_are_accepted_printed_back_and_kept_out_of_the_sdp() {
    let dest = "[fe80::1%eth0]:5004,[ff02::1%2]:5006,10.0.0.1:5004";
    let o = rtpmic(&["check-config".as_ref()], &[("RTPMIC_DEST", dest)]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.lines().any(|l| l == format!("RTPMIC_DEST={dest}")),
        "{}",
        o.stdout
    );
    let o = rtpmic(&["sdp".as_ref()], &[("RTPMIC_DEST", dest)]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("c=IN IP6 fe80::1\r\n"), "{}", o.stdout);
    assert!(!o.stdout.contains('%'), "no zone in the SDP: {}", o.stdout);

    // The bind address: its interface must exist (it is local), and is printed back by name.
    let o = rtpmic(
        &["check-config".as_ref()],
        &[("RTPMIC_DEST", "127.0.0.1:5004"), ("RTPMIC_BIND", "[fe80::1%lo]:6000")],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.lines().any(|l| l == "RTPMIC_BIND=[fe80::1%lo]:6000"),
        "{}",
        o.stdout
    );

    for (key, value, why) in [
        ("RTPMIC_DEST", "[2001:db8::1%eth0]:5004", "link-local"),
        ("RTPMIC_DEST", "[fe80::1%]:5004", "zone"),
        ("RTPMIC_DEST", "[fe80::1%eth/0]:5004", "zone"),
        ("RTPMIC_DEST", "[fe80::1%averyverylongname0]:5004", "zone"),
        ("RTPMIC_BIND", "[fe80::1%nosuch9]:6000", "no network interface"),
    ] {
        let mut keys = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        keys.retain(|(k, _)| *k != key);
        keys.push((key, value));
        let o = rtpmic(&["check-config".as_ref()], &keys);
        let err = one_config_error(&o, value);
        assert!(
            err.starts_with(&format!("config: {key}=")) && err.contains(why),
            "{value}: {err}"
        );
    }
}

/// Two namespaces joined by veth with fixed link-local addresses; removed on drop.
struct LinkLocalPair {
    a: String,
    b: String,
    va: String,
    vb: String,
}

impl LinkLocalPair {
    fn create() -> LinkLocalPair {
        let id = std::process::id() % 10_000;
        let p = LinkLocalPair {
            a: format!("rtpmic-zone-a-{id}"),
            b: format!("rtpmic-zone-b-{id}"),
            va: format!("rza{id}"),
            vb: format!("rzb{id}"),
        };
        for cmd in [
            format!("ip netns add {}", p.a),
            format!("ip netns add {}", p.b),
            format!(
                "ip link add {} netns {} type veth peer name {} netns {}",
                p.va, p.a, p.vb, p.b
            ),
            format!("ip -n {} link set {} up", p.a, p.va),
            format!("ip -n {} link set {} up", p.b, p.vb),
            format!("ip -n {} addr add fe80::a/64 dev {} nodad", p.a, p.va),
            format!("ip -n {} addr add fe80::b/64 dev {} nodad", p.b, p.vb),
        ] {
            let st = Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        p
    }
}

impl Drop for LinkLocalPair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

/// Item 5 end to end: a stream to `[fe80::b%veth]:5004` from `[fe80::a%veth]:6000` crosses a
/// veth link between two namespaces; the receiver sees every packet from that source, and RTCP
/// from port 6001 on port 5005 (the zone survives the port + 1).
#[test]
fn a_link_local_destination_with_a_zone_receives_the_stream() {
    let board = SimBoard::shared();
    let infile = board.infile("in.raw", &two_tone(8000, 3.0));
    let net = LinkLocalPair::create();
    let (ns_b, vb) = (net.b.clone(), net.vb.clone());
    let receiver = std::thread::spawn(move || {
        let fd = File::open(format!("/run/netns/{ns_b}")).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let index = nix::net::if_::if_nametoindex(vb.as_str()).unwrap();
        let addr = std::net::SocketAddrV6::new("fe80::b".parse().unwrap(), 5004, 0, index);
        let socket = UdpSocket::bind(addr).unwrap();
        let rtcp = UdpSocket::bind(std::net::SocketAddrV6::new("fe80::b".parse().unwrap(), 5005, 0, index)).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 2048];
        let (_, from) = socket.peek_from(&mut buf).unwrap();
        let pkts = Receiver { socket }.collect(10_000, Duration::from_secs(5), Duration::from_secs(1));
        // RTCP went to the same zone, port + 1: at least the BYE at the end (RFC 3550 §6.6).
        rtcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let rtcp_from = rtcp.recv_from(&mut buf).ok().map(|(_, a)| a);
        (from, pkts, rtcp_from)
    });
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.a, RTPMIC, "run", "--seconds", "2"]);
    board.apply_env(&mut cmd, &infile);
    let out = cmd
        .env("RTPMIC_DEVICE", "simfile")
        .env("RTPMIC_CODEC", "pcmu")
        .env("RTPMIC_DEST", format!("[fe80::b%{}]:5004", net.va))
        .env("RTPMIC_BIND", format!("[fe80::a%{}]:6000", net.va))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("[fe80::b%{}]:5004", net.va)),
        "the log names the zone: {log}"
    );
    let (from, pkts, rtcp_from) = receiver.join().unwrap();
    assert_eq!(from.ip().to_string(), "fe80::a", "sent from RTPMIC_BIND");
    assert_eq!(from.port(), 6000);
    let rtcp_from = rtcp_from.expect("RTCP reached the zoned destination's port + 1");
    assert_eq!(
        (rtcp_from.ip().to_string().as_str(), rtcp_from.port()),
        ("fe80::a", 6001)
    );
    assert_eq!(pkts.len(), 100, "2 s of 20 ms packets\n{log}");
    assert_clean_stream(&pkts, 0, 160);
}

/// Item 6: a number too large for any integer type is "out of range", not "not a whole number".
#[test]
fn a_huge_number_is_out_of_range() {
    let huge = "99999999999999999999";
    for (key, value) in [
        ("RTPMIC_BITRATE", huge.to_string()),
        ("RTPMIC_SSRC", huge.to_string()),
        ("RTPMIC_SSRC", format!("0x{huge}")),
        ("RTPMIC_STATS_INTERVAL_S", "-5".to_string()),
        ("RTPMIC_DEST", format!("127.0.0.1:{huge}")),
        ("RTPMIC_BIND", format!("127.0.0.1:{huge}")),
    ] {
        let mut keys = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        keys.retain(|(k, _)| *k != key);
        keys.push((key, value.as_str()));
        let err = one_config_error(&rtpmic(&["check-config".as_ref()], &keys), &value);
        assert!(
            err.contains("out of range") && !err.contains("not a whole number"),
            "{key}={value}: {err}"
        );
    }
}

/// Item 7: the last assignment of a key wins, and an empty one means the default, so a later
/// `KEY=` resets what an earlier line set (as systemd's EnvironmentFile= does).
#[test]
fn the_last_assignment_wins_and_an_empty_one_resets_to_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_file(
        dir.path(),
        "rtpmic.env",
        b"RTPMIC_DEST=127.0.0.1:5004\nRTPMIC_BITRATE=12000\nRTPMIC_BITRATE=\nRTPMIC_DSCP=10\nRTPMIC_DSCP=12\n",
    );
    let o = check_config(&env);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.lines().any(|l| l == "RTPMIC_BITRATE=32000"),
        "reset: {}",
        o.stdout
    );
    assert!(
        o.stdout.lines().any(|l| l == "RTPMIC_DSCP=12"),
        "last wins: {}",
        o.stdout
    );
}

/// Item 8: RTCP goes to the bind port + 1, so port 65535 leaves none (it would land on a
/// random port); likewise a destination's RTCP port. With rtcp-mux or RTCP off it is fine.
#[test]
fn port_65535_is_refused_while_rtcp_needs_the_next_port() {
    for (key, value) in [("RTPMIC_BIND", "127.0.0.1:65535"), ("RTPMIC_DEST", "127.0.0.1:65535")] {
        let mut keys = vec![("RTPMIC_DEST", "127.0.0.1:5004")];
        keys.retain(|(k, _)| *k != key);
        keys.push((key, value));
        let err = one_config_error(&rtpmic(&["check-config".as_ref()], &keys), value);
        assert!(
            err.starts_with(&format!("config: {key}=")) && err.contains("RTCP"),
            "{err}"
        );
        for (k, v) in [("RTPMIC_RTCP_MUX", "on"), ("RTPMIC_RTCP", "off")] {
            let mut with = keys.clone();
            with.push((k, v));
            let o = rtpmic(&["check-config".as_ref()], &with);
            assert_eq!(o.code, Some(0), "{key}={value} with {k}={v}: {}", o.stderr);
        }
    }
}

/// A streaming `rtpmic run --env-file`, its log in a file; killed on drop if still running.
struct Running {
    child: Child,
    log: PathBuf,
    rx: Receiver,
    env: PathBuf,
    board: SimBoard,
}

impl Running {
    fn start(extra: &str) -> Running {
        let board = SimBoard::shared();
        let rx = Receiver::bind();
        let env = board.dir.path().join("rtpmic.env");
        let log = board.dir.path().join("rtpmic.log");
        std::fs::write(&env, good_env(&rx, extra)).unwrap();
        let infile = board.infile("in.raw", &two_tone(48_000, 60.0));
        let child = board
            .rtpmic(&infile)
            .args(["run", "--env-file"])
            .arg(&env)
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let r = Running {
            child,
            log,
            rx,
            env,
            board,
        };
        let first = r.rx.collect(25, Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(first.len(), 25, "stream started: {}", r.log());
        r
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Replaces the env file by `make_new` (it builds the new file at the given temporary
    /// path), as an editor or config tool would (rename over), then SIGHUP.
    fn reload(&self, make_new: impl FnOnce(&Path)) {
        let tmp = self.board.dir.path().join("rtpmic.env.new");
        let _ = std::fs::remove_file(&tmp);
        make_new(&tmp);
        std::fs::rename(&tmp, &self.env).unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
    }

    /// The stream goes on: 50 packets (1 s at 20 ms) within 3 s, one SSRC, no gap.
    fn assert_streaming(&self, after: &str) {
        let pkts = self.rx.collect(50, Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(pkts.len(), 50, "streaming after {after}: {}", tail(&self.log()));
        for w in pkts.windows(2) {
            assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "gap after {after}");
            assert_eq!(w[1].ssrc, w[0].ssrc, "restart after {after}");
        }
    }

    /// SIGTERM stops it within 2 s, exit 0; returns the log.
    fn stop(mut self) -> String {
        let asked = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_for(&mut self.child, Duration::from_secs(5));
        let log = self.log();
        let status = status.unwrap_or_else(|| panic!("no exit 5 s after SIGTERM: {}", tail(&log)));
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "stopped after {:?}",
            asked.elapsed()
        );
        assert!(status.success(), "{status}: {}", tail(&log));
        log
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill(&mut self.child);
        }
    }
}

fn good_env(rx: &Receiver, extra: &str) -> String {
    format!(
        "RTPMIC_DEVICE=simfile\nRTPMIC_STATS_INTERVAL_S=0\nRTPMIC_DEST={}\n{extra}",
        rx.dest()
    )
}

/// The last 3000 bytes of a log, for failure messages.
fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(3000);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

/// Item 2 on SIGHUP: an env file with 4000 duplicate destinations is rejected in a few short
/// lines; the stream goes on and SIGTERM still stops it at once.
#[test]
fn sighup_with_4000_duplicate_destinations_is_rejected_quickly() {
    let r = Running::start("");
    let dest = vec![r.rx.dest(); 4000].join(",");
    let text = format!("RTPMIC_DEVICE=simfile\nRTPMIC_STATS_INTERVAL_S=0\nRTPMIC_DEST={dest}\n");
    assert!(text.len() <= 64 * 1024, "{}", text.len());
    r.reload(|p| std::fs::write(p, &text).unwrap());
    r.assert_streaming("4000 duplicates");
    let log = r.stop();
    assert!(log.len() < 20_000, "{} bytes of log", log.len());
    assert!(
        log.contains("listed twice") && log.contains("rejected"),
        "{}",
        tail(&log)
    );
}

/// Item 2 on SIGHUP: the env file replaced by a FIFO (once: the main thread blocked for good,
/// SIGTERM ignored) or by a symlink to /dev/zero (once: abort) is rejected at once.
#[test]
fn sighup_with_a_fifo_or_dev_zero_as_env_file_is_rejected_at_once() {
    let r = Running::start("");
    r.reload(mkfifo);
    r.assert_streaming("a FIFO");
    r.reload(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    r.assert_streaming("/dev/zero");
    let good = good_env(&r.rx, "RTPMIC_BITRATE=24000\n");
    r.reload(|p| std::fs::write(p, &good).unwrap());
    r.assert_streaming("a good file again");
    let log = r.stop();
    assert_eq!(log.matches("not a regular file").count(), 2, "{}", tail(&log));
    assert!(log.contains("reload: applied live: RTPMIC_BITRATE"), "{}", tail(&log));
}

/// Item 1 on SIGHUP: the reload error is logged (ERROR, to the journal under systemd) with
/// the file, the line and the key, never the key's text.
#[test]
fn sighup_with_a_syntax_error_logs_the_line_not_the_secret() {
    let r = Running::start("");
    let bad = good_env(
        &r.rx,
        &format!("RTPMIC_SRTP=AES_CM_128_HMAC_SHA1_80\nRTPMIC_SRTP_KEY={SECRET_KEY} rotated 2026-12-01\n"),
    );
    r.reload(|p| std::fs::write(p, &bad).unwrap());
    r.assert_streaming("a syntax error");
    let log = r.stop();
    assert!(
        !log.contains(&SECRET_KEY[..8]) && !log.contains("rotated"),
        "{}",
        tail(&log)
    );
    assert!(
        log.lines()
            .any(|l| l.contains("line 5") && l.contains("RTPMIC_SRTP_KEY") && l.contains("rtpmic.env")),
        "{}",
        tail(&log)
    );
}
