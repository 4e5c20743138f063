#!/usr/bin/env bash
# Checks scripts/install.sh's conventions (issue 17), in its own temporary directories:
# a DESTDIR-staged install into /usr with --libdir lib64 puts every file under DESTDIR with
# /usr paths inside; the library and applay are stripped (--no-strip keeps debug info); the
# installed header compiles as C89; the CMake package accepts only compatible versions
# (0.x: same minor, requested <= installed); the speech-dispatcher plugin and its link are
# there; --uninstall removes exactly what was installed.
#   scripts/check-install.sh        (scripts/test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d "${TMPDIR:-/tmp}/audioplay-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

stage="$work/stage"
mkdir -p "$stage/usr/share"
echo "not ours" > "$stage/usr/share/keep"
spd_dir=/usr/lib/x86_64-linux-gnu/speech-dispatcher
DESTDIR="$stage" scripts/install.sh --prefix /usr --libdir lib64 --speechd-plugin-dir "$spd_dir" > /dev/null
lib="$stage/usr/lib64/libaudioplay.so.$(sed -n 's/^#define AP_VERSION_STRING "\(.*\)"/\1/p' include/audioplay.h)"
for f in "$lib" "$stage/usr/lib64/libaudioplay.a" "$stage/usr/include/audioplay.h" "$stage/usr/bin/applay" \
         "$stage/usr/lib64/cmake/AudioPlay/AudioPlayConfig.cmake" "$stage/usr/lib64/pkgconfig/audioplay.pc"; do
  test -e "$f" || fail "missing $f"
done
grep -qx 'libdir=${prefix}/lib64' "$stage/usr/lib64/pkgconfig/audioplay.pc" || fail "audioplay.pc libdir is not lib64"
grep -qx 'prefix=/usr' "$stage/usr/lib64/pkgconfig/audioplay.pc" || fail "audioplay.pc names the staging directory"
! grep -rq "$stage" "$stage/usr/lib64/cmake" "$stage/usr/lib64/pkgconfig" || fail "an installed file names DESTDIR"

# Stripped: no debug sections, no local symbols; the API is still exported.
readelf -S "$lib" | grep -q '\.debug_' && fail "the installed library has debug sections"
readelf -S "$stage/usr/bin/applay" | grep -q '\.symtab' && fail "the installed applay is not stripped"
nm -D --defined-only "$lib" | grep -q ' T ap_create$' || fail "ap_create is not exported"
size_stripped=$(stat -c %s "$lib")
size_built=$(stat -c %s target/release/libaudioplay.so)
echo "install: libaudioplay.so $size_built bytes as built, $size_stripped stripped"

# The speech-dispatcher plugin: its entry point exported, libaudioplay found next to it or,
# through the link in speech-dispatcher's plugin directory (where $ORIGIN is that
# directory: glibc does not resolve the link), at the libdir.
plugin="$stage/usr/lib64/audioplay-speechd/spd_audioplay.so"
nm -D --defined-only "$plugin" | grep -q ' T spd_audio_plugin_get$' || fail "spd_audio_plugin_get is not exported"
readelf -d "$plugin" | grep -q 'RUNPATH.*\[\$ORIGIN/\.\.:/usr/lib64\]' || fail "the plugin's RUNPATH: $(readelf -d "$plugin" | grep RUNPATH)"
[ "$(readlink "$stage$spd_dir/spd_audioplay.so")" = /usr/lib64/audioplay-speechd/spd_audioplay.so ] \
  || fail "no plugin link in $spd_dir"

# The installed header, strict C89.
gcc -std=c89 -pedantic -Werror -Wall -Wextra -fsyntax-only -x c "$stage/usr/include/audioplay.h" \
  || fail "the installed header is not C89"

# find_package(AudioPlay VERSION): the installed version is 0.1.x.
version="$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' "$stage/usr/lib64/cmake/AudioPlay/AudioPlayConfigVersion.cmake")"
IFS=. read -r major minor patch <<< "$version"
next_patch="$major.$minor.$((patch + 1))"
mkdir -p "$work/cm"
cat > "$work/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(version_check NONE)
find_package(AudioPlay ${WANT} CONFIG QUIET NO_DEFAULT_PATH)
message(STATUS "AudioPlay_FOUND=${AudioPlay_FOUND}")
CM
found() {
  rm -rf "$work/cm/build"
  # AudioPlay_DIR: CMake searches lib64 only where the platform uses it (not Debian).
  cmake -S "$work/cm" -B "$work/cm/build" -DWANT="$1" \
    -DAudioPlay_DIR="$stage/usr/lib64/cmake/AudioPlay" 2>&1 \
    | sed -n 's/.*AudioPlay_FOUND=//p'
}
if [ "$major" = 0 ]; then
  cases="$version:1 $major.$minor:1 $major:1 $next_patch:0 $major.$((minor + 1)).0:0 1.0.0:0"
  [ "$minor" != 0 ] && cases="$cases 0.0.1:0 $major.$((minor - 1)).0:0"
else
  cases="$version:1 $major:1 $major.0.0:1 $next_patch:0 $((major + 1)).0.0:0 $((major - 1)).0.0:0"
fi
for c in $cases; do
  want="${c%%:*}" ok="${c##*:}"
  got="$(found "$want")"
  if [ "$ok" = 1 ]; then [ "$got" = 1 ] || fail "find_package(AudioPlay $want) refused $version"
  else [ "$got" = 1 ] && fail "find_package(AudioPlay $want) accepted $version"; fi
done
echo "install: find_package versions checked against $version: $cases (1 = accepted)"

# Uninstall: exactly what was installed goes; what was there before stays.
DESTDIR="$stage" scripts/install.sh --uninstall --prefix /usr > /dev/null
left="$(cd "$stage" && find . | sort | tr '\n' ' ')"
[ "$left" = ". ./usr ./usr/share ./usr/share/keep " ] || fail "after --uninstall: $left"

# --no-strip keeps the debug info; a plain prefix the install created is removed entirely.
scripts/install.sh --no-strip --prefix "$work/plain" > /dev/null
readelf -S "$work/plain/lib/libaudioplay.so.$version" | grep -q '\.debug_info' || fail "--no-strip stripped"
scripts/install.sh --uninstall --prefix "$work/plain" > /dev/null
[ ! -e "$work/plain" ] || fail "after --uninstall, left: $(find "$work/plain")"
echo "install: DESTDIR, --libdir lib64, strip, C89 header, CMake versions and --uninstall ok"
