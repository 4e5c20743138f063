#!/usr/bin/env bash
# Builds the release library and installs it under a prefix:
#   lib/libaudioplay.so, lib/libaudioplay.a, include/audioplay.h, bin/applay,
#   lib/cmake/AudioPlay/ (find_package), lib/pkgconfig/audioplay.pc
#
#   scripts/install.sh --prefix /usr/local
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    *) echo "usage: scripts/install.sh [--prefix DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"

cargo build --release --locked --lib --bins
version="$(cargo metadata --no-deps --format-version 1 --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')"

# What a static link needs besides libaudioplay.a, as rustc reports it for this target.
static_libs="$(cargo rustc --release --locked --lib --crate-type staticlib -q -- --print native-static-libs 2>&1 \
  | sed -n 's/.*native-static-libs: //p' | tail -n 1)"
if [ -z "$static_libs" ]; then
  # rustc prints the list only when it compiles; fall back to what it printed for this target.
  static_libs="-lasound -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
fi

install -d "$prefix/lib" "$prefix/include" "$prefix/bin" "$prefix/lib/cmake/AudioPlay" "$prefix/lib/pkgconfig"
# Real file with the full version, SONAME link (libaudioplay.so.MAJOR) and dev link.
install -m 0755 target/release/libaudioplay.so "$prefix/lib/libaudioplay.so.$version"
ln -sf "libaudioplay.so.$version" "$prefix/lib/libaudioplay.so.${version%%.*}"
ln -sf "libaudioplay.so.${version%%.*}" "$prefix/lib/libaudioplay.so"
install -m 0644 target/release/libaudioplay.a "$prefix/lib/"
install -m 0644 include/audioplay.h include/audioplay.hpp "$prefix/include/"
install -m 0755 target/release/applay "$prefix/bin/"

subst() {
  sed -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|${version%%.*}|g" \
      -e "s|@PREFIX@|$prefix|g" -e "s|@STATIC_LIBS@|$static_libs|g" "$1" > "$2"
}
subst cmake/AudioPlayConfig.cmake.in "$prefix/lib/cmake/AudioPlay/AudioPlayConfig.cmake"
subst cmake/AudioPlayConfigVersion.cmake.in "$prefix/lib/cmake/AudioPlay/AudioPlayConfigVersion.cmake"
subst cmake/audioplay.pc.in "$prefix/lib/pkgconfig/audioplay.pc"
echo "installed audioplay $version into $prefix"
