#!/usr/bin/env bash
# Builds the release library and installs it under a prefix (cargo-c's conventions):
#   LIBDIR/libaudioplay.so{,.0,.0.1.0}, LIBDIR/libaudioplay.a, include/audioplay.h{,pp},
#   bin/applay, LIBDIR/cmake/AudioPlay/ (find_package), LIBDIR/pkgconfig/audioplay.pc,
#   share/audioplay/install-manifest.txt (what was installed, for --uninstall),
#   LIBDIR/audioplay-pcaudio/libpcaudio.so.0 (a pcaudiolib-compatible library over audioplay:
#   LD_LIBRARY_PATH=LIBDIR/audioplay-pcaudio espeak-ng ...; bindings/pcaudio/)
#   LIBDIR/audioplay-speechd/spd_audioplay.so (a speech-dispatcher audio output plugin over
#   audioplay, AudioOutputMethod "audioplay"; bindings/speechd/, docs/INTEGRATING.md), when
#   speech-dispatcher's plugin header is there (Debian: libspeechd-dev); with
#   --speechd-plugin-dir DIR also linked into speech-dispatcher's own plugin directory
#   (Debian: /usr/lib/x86_64-linux-gnu/speech-dispatcher) so that its server finds it
#   without SPEECHD_PLUGIN_DIR
#
#   scripts/install.sh --prefix /usr/local
#   scripts/install.sh --prefix /usr --libdir lib64          # lib64 distributions
#   DESTDIR=/tmp/stage scripts/install.sh --prefix /usr      # packaging: staged, paths say /usr
#   scripts/install.sh --uninstall --prefix /usr/local       # removes exactly what was installed
#   scripts/install.sh --prefix /usr/local \
#     --speechd-plugin-dir /usr/lib/x86_64-linux-gnu/speech-dispatcher   # + the plugin link
#
# The library and applay are stripped (debug info and local symbols: about 13 MB -> 1.5 MB
# for the shared library); --no-strip keeps them as built (release with line tables, for
# debuggers, valgrind and sanitizer reports).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/install.sh [--prefix DIR] [--libdir DIR] [--speechd-plugin-dir DIR] [--no-strip] [--uninstall]" >&2
  echo "       (DESTDIR=DIR in the environment stages the install under DIR)" >&2
  exit 2
}
prefix=/usr/local
libdir=lib
strip=1
uninstall=0
speechd_plugin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || usage; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --libdir) [ $# -ge 2 ] || usage; libdir="$2"; shift 2 ;;
    --libdir=*) libdir="${1#--libdir=}"; shift ;;
    --speechd-plugin-dir) [ $# -ge 2 ] || usage; speechd_plugin_dir="$2"; shift 2 ;;
    --speechd-plugin-dir=*) speechd_plugin_dir="${1#--speechd-plugin-dir=}"; shift ;;
    --no-strip|--debug) strip=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) usage ;;
    *) echo "scripts/install.sh: unknown option $1" >&2; usage ;;
  esac
done
destdir="${DESTDIR:-}"
if [ -n "$destdir" ]; then
  case "$prefix" in /*) ;; *) echo "scripts/install.sh: with DESTDIR, --prefix must be absolute" >&2; exit 2 ;; esac
else
  prefix="$(python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$prefix")"
fi
prefix="${prefix%/}"
# --libdir: relative to the prefix (lib, lib64, lib/x86_64-linux-gnu) or absolute.
case "$libdir" in
  /*) libpath="${libdir%/}" ;;
  *) libpath="$prefix/${libdir%/}" ;;
esac
manifest_rel="share/audioplay/install-manifest.txt"
manifest="$destdir$prefix/$manifest_rel"

if [ "$uninstall" = 1 ]; then
  [ -f "$manifest" ] || { echo "scripts/install.sh: no $manifest: nothing was installed there by this script" >&2; exit 1; }
  created=()
  while IFS=' ' read -r kind path; do
    case "$kind" in
      file) rm -f "$destdir$path" ;;
      dir) created+=("$path") ;;
    esac
  done < "$manifest"
  # The directories the install created, deepest first, if nothing else was put in them.
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    rmdir "$destdir$d" 2>/dev/null || echo "scripts/install.sh: kept $destdir$d: not empty" >&2
  done < <(printf '%s\n' "${created[@]}" | awk '{ print gsub("/", "/"), $0 }' | sort -rn | cut -d' ' -f2-)
  echo "uninstalled audioplay from $destdir$prefix"
  exit 0
fi

cargo build --release --locked --lib --bins
version="$(cargo metadata --no-deps --format-version 1 --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')"
major="${version%%.*}"
minor="$(echo "$version" | cut -d. -f2)"
patch="$(echo "$version" | cut -d. -f3 | sed 's/[^0-9].*//')"

# What a static link needs besides libaudioplay.a, as rustc reports it for this target.
static_libs="$(cargo rustc --release --locked --lib --crate-type staticlib -q -- --print native-static-libs 2>&1 \
  | sed -n 's/.*native-static-libs: //p' | tail -n 1)"
if [ -z "$static_libs" ]; then
  # rustc prints the list only when it compiles; fall back to what it printed for this target.
  static_libs="-lasound -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
fi

# Paths the CMake package and the .pc file use: relative to the prefix when the libdir is
# under it (the CMake package is then relocatable), else absolute.
rel_libdir="$(python3 -c 'import os,sys; r=os.path.relpath(sys.argv[1], sys.argv[2]); print("" if r.startswith("..") else r)' "$libpath" "$prefix")"
cmake_dir="$libpath/cmake/AudioPlay"
if [ -n "$rel_libdir" ]; then
  cmake_prefix="\${CMAKE_CURRENT_LIST_DIR}/$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[2], sys.argv[1]))' "$cmake_dir" "$prefix")"
  cmake_libdir="\${_ap_prefix}/$rel_libdir"
  pc_libdir="\${prefix}/$rel_libdir"
else
  cmake_prefix="$prefix"
  cmake_libdir="$libpath"
  pc_libdir="$libpath"
fi

# The manifest lists every file (and symlink) installed and every directory this install
# created, as paths without DESTDIR; directories a previous install created stay listed.
declare -a files=() dirs=() old_files=()
if [ -f "$manifest" ]; then
  while IFS=' ' read -r kind path; do
    case "$kind" in dir) dirs+=("$path") ;; file) old_files+=("$path") ;; esac
  done < "$manifest"
fi
mkdirs() {
  local d
  for d in "$@"; do
    local missing=() p="$d"
    while [ ! -d "$destdir$p" ]; do missing=("$p" "${missing[@]}"); p="$(dirname "$p")"; done
    [ ${#missing[@]} -gt 0 ] && install -d "$destdir$d" && dirs+=("${missing[@]}")
  done
  return 0
}
put() { # put MODE SRC DEST_PATH
  install -m "$1" "$2" "$destdir$3"
  files+=("$3")
}
link() { # link TARGET LINK_PATH
  ln -sfn "$1" "$destdir$2"
  files+=("$2")
}

mkdirs "$libpath" "$prefix/include" "$prefix/bin" "$cmake_dir" "$libpath/pkgconfig" "$prefix/share/audioplay"
# Real file with the full version, SONAME link (libaudioplay.so.MAJOR) and dev link.
put 0755 target/release/libaudioplay.so "$libpath/libaudioplay.so.$version"
link "libaudioplay.so.$version" "$libpath/libaudioplay.so.$major"
link "libaudioplay.so.$major" "$libpath/libaudioplay.so"
put 0644 target/release/libaudioplay.a "$libpath/libaudioplay.a"
put 0644 include/audioplay.h "$prefix/include/audioplay.h"
put 0644 include/audioplay.hpp "$prefix/include/audioplay.hpp"
put 0755 target/release/applay "$prefix/bin/applay"
if [ "$strip" = 1 ]; then
  # The shared library keeps its dynamic symbols (the ap_ API); the archive keeps every
  # symbol a link needs and loses only debug info.
  strip --strip-unneeded "$destdir$libpath/libaudioplay.so.$version"
  strip --strip-debug "$destdir$libpath/libaudioplay.a"
  strip "$destdir$prefix/bin/applay"
fi

# The pcaudiolib-compatible shim (bindings/pcaudio), in a directory of its own so that it
# replaces the system's libpcaudio only for programs started with LD_LIBRARY_PATH pointing
# there; it finds libaudioplay.so.0 one directory up.
pcaudio_dir="$libpath/audioplay-pcaudio"
mkdirs "$pcaudio_dir"
pcaudio_build="$(mktemp -d)"
bindings/pcaudio/build.sh "$pcaudio_build" target/release '$ORIGIN/..'
put 0755 "$pcaudio_build/libpcaudio.so.0" "$pcaudio_dir/libpcaudio.so.0"
link libpcaudio.so.0 "$pcaudio_dir/libpcaudio.so"
rm -rf "$pcaudio_build"
[ "$strip" = 1 ] && strip --strip-unneeded "$destdir$pcaudio_dir/libpcaudio.so.0"

# The speech-dispatcher audio output plugin (bindings/speechd): speech-dispatcher loads
# SPEECHD_PLUGIN_DIR/spd_audioplay.so (its compiled-in plugin directory without that
# variable). It finds libaudioplay.so.0 one directory up, or at LIBDIR itself when reached
# through a link in speech-dispatcher's plugin directory. Built only where speech-dispatcher's
# plugin header is (libspeechd-dev): the rest of the install does not need it.
if echo '#include <speech-dispatcher/spd_audio_plugin.h>' | ${CC:-cc} -E -x c - > /dev/null 2>&1; then
  speechd_dir="$libpath/audioplay-speechd"
  mkdirs "$speechd_dir"
  speechd_build="$(mktemp -d)"
  bindings/speechd/build.sh "$speechd_build" target/release "\$ORIGIN/..:$libpath"
  put 0755 "$speechd_build/spd_audioplay.so" "$speechd_dir/spd_audioplay.so"
  rm -rf "$speechd_build"
  [ "$strip" = 1 ] && strip --strip-unneeded "$destdir$speechd_dir/spd_audioplay.so"
  if [ -n "$speechd_plugin_dir" ]; then
    case "$speechd_plugin_dir" in /*) ;; *) echo "scripts/install.sh: --speechd-plugin-dir must be absolute" >&2; exit 2 ;; esac
    speechd_plugin_dir="${speechd_plugin_dir%/}"
    mkdirs "$speechd_plugin_dir"
    link "$speechd_dir/spd_audioplay.so" "$speechd_plugin_dir/spd_audioplay.so"
  fi
else
  echo "scripts/install.sh: skipped the speech-dispatcher plugin: no speech-dispatcher/spd_audio_plugin.h (Debian: libspeechd-dev)" >&2
  [ -z "$speechd_plugin_dir" ] || { echo "scripts/install.sh: --speechd-plugin-dir needs that header" >&2; exit 1; }
fi

subst() {
  local tmp
  tmp="$(mktemp)"
  sed -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|$major|g" \
      -e "s|@VERSION_MINOR@|$minor|g" -e "s|@VERSION_PATCH@|$patch|g" \
      -e "s|@PREFIX@|$prefix|g" -e "s|@PC_LIBDIR@|$pc_libdir|g" \
      -e "s|@CMAKE_PREFIX@|$cmake_prefix|g" -e "s|@CMAKE_LIBDIR@|$cmake_libdir|g" \
      -e "s|@STATIC_LIBS@|$static_libs|g" "$1" > "$tmp"
  put 0644 "$tmp" "$2"
  rm -f "$tmp"
}
subst cmake/AudioPlayConfig.cmake.in "$cmake_dir/AudioPlayConfig.cmake"
subst cmake/AudioPlayConfigVersion.cmake.in "$cmake_dir/AudioPlayConfigVersion.cmake"
subst cmake/audioplay.pc.in "$libpath/pkgconfig/audioplay.pc"

files+=("$prefix/$manifest_rel")
# What an earlier install put there and this one did not (another version's library) goes.
for f in "${old_files[@]}"; do
  printf '%s\n' "${files[@]}" | grep -qxF -- "$f" || rm -f "$destdir$f"
done
{
  for f in "${files[@]}"; do echo "file $f"; done
  printf '%s\n' "${dirs[@]}" | sort -u | sed 's/^/dir /'
} > "$destdir$prefix/$manifest_rel"
echo "installed audioplay $version into $destdir$prefix (libdir $libpath$([ "$strip" = 1 ] && echo ", stripped"))"
