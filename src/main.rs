//! `rtpmic`: command line. See `rtpmic --help` and README.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::{error, warn};

use rtpmic::config::{Config, KEYS};
use rtpmic::ops::log::{self, Installed};
use rtpmic::ops::service::{self, ServiceError};
use rtpmic::pipeline::RunOptions;
use rtpmic::probe::{DynamicCodec, ProbeOptions, Target};
use rtpmic::rtp::sdp;

/// sysexits.h EX_CONFIG: bad configuration (systemd's RestartPreventExitStatus=78).
const EX_CONFIG: u8 = 78;
/// sysexits.h EX_UNAVAILABLE: could not start (a socket option, the source address, or
/// io_uring when asked for by name).
const EX_UNAVAILABLE: u8 = 69;
/// A command-line mistake (as clap exits for one).
const EX_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "rtpmic",
    version,
    about = "Microphone (ALSA) → Opus / PCMU / PCMA / L16 → RTP over UDP, for IP intercoms, and served over RTSP (rtsp://board:8554/mic) when RTPMIC_RTSP_LISTEN is set; `rtpmic probe` checks a stream (UDP or rtsp://).",
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
    /// Check a stream: listen on ADDR:PORT or pull an rtsp:// URL; print loss, jitter and level.
    ///
    /// Prints, once a second, packets, loss, reordering, jitter and the decoded audio level,
    /// and answers with RTCP receiver reports. Listens on ADDR:PORT, or pulls an rtsp:// URL
    /// as an NVR would (RTSP/1.0: RTP interleaved on the TCP connection, or --udp; Digest or
    /// Basic credentials from the URL; TEARDOWN at the end). Exit status 1 when nothing
    /// arrives, or when the RTSP server refuses (one line on stderr says why).
    Probe {
        /// Where to listen (a local address or multicast group, and the RTP port), or what to
        /// pull: rtsp://[USER:PASSWORD@]HOST[:PORT]/PATH (user and password percent-encoded).
        #[arg(value_name = "ADDR:PORT | rtsp://URL")]
        target: String,
        /// RTSP: get RTP over UDP (an even/odd local port pair) instead of interleaved on the
        /// RTSP connection (TCP).
        #[arg(long)]
        udp: bool,
        /// Seconds to wait for the first packet before giving up (RTSP: also for each answer),
        /// 1 to 86400.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
        /// Stop after this many seconds (default: at Ctrl-C / SIGTERM).
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
        /// Write the decoded audio (mono 16-bit) to this WAV file at the end.
        #[arg(long, value_name = "PATH")]
        wav: Option<PathBuf>,
        /// What a dynamic payload type (96..127) carries (listening; RTSP reads the SDP).
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
            k.name,
            k.default.text(),
            "",
            k.allowed
        ));
    }
    s.push_str("\nExit status: 0 stopped cleanly, 78 bad configuration, 69 could not start (sockets, io_uring), 1 a thread stuck in the device driver at stop, or the stream could not go on.");
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
            target,
            udp,
            timeout,
            seconds,
            wav,
            dynamic,
            l16_rate,
        } => {
            // Parsed here, not by clap: clap's error would repeat the value, password and all.
            let target = match Target::parse(&target) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("probe: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            if udp && matches!(target, Target::Listen(_)) {
                eprintln!("probe: --udp is for rtsp:// URLs (ADDR:PORT is always UDP)");
                return ExitCode::from(EX_USAGE);
            }
            let o = ProbeOptions {
                target,
                udp,
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
        } => match load(env_file.clone()) {
            Ok(c) => run(
                c,
                env_file,
                RunOptions {
                    seconds,
                    no_drop,
                    ..RunOptions::default()
                },
            ),
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
    if config.srtp.as_ref().is_some_and(|s| s.random_key) {
        eprintln!(
            "RTPMIC_SRTP_KEY is unset: each start makes its own key, which only the running rtpmic knows; read the SDP from RTPMIC_SDP_FILE, or set RTPMIC_SRTP_KEY"
        );
        return ExitCode::from(EX_CONFIG);
    }
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
    match rtpmic::probe::run(o, &stop, &mut std::io::stdout(), &mut std::io::stderr()) {
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

/// `rtpmic run`: logging, then the service loop (src/ops/service.rs).
fn run(config: Config, env_file: Option<PathBuf>, opts: RunOptions) -> ExitCode {
    if let Installed::StderrJournaldFailed(e) = log::init(config.log_level, config.log_target) {
        warn!(
            event = "log",
            "RTPMIC_LOG_TARGET=journald: journal socket unavailable ({e}); logging to stderr"
        );
    }
    match service::run(config, env_file, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ServiceError::StuckThread) => {
            error!(event = "stuck", "{e}; exiting without it");
            ExitCode::FAILURE
        }
        Err(e @ (ServiceError::Start(_) | ServiceError::Signals(_))) => {
            error!(event = "error", "{e}");
            ExitCode::from(EX_UNAVAILABLE)
        }
        // Never 0 when the service could not go on: systemd's Restart=on-failure restarts it.
        Err(e @ (ServiceError::MainLoop(_) | ServiceError::StreamEnded)) => {
            error!(event = "error", "{e}");
            ExitCode::FAILURE
        }
    }
}
