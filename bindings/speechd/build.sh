#!/usr/bin/env bash
# Builds spd_audioplay.so (the speech-dispatcher audio output plugin) against a libaudioplay.
#   bindings/speechd/build.sh OUT_DIR LIBAUDIOPLAY_DIR [RUNPATH]
# Needs speech-dispatcher's plugin header (Debian: libspeechd-dev,
# /usr/include/speech-dispatcher/spd_audio_plugin.h). RUNPATH is where the plugin finds
# libaudioplay.so.0 at run time; the installed copy uses '$ORIGIN/..' (it lives in
# LIBDIR/audioplay-speechd/). Without it: OUT_DIR, holding a libaudioplay.so.0 link to
# LIBAUDIOPLAY_DIR's library when that has no .so.0 (a cargo build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"; apdir="$(cd "$2" && pwd)"; runpath="${3:-}"
if [ -z "$runpath" ]; then
  runpath="$out"
  [ -e "$apdir/libaudioplay.so.0" ] && [ "$apdir" != "$out" ] && ln -sfn "$apdir/libaudioplay.so.0" "$out/libaudioplay.so.0"
  [ -e "$apdir/libaudioplay.so.0" ] || ln -sfn "$apdir/libaudioplay.so" "$out/libaudioplay.so.0"
fi
# No soname: speech-dispatcher dlopens it by file name (SPEECHD_PLUGIN_DIR/spd_NAME.so).
${CC:-cc} -std=gnu99 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I "$here/../../include" -o "$out/spd_audioplay.so" "$here/spd_audioplay.c" \
  -Wl,--no-undefined -Wl,-z,defs \
  -L "$apdir" -laudioplay -lpthread -Wl,-rpath,"$runpath"
