#!/usr/bin/env python3
"""The user's original render path (issue 5 reference): per 10 ms callback, take
round(block * in/out) int16 samples, convert to float, resample them on their own with
np.interp (no state carried between blocks), duplicate to stereo float32. Prints the same TSV
columns as benches/resample.rs.

usage: numpy_block.py SPEECH.wav
"""
import sys
import time
import wave

import numpy as np

PAIRS = [(22050, 48000), (24000, 48000), (16000, 44100)]
AMP = 0.9


class Path:
    def __init__(self, x, in_rate, out_rate):
        self.x, self.pos = x, 0
        self.block = out_rate // 100
        self.in_n = round(self.block * in_rate / out_rate)
        self.grid = np.linspace(0, self.in_n - 1, self.block)
        self.idx = np.arange(self.in_n)

    def run(self):
        chunk = self.x[self.pos:self.pos + self.in_n]
        self.pos += self.in_n
        if len(chunk) < self.in_n:
            chunk = np.concatenate([chunk, np.zeros(self.in_n - len(chunk), np.int16)])
        f = chunk.astype(np.float32) / 32768.0
        y = np.interp(self.grid, self.idx, f).astype(np.float32)
        return np.repeat(y, 2)


def measure(y, rate, freq):
    n = np.arange(len(y))
    w = 2 * np.pi * freq / rate
    basis = np.stack([np.sin(w * n), np.cos(w * n)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    fit = basis @ np.array([a, b])
    sinad = 10 * np.log10(np.sum(fit ** 2) / max(np.sum((y - fit) ** 2), 1e-300))
    gain = 20 * np.log10(np.hypot(a, b) / AMP)
    return sinad, gain, -np.arctan2(b, a) / w


def played_freq(y, rate, freq):
    """The tone's actual frequency (per-block rounding changes the tempo and pitch)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), 16 * len(y)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-300)
    k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return k * rate / (16 * len(y))


def quality(in_rate, out_rate, freq):
    x = np.round(np.sin(2 * np.pi * freq / in_rate * np.arange(int(2 * in_rate))) * AMP * 32768)
    p = Path(x.astype(np.int16), in_rate, out_rate)
    want = round(len(x) * out_rate / in_rate)
    y = np.concatenate([p.run()[0::2] for _ in range(want // p.block + 1)])[:want]
    skip = out_rate // 10
    mid = y[skip:want - skip]
    f = played_freq(mid, out_rate, freq)
    # SINAD and gain of the tone as played; drift = how far the content's timeline runs off,
    # ms per minute (a tone played at f instead of freq is a tempo error of f / freq - 1).
    s, g, _ = measure(mid, out_rate, f)
    return s, g, (f / freq - 1) * 60000


def main():
    with wave.open(sys.argv[1]) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    for a, b in PAIRS:
        p = Path(speech, a, b)
        blocks = len(speech) // p.in_n - 2
        times = np.empty(blocks)
        for i in range(blocks):
            t = time.perf_counter_ns()
            p.run()
            times[i] = time.perf_counter_ns() - t
        times = times[10:]
        med, mean = np.median(times) / p.block, times.mean() / p.block
        p99 = np.percentile(times, 99)
        s1, g1, drift = quality(a, b, 1000.0)
        s9, g9, _ = quality(a, b, min(9000.0, a * 0.41))
        print(f"numpy-block\t{a}->{b}\t{med:.3f}\t{mean:.3f}\t{p99:.0f}\t{s1:.1f}\t{s9:.1f}"
              f"\t{g1:.3f}\t{g9:.3f}\t0.00\t{drift:.2f}", flush=True)


if __name__ == "__main__":
    main()
