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
  route_loss_bench
}

# Starts a recorder on SINK's monitor (the flags tests/common/pulse.rs records with, at 10 ms:
# what an unloaded sink's monitor had captured but not sent yet is lost with it) into a new
# file, listed in ROUTE_RECS as SINK=FILE; ROUTE_REC[SINK] is its pid.
route_record() {
  local f="$ROUTE_DIR/rec-$1-${#ROUTE_RECS[@]}.raw"
  parecord --device="$1.monitor" --rate=22050 --channels=1 --format=s16le --raw \
    --latency-msec=10 "$f" > /dev/null 2>&1 &
  ROUTE_REC[$1]=$!
  PULSE_PIDS+=($!)
  ROUTE_RECS+=("$1=$f")
}

# Seconds since the epoch, fractional.
now() { date +%s.%N; }

# One case of issue 14 §2: SWITCHES route changes 3 s apart while espeak-ng speech plays
# (MODE switch: the default sink alternates between A and B; unplug: the sink in use is
# unloaded, then loaded again for a later round), every sink's monitor recorded throughout;
# benches/route_loss.py reads what was lost and repeated at each change, a row of TSV.
route_case() {
  local name=$1 mode=$2 a=$3 b=$4 switches=$5 wav=$6 tsv=$7
  ROUTE_DIR="$work/route-$name"
  ROUTE_RECS=()
  declare -gA ROUTE_REC=() ROUTE_KEEP=() ROUTE_SPEC=()
  mkdir -p "$ROUTE_DIR"
  pulse_start "$work/pulse" "$a" "$b"
  local na=${a%%:*} nb=${b%%:*}
  # pulse_start's pids: the server, then one keep-alive per sink in order.
  ROUTE_KEEP[$na]=${PULSE_PIDS[1]}
  ROUTE_KEEP[$nb]=${PULSE_PIDS[2]}
  ROUTE_SPEC[$na]=$a
  ROUTE_SPEC[$nb]=$b
  route_record "$na"
  route_record "$nb"
  sleep 0.3
  target/release/applay --json -v "$wav" > "$ROUTE_DIR/json" 2> "$ROUTE_DIR/log" &
  local player=$! cur=$na other=$nb i mark
  mark=$(echo "$(now) + 1.5" | bc)
  for i in $(seq 1 "$switches"); do
    sleep "$(echo "$mark - $(now)" | bc | awk '{print ($1 > 0) ? $1 : 0}')"
    case $mode in
      switch) pactl set-default-sink "$other" ;;
      unplug)
        pactl unload-module "$(pulse_module_of "$cur")"
        # The server rescues the unloaded sink's streams (ours among them) to the other sink
        # and its monitor's recorder to the null source: the keep-alive would hold a second
        # stream there, and the recorder hears nothing more.
        kill "${ROUTE_KEEP[$cur]}" "${ROUTE_REC[$cur]}" 2> /dev/null || true
        # What a desktop does once the device is gone: the remaining one is the default, so
        # the server does not move the streams back when the old one returns.
        pactl set-default-sink "$other"
        pulse_add_sink "${ROUTE_SPEC[$cur]}" > /dev/null
        pulse_keepalive "${ROUTE_SPEC[$cur]}" &
        ROUTE_KEEP[$cur]=$!
        PULSE_PIDS+=($!)
        pulse_wait_low_latency "$cur"
        route_record "$cur"
        ;;
    esac
    local t=$cur; cur=$other; other=$t
    mark=$(echo "$mark + 3" | bc)
  done
  wait "$player"
  sleep 0.3
  local r
  for r in "${ROUTE_REC[@]}"; do kill "$r" 2> /dev/null || true; done
  for r in "${ROUTE_REC[@]}"; do wait "$r" 2> /dev/null || true; done
  pulse_stop
  python3 benches/route_loss.py "$name" "$switches" "$wav" "$ROUTE_DIR/json" "$ROUTE_DIR/log" \
    "${ROUTE_RECS[@]}" >> "$tsv"
  # ROUTE_SAVE=DIR keeps the recordings (about 2 MB each), to check or rerun the analysis on.
  if [ -n "${ROUTE_SAVE:-}" ]; then
    mkdir -p "$ROUTE_SAVE" && cp -r "$ROUTE_DIR" "$wav" "$ROUTE_SAVE/"
  fi
}

# Issue 14 §2: content lost or repeated at a route change, default switch and unplug alike.
# Writes docs/perf-data/route.tsv and its section of docs/PERFORMANCE.md.
route_loss_bench() {
  local switches="${ROUTE_SWITCHES:-10}"
  # Long enough for every switch (3 s apart, from 1.5 s in) with no sentence repeated: a
  # repeat would give the cross-correlation two places to put a part.
  local text="The quick brown fox jumps over the lazy dog. Speech synthesis turns text into sound, \
one phoneme at a time, and a good audio library plays it without a gap or a click. Pack my box \
with five dozen liquor jugs. A screen reader speaks every line the cursor lands on, so it is \
interrupted often and must stop at once. When the headphones are unplugged, the voice moves to \
the speakers and should carry on mid word. Bright vixens jump; dozy fowl quack. How vexingly \
quick daft zebras jump over a wall of seven hundred bricks. The sound server chooses a new \
default device whenever one appears or goes away, and every stream must follow it somehow. \
Sphinx of black quartz, judge my vow. Twelve wizards quickly jinxed the gnomes before they \
vaporized. A little later the train left the station, heading north along the river towards \
the mountains, where the snow had not yet melted and the roads were closed."
  espeak-ng -w "$work/route-speech.wav" "$text"
  local tsv="$work/route.tsv"
  python3 benches/route_loss.py --header > "$tsv"
  echo "== content lost and repeated at $switches route changes per case"
  route_case same-format-switch switch s48:48000:2 s48b:48000:2 "$switches" "$work/route-speech.wav" "$tsv"
  route_case other-rate-switch switch s48:48000:2 s44:44100:2 "$switches" "$work/route-speech.wav" "$tsv"
  route_case unplug-same-format unplug s48:48000:2 s48b:48000:2 "$switches" "$work/route-speech.wav" "$tsv"
  route_case unplug-other-rate unplug s48:48000:2 s44:44100:2 "$switches" "$work/route-speech.wav" "$tsv"
  printf 'meta\tdate\t%s\nmeta\tspeech_s\t%s\nmeta\tuptime\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(python3 -c 'import sys, wave; w = wave.open(sys.argv[1]); print(f"{w.getnframes() / w.getframerate():.1f}")' "$work/route-speech.wav")" \
    "$(uptime)" >> "$tsv"
  column -t -s $'\t' < "$tsv" | cut -c1-200
  mkdir -p docs/perf-data
  cp "$tsv" docs/perf-data/route.tsv
  # The route rows are a section of PERFORMANCE.md: put into it in place, the rest untouched
  # (a perf run renders it again from route.tsv, which report.py reads beside rows.tsv).
  if [ -f docs/PERFORMANCE.md ]; then
    python3 benches/report.py --route docs/perf-data/route.tsv docs/PERFORMANCE.md
  fi
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
  # route.tsv is route_bench's, not this section's: it stays (report.py renders it too).
  mkdir -p docs/perf-data
  find docs/perf-data -maxdepth 1 -type f ! -name route.tsv -delete
  cp "$work/rows.tsv" "$work/live.tsv" "$work"/hist*.tsv "$work/stretch.tsv" docs/perf-data/
  python3 benches/report.py docs/perf-data/rows.tsv docs/perf-data/live.tsv 'docs/perf-data/hist*.tsv' docs docs/perf-data/stretch.tsv
}

case "$section" in
  all) perf_bench; route_bench ;;
  perf) perf_bench ;;
  route) route_bench ;;
  *) echo "unknown section $section (perf, route)" >&2; exit 2 ;;
esac
