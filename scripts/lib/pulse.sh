# Private headless PulseAudio server for scripts (sourced, not run).
#
#   pulse_start DIR "name:rate:channels" ...   # starts it; exports XDG_RUNTIME_DIR and HOME
#   pulse_stop                                 # kills it and its helpers
#
# Every sink gets a low-latency keep-alive stream at its own rate and channel count, as real
# hardware would have: an idle null sink otherwise stalls a new stream's first callbacks
# for about a second, and a keep-alive at another rate makes PulseAudio switch the sink's
# rate (shared/NOTES.md). PulseAudio 16 moves every stream created on the then-default sink
# or source when the default changes, so the helpers are created while an unused sink is the
# default (unloaded afterwards, so the server never falls back to it), and the default source
# stays pinned to a null source.

PULSE_PIDS=()

pulse_start() {
  local dir="$1"; shift
  rm -rf "$dir"; mkdir -p "$dir/home"
  export XDG_RUNTIME_DIR="$dir" HOME="$dir/home"
  unset PULSE_SERVER PULSE_RUNTIME_PATH
  local args=(-n --daemonize=no --exit-idle-time=-1 --disable-shm=yes --log-target=stderr
              --load=module-native-protocol-unix
              "--load=module-null-sink sink_name=harness_idle rate=48000 channels=1"
              "--load=module-null-source source_name=harness_source")
  local spec name rate ch
  for spec in "$@"; do
    IFS=: read -r name rate ch <<< "$spec"
    args+=("--load=module-null-sink sink_name=$name rate=$rate channels=$ch")
  done
  pulseaudio "${args[@]}" 2> "$dir/pulse.log" &
  PULSE_PIDS+=($!)
  local i
  for i in $(seq 1 300); do
    pactl info > /dev/null 2>&1 && break
    sleep 0.05
  done
  pactl info > /dev/null 2>&1 || { echo "pulseaudio did not start:" >&2; cat "$dir/pulse.log" >&2; return 1; }
  pactl set-default-sink harness_idle
  pactl set-default-source harness_source
  for spec in "$@"; do
    IFS=: read -r name rate ch <<< "$spec"
    pacat --device="$name" --latency-msec=5 --raw --format=s16le --rate="$rate" \
      --channels="$ch" --client-name=keepalive < /dev/zero > /dev/null 2>&1 &
    PULSE_PIDS+=($!)
  done
  IFS=: read -r name rate ch <<< "$1"
  pactl set-default-sink "$name"
  pactl unload-module "$(pactl list short modules | awk '/sink_name=harness_idle/ { print $1 }')"
  # A new null sink starts with ~1.9 s of latency (its first idle block), which drains in real
  # time; a stream opened before then stalls. Wait until every sink reports < 50 ms.
  local want=$# settled
  for i in $(seq 1 300); do
    settled=$(pactl list sinks | awk -v names=" ${*%%:*} " '
      /^[ \t]*Name: / { name = $2 }
      /^[ \t]*Latency: / { if (index(names, " " name " ") && $2 < 50000) n++ }
      END { print n + 0 }')
    [ "$settled" -ge "$want" ] && return 0
    sleep 0.05
  done
  echo "sinks never reached low latency" >&2
  return 1
}

pulse_stop() {
  local p
  for p in "${PULSE_PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PULSE_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  PULSE_PIDS=()
}
