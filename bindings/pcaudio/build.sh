#!/usr/bin/env bash
# Builds libpcaudio.so.0 (the pcaudiolib-compatible shim) against a libaudioplay.
#   bindings/pcaudio/build.sh OUT_DIR LIBAUDIOPLAY_DIR [RUNPATH]
# RUNPATH is where the shim finds libaudioplay.so.0 at run time; the installed copy uses
# '$ORIGIN/..' (it lives in LIBDIR/audioplay-pcaudio/). Without it: OUT_DIR, holding a
# libaudioplay.so.0 link to LIBAUDIOPLAY_DIR's library when that has no .so.0 (a cargo build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"; apdir="$(cd "$2" && pwd)"; runpath="${3:-}"
if [ -z "$runpath" ]; then
  runpath="$out"
  [ -e "$apdir/libaudioplay.so.0" ] && [ "$apdir" != "$out" ] && ln -sfn "$apdir/libaudioplay.so.0" "$out/libaudioplay.so.0"
  [ -e "$apdir/libaudioplay.so.0" ] || ln -sfn "$apdir/libaudioplay.so" "$out/libaudioplay.so.0"
fi
${CC:-cc} -std=gnu99 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I "$here/../../include" -o "$out/libpcaudio.so.0" "$here/pcaudio_shim.c" \
  -Wl,-soname,libpcaudio.so.0 -Wl,--no-undefined -Wl,-z,defs \
  -L "$apdir" -laudioplay -lpthread -Wl,-rpath,"$runpath"
