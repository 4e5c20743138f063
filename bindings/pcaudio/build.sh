#!/usr/bin/env bash
# Builds libpcaudio.so.0 (the pcaudiolib-compatible shim) against a libaudioplay.
#   bindings/pcaudio/build.sh OUT_DIR LIBAUDIOPLAY_DIR [RUNPATH]
# RUNPATH is where the shim finds libaudioplay.so.0 at run time; the installed copy uses
# '$ORIGIN/..' (it lives in LIBDIR/audioplay-pcaudio/). Without it: OUT_DIR (see
# bindings/shim/build.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../shim/build.sh" "$1" "$2" "${3:-}" "$here/pcaudio_shim.c" libpcaudio.so.0 \
  -Wl,-soname,libpcaudio.so.0
