//! `rtpmic`: command line. See `rtpmic --help` and README.md.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::{error, info, warn};

use rtpmic::config::{Config, KEYS};
use rtpmic::ops::events::{Event, EventWatch};
use rtpmic::ops::receivers::{self, ReceiverWatch, Thresholds};
use rtpmic::pipeline::{Pipeline, RunOptions};
use rtpmic::probe::{DynamicCodec, ProbeOptions};
use rtpmic::rt::now_ns;
use rtpmic::rtp::sdp;

/// sysexits.h EX_CONFIG: bad configuration (systemd's RestartPreventExitStatus=78).
const EX_CONFIG: u8 = 78;
/// sysexits.h EX_UNAVAILABLE: could not start (a socket option, the source address, or
/// io_uring when asked for by name).
const EX_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "rtpmic",
    version,
    about = "Microphone (ALSA) → Opus / PCMU / PCMA / L16 → RTP over UDP, for IP intercoms.",
    after_help = keys_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture and stream until SIGTERM/SIGINT (or --seconds).
    Run {
        /// Read RTPMIC_* keys from this file instead of the environment.
        #[arg(long, value_name = "PATH")]
        env_file: Option<PathBuf>,
        /// Stop by itself after this many seconds of audio.
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
        /// Never drop when a ring is full; wait instead. For benchmarks reading a file faster
        /// than real time, never for a live microphone.
        #[arg(long)]
        no_drop: bool,
    },
    /// Print the effective configuration, or every problem (one line each, exit 78).
    CheckConfig {
        #[arg(long, value_name = "PATH")]
        env_file: Option<PathBuf>,
    },
    /// Listen for a stream and print, once a second, packets, loss, reordering, jitter and
    /// audio level; answer with RTCP receiver reports. Exit status 1 when nothing arrives.
    Probe {
        /// Where to listen: a local address or multicast group, and the RTP port.
        #[arg(value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// Seconds to wait for the first packet before giving up.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// Stop after this many seconds (default: at Ctrl-C / SIGTERM).
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
        /// Write the decoded audio (mono 16-bit) to this WAV file at the end.
        #[arg(long, value_name = "PATH")]
        wav: Option<PathBuf>,
        /// What a dynamic payload type (96..127) carries.
        #[arg(long, value_enum, default_value_t = DynamicCodec::Opus)]
        dynamic: DynamicCodec,
        /// Sample rate of dynamic L16.
        #[arg(long, default_value_t = 48_000)]
        l16_rate: u32,
    },
    /// Print the SDP (RFC 8866) a receiver needs to play the stream.
    Sdp {
        #[arg(long, value_name = "PATH")]
        env_file: Option<PathBuf>,
        /// Which RTPMIC_DEST entry the SDP is for (0 = the first).
        #[arg(long, default_value_t = 0)]
        dest: usize,
    },
}

fn keys_help() -> String {
    let mut s = String::from("Configuration keys (environment or --env-file; empty value = default):\n");
    for k in KEYS {
        s.push_str(&format!(
            "  {:<24} default {}\n  {:<24} allowed {}\n",
            k.name, k.default, "", k.allowed
        ));
    }
    s.push_str("\nExit status: 0 stopped cleanly, 78 bad configuration, 69 could not start (sockets, io_uring).");
    s
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { env_file } => match load(env_file) {
            Ok(c) => {
                print!("{}", c.to_env_lines());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Sdp { env_file, dest } => match load(env_file) {
            Ok(c) => print_sdp(&c, dest),
            Err(code) => code,
        },
        Command::Probe {
            listen,
            timeout,
            seconds,
            wav,
            dynamic,
            l16_rate,
        } => {
            let o = ProbeOptions {
                listen,
                timeout: Duration::from_secs(timeout),
                seconds,
                wav,
                dynamic,
                l16_rate,
            };
            probe(&o)
        }
        Command::Run {
            env_file,
            seconds,
            no_drop,
        } => match load(env_file) {
            Ok(c) => run(&c, RunOptions { seconds, no_drop }),
            Err(code) => code,
        },
    }
}

/// Loads the config or prints every problem and yields exit status 78.
fn load(env_file: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(env_file.as_deref()).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EX_CONFIG)
    })
}

fn print_sdp(config: &Config, index: usize) -> ExitCode {
    match sdp::for_destination(config, index) {
        Some(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("--dest {index}: RTPMIC_DEST has {} entries", config.dest.len());
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// `rtpmic probe`: lines on stdout, a summary on stderr, exit 1 when nothing arrived.
fn probe(o: &ProbeOptions) -> ExitCode {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    match rtpmic::probe::run(o, &stop, &mut std::io::stdout()) {
        Ok(s) => {
            eprintln!(
                "probe: ssrc={} received={} lost={} reordered={} duplicates={} jitter={:.2}ms invalid={} other_sources={} rr_sent={}",
                s.ssrc.map_or("-".into(), |v| format!("{v:#010x}")),
                s.received,
                s.lost,
                s.reordered,
                s.duplicates,
                s.jitter_ms,
                s.invalid,
                s.other_sources,
                s.rr_sent
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::FAILURE
        }
    }
}

const SIGNAL: Token = Token(0);
const EXITED: Token = Token(1);

fn run(config: &Config, opts: RunOptions) -> ExitCode {
    rtpmic::ops::log::init(config.log_level);
    // Signals first, so a SIGTERM during start-up is not lost.
    let signals = match signal_pipe() {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let dests: Vec<String> = config.dest.iter().map(|d| d.to_string()).collect();
    info!(
        "starting: device={} codec={} rate={} frame_ms={} payload_type={} dest={}",
        config.device,
        config.codec.name(),
        config.rate,
        f64::from(config.frame_us) / 1000.0,
        config.payload_type,
        dests.join(",")
    );
    let (pipeline, report) = match Pipeline::start(config, opts) {
        Ok(p) => p,
        Err(e) => {
            error!("cannot start: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    for u in &report.unresolved {
        warn!("destination not resolved yet, retrying in the background: {u}");
    }
    if let Some(e) = &report.memory_lock {
        warn!("mlockall refused ({e}); pages may be swapped out");
    }
    match &report.sender_fallback {
        None => info!("sender: {}", report.sender),
        Some(why) => info!("sender: {} (io_uring unavailable: {why})", report.sender),
    }
    if let Some(path) = &config.sdp_file {
        match sdp::write_file(config, path) {
            Ok(()) => info!("SDP written to {}", path.display()),
            Err(e) => warn!("cannot write RTPMIC_SDP_FILE={}: {e}", path.display()),
        }
    }
    let resolved = report.destinations.iter().flatten().count();
    info!(
        "started: ssrc={:#010x} to {resolved} of {} destination(s)",
        report.ssrc,
        report.destinations.len()
    );
    main_loop(&pipeline, config, signals);
    // On a signal this was already asked; when a thread ended by itself (--seconds, or a
    // failure), the others must stop too.
    pipeline.request_stop();
    let rtcp_in = pipeline.rtcp_in().clone();
    let stats = pipeline.join();
    if config.rtcp {
        info!("rtcp_in: {}", receivers::summary(&rtcp_in));
    }
    info!("destinations: {}", stats.destination_summary(&dests));
    info!("stopped: {}", stats.summary());
    ExitCode::SUCCESS
}

/// Waits for a signal or the pipeline's end, logging counter changes every second and the
/// stats line every STATS_INTERVAL_S.
fn main_loop(pipeline: &Pipeline, config: &Config, mut signals: UnixStream) {
    let Ok(mut poll) = Poll::new() else { return };
    let mut events = Events::with_capacity(4);
    let sig_fd = std::os::fd::AsRawFd::as_raw_fd(&signals);
    let exit_fd = pipeline.exit_fd();
    let registered = poll
        .registry()
        .register(&mut SourceFd(&sig_fd), SIGNAL, Interest::READABLE)
        .and_then(|_| {
            poll.registry()
                .register(&mut SourceFd(&exit_fd), EXITED, Interest::READABLE)
        });
    if let Err(e) = registered {
        error!("cannot wait for signals: {e}");
        return;
    }
    let stats = pipeline.stats();
    let names: Vec<String> = config.dest.iter().map(|d| d.to_string()).collect();
    let mut watch = EventWatch::default();
    let mut receiver_watch = ReceiverWatch::default();
    let thresholds = Thresholds {
        loss_percent: f64::from(config.rr_loss_warn_percent),
        jitter_ms: f64::from(config.rr_jitter_warn_ms),
    };
    let interval_ns = u64::from(config.stats_interval_s) * 1_000_000_000;
    let mut next_stats = now_ns() + interval_ns;
    let mut rt_warned = false;
    loop {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_secs(1))) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                error!("poll: {e}");
                return;
            }
        }
        for ev in events.iter() {
            if ev.token() == SIGNAL {
                let mut buf = [0u8; 64];
                let _ = signals.read(&mut buf);
                info!("stopping on signal");
                pipeline.request_stop();
                return;
            }
            pipeline.clear_exit_fd();
        }
        if pipeline.any_finished() {
            return;
        }
        if pipeline.realtime_refused() && !rt_warned {
            rt_warned = true;
            warn!(
                "SCHED_RR at priority {} refused; running at normal priority",
                config.rt_priority
            );
        }
        let now = now_ns();
        for r in watch.poll(stats, now) {
            match r.event {
                Event::DeviceError => {
                    warn!(
                        "{}: {} new, {} in all: {} (retrying)",
                        r.event.name(),
                        r.new,
                        r.total,
                        stats.device_error()
                    )
                }
                _ => warn!("{}: {} new, {} in all", r.event.name(), r.new, r.total),
            }
        }
        if let Ok(t) = pipeline.rtcp_in().receivers.lock() {
            for w in receiver_watch.poll(&t, thresholds, now) {
                warn!("{w}");
            }
        }
        if interval_ns > 0 && now >= next_stats {
            next_stats = now + interval_ns;
            info!("destinations: {}", stats.destination_summary(&names));
            if config.rtcp {
                info!("rtcp_in: {}", receivers::summary(pipeline.rtcp_in()));
            }
            info!("stats: {}", stats.summary());
        }
    }
}

/// A socket that becomes readable when SIGTERM or SIGINT arrives (signal-hook's self-pipe).
fn signal_pipe() -> std::io::Result<UnixStream> {
    let (rx, tx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
    }
    Ok(rx)
}
