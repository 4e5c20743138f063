#!/usr/bin/env python3
"""Content lost and repeated at route changes, from what every sink's monitor heard.

usage: route_loss.py CASE SWITCHES REF.wav JSON LOG SINK=REC.raw ...
       route_loss.py --header

REF.wav is the speech the player was given (mono 16-bit); each REC.raw is a sink monitor's
recording (s16le mono at REF's rate, parecord --raw), labelled with its sink's name (an
unplugged sink that came back is a new recording with the same label). JSON is applay
--json's output and LOG its -v log. Prints one TSV row (the columns are in HEADER).

Each recording splits into playing periods: stretches of sound separated by more than
PERIOD_GAP_S of silence (the stream is on another sink for seconds between them; the
speech's own pauses are shorter). A period is placed in the reference by its last half
second, then followed BLOCK_MS at a time, each block located by normalised cross-correlation
below 4 kHz near where the one before it was (the path resamples to the sink's rate and back,
a fractional-sample delay an integer lag would otherwise miss at a fricative's 5-10 kHz): a
jump in the content (a replay, a skip) moves the rest, and a block across a jump is placed
SUB_MS at a time at the lag on either side. That counts, for every reference sample, how
many times some sink played it. Sorted by where they sit in the reference, consecutive
periods on different sinks meet at a switch; within AROUND_MS of it, the reference's sound
(1 ms frames with a sample above 1% of full scale) played by no sink is lost, and played twice
or more (on both sinks, or twice on one) is repeated.

These are positions in the content, not wall-clock time: a switch the server makes by moving
the stream can read 0 ms lost and 0 ms repeated and still have had a moment of silence while
the stream moved (the recordings share no clock, so that silence is not measured here; the
recreate path's gap is, from the library's log).
"""
import json
import re
import statistics
import sys
import wave

import numpy as np

HEADER = ["case", "switches", "switches_found", "mid_sound", "server_moves", "recreates",
          "frames_replayed", "underruns", "gap_ms_median", "gap_ms_max", "gaps",
          "lost_ms_median", "lost_ms_max", "repeated_ms_median", "repeated_ms_max",
          "per_switch"]
SOUND = 0.01  # 1% of full scale: the speech's extent, as tests/common/speech.rs has it
PERIOD_GAP_S = 1.0
EDGE_S = 0.5
BLOCK_MS = 20.0
SUB_MS = 2.0
QUIET = 0.003  # a block this quiet (rms) is not placed by correlation on its own
GOOD = 0.93  # a block placed at r >= this (clean playback reads 0.95-0.99; voiced speech matches
# itself a pitch period or two away at 0.9)
AROUND_MS = 100.0  # each switch's reading: the reference this far either side of it
NEAR_MS = 5.0  # reference sound this close to a cut: the cut fell inside sound, not a pause


def lowpass(x, rate, fc=4000.0):
    """Below fc with a raised-cosine edge 500 Hz wide, zero phase (lags stay what they were)."""
    n = 1 << int(np.ceil(np.log2(len(x) + 1)))
    f = np.fft.rfftfreq(n, 1 / rate)
    mask = np.clip((fc + 250 - f) / 500, 0, 1)
    mask = 0.5 - 0.5 * np.cos(np.pi * mask)
    return np.fft.irfft(np.fft.rfft(x, n) * mask, n)[: len(x)]


def locate(seg, ref):
    """Where seg sits in ref: (offset, normalised correlation there), over every offset."""
    m = len(seg)
    n = 1 << int(np.ceil(np.log2(len(ref) + m)))
    num = np.fft.irfft(np.fft.rfft(ref, n) * np.conj(np.fft.rfft(seg, n)), n)[: len(ref) - m + 1]
    c = np.concatenate([[0.0], np.cumsum(ref * ref)])
    energy = c[m:] - c[: len(ref) - m + 1]
    r = num / np.sqrt(np.maximum(energy, 1e-12) * float(np.dot(seg, seg)))
    at = int(np.argmax(r))
    return at, float(r[at])


def periods(x, rate):
    """(first, last) sound sample of each playing period."""
    idx = np.flatnonzero(np.abs(x) > SOUND)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > PERIOD_GAP_S * rate)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


def track(x_lp, a, b, ref_lp, lag0, rate):
    """Each recording sample of the period a..b mapped into the reference: (recording
    start, reference start, length) pieces. BLOCK_MS blocks are located near the previous
    good block's lag (a jump in the content, such as a replay, moves the rest); a block that
    matches nowhere well (it straddles a jump, or it is too quiet to place) is placed
    SUB_MS at a time at the lag before it or after it, whichever fits, or left out where
    neither does (the sink was silent while the reference sounded)."""
    blk, sub, win = int(BLOCK_MS * rate / 1000), int(SUB_MS * rate / 1000), int(0.06 * rate)
    lags, lag = [], lag0
    for s in range(a, b + 1, blk):
        seg = x_lp[s : min(s + blk, b + 1)]
        lo = max(s + lag - win, 0)
        hi = min(s + lag + win + len(seg), len(ref_lp))
        ok = None
        if np.sqrt(np.mean(seg * seg)) >= QUIET and hi - lo > len(seg):
            # The lag so far first: a search alone can lock onto the same voiced sound a
            # pitch period or two away.
            if 0 <= s + lag and s + lag + len(seg) <= len(ref_lp):
                want = ref_lp[s + lag : s + lag + len(seg)]
                r = float(np.dot(seg, want)) / np.sqrt(max(float(np.dot(seg, seg)) * float(np.dot(want, want)), 1e-12))
                if r >= GOOD:
                    ok = lag
            if ok is None:
                at, r = locate(seg, ref_lp[lo:hi])
                if r >= GOOD:
                    ok = lo + at - s
                    lag = ok
        lags.append((s, len(seg), ok))
    good = [l for _, _, l in lags if l is not None]
    if not good:
        return []
    pieces, prev = [], None
    for k, (s, n, ok) in enumerate(lags):
        if ok is not None:
            pieces.append((s, s + ok, n))
            prev = ok
            continue
        nxt = next((l for _, _, l in lags[k + 1 :] if l is not None), None)
        cands = [c for c in {prev, nxt} if c is not None]
        for t in range(s, s + n, sub):
            seg = x_lp[t : min(t + sub, s + n)]
            e_seg = float(np.dot(seg, seg))
            best = None
            for c in cands:
                if t + c < 0 or t + c + len(seg) > len(ref_lp):
                    continue
                want = ref_lp[t + c : t + c + len(seg)]
                err = float(np.sum((seg - want) ** 2))
                e_ref = float(np.dot(want, want))
                # A match, or both silent there (nothing of the reference's sound at stake).
                if err <= 0.25 * max(e_ref, e_seg) or max(e_ref, e_seg) < (QUIET * QUIET * len(seg)):
                    if best is None or err < best[0]:
                        best = (err, c)
            if best is not None:
                pieces.append((t, t + best[1], len(seg)))
    return pieces


def main():
    if sys.argv[1:] == ["--header"]:
        print("\t".join(HEADER))
        return
    case, switches, ref_path, json_path, log_path, *recs = sys.argv[1:]
    w = wave.open(ref_path)
    rate = w.getframerate()
    ref = np.frombuffer(w.readframes(w.getnframes()), "<i2")[:: w.getnchannels()] / 32768.0
    ref_lp = lowpass(ref, rate)
    edge = int(EDGE_S * rate)
    covered = []  # per period: (reference first, reference last, sink, low-confidence blocks)
    count = np.zeros(len(ref), np.int32)  # how many times each reference sample was played
    for spec in recs:
        sink, _, path = spec.partition("=")
        x = np.fromfile(path, "<i2") / 32768.0
        x_lp = lowpass(x, rate)
        for a, b in periods(x, rate):
            # The period's last half second places it (its head may hold a jump).
            t0 = max(b + 1 - edge, a)
            tail_at, _ = locate(x_lp[t0 : b + 1], ref_lp)
            pieces = track(x_lp, a, b, ref_lp, tail_at - t0, rate)
            if not pieces:
                continue
            for _, at, n in pieces:
                count[max(at, 0) : max(at + n, 0)] += 1
            # Where the period's placed audio starts and ends in the reference (sound at its
            # edges that matched nowhere is not counted as played).
            first = pieces[0][1]
            last = pieces[-1][1] + pieces[-1][2] - 1
            covered.append((first, last, sink))
    covered.sort()
    # A pause in the speech longer than PERIOD_GAP_S splits one period in two: the same sink
    # on both sides is one period, not a switch.
    merged = []
    for c in covered:
        if merged and merged[-1][2] == c[2]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], c[1]), c[2])
        else:
            merged.append(c)
    # The reference in 1 ms frames: sound where any sample is above SOUND; lost where most of
    # a sound frame was played by no sink, repeated where most of it was played twice or more.
    fr = rate // 1000
    nf = len(ref) // fr
    loud_f = (np.abs(ref[: nf * fr]) > SOUND).reshape(nf, fr).any(axis=1)
    c = count[: nf * fr].reshape(nf, fr)
    lost_f = loud_f & ((c == 0).sum(axis=1) > fr // 2)
    rep_f = loud_f & ((c >= 2).sum(axis=1) > fr // 2)
    loud = np.abs(ref) > SOUND
    near = int(NEAR_MS * rate / 1000)
    around = int(AROUND_MS * rate / 1000)
    lost, repeated, notes = [], [], []
    for old, new in zip(merged, merged[1:]):
        end_old, start_new = old[1], new[0]
        f0 = max(min(end_old, start_new) - around, 0) // fr
        f1 = (max(end_old, start_new) + around) // fr
        lost_ms = float(lost_f[f0:f1].sum()) * fr / rate * 1e3
        rep_ms = float(rep_f[f0:f1].sum()) * fr / rate * 1e3
        # Was the reference sounding where the old sink stopped or the new one started? A
        # switch inside a pause between words hides loss and repetition in the silence.
        # Sound anywhere between them counts too: a change in a pause that also lost the
        # next word's onset is not hidden.
        mid = bool(loud[end_old + 1 : max(start_new, end_old + 1 + near)].any()
                   or loud[max(start_new - near, 0) : start_new].any())
        notes.append(f"{old[2]}>{new[2]}@{end_old / rate:.2f}s:lost={lost_ms:.1f}"
                     f",rep={rep_ms:.1f}{'' if mid else ',pause'}")
        if mid:
            lost.append(lost_ms)
            repeated.append(rep_ms)
    m = json.load(open(json_path))
    gaps = [float(g) for g in re.findall(r"route change gap ([0-9.]+) ms", open(log_path).read())]

    def stat(v, f):
        return f"{f(v):.1f}" if v else "-"

    row = [case, switches, str(len(merged) - 1), str(len(lost)), str(m.get("server_moves", "-")),
           # The first open is a recreate too (reason "initial"): only the route changes count.
           str(m["recreates"] - 1), str(m.get("frames_replayed", "-")), str(m.get("underruns", "-")),
           stat(gaps, statistics.median), stat(gaps, max), str(len(gaps)),
           stat(lost, statistics.median), stat(lost, max),
           stat(repeated, statistics.median), stat(repeated, max), " ".join(notes)]
    print("\t".join(row))


if __name__ == "__main__":
    main()
