//! Writes the seed corpus, fuzz/seeds/<target>/, from the real code: env files from
//! systemd/rtpmic.env's keys and from `Config::to_env_lines`, RTCP compound packets built with
//! rtcp-types, RED payloads from `RedEncoder`.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds [-- OUT_DIR]
//!
//! The seeds are committed; rerun this only to change them.

use std::path::{Path, PathBuf};

use rtcp_types::prelude::*;
use rtcp_types::{App, Bye, ReceiverReport, ReportBlock, RtcpWriteError, Sdes, SdesChunk, SdesItem, SenderReport};
use rtpmic::config::{Config, KEYS};
use rtpmic::rtp::red::RedEncoder;

const OUR_SSRC: u32 = 0xabc;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn packet(p: &impl RtcpPacketWriter) -> Result<Vec<u8>, RtcpWriteError> {
    let mut buf = vec![0u8; p.calculate_size()?];
    let n = p.write_into(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn report_block(about: u32, lsr: u32, dlsr: u32) -> rtcp_types::ReportBlockBuilder {
    ReportBlock::builder(about)
        .fraction_lost(64)
        .cumulative_lost(0x00ff_fffe)
        .extended_sequence_number(0x0001_03e8)
        .interarrival_jitter(480)
        .last_sender_report_timestamp(lsr)
        .delay_since_last_sender_report_timestamp(dlsr)
}

fn sdes(ssrc: u32, cname: &str) -> Vec<u8> {
    let s = Sdes::builder().add_chunk(SdesChunk::builder(ssrc).add_item(SdesItem::builder(SdesItem::CNAME, cname)));
    packet(&s).unwrap()
}

fn rtcp_seeds(dir: &Path) {
    let t = "rtcp_in";
    // An RR about us, as a GStreamer or ffmpeg receiver sends it: RR + SDES CNAME.
    let rr =
        packet(&ReceiverReport::builder(0x77).add_report_block(report_block(OUR_SSRC, 0x0001_0000, 0x8000))).unwrap();
    write(dir, t, "rr-about-us", &rr);
    let mut c = rr.clone();
    c.extend(sdes(0x77, "user@receiver"));
    write(dir, t, "rr-sdes-about-us", &c);
    // Two report blocks, one about someone else.
    let rr2 = packet(
        &ReceiverReport::builder(0x78)
            .add_report_block(report_block(0x999, 0, 0))
            .add_report_block(report_block(OUR_SSRC, 0, 0)),
    )
    .unwrap();
    write(dir, t, "rr-two-blocks", &rr2);
    // A sender report (a receiver that also sends) with a block about us, + SDES.
    let sr = packet(
        &SenderReport::builder(0x4242)
            .ntp_timestamp(0xe9a1_0000_8000_0000)
            .rtp_timestamp(123_456)
            .packet_count(50)
            .octet_count(4000)
            .add_report_block(report_block(OUR_SSRC, 0xe9a1_0000, 0x0001_0000)),
    )
    .unwrap();
    let mut c = sr.clone();
    c.extend(sdes(0x4242, "intercom-2"));
    write(dir, t, "sr-sdes-about-us", &c);
    // RR + SDES + BYE: a receiver leaving.
    let mut c = rr.clone();
    c.extend(sdes(0x77, "user@receiver"));
    c.extend(packet(&Bye::builder().add_source(0x77).reason("bye")).unwrap());
    write(dir, t, "rr-sdes-bye", &c);
    // Unrelated: a report about another stream; an empty RR (no blocks) + SDES.
    write(
        dir,
        t,
        "rr-unrelated",
        &packet(&ReceiverReport::builder(0x77).add_report_block(report_block(0x999, 0, 0))).unwrap(),
    );
    let mut c = packet(&ReceiverReport::builder(0x79)).unwrap();
    c.extend(sdes(0x79, "idle"));
    write(dir, t, "rr-empty-sdes", &c);
    // APP after an RR; a lone BYE.
    let mut c = rr.clone();
    c.extend(packet(&App::builder(0x77, "test").data(&[1, 2, 3, 4])).unwrap());
    write(dir, t, "rr-app", &c);
    write(dir, t, "bye", &packet(&Bye::builder().add_source(0x77)).unwrap());
    // Truncated: cut inside the report block.
    write(dir, t, "rr-truncated", &rr[..rr.len() - 6]);
}

fn red_seeds(dir: &Path) {
    let mut red = RedEncoder::new(121, 3);
    let mut out = [0u8; 1440];
    let mut ts = 1000u32;
    for (i, len) in [3usize, 20, 60, 120].into_iter().enumerate() {
        let frame: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
        let n = red.write(&frame, ts, &mut out).unwrap();
        write(dir, "red_parse", &format!("red-{i}"), &out[..n]);
        ts += 120;
    }
    // Round trip inputs: depth, buffer size / 6, then (length / 6, step / 120, first byte).
    write(
        dir,
        "red_roundtrip",
        "depth3",
        &[3, 200, 1, 1, 7, 2, 1, 9, 3, 1, 11, 4, 1, 13],
    );
    write(
        dir,
        "red_roundtrip",
        "tight-buffer",
        &[2, 4, 2, 1, 7, 2, 1, 9, 1, 1, 11],
    );
    write(
        dir,
        "red_roundtrip",
        "jump-reset",
        &[1, 100, 2, 1, 7, 2, 0xff, 9, 2, 0xfe, 11, 2, 1, 13],
    );
}

fn probe_seeds(dir: &Path) {
    let rec = |seq: u16, ts: u32, step: u16| {
        let mut r = seq.to_be_bytes().to_vec();
        r.extend(ts.to_be_bytes());
        r.extend(step.to_be_bytes());
        r
    };
    // Across the wrap with a late packet, a duplicate and a report.
    let mut v = Vec::new();
    for (i, seq) in [65533u16, 65534, 65535, 1, 0, 0, 2, 2].into_iter().enumerate() {
        v.extend(rec(seq, i as u32 * 960, 960));
    }
    v.extend(rec(0, 0, 0xffff));
    write(dir, "probe_stats", "wrap-reorder-dup", &v);
    // Paced with jitter and a gap.
    let mut v = Vec::new();
    for i in 0..20u16 {
        let seq = if i >= 10 { i + 5 } else { i };
        v.extend(rec(seq, u32::from(seq) * 960, if i % 2 == 0 { 900 } else { 1020 }));
    }
    v.extend(rec(0, 0, 0xffff));
    write(dir, "probe_stats", "jitter-gap", &v);
}

fn config_seeds(dir: &Path) {
    let template = include_str!("../../systemd/rtpmic.env");
    write(dir, "config_env_file", "rtpmic.env-template", template.as_bytes());
    // Every key of the template with its documented example value, uncommented.
    let filled: String = template
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("# ").unwrap_or(l);
            let (k, _) = l.split_once('=')?;
            KEYS.iter().any(|s| s.name == k).then(|| l.to_string())
        })
        .map(|l| {
            if l == "RTPMIC_DEST=" {
                "RTPMIC_DEST=192.0.2.10:5004".into()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    write(dir, "config_env_file", "all-keys", filled.as_bytes());
    write(dir, "config_pairs", "all-keys", filled.as_bytes());
    let env = |pairs: &[(&str, &str)]| {
        let c = Config::from_pairs(pairs.iter().copied()).unwrap();
        c.to_env_lines()
    };
    let examples: [(&str, &[(&str, &str)]); 5] = [
        (
            "opus-multi-dest",
            &[
                (
                    "RTPMIC_DEST",
                    "192.0.2.10:5004,[2001:db8::10]:5004,239.1.1.1:5004,intercom-2.local:5004",
                ),
                ("RTPMIC_OPUS_FEC", "on"),
                ("RTPMIC_CHANNELS", "2"),
                ("RTPMIC_CHANNEL", "mix"),
                ("RTPMIC_SDP_FILE", "/run/rtpmic/stream.sdp"),
                ("RTPMIC_MULTICAST_IF", "eth0"),
            ],
        ),
        (
            "pcmu",
            &[
                ("RTPMIC_DEST", "10.0.0.2:5004"),
                ("RTPMIC_CODEC", "pcmu"),
                ("RTPMIC_FRAME_MS", "30"),
            ],
        ),
        (
            "l16-44k1",
            &[
                ("RTPMIC_DEST", "10.0.0.2:5004"),
                ("RTPMIC_CODEC", "l16"),
                ("RTPMIC_RATE", "44100"),
                ("RTPMIC_PAYLOAD_TYPE", "11"),
                ("RTPMIC_BIND", "[::1]:6000"),
            ],
        ),
        (
            "red-2.5ms",
            &[
                ("RTPMIC_DEST", "10.0.0.2:5004"),
                ("RTPMIC_FRAME_MS", "2.5"),
                ("RTPMIC_REDUNDANCY", "3"),
                ("RTPMIC_OPUS_LOSS_PERCENT", "12"),
                ("RTPMIC_SSRC", "0xdeadbeef"),
            ],
        ),
        (
            "srtp",
            &[
                ("RTPMIC_DEST", "10.0.0.2:5004"),
                ("RTPMIC_SRTP", "AES_CM_128_HMAC_SHA1_80"),
                ("RTPMIC_SRTP_KEY", "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
            ],
        ),
    ];
    for (name, pairs) in examples {
        let mut text = env(pairs);
        if name == "srtp" {
            // to_env_lines hides the key; put the real one back.
            text = text.replace(
                "RTPMIC_SRTP_KEY=(set)",
                "RTPMIC_SRTP_KEY=WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            );
        }
        write(dir, "config_pairs", name, text.as_bytes());
        write(dir, "config_env_file", name, text.as_bytes());
    }
    // The env file syntax (src/config/env_file.rs): quotes, escapes, comments, export, CRLF,
    // and `${HOME}` kept as written (no expansion).
    write(
        dir,
        "config_env_file",
        "dotenv-syntax",
        b"# comment\r\nexport RTPMIC_DEST=\"10.0.0.2:5004\" # trailing\r\nRTPMIC_DEVICE='plughw:1,0'\r\nRTPMIC_CNAME=\"door \\\"A\\\"\"\r\nRTPMIC_SDP_FILE=${HOME}/x.sdp\r\nRTPMIC_LOG_LEVEL=debug\r\n",
    );
    // IPv6 zones, a key repeated then reset by an empty assignment, `$` in a value.
    write(
        dir,
        "config_env_file",
        "zones-and-repeats",
        b"RTPMIC_DEST=[fe80::1%eth0]:5004,[ff02::1%2]:5006\nRTPMIC_BIND=[fe80::2%lo]:6000\nRTPMIC_BITRATE=12000\nRTPMIC_BITRATE=\nRTPMIC_CNAME='door $1'\n",
    );
    // One-byte keys: KEYS[byte % KEYS.len()] (config_pairs only).
    let mut short = Vec::new();
    for (i, k) in KEYS.iter().enumerate() {
        if k.name == "RTPMIC_DEST" {
            short.extend([i as u8, b'=']);
            short.extend(b"10.0.0.2:5004\n");
        }
        if k.name == "RTPMIC_CODEC" {
            short.extend([i as u8, b'=']);
            short.extend(b"pcma\n");
        }
    }
    short.extend(b"PATH=/usr/bin\nRTPMIC_TYPO=1\n");
    write(dir, "config_pairs", "one-byte-keys", &short);
}

fn main() {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    config_seeds(&dir);
    rtcp_seeds(&dir);
    red_seeds(&dir);
    probe_seeds(&dir);
    println!("seeds written to {}", dir.display());
}
