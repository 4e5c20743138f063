#!/usr/bin/env bash
# Installs the system packages the build, tests and demo need, if any are missing.
set -euo pipefail
pkgs=(pulseaudio pulseaudio-utils espeak-ng libespeak-ng-dev libasound2-dev pkg-config cmake
      build-essential binutils python3 golang-go
      # tests/quiet_stderr.rs: ALSA's JACK plugin and libjack, which print to stderr when no
      # server runs (issue 12); the test must see the real condition.
      libasound2-plugins libjack-jackd2-0
      # tests/speechd_plugin.rs: speech-dispatcher (spd-say, the server), its espeak-ng
      # module and its headers (spd_audio_plugin.h, the audio-plugin API bindings/speechd
      # implements).
      speech-dispatcher speech-dispatcher-espeak-ng libspeechd-dev
      # scripts/test.sh runs the real-audio suites on PipeWire too (AUDIOPLAY_TEST_SERVER,
      # scripts/lib/pulse.sh): the server, its PulseAudio protocol server, the session
      # manager and a session bus for it. Not pipewire-alsa: it removes pulseaudio.
      pipewire pipewire-bin pipewire-pulse wireplumber dbus)
command -v node > /dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
# Both servers are tested: nothing above may have replaced PulseAudio.
dpkg-query -W -f='${Status}' pulseaudio 2> /dev/null | grep -q "install ok installed" \
  || { echo "pulseaudio is not installed (a PipeWire package removed it?)" >&2; exit 1; }
# The Python binding's tests.
if ! python3 -c "import pytest, numpy" > /dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check pytest numpy
fi
if ! cargo fmt --version > /dev/null 2>&1 || ! cargo clippy --version > /dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
