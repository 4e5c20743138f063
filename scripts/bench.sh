#!/usr/bin/env bash
# Benchmarks. Prints tables; every number is measured in this run: the render path against
# references on one pinned core, and the library's own metrics on a private headless
# PulseAudio server.
#
#   scripts/bench.sh            # every section; writes docs/PERFORMANCE.md and its plots
#   scripts/bench.sh perf       # render path + references + live figures only (issue 5)
#   scripts/bench.sh route      # route-change gap and recreate time only
#   ROUNDS=7 scripts/bench.sh perf   # processes per candidate (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
# Bench-only references: libsamplerate, speexdsp and soxr (Debian -dev packages), libsonic
# (benches/stretch.rs loads it with dlopen: the speed-without-pitch-change reference),
# matplotlib for the plots.
missing=()
for pkg in libsamplerate0-dev libspeexdsp-dev libsoxr-dev libsonic-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
python3 -c "import matplotlib" 2> /dev/null || pip install -q matplotlib
cargo build --release --locked --bins --benches -q
section="${1:-all}"
work="$(mktemp -d "${TMPDIR:-/tmp}/audioplay-bench.XXXXXX")"
source scripts/lib/pulse.sh
trap 'pulse_stop; rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) {print "n/a"; exit} m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f\n", m}'; }
maxof() { sort -n | tail -n 1; }

route_bench() {
  local switches=20
  pulse_start "$work/pulse" s48:48000:2 s44:44100:2
  echo "== route change: $switches default-sink switches between s48 (48 kHz) and s44 (44.1 kHz) during speech"
  target/release/applay -v --tone 440 --seconds $((switches + 4)) --json 2> "$work/route.log" > "$work/route.json" &
  local player=$!
  sleep 2
  local i
  for i in $(seq 1 $switches); do
    if [ $((i % 2)) -eq 1 ]; then pactl set-default-sink s44; else pactl set-default-sink s48; fi
    sleep 1
  done
  wait "$player"
  grep -o 'route change gap [0-9.]* ms' "$work/route.log" | awk '{print $4}' > "$work/gaps"
  grep 'recreate (device changed)' "$work/route.log" | grep -o ', [0-9.]* ms,' | tr -d ', ms' > "$work/recreates"
  # A cold start for reference: creating a player and opening its first stream.
  grep 'recreate (initial)' "$work/route.log" | grep -o ', [0-9.]* ms,' | tr -d ', ms' > "$work/cold"
  printf '%-34s %8s %8s %8s\n' "measure (ms)" median max count
  printf '%-34s %8s %8s %8s\n' "route-change gap (silence heard)" "$(median < "$work/gaps")" "$(maxof < "$work/gaps")" "$(wc -l < "$work/gaps")"
  printf '%-34s %8s %8s %8s\n' "recreate (close + open + start)" "$(median < "$work/recreates")" "$(maxof < "$work/recreates")" "$(wc -l < "$work/recreates")"
  printf '%-34s %8s %8s %8s\n' "reference: cold first open" "$(median < "$work/cold")" "$(maxof < "$work/cold")" "$(wc -l < "$work/cold")"
  echo "underruns: $(grep -o '"underruns":[0-9]*' "$work/route.json" | cut -d: -f2)," \
       "frames replayed: $(grep -o '"frames_replayed":[0-9]*' "$work/route.json" | cut -d: -f2)"
  pulse_stop
}

# The render path against the references, then the live figures; writes docs/PERFORMANCE.md.
perf_bench() {
  local rounds="${ROUNDS:-5}" bin live stretch
  bin=$(ls -t target/release/deps/resample-* | grep -v '\.d$' | head -n 1)
  live=$(ls -t target/release/deps/live-* | grep -v '\.d$' | head -n 1)
  stretch=$(ls -t target/release/deps/stretch-* | grep -v '\.d$' | head -n 1)
  gcc -O2 -o "$work/refs" benches/refs.c -lsamplerate -lspeexdsp -lsoxr -lm
  local text="The quick brown fox jumps over the lazy dog. Speech synthesis turns text into sound, one phoneme at a time, and a good audio library plays it without a gap or a click. "
  espeak-ng -w "$work/speech.wav" "$text$text$text$text$text$text"
  # The stretch bench's speech: the same sentences once (10 s), as an engine hands them over.
  espeak-ng --stdout "$text" > "$work/stretch-speech.wav"
  echo "== render path: $rounds processes per candidate, interleaved, pinned to CPU 1"
  : > "$work/rows.tsv"
  : > "$work/stretch.tsv"
  local r
  for r in $(seq 1 "$rounds"); do
    # Rotate the order each round so no candidate always runs first or last.
    local groups=(ours refs numpy rubato stretch) g i
    for i in 0 1 2 3 4; do
      g=${groups[$(((i + r) % 5))]}
      case $g in
        ours) taskset -c 1 "$bin" "$work/speech.wav" linear high producer producer-high linear-gainpan linear-limiter ;;
        rubato) taskset -c 1 "$bin" "$work/speech.wav" rubato-fft rubato-sinc ;;
        refs) taskset -c 1 "$work/refs" "$work/speech.wav" src-linear src-sinc-medium speex-3 speex-10 soxr-hq ;;
        numpy) taskset -c 1 python3 benches/numpy_block.py "$work/speech.wav" ;;
        # Ours and libsonic at quality 0 and 1, 1.5x and 2.5x (its own rows, its own file).
        stretch) taskset -c 1 "$stretch" "$work/stretch-speech.wav" >> "$work/stretch.tsv" ;;
      esac
    done >> "$work/rows.tsv"
    echo "  round $r of $rounds done"
  done
  echo "== live figures on PulseAudio"
  pulse_start "$work/pulse" s48:48000:2 s44:44100:2
  local live_rounds="${LIVE_ROUNDS:-3}"
  {
    "$live" players 16 "$work/speech.wav"
    "$live" latency
    "$live" idle
    # The stream figures swing from run to run on a shared VM: several runs, each next to the
    # reference, reported per run and as medians.
    for i in $(seq 1 "$live_rounds"); do
      {
        "$live" stream "$work/speech.wav" 20 "$work/hist$i.tsv"
        # Reference: PulseAudio's own client (libpulse, via pacat) playing the same 20 s of
        # speech at the same latency: the floor for any client of this server.
        python3 - "$work/speech.wav" <<'PY'
import resource, subprocess, sys, tempfile, time, wave
w = wave.open(sys.argv[1])
with tempfile.NamedTemporaryFile(suffix=".raw") as f:
    f.write(w.readframes(22050 * 20))
    f.flush()
    t = time.time()
    subprocess.run(["pacat", "--latency-msec=20", "--raw", "--format=s16le", "--rate=22050",
                    "--channels=1", f.name], check=True)
wall = time.time() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"pacat_cpu_pct\t{(r.ru_utime + r.ru_stime) / wall * 100:.3f}")
PY
      } | sed "s/^/stream$i:/"
    done
  } 2> "$work/live.log" > "$work/live.tsv" || { cat "$work/live.log"; return 1; }
  pulse_stop
  # The raw measurements stay beside the report, so it can be checked and regenerated:
  # python3 benches/report.py docs/perf-data/rows.tsv docs/perf-data/live.tsv 'docs/perf-data/hist*.tsv' docs docs/perf-data/stretch.tsv
  rm -rf docs/perf-data && mkdir -p docs/perf-data
  cp "$work/rows.tsv" "$work/live.tsv" "$work"/hist*.tsv "$work/stretch.tsv" docs/perf-data/
  python3 benches/report.py docs/perf-data/rows.tsv docs/perf-data/live.tsv 'docs/perf-data/hist*.tsv' docs docs/perf-data/stretch.tsv
}

case "$section" in
  all) perf_bench; route_bench ;;
  perf) perf_bench ;;
  route) route_bench ;;
  *) echo "unknown section $section (perf, route)" >&2; exit 2 ;;
esac
