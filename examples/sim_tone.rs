//! Writes an endless test signal for board/sim to stdout: raw S16_LE mono at the rate given
//! as the first argument (default 48000). A 440 Hz + 1 kHz two-tone, 1 s on, 0.5 s off, so a
//! listener hears at once whether the stream flows and how long its gaps are.
//!
//! `cargo run --release --example sim_tone -- 48000 > fifo`

use std::io::Write;

fn main() {
    let rate: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(48_000);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let cycle = rate as u64 * 3 / 2;
    let mut i: u64 = 0;
    loop {
        let t = i as f64 / f64::from(rate);
        let on = i % cycle < u64::from(rate);
        let v = if on {
            0.25 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                + 0.12 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
        } else {
            0.0
        };
        let s = (v * 32767.0) as i16;
        if out.write_all(&s.to_le_bytes()).is_err() {
            return; // the reader went away
        }
        i += 1;
    }
}
