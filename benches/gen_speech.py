#!/usr/bin/env python3
"""Speech-like test signal for benches/run.sh: raw S16_LE mono, deterministic.

Usage: gen_speech.py RATE SECONDS OUT [UNIQUE_SECONDS]

Eight harmonics of a slowly gliding pitch (a random walk within 90-220 Hz, new target
every 250 ms), a syllable-rate amplitude envelope (150-300 ms raised-sine syllables, one in
five silent), and a little white noise. Standard library only; the same arguments always
give the same bytes. To keep generation quick, UNIQUE_SECONDS (default 60) of signal are
computed and then repeated up to SECONDS.
"""
import array
import math
import random
import sys

HARMONICS = (1.0, 0.7, 0.55, 0.6, 0.35, 0.2, 0.12, 0.08)


def generate(rate, seconds, rng):
    n = int(rate * seconds)
    out = array.array("h", bytes(2 * n))
    ctrl_step = rate // 4
    pitch_a = pitch_b = 140.0
    syl_left, syl_len, syl_amp = 0, 1, 0.0
    theta = 0.0
    two_pi = 2.0 * math.pi
    sin, cos, pi = math.sin, math.cos, math.pi
    gauss = rng.gauss
    h = HARMONICS
    for i in range(n):
        r = i % ctrl_step
        if r == 0:
            pitch_a = pitch_b
            pitch_b = min(220.0, max(90.0, pitch_a + rng.uniform(-30.0, 30.0)))
        if syl_left == 0:
            syl_len = int(rate * rng.uniform(0.15, 0.30))
            syl_left = syl_len
            syl_amp = 0.0 if rng.random() < 0.2 else rng.uniform(0.35, 0.8)
        f0 = pitch_a + (pitch_b - pitch_a) * (r / ctrl_step)
        theta += two_pi * f0 / rate
        if theta > two_pi:
            theta -= two_pi
        env = syl_amp * sin(pi * (syl_len - syl_left) / syl_len)
        syl_left -= 1
        # sin(k*theta) by the Chebyshev recurrence: two trig calls per sample, not eight.
        # (8 * 220 Hz < 4 kHz, so every harmonic is below Nyquist even at 8 kHz.)
        c2 = 2.0 * cos(theta)
        s_prev, s_cur = 0.0, sin(theta)
        acc = 0.0
        for a in h:
            acc += a * s_cur
            s_prev, s_cur = s_cur, c2 * s_cur - s_prev
        x = int((0.22 * env * acc + 0.004 * gauss(0.0, 1.0)) * 32767.0)
        out[i] = 32767 if x > 32767 else (-32768 if x < -32768 else x)
    return out


def main():
    rate, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    unique = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    block = generate(rate, min(unique, seconds), random.Random(20240601))
    if sys.byteorder != "little":
        block.byteswap()
    data = block.tobytes()
    total = 2 * int(rate * seconds)
    with open(path, "wb") as f:
        written = 0
        while written < total:
            piece = data[: total - written]
            f.write(piece)
            written += len(piece)


if __name__ == "__main__":
    main()
