#!/usr/bin/env bash
# Abuse, not only use (issue 7): runs the C examples and the C API test under valgrind
# memcheck and under AddressSanitizer + UndefinedBehaviorSanitizer (with LeakSanitizer), then
# a soak of speech-like production, all on a private PulseAudio server, and writes what it
# measured to docs/RELIABILITY.md.
#
#   scripts/reliability.sh            # short soak (30 s), as CI runs it
#   scripts/reliability.sh --long     # 3-minute soak (SPEC A1)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
soak_seconds=30
[ "${1:-}" = "--long" ] && soak_seconds=180
# pulse_start points HOME at the server's directory; keep the toolchain where it is.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
scripts/deps.sh
dpkg-query -W -f='${Status}' valgrind 2> /dev/null | grep -q "install ok installed" \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind > /dev/null; }

work="$(mktemp -d "${TMPDIR:-/tmp}/audioplay-rel.XXXXXX")"
source scripts/lib/pulse.sh
trap 'pulse_stop; rm -rf "$work"' EXIT
scripts/install.sh --prefix "$work/prefix" > /dev/null
cargo build --locked --tests -q
cmake -S examples-c -B "$work/plain" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/plain" > /dev/null
san="-fsanitize=address,undefined -fno-omit-frame-pointer"
cmake -S examples-c -B "$work/san" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$work/san" > /dev/null
pulse_start "$work/pulse" s48:48000:2 s16:16000:1

speech="$work/speech.wav"
espeak-ng -w "$speech" "Reliability is shown, not claimed."
rows=()
failed=0
run() { # name, kind, command...
  local name="$1" kind="$2"; shift 2
  local log="$work/$name-$kind.log" rc=0
  case "$kind" in
    memcheck)
      LD_LIBRARY_PATH="$work/prefix/lib" valgrind --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite "$@" > /dev/null 2> "$log" || rc=$?
      local errors lost
      errors=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$log" | awk '{print $3}' || true)
      lost=$(grep -oE 'definitely lost: [0-9,]+ bytes' "$log" | awk '{print $3}' || true)
      rows+=("| $name | valgrind memcheck | ${errors:-?} errors, ${lost:-0} bytes definitely lost | $([ $rc -eq 0 ] && echo pass || echo FAIL) |")
      ;;
    sanitizers)
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "$@" > /dev/null 2> "$log" || rc=$?
      local findings
      findings=$(grep -cE 'ERROR: (Address|Leak)Sanitizer|runtime error' "$log" || true)
      rows+=("| $name | ASan + UBSan + LSan | $findings findings | $([ $rc -eq 0 ] && echo pass || echo FAIL) |")
      ;;
  esac
  [ $rc -eq 0 ] || { failed=1; echo "== $name under $kind failed:"; tail -30 "$log"; }
}
for kind in memcheck sanitizers; do
  dir="$work/plain"; [ "$kind" = sanitizers ] && dir="$work/san"
  run api_test "$kind" "$dir/api_test"
  run tone "$kind" "$dir/tone" --seconds 1
  run pipe "$kind" "$dir/pipe" < "$speech"
done
run tone_cpp sanitizers "$work/san/tone_cpp"

# Overload: both cores busy for 2 s in the middle of a 5 s tone. Playback must finish with
# every frame accounted for; what the load cost is counted (underruns), not hidden.
( sleep 1
  for cpu in 0 1; do taskset -c "$cpu" timeout 2 sh -c 'while :; do :; done' & done
  wait ) &
loader=$!
overload_json=$("$work/prefix/bin/applay" --tone 440 --seconds 5 --json --quiet) || { failed=1; overload_json="applay failed"; }
wait "$loader" || true
num() { grep -oE "\"$1\":[0-9.]+" <<< "$overload_json" | cut -d: -f2 || true; }
if [ -n "$(num frames_written)" ] && [ "$(num frames_played)" = "$(num frames_written)" ]; then
  overload_line="5 s tone, both cores busy for 2 s: all $(num frames_written) frames played, $(num underruns) underruns counted, callback max $(num callback_us_max) us"
else
  failed=1
  overload_line="FAILED: $overload_json"
fi

soak_log="$work/soak.log"
AUDIOPLAY_SOAK_SECONDS=$soak_seconds cargo test --locked -q --test soak -- --ignored --nocapture \
  > "$soak_log" 2>&1 || { failed=1; cat "$soak_log"; }
soak_line=$(grep -oE 'SOAK .*' "$soak_log" || echo "soak failed")

cd "$root"
{
  echo "# Reliability"
  echo
  echo "Written by \`scripts/reliability.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -m)); CI runs"
  echo "the short form. Everything below ran against a private PulseAudio server."
  echo
  echo "## Memory and undefined behaviour"
  echo
  echo "| program | tool | result | verdict |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "valgrind's \"possibly lost\" blocks come from cpal's PulseAudio host, which leaks the thread"
  echo "that performs its blocking connection handshake (by design, cpal src/host/pulseaudio);"
  echo "definitely-lost blocks are counted as errors."
  echo
  echo "## Soak (speech-like production: 50-300 ms chunks at irregular intervals, faster than real"
  echo "time on average, pauses between utterances)"
  echo
  echo "    $soak_line"
  echo
  echo "## Overload"
  echo
  echo "    $overload_line"
  echo
  echo "## Also covered by scripts/test.sh"
  echo
  echo "- Bad input on every C entry point: NULL handle and pointers, zero and huge counts, invalid"
  echo "  enums, struct_size zero/small/large, non-UTF-8 device ids, stale and forged handles,"
  echo "  destroy while another thread is blocked in ap_write (tests/c_abi.rs, examples-c/api_test.c)."
  echo "- NaN/Inf/denormal samples sanitised before the device (tests/virtual_device.rs)."
  echo "- No allocation or free on the audio thread over 10,000+ callbacks (tests/alloc_free_callback.rs)."
  echo "- Two callback generations racing for the ring on two threads: every sample exactly once"
  echo "  (tests/generation_handoff.rs)."
  echo "- A 30 s storm of device changes with concurrent writers and metric readers"
  echo "  (tests/pulse_device_change.rs)."
  echo "- Random API sequences from several threads on the virtual device, invariants checked"
  echo "  throughout (tests/property.rs)."
  echo "- A producer far faster than real time is throttled by the ring (ap_write blocks), never"
  echo "  grows memory (the ring is allocated once)."
} > docs/RELIABILITY.md
cat docs/RELIABILITY.md
[ $failed -eq 0 ] && echo "reliability: all passed"
exit $failed
