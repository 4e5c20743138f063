#!/usr/bin/env bash
# Installs what is missing, builds, and speaks a sentence through the library with espeak-ng.
# On a machine with no sound server it starts a private headless PulseAudio server and saves
# what was played to audioplay-demo.wav.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked --bins
sentence="${1:-Hello. This sentence was synthesized by espeak and played through audioplay.}"

if pactl info > /dev/null 2>&1; then
  espeak-ng --stdout "$sentence" | target/release/applay --json -
  exit 0
fi

echo "no sound server reachable: starting a private headless one"
work="$(mktemp -d "${TMPDIR:-/tmp}/audioplay-demo.XXXXXX")"
source scripts/lib/pulse.sh
trap 'pulse_stop; rm -rf "$work"' EXIT
pulse_start "$work/pulse" speakers:48000:2
parecord --device=speakers.monitor --rate=48000 --channels=2 --format=s16le --file-format=wav \
  --latency-msec=10 "$work/demo.wav" &
rec=$!
sleep 0.3
espeak-ng --stdout "$sentence" | target/release/applay --json -
sleep 0.3
kill -INT "$rec"; wait "$rec" 2> /dev/null || true
cp "$work/demo.wav" audioplay-demo.wav
echo "saved what was played to audioplay-demo.wav ($(stat -c %s audioplay-demo.wav) bytes)"
