#!/usr/bin/env python3
"""Aggregates scripts/bench.sh's runs into a table (stdout) and docs/PERFORMANCE.md with two
PNG plots. Medians over the processes of the run; every figure was measured in this run.

usage: report.py ROWS.tsv LIVE.tsv 'HIST*.tsv' OUT_DIR [STRETCH.tsv [ROUTE.tsv]]
       report.py --route ROUTE.tsv PERFORMANCE.md

The second form puts the route section into an existing PERFORMANCE.md, in place of the one
there or before the targets, and leaves the rest as it is (`bench.sh route` on its own, which
must not regenerate the perf sections, nor drop what was written into them by hand).

LIVE.tsv holds `key<TAB>value` lines; the streaming runs' keys are prefixed `streamN:`, and
their figures are reported per run and as the median over runs. HIST is a glob: the callback
histograms of all runs are summed. STRETCH.tsv is benches/stretch.rs's output, one block per
process: `meta` lines and one row per candidate and speed. ROUTE.tsv is scripts/bench.sh
route's table (benches/route_loss.py's rows, then `meta` lines); without the argument, the
route.tsv beside ROWS.tsv if there is one: `bench.sh perf` and `bench.sh route` are run
apart, and each must render the other's section as it was.
"""
import os
import glob
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone

COLS = ["med", "mean", "p99", "s1", "s9", "g1", "g9", "lat", "drift"]
OURS = {"linear": "audioplay linear", "high": "audioplay high", "producer": "audioplay producer (linear)",
        "producer-high": "audioplay producer (high)",
        "linear-gainpan": "audioplay linear + gain 0.7, pan 0.4",
        "linear-limiter": "audioplay linear + gain 2.5 (limiter)"}
NAMES = {"numpy-block": "original numpy per-block", "src-linear": "libsamplerate linear",
         "src-sinc-medium": "libsamplerate sinc-medium", "speex-3": "speexdsp q3 (cubeb)",
         "speex-10": "speexdsp q10", "soxr-hq": "soxr HQ", "rubato-fft": "rubato Fft",
         "rubato-sinc": "rubato sinc 256", **OURS}
ORDER = ["linear", "high", "producer", "producer-high", "linear-gainpan", "linear-limiter",
         "numpy-block", "src-linear",
         "src-sinc-medium", "speex-3", "speex-10", "soxr-hq", "rubato-fft", "rubato-sinc"]
MAIN = "22050->48000"
PAIRS = ["22050->48000", "24000->48000", "16000->44100"]


def load(path):
    runs = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 11:
            continue
        for c, v in zip(COLS, f[2:]):
            runs[(f[0], f[1])][c].append(float(v))
    return {k: {c: statistics.median(v) for c, v in d.items()} | {"n": len(d["mean"])}
            for k, d in runs.items()}


STRETCH_COLS = ["ns", "held", "lat", "dur", "f0", "sinad"]
STRETCH_NAMES = {"ours": "audioplay WSOLA", "libsonic-q0": "libsonic, quality 0 (its default)",
                 "libsonic-q1": "libsonic, quality 1"}


def load_stretch(path):
    """Per (candidate, speed): each column's values over the processes; and the meta lines'
    values over the processes."""
    rows = defaultdict(lambda: defaultdict(list))
    meta = defaultdict(list)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if f[0] == "meta" and len(f) == 3:
            meta[f[1]].append(f[2])
        elif len(f) == 2 + len(STRETCH_COLS):
            for c, v in zip(STRETCH_COLS, f[2:]):
                rows[(f[0], float(f[1]))][c].append(float(v))
    return rows, meta


def vals(v):
    """One figure if every process gave it, else each process's."""
    return v[0] if len(set(v)) == 1 else " / ".join(v)


def stretch_section(path, w):
    rows, meta = load_stretch(path)
    if not rows:
        return
    n = max(len(d["ns"]) for d in rows.values())
    speeds = sorted({s for _, s in rows})
    med = {k: {c: statistics.median(v) for c, v in d.items()} for k, d in rows.items()}
    w("## Speed without pitch change (issue 16 §1)")
    w("")
    w(f"benches/stretch.rs, {n} process{'es' if n != 1 else ''} pinned to CPU 1 (scripts/bench.sh perf runs one per")
    w("round, between the render-path runs), each 7 rounds with every candidate and speed")
    w("interleaved: our WSOLA (src/dsp/stretch.rs, on the writing thread) beside libsonic (dlopen,")
    w("linked by nothing) at its two quality settings, on the same espeak-ng speech")
    w(f"({meta['seconds'][0]} s, {meta['rate'][0]} Hz, median pitch {meta['f0_hz'][0]} Hz) "
      "written 10 ms at a time.")
    w("")
    w("ns per output frame: the median over processes of each process's median round (the range")
    w("over processes in brackets); x ours: each process against ours in it, the median. Content")
    w("held back: the most input taken but not yet output; added latency heard is that content at")
    w("the output's pace (held / speed). Pitch change: per voiced 40 ms window of the output, its")
    w("pitch over the input's where its audio came from, median (checked on speech with a known")
    w("pitch change, below). Tone SINAD: a 2 s steady tone stretched, median over 100 ms windows,")
    w("median over five tones (113, 151, 187, 241, 293 Hz: inside libsonic's 65-400 Hz pitch")
    w("search, none with an exact repeat shorter than a second, so no join lines up by accident);")
    w("a steady tone's ideal stretched output is the same tone, so its SINAD is what the joins")
    same = all(len(set(v)) == 1 for d in rows.values() for c, v in d.items() if c != "ns")
    w("add. " + ("The columns after the timing are the same in every process." if same else
                 "The columns after the timing are medians over processes (they differed)."))
    w("")
    w("| candidate | speed | ns / output frame | x ours | content held back (ms) | added latency heard (ms) | duration / ideal | pitch change | tone SINAD (dB) |")
    w("|---|---|---|---|---|---|---|---|---|")
    for s in speeds:
        for c in STRETCH_NAMES:
            if (c, s) not in med:
                continue
            d, ns = med[(c, s)], rows[(c, s)]["ns"]
            # Each process against ours in the same process, then the median: a slow process
            # (this VM has them) slows every candidate in it.
            ours = rows.get(("ours", s), {}).get("ns", [])
            x = f"{statistics.median(a / b for a, b in zip(ns, ours)):.1f}" if len(ours) == len(ns) else "-"
            w(f"| {STRETCH_NAMES[c]} | {s:g}x | {d['ns']:.1f} ({min(ns):.1f}-{max(ns):.1f}) | {x} | "
              f"{d['held']:.1f} | {d['lat']:.1f} | {d['dur']:.4f} | {d['f0']:+.1f}% | {d['sinad']:.1f} |")
    w("")
    tones = [(k.split("_", 3)[3].replace("_", " "), v) for k, v in meta.items()
             if k.startswith("tone_sinad_db_")]
    if tones:
        same = all(len(set(v)) == 1 for _, v in tones)
        w("Each tone's SINAD (dB; 113 / 151 / 187 / 241 / 293 Hz; "
          + ("the same in every process):" if same else "the first process; they differ between processes):"))
        w("")
        for name, v in tones:
            w(f"- {name}: {' / '.join(v[0].split())}")
        w("")
    lags = [(k.split("_", 3)[3].replace("_", " "), v) for k, v in meta.items()
            if k.startswith("content_lag_ms_")]
    if lags:
        w("Where each output's content sits against the nominal place (output time x speed), ms,")
        w("found from the loudness envelopes (the pitch change compares each output window with")
        w("the input there; one figure where every process gave the same): "
          + "; ".join(f"{n} {vals(v)}" for n, v in lags) + ".")
        w("")
    what = {"shift_+5.00": "read 5% faster (pitch +5.00%)", "shift_-4.76": "read 5% slower (-4.76%)",
            "blocks_dropped_1.5x": "every third 20 ms block left out (1.5x, pitch unmoved, content "
                                   "behind the nominal place like a stretch's: 0%)",
            "blocks_dropped_shift_+5.00": "both (+5.00%)"}
    checks = [(k[len("check_f0_"):-len("_reads")], v) for k, v in meta.items()
              if k.startswith("check_f0_") and k.endswith("_reads")]
    if checks:
        w("The pitch figure, checked in every process before use on the speech altered by a known")
        w("amount (the bench stops if any reads more than 0.2 points off): "
          + "; ".join(f"{what.get(n, n)} reads {vals(v)}%" for n, v in checks) + ".")
        w("")
    for k, v in meta.items():
        if k == "missing":
            w(f"Not measured: {v[0]}.")
            w("")


ROUTE_CASES = {
    "same-format-switch": "default switch, 48 kHz <-> 48 kHz stereo",
    "other-rate-switch": "default switch, 48 kHz <-> 44.1 kHz stereo",
    "unplug-same-format": "unplug (sink in use unloaded), 48 kHz <-> 48 kHz",
    "unplug-other-rate": "unplug (sink in use unloaded), 48 kHz <-> 44.1 kHz",
}


def route_section(path, w):
    rows, meta = [], {}
    lines = open(path).read().splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        f = line.split("\t")
        if f[0] == "meta" and len(f) == 3:
            meta[f[1]] = f[2]
        elif len(f) == len(header):
            rows.append(dict(zip(header, f)))
    if not rows:
        return
    w("## Route changes (issue 14 §2)")
    w("")
    w(f"`scripts/bench.sh route`, measured {meta.get('date', '?')}: on a private PulseAudio server")
    w("(null sinks, each with a keep-alive stream as hardware would have), `applay --json -v` plays")
    w(f"{meta.get('speech_s', '?')} s of espeak-ng speech (22050 Hz mono, no sentence repeated) while")
    w("the route changes every 3 s, and every sink's monitor is recorded at 22050 Hz (parecord,")
    w("10 ms latency). A default switch is `pactl set-default-sink` to the other sink; an unplug")
    w("unloads the sink the speech plays on (the server rescues its streams to the other sink),")
    w("makes the remaining sink the default and loads the unplugged one again for a later round.")
    w("benches/route_loss.py splits each recording into playing periods and follows each through")
    w("the reference 20 ms at a time by cross-correlation below 4 kHz (2 ms at a time across a")
    w("jump in the content), which counts how many times each part of the reference was played;")
    w("around each change it reads the reference's sound that no sink played (lost) and that was")
    w("played twice or more, on both sinks or twice on one (repeated).")
    w("")
    w("| case | changes (found) | in sound | kept (server moves) | recreated | route gap (ms) median / max | lost (ms) median / max | repeated (ms) median / max | frames replayed | underruns |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for d in rows:
        w(f"| {ROUTE_CASES.get(d['case'], d['case'])} | {d['switches']} ({d['switches_found']}) | "
          f"{d['mid_sound']} | {d['server_moves']} | {d['recreates']} | "
          f"{d['gap_ms_median']} / {d['gap_ms_max']} | {d['lost_ms_median']} / {d['lost_ms_max']} | "
          f"{d['repeated_ms_median']} / {d['repeated_ms_max']} | {d['frames_replayed']} | {d['underruns']} |")
    w("")
    w("What the columns measure:")
    w("")
    w("- changes (found): route changes made, and the changes found in the recordings (one")
    w("  sink's playing period giving way to the other's).")
    w("- in sound: the changes where the reference sounds within 5 ms of where the old sink")
    w("  stopped or the new one started, or anywhere between. The lost and repeated figures are")
    w("  over these only: a change inside a pause between words hides whatever was lost or")
    w("  repeated of the pause in its silence, and reads 0 whatever happened.")
    w("- kept / recreated: from applay's JSON, `server_moves`, and `recreates` less the first")
    w("  open.")
    w("- route gap: wall-clock, from the library's log (`route change gap N ms`: from the old")
    w("  stream's stop to the new stream's first sound); only a recreate has one.")
    w("- lost and repeated: positions in the content, not wall-clock time, in 1 ms frames of the")
    w("  reference with a sample above 1% of full scale, within 100 ms of the change. A kept stream")
    w("  can read 0 / 0 and still have been silent for a moment while the server moved it: the")
    w("  recordings share no clock, so that silence is not measured here. An unloaded sink's")
    w("  monitor loses what it had captured but not yet sent (up to the recorder's 10 ms), which")
    w("  would read as lost for an unplug. They resolve 1-2 ms (1 ms frames, 2 ms placement")
    w("  across a jump); audio at a change that matches the reference nowhere well enough to be")
    w("  placed (correlation below 0.93 over 20 ms) counts as not played.")
    w("")
    w("Per change (old > new sink, at the second of the reference where the old sink stopped:")
    w("lost, repeated ms; `pause`: in a pause between words, not in the figures above):")
    w("")
    for d in rows:
        w(f"- {d['case']}: {d['per_switch']}")
    w("")
    if "uptime" in meta:
        w(f"Machine load at the end of the run (shared 2-vCPU VM): `{meta['uptime'].strip()}`.")
        w("")


def verdict(ok):
    return "met" if ok else "**missed**"


def splice_route(route, doc):
    lines = []
    route_section(route, lines.append)
    text = open(doc).read()
    head = "## Route changes (issue 14 §2)"
    if head in text:
        a = text.index(head)
        b = text.find("\n## ", a + len(head))
        rest = text[b + 1 :] if b >= 0 else ""
        text = text[:a] + "\n".join(lines) + "\n" + rest
    else:
        at = text.find("## Targets (issue 5)")
        at = at if at >= 0 else len(text)
        text = text[:at] + "\n".join(lines) + "\n" + text[at:]
    open(doc, "w").write(text)


def main():
    if sys.argv[1] == "--route":
        splice_route(sys.argv[2], sys.argv[3])
        return
    rows, live_path, hist_path, out = sys.argv[1:5]
    r = load(rows)
    live = {}
    runs = defaultdict(dict)
    for line in open(live_path):
        k, _, v = line.rstrip("\n").partition("\t")
        run, sep, key = k.partition(":")
        if sep and run.startswith("stream"):
            runs[key][run] = v
        else:
            live[k] = v
    # Streaming figures: the median over runs (each run's values are listed in the doc).
    for key, by_run in runs.items():
        try:
            live[key] = f"{statistics.median(float(v) for v in by_run.values()):.3f}"
        except ValueError:
            live[key] = next(iter(by_run.values()))
    n_runs = max((len(v) for v in runs.values()), default=0)

    def per_run(key):
        return " / ".join(runs[key][r] for r in sorted(runs[key]))

    merged = defaultdict(float)
    for path in sorted(glob.glob(hist_path)):
        for l in open(path).read().split("\n")[1:]:
            if l:
                u, c = map(float, l.split("\t"))
                merged[u] += c
    hist = sorted(merged.items())
    cands = [c for c in ORDER if (c, MAIN) in r]
    lin = {p: r[("linear", p)]["mean"] for p in PAIRS}

    lines = []
    w = lines.append
    w("# Performance")
    w("")
    w(f"Written by `scripts/bench.sh` on {datetime.now(timezone.utc):%Y-%m-%d} from one run on this")
    w("machine (2 vCPU, benchmarks pinned to CPU 1 with taskset; each figure is the median over")
    w(f"{r[('linear', MAIN)]['n']} processes, candidates interleaved). Workload: 60 s of espeak-ng")
    w("speech, int16 mono, rendered the way a device callback asks for it: 10 ms blocks of float32")
    w("stereo output. Every candidate does the whole path: int16 -> float, resample, mono ->")
    w("stereo. Ours run through the real render path (ring, decode, resampler, channel map, device")
    w("write, metrics) on the virtual device; the references are driven by the same loop")
    w("(benches/resample.rs, benches/refs.c, benches/numpy_block.py).")
    w("")
    w("Cost is the mean over all blocks (a resampler that works in bursts, like soxr, pays in a")
    w("few blocks: see p99). Quality: a -0.9 dBFS int16 sine (int16 alone limits SINAD to 97.2 dB);")
    w("SINAD and gain from a least-squares fit; latency = content consumed ahead of what has")
    w("been output plus output delay; drift = how far the content's timeline runs off, per minute.")
    w("Producer rows are what the callback costs once the writing thread has resampled (that work")
    w("moved off the audio thread, it did not vanish: the writer pays about the callback-mode")
    w("figure); their quality columns are measured through both threads.")
    w("")
    w(f"## {MAIN}")
    w("")
    w("| candidate | ns / output frame | x our linear | ns / 10 ms block | p99 block (us) | SINAD 1 kHz (dB) | SINAD 9 kHz (dB) | gain 1 kHz / 9 kHz (dB) | latency (ms) | drift (ms/min) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for c in cands:
        d = r[(c, MAIN)]
        w(f"| {NAMES[c]} | {d['mean']:.2f} | {d['mean'] / lin[MAIN]:.1f} | {d['mean'] * 480:.0f} | "
          f"{d['p99'] / 1000:.1f} | {d['s1']:.1f} | {d['s9']:.1f} | {d['g1']:+.2f} / {d['g9']:+.2f} | "
          f"{max(d['lat'], 0):.1f} | {d['drift']:.1f} |")
    w("")
    w("## Cost on every pair (ns per output frame, mean)")
    w("")
    w("| candidate | " + " | ".join(PAIRS) + " |")
    w("|---|" + "---|" * len(PAIRS))
    for c in cands:
        w(f"| {NAMES[c]} | " + " | ".join(f"{r[(c, p)]['mean']:.2f}" if (c, p) in r else "-"
                                          for p in PAIRS) + " |")
    w("")
    w("![cost against quality](perf-cost-quality.png)")
    w("")
    if len(sys.argv) > 5:
        stretch_section(sys.argv[5], w)
    route = sys.argv[6] if len(sys.argv) > 6 else os.path.join(os.path.dirname(rows), "route.tsv")
    if os.path.exists(route):
        route_section(route, w)

    def g(c, p=MAIN, k="mean"):
        return r[(c, p)][k]

    t = []
    worst_lin = max(lin.values())
    t.append(("Linear mode <= 1.0 ns/frame on all three pairs", f"{worst_lin:.2f} ns worst", worst_lin <= 1.0))
    t.append((">= 20x faster than the numpy per-block path", f"{g('numpy-block') / lin[MAIN]:.1f}x",
              g("numpy-block") / lin[MAIN] >= 20))
    t.append((">= 4x faster than libsamplerate linear", f"{g('src-linear') / lin[MAIN]:.1f}x",
              g("src-linear") / lin[MAIN] >= 4))
    hq_ok = g("high", k="s1") >= 96 and g("high", k="s9") >= 95 and max(abs(g("high", k="g1")), abs(g("high", k="g9"))) <= 0.1
    t.append(("High: >= 96 dB at 1 kHz, >= 95 dB at 9 kHz, gain within 0.1 dB",
              f"{g('high', k='s1'):.1f} / {g('high', k='s9'):.1f} dB, gain {g('high', k='g1'):+.4f} / {g('high', k='g9'):+.4f} dB", hq_ok))
    t.append(("High: <= 4 ns/frame", f"{g('high'):.2f} ns", g("high") <= 4))
    faster = g("high") <= g("soxr-hq") and g("high") <= g("rubato-fft")
    t.append(("High: no slower than soxr HQ and rubato Fft in the same run",
              f"{g('high'):.2f} vs {g('soxr-hq'):.2f} / {g('rubato-fft'):.2f} ns", faster))
    t.append(("High: latency <= 10 ms", f"{max(g('high', k='lat'), 0):.2f} ms", g("high", k="lat") <= 10))
    med_block = g("high", k="med") * 480
    t.append(("High: bounded per-callback cost, p99 block within 3x the median",
              f"p99 {g('high', k='p99') / 1000:.2f} us, median {med_block / 1000:.2f} us",
              g("high", k="p99") <= 3 * med_block))
    t.append(("Producer mode: callback <= 0.3 ns/frame", f"{g('producer'):.2f} ns", g("producer") <= 0.3))
    p99 = float(live["callback_us_p99"])
    worst = max(float(v) for v in runs["callback_us_max"].values())
    t.append(("Live: callback p99 <= 5 us", f"median of {n_runs} runs {p99:.1f} us (runs: {per_run('callback_us_p99')})", p99 <= 5))
    t.append(("Live: callback max <= 50 us", f"worst of {n_runs} runs {worst:.1f} us (runs: {per_run('callback_us_max')})", worst <= 50))
    # The library's threads, plus the engine's thread while it is inside ap_write (waiting
    # for room is the library's doing): per run, then the median.
    totals = {r: float(runs["library_threads_cpu_pct"][r]) + float(runs["writer_thread_cpu_pct"][r])
              for r in runs["library_threads_cpu_pct"]}
    cpu = statistics.median(totals.values())
    ours_cpu = statistics.median(
        sum(float(v[r]) for k, v in runs.items()
            if k.startswith("thread_cpu_pct audioplay-e") or k.startswith("thread_cpu_pct audioplay-s"))
        for r in runs["library_threads_cpu_pct"])
    t.append(("Live: all library threads <= 0.5% of a core while streaming speech",
              f"median of {n_runs} runs {cpu:.2f}% (runs: {' / '.join(f'{totals[r]:.3f}' for r in sorted(totals))}): "
              f"the PulseAudio client threads, our service + event threads ({ours_cpu:.2f}%) and the "
              f"writing thread inside ap_write ({float(live['writer_thread_cpu_pct']):.2f}%); pacat alone, "
              f"same runs: {per_run('pacat_cpu_pct')}%", cpu <= 0.5))
    rss = float(live["rss_kib_per_extra_player"]) / 1024
    t.append(("Live: <= 4 MiB resident per extra player (2 s ring)", f"{rss:.2f} MiB", rss <= 4))
    n, und = live["players"], int(live["underruns_all"])
    t.append((f"Live: {n} players streaming at once, no underruns", f"{und} underruns", und == 0))
    period = float(live["period_ms"])
    wake = float(live["write_to_first_callback_ms_max"])
    t.append(("Write on an idle running player -> first frame in a callback <= period + 2 ms",
              f"p50 {float(live['write_to_first_callback_ms_p50']):.1f}, max {wake:.1f} ms (period {period:.0f} ms)", wake <= period + 2))
    fl = float(live["flush_to_silence_ms_max"])
    fade = float(live["flush_fade_ms"])
    t.append(("Flush -> silence handed to the device <= fade + one period",
              f"p50 {float(live['flush_to_silence_ms_p50']):.1f}, max {fl:.1f} ms (fade {fade:.0f} + period {period:.0f})", fl <= fade + period))
    if "flush_heard_silence_ms_max" in live:
        fh = float(live["flush_heard_silence_ms_max"])
        t.append(("Flush -> silence heard at the sink <= fade + 3 ms (PulseAudio, issue 14 §6; Flushed event's heard time)",
                  f"p50 {float(live['flush_heard_silence_ms_p50']):.1f}, max {fh:.1f} ms (fade {fade:.0f})", fh <= fade + 3))

    if "idle_suspended_wakeups_per_s" in live:
        wk = float(live["idle_suspended_wakeups_per_s"])
        t.append(("Idle past the keep-awake window: <= 2 wakeups/s, all library threads (issue 14)",
                  f"{wk:.2f}/s (kept awake, as before: {float(live['idle_awake_wakeups_per_s']):.1f}/s)", wk <= 2))
        ic = float(live["idle_suspended_cpu_pct"])
        t.append(("Idle past the keep-awake window: <= 0.01% of a core",
                  f"{ic:.4f}% (kept awake: {float(live['idle_awake_cpu_pct']):.3f}%)", ic <= 0.01))
        wf = float(live["wake_to_first_frame_ms_max"])
        t.append(("First write after a suspend: first frame <= 30 ms after the write",
                  f"p50 {float(live['wake_to_first_frame_ms_p50']):.1f}, max {wf:.1f} ms (10 wakes)", wf <= 30))
        dc = float(live["default_change_followed_ms_max"])
        t.append(("Default change acted on <= 50 ms after the server announces it (poll 10 s)",
                  f"p50 {float(live['default_change_followed_ms_p50']):.1f}, max {dc:.1f} ms from pactl "
                  f"set-default-sink to playing on the new sink (6 changes)", dc <= 50))

    w("## Targets (issue 5)")
    w("")
    w("Zero allocations on the audio thread in both modes, voice changes included, is a test")
    w("(tests/alloc_free_callback.rs, a counting global allocator), not a benchmark row.")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    for name, m, ok in t:
        w(f"| {name} | {m} | {verdict(ok)} |")
    w("")
    w("## Live, on the private PulseAudio server")
    w("")
    w(f"From the library's own metrics while streaming 20 s of speech in linear mode, {n_runs} runs")
    w("(benches/live.rs; per run, then the median):")
    w("")
    for k in ["callback_us_p50", "callback_us_p99", "callback_us_max", "underruns",
              "library_threads_cpu_pct", "writer_thread_cpu_pct", "pacat_cpu_pct"]:
        w(f"- {k}: {per_run(k)} (median {live[k]})")
    w("- CPU by thread (% of one core), per run: " + ", ".join(
        f"{k.split(' ', 1)[1]} {per_run(k)}" for k in runs if k.startswith("thread_cpu_pct")))
    w("  (audioplay-audio is the PulseAudio client's socket thread, which runs the audio callback;")
    w("  audioplay-recre is cpal's stream driver and latency-poll pair, which take the name of the")
    w("  thread that opens the stream.)")
    w(f"- resident memory: {live['rss_kib_one_player']} KiB with one player, "
      f"{live[f'rss_kib_{n}_players']} KiB with {n}: {live['rss_kib_per_extra_player']} KiB per extra player")
    w(f"- {n} players at once: {live['frames_played_all']} frames played, {live['underruns_all']} underruns, "
      f"{live['late_callbacks_all']} late callbacks")
    w(f"- device latency reported by the stream: {live['device_latency_ms']} ms")
    w("")
    w("![callback time histogram](perf-callback-hist.png)")
    w("")
    open(f"{out}/PERFORMANCE.md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plots", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(9, 5.5))
    # Label offsets (points) that keep neighbours apart.
    nudge = {"linear": (6, -12), "producer": (-10, 8), "high": (-20, -16), "soxr-hq": (6, 8),
             "rubato-fft": (6, -14), "speex-3": (-40, -14), "rubato-sinc": (6, 8),
             "src-sinc-medium": (-60, 8), "speex-10": (6, -14), "producer-high": (6, 6)}
    for c in cands:
        d = r[(c, MAIN)]
        ours = c in OURS
        ax.scatter(d["mean"], d["s1"], s=60 if ours else 35, c="tab:red" if ours else "tab:blue")
        ax.annotate(NAMES[c], (d["mean"], d["s1"]), textcoords="offset points",
                    xytext=nudge.get(c, (6, 4)), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ns per output frame (whole callback path, log)")
    ax.set_ylabel("SINAD at 1 kHz (dB)")
    ax.set_title(f"Cost against quality, {MAIN}, int16 mono -> float stereo")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{out}/perf-cost-quality.png", dpi=110)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([u / 1000 for u, _ in hist], [c for _, c in hist], width=[u / 1000 * 0.1 for u, _ in hist])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("callback time (us, bucket upper bound)")
    ax.set_ylabel("callbacks")
    ax.set_title("Audio callback time, 20 s of speech on PulseAudio (linear mode)")
    fig.tight_layout()
    fig.savefig(f"{out}/perf-callback-hist.png", dpi=110)


if __name__ == "__main__":
    main()
