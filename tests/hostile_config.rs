//! Hostile configuration through the real process: env files that are not files, are huge, or
//! hide a secret in a syntax error. Each is checked with `rtpmic check-config` / `run` / `sdp`
//! as an installer or systemd runs them, and the reload cases with SIGHUP on a streaming rtpmic.

mod common;

use std::fs::File;
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
