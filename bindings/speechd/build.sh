#!/usr/bin/env bash
# Builds spd_audioplay.so (the speech-dispatcher audio output plugin) against a libaudioplay.
#   bindings/speechd/build.sh OUT_DIR LIBAUDIOPLAY_DIR [RUNPATH]
# Needs speech-dispatcher's plugin header (Debian: libspeechd-dev,
# /usr/include/speech-dispatcher/spd_audio_plugin.h). RUNPATH is where the plugin finds
# libaudioplay.so.0 at run time; the installed copy uses '$ORIGIN/..' (it lives in
# LIBDIR/audioplay-speechd/). Without it: OUT_DIR (see bindings/shim/build.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# No soname: speech-dispatcher dlopens it by file name (SPEECHD_PLUGIN_DIR/spd_NAME.so).
exec "$here/../shim/build.sh" "$1" "$2" "${3:-}" "$here/spd_audioplay.c" spd_audioplay.so
