#!/usr/bin/env bash
# Benchmarks. Prints tables; numbers come from the library's own metrics and logs, measured
# in this run on a private headless PulseAudio server.
#
#   scripts/bench.sh            # every section
#   scripts/bench.sh route      # route-change gap and recreate time only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --bins -q
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
  target/release/applay --tone 440 --seconds $((switches + 4)) --json 2> "$work/route.log" > "$work/route.json" &
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

case "$section" in
  route|all) route_bench ;;
  *) echo "unknown section $section (route)" >&2; exit 2 ;;
esac
