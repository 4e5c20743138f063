#!/usr/bin/env bash
# Builds one drop-in shim over audioplay (bindings/pcaudio, bindings/speechd call this).
#   bindings/shim/build.sh OUT_DIR LIBAUDIOPLAY_DIR RUNPATH SOURCE OUTPUT [LINKER FLAG...]
# RUNPATH is where the shim finds libaudioplay.so.0 at run time (empty: OUT_DIR, holding a
# libaudioplay.so.0 link to LIBAUDIOPLAY_DIR's library when that has no .so.0, as after a
# cargo build).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"; apdir="$(cd "$2" && pwd)"; runpath="$3"; src="$4"; output="$5"
shift 5
if [ -z "$runpath" ]; then
  runpath="$out"
  [ -e "$apdir/libaudioplay.so.0" ] && [ "$apdir" != "$out" ] && ln -sfn "$apdir/libaudioplay.so.0" "$out/libaudioplay.so.0"
  [ -e "$apdir/libaudioplay.so.0" ] || ln -sfn "$apdir/libaudioplay.so" "$out/libaudioplay.so.0"
fi
${CC:-cc} -std=gnu99 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I "$here/../../include" -I "$here" -o "$out/$output" "$src" \
  "$@" -Wl,--no-undefined -Wl,-z,defs \
  -L "$apdir" -laudioplay -lpthread -Wl,-rpath,"$runpath"
