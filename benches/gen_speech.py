#!/usr/bin/env python3
"""Speech-like test signal for benches/run.sh: raw S16_LE mono, deterministic.

Usage: gen_speech.py RATE SECONDS OUT [UNIQUE_SECONDS]

A crude source-filter voice: a glottal pulse train (pitch gliding within 90-220 Hz, with
jitter) plus aspiration noise, through three formant resonators whose targets change with
every syllable (vowel-like), shaped by a syllable envelope; fricative noise bursts between
some syllables; pauses of a few hundred milliseconds between phrases. Good enough that
libopus's speech/music analysis treats it as speech (SILK / hybrid modes), which a plain
sum of steady harmonics is not.

Standard library only; the same arguments always give the same bytes. To keep generation
quick, UNIQUE_SECONDS (default 60) of signal are computed and then repeated up to SECONDS.
"""
import array
import math
import random
import sys

# (F1, F2, F3) Hz of a few vowels.
VOWELS = (
    (730, 1090, 2440),  # a
    (530, 1840, 2480),  # e
    (270, 2290, 3010),  # i
    (570, 840, 2410),  # o
    (300, 870, 2240),  # u
    (640, 1190, 2390),  # schwa-ish
)
BANDWIDTHS = (80.0, 100.0, 140.0)
UPDATE = 32  # samples between filter-coefficient updates (formant glides)
TARGET_RMS = 2600.0  # of the whole block, in S16 units: about -22 dBFS


def resonator(freq, bw, rate):
    """Two-pole resonator coefficients (a1, a2, gain) with unit gain at DC-ish scale."""
    r = math.exp(-math.pi * bw / rate)
    c = 2.0 * r * math.cos(2.0 * math.pi * freq / rate)
    return c, -r * r, 1.0 - c + r * r


def generate(rate, seconds, rng):
    n = int(rate * seconds)
    out = array.array("d", bytes(8 * n))
    nyq = rate / 2.0
    rnd = rng.random
    # Filter states (cascade of three resonators) and a fricative resonator.
    y = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    fy1 = fy2 = 0.0
    fric_f = min(4500.0, 0.8 * nyq)
    fa1, fa2, fg = resonator(fric_f, 1500.0, rate)
    # Per-segment state.
    seg_left = 0
    seg_len = 1
    kind = "pause"  # "voiced", "fricative", "pause"
    amp = 0.0
    cur = list(VOWELS[5])
    start = list(cur)
    target = list(cur)
    f0 = 130.0
    f0_start = f0_end = f0
    phase = 1.0
    glottal = 0.0
    coefs = [resonator(cur[k], BANDWIDTHS[k], rate) for k in range(3)]
    i = 0
    for i in range(n):
        if seg_left == 0:
            u = rnd()
            if kind == "voiced" and u < 0.3:
                kind = "fricative"
                seg_len = int(rate * (0.05 + 0.1 * rnd()))
                amp = 0.15 + 0.2 * rnd()
            elif kind != "pause" and u < 0.4:
                kind = "pause"
                seg_len = int(rate * (0.1 + 0.4 * rnd()))
                amp = 0.0
            else:
                kind = "voiced"
                seg_len = int(rate * (0.12 + 0.2 * rnd()))
                amp = 0.5 + 0.5 * rnd()
                start = list(cur)
                target = list(VOWELS[int(rnd() * len(VOWELS))])
                f0_start = f0
                f0_end = min(220.0, max(90.0, f0 + (rnd() - 0.55) * 60.0))
            seg_left = seg_len
        pos = (seg_len - seg_left) / seg_len
        seg_left -= 1
        env = amp * math.sin(math.pi * pos)
        if kind == "voiced":
            if i % UPDATE == 0:
                # Formants glide to the new vowel over the first 40 % of the syllable.
                g = min(1.0, pos / 0.4)
                for k in range(3):
                    cur[k] = start[k] + (target[k] - start[k]) * g
                    coefs[k] = resonator(min(cur[k], 0.9 * nyq), BANDWIDTHS[k], rate)
                f0 = f0_start + (f0_end - f0_start) * pos
            # Glottal pulses: one per period, with ~1 % jitter; a one-pole low-pass shapes them.
            phase += f0 / rate
            pulse = 0.0
            if phase >= 1.0:
                phase -= 1.0 - 0.01 * (rnd() - 0.5)
                pulse = 1.0
            glottal = 0.9 * glottal + pulse
            x = env * (glottal + 0.08 * (rnd() - 0.5))
            # Cascade of three formant resonators.
            a1, a2, gn = coefs[0]
            v = gn * x + a1 * y[0] + a2 * y[1]
            y[1] = y[0]
            y[0] = v
            a1, a2, gn = coefs[1]
            v = gn * v + a1 * y[2] + a2 * y[3]
            y[3] = y[2]
            y[2] = v
            a1, a2, gn = coefs[2]
            v = gn * v + a1 * y[4] + a2 * y[5]
            y[5] = y[4]
            y[4] = v
            s = 0.5 * v
        else:
            # Let the formant filters ring out, silent input.
            for k in (0, 2, 4):
                y[k + 1] = y[k]
                y[k] *= 0.5
            fx = env * (rnd() - 0.5) if kind == "fricative" else 0.0
            fv = fg * fx + fa1 * fy1 + fa2 * fy2
            fy2 = fy1
            fy1 = fv
            s = fv
        out[i] = s + 0.0015 * (rnd() - 0.5)
    # The resonators' gain depends on the rate: scale the block to one level for every rate.
    scale = TARGET_RMS / math.sqrt(sum(v * v for v in out) / n)
    pcm = array.array("h", bytes(2 * n))
    for i, v in enumerate(out):
        x = int(v * scale)
        pcm[i] = 32767 if x > 32767 else (-32768 if x < -32768 else x)
    return pcm


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
