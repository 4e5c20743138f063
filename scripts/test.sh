#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   formatting and lints; the Rust unit and integration tests (virtual device, C ABI, and
#   real audio through private PulseAudio servers; the real-audio suites again through
#   private PipeWire ones); an install into a temporary prefix; the C examples built out of
#   tree with find_package (shared and static) and pkg-config, run as ctests against a
#   private PulseAudio server.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# The harness points HOME at the server's directory; keep the toolchain where it is.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

scripts/deps.sh

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

python3 scripts/check-layers.py
python3 scripts/check-requirements.py -q
scripts/check-swift.sh
python3 scripts/gen-api-doc.py --check

echo "== Rust tests"
# cargo test builds the rlib only; the export and C tests need the cdylib too.
cargo build --locked --lib --bins
# Real-audio tests start their own servers; they must not inherit one from the caller.
env -u PULSE_SERVER cargo test --locked --all-targets 2>&1 | tee "${TMPDIR:-/tmp}/audioplay-cargo-test.log"

# Most Linux desktops run PipeWire with pipewire-pulse: the same suites again, each server a
# private PipeWire 0.3 (scripts/lib/pulse.sh). The server faults, the underflow counting and
# the pipe sink are PulseAudio's mechanisms and stay on PulseAudio. Opt-in for now
# (AUDIOPLAY_TEST_PIPEWIRE=1, 109-116 s): on a loaded machine PipeWire has dropped audio
# (8 ms gaps) that the player is never told of (no underflow, no late callback), and a 16 kHz
# headset switch there loses 13-31 ms, with the content's end heard 1.0-1.1 ms short in 2 of
# 8 runs (the test allows 1.0): CI on shared machines leaves them out until those are told
# apart or fixed (issue 14). Measured 2026-12-03: 1 unloaded and 2 loaded runs all passed.
if [ "${AUDIOPLAY_TEST_PIPEWIRE:-0}" = 1 ]; then
  echo "== real audio on PipeWire (playback, device changes and the storm, speech control)"
  pw_start=$SECONDS
  AUDIOPLAY_TEST_SERVER=pipewire env -u PULSE_SERVER cargo test --locked \
    --test pulse_playback --test pulse_device_change --test pulse_speech 2>&1 \
    | tee -a "${TMPDIR:-/tmp}/audioplay-cargo-test.log"
  echo "PipeWire run: $((SECONDS - pw_start)) s"
fi

echo "== install and C examples"
work="$(mktemp -d "${TMPDIR:-/tmp}/audioplay-test.XXXXXX")"
source scripts/lib/pulse.sh
trap 'pulse_stop; rm -rf "$work"' EXIT
scripts/install.sh --prefix "$work/prefix"
readelf -d "$work/prefix/lib/libaudioplay.so" | grep -q 'SONAME.*\[libaudioplay\.so\.0\]' \
  || { echo "installed library lacks SONAME libaudioplay.so.0" >&2; exit 1; }
test -L "$work/prefix/lib/libaudioplay.so.0" && test -L "$work/prefix/lib/libaudioplay.so"
# DESTDIR, --libdir lib64, stripping, the installed header as C89, CMake version
# compatibility and --uninstall, in directories of its own.
scripts/check-install.sh
pulse_start "$work/pulse" s48:48000:2 s16:16000:1
for mode in OFF ON; do
  cmake -S examples-c -B "$work/examples-$mode" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DAUDIOPLAY_STATIC=$mode > "$work/cmake-$mode.log" || { cat "$work/cmake-$mode.log"; exit 1; }
  cmake --build "$work/examples-$mode" > "$work/build-$mode.log" || { cat "$work/build-$mode.log"; exit 1; }
  (cd "$work/examples-$mode" && ctest --output-on-failure)
done

echo "== Python binding (pip install of the folder and of a wheel, in fresh venvs outside the repository)"
scripts/test-binding-python.sh "$work"

echo "== Node binding (installed from the folder and from a tarball, outside the repository)"
scripts/test-binding-node.sh "$work"

echo "== Go binding (the library installed as a system package would be)"
scripts/test-binding-go.sh "$work"

echo "== pkg-config"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -Wall -Werror -o "$work/tone-pc" examples-c/tone.c $(pkg-config --cflags --libs audioplay) -lm \
  -Wl,-rpath,"$work/prefix/lib"
"$work/tone-pc" --seconds 0.5 > /dev/null
static_libs="$(pkg-config --static --libs audioplay | sed "s|-laudioplay|$work/prefix/lib/libaudioplay.a|")"
cc -Wall -Werror -o "$work/tone-pc-static" examples-c/tone.c $(pkg-config --cflags audioplay) $static_libs -lm
if ldd "$work/tone-pc-static" | grep -q libaudioplay; then echo "static build links the shared library" >&2; exit 1; fi
"$work/tone-pc-static" --seconds 0.5 > /dev/null
echo "pkg-config builds (shared and static) played a tone"
scripts/install.sh --uninstall --prefix "$work/prefix" > /dev/null
[ ! -e "$work/prefix" ] || { echo "--uninstall left: $(find "$work/prefix")" >&2; exit 1; }
echo "--uninstall removed everything it installed"

echo "== reliability (memcheck, sanitizers, short soak)"
AUDIOPLAY_CARGO_TEST_LOG="${TMPDIR:-/tmp}/audioplay-cargo-test.log" \
  scripts/reliability.sh > "$work/reliability.log" 2>&1 || { cat "$work/reliability.log"; exit 1; }
grep -E '^\| |SOAK' "$work/reliability.log"

totals="$(grep -E '^test result: ' "${TMPDIR:-/tmp}/audioplay-cargo-test.log" \
  | awk '{p += $4; f += $6} END {print p " passed, " f " failed"}')"
echo "Also passed: 16 ctests, 2 pkg-config builds, Python, Node and Go bindings, reliability"
echo "Tests: $totals"
