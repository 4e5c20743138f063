# Private headless PulseAudio server: the one definition of it, for the scripts and for the
# Rust tests (tests/common/pulse.rs runs the steps below as commands).
#
# Sourced by a script:
#   pulse_start DIR "name:rate:channels" ...   # starts it; exports XDG_RUNTIME_DIR and HOME
#   pulse_stop                                 # kills it and its helpers
#
# Run as `bash scripts/lib/pulse.sh STEP ARGS`, with XDG_RUNTIME_DIR and HOME already the
# server's (the caller owns the processes: `daemon` and `keepalive` exec, so the caller's child
# is the server or the stream itself). A SINK is name:rate:channels.
#   daemon SINK...                 the server, with these null sinks (the first is the default)
#   prepare                        waits for it; defaults set for creating the helper streams
#   keepalive SINK                 a keep-alive stream on SINK
#   settle SINK...                 the first SINK the default, the helper sink gone, and every
#                                  SINK at low latency
#   add-sink SINK                  a null sink loaded at run time; prints its module index
#   add-pipe-sink NAME RATE FIFO   a pipe sink (stereo s16) writing into FIFO
#   module-of NAME                 the index of the module that created sink NAME
#   wait-low-latency NAME...       waits until every named sink reports < 50 ms
#
# Every sink gets a low-latency keep-alive stream at its own rate and channel count, as real
# hardware would have: an idle null sink otherwise stalls a new stream's first callbacks
# for about a second, and a keep-alive at another rate makes PulseAudio switch the sink's
# rate (shared/NOTES.md). PulseAudio 16 moves every stream created on the then-default sink
# or source when the default changes, so the helpers are created while an unused sink is the
# default (unloaded afterwards, so the server never falls back to it), and the default source
# stays pinned to a null source no recorder uses.
#
# With AUDIOPLAY_TEST_SERVER=pipewire the same steps run a private PipeWire 0.3 instead, its
# clients served by pipewire-pulse on the same socket ($XDG_RUNTIME_DIR/pulse/native), as most
# Linux desktops run it (shared/NOTES.md, "PipeWire 0.3.65 (Debian 12) headless"): `daemon` is
# a private session bus, pipewire, wireplumber and pipewire-pulse, with their configuration
# and state under XDG_RUNTIME_DIR; every sink is module-null-sink loaded through pactl (so an
# unplug is unload-module on either server). PipeWire needs no keep-alive (a null sink there
# starts at its quantum, not with PulseAudio's 1.9 s first block) and no helper sink: there a
# default change moves every stream without a target, so recorders are pinned instead
# (tests/common/pulse.rs, record_with).

PULSE_PIDS=()

pulse_is_pipewire() {
  [ "${AUDIOPLAY_TEST_SERVER:-pulseaudio}" = pipewire ]
}

# module-null-sink's arguments for a SINK.
pulse_null_sink_args() {
  local name rate ch
  IFS=: read -r name rate ch <<< "$1"
  echo "module-null-sink sink_name=$name rate=$rate channels=$ch"
}

# The private PipeWire: its processes are this shell's children, killed with it (the Rust
# harness kills the whole process group).
pipewire_daemon() {
  local p
  for p in pipewire wireplumber pipewire-pulse dbus-daemon; do
    command -v "$p" > /dev/null \
      || { echo "$p must be installed (scripts/deps.sh installs it)" >&2; exit 127; }
  done
  export XDG_CONFIG_HOME="$XDG_RUNTIME_DIR/config" XDG_STATE_HOME="$XDG_RUNTIME_DIR/state"
  export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
  mkdir -p "$XDG_CONFIG_HOME/pipewire/pipewire.conf.d" "$XDG_STATE_HOME"
  # The graph may run at each sink's rate (the default allows 48 kHz only), and a VM must not
  # raise the minimum quantum to 1024 (vm.overrides, 21 ms at 48 kHz).
  cat > "$XDG_CONFIG_HOME/pipewire/pipewire.conf.d/harness.conf" << 'CONF'
context.properties = {
  default.clock.allowed-rates = [ 48000 44100 16000 ]
  vm.overrides = { }
}
CONF
  trap 'kill $(jobs -p) 2> /dev/null; exit 0' TERM INT
  dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --nofork --nopidfile &
  for p in $(seq 1 200); do [ -S "$XDG_RUNTIME_DIR/bus" ] && break; sleep 0.01; done
  pipewire &
  # wireplumber started before pipewire's socket exists exits ("Failed to connect to
  # PipeWire"), leaving no session manager: no default metadata, and every set-default-sink
  # then fails with "Not supported" (4 of 12 servers started four at a time).
  for p in $(seq 1 500); do [ -S "$XDG_RUNTIME_DIR/pipewire-0" ] && break; sleep 0.01; done
  wireplumber &
  pipewire-pulse &
  wait
}

pulse_daemon() {
  unset PULSE_SERVER PULSE_RUNTIME_PATH
  if pulse_is_pipewire; then
    pipewire_daemon
    return
  fi
  command -v pulseaudio > /dev/null \
    || { echo "pulseaudio must be installed (scripts/deps.sh installs it)" >&2; exit 127; }
  local args=(-n --daemonize=no --exit-idle-time=-1 --disable-shm=yes --log-target=stderr
              --load=module-native-protocol-unix
              "--load=module-null-sink sink_name=harness_idle rate=48000 channels=1"
              "--load=module-null-source source_name=harness_source")
  local spec
  for spec in "$@"; do
    args+=("--load=$(pulse_null_sink_args "$spec")")
  done
  exec pulseaudio "${args[@]}"
}

pulse_prepare() {
  local i
  for i in $(seq 1 300); do
    pactl info > /dev/null 2>&1 && break
    sleep 0.05
  done
  if ! pactl info > /dev/null 2>&1; then
    echo "${AUDIOPLAY_TEST_SERVER:-pulseaudio} did not come up:" >&2
    cat "$XDG_RUNTIME_DIR/pulse.log" >&2 2> /dev/null
    return 1
  fi
  if pulse_is_pipewire; then
    # pipewire-pulse can answer before wireplumber has made the "default" metadata, and
    # until then every set-default-sink fails with "Not supported": wait for it.
    for i in $(seq 1 300); do
      pw-cli ls Metadata 2> /dev/null | grep -q 'metadata.name = "default"' && return 0
      sleep 0.05
    done
    echo "wireplumber made no default metadata within 15 s" >&2
    return 1
  fi
  pactl set-default-sink harness_idle && pactl set-default-source harness_source
}

pulse_keepalive() {
  pulse_is_pipewire && exit 0
  local name rate ch
  IFS=: read -r name rate ch <<< "$1"
  exec pacat --device="$name" --latency-msec=5 --raw --format=s16le --rate="$rate" \
    --channels="$ch" --client-name=keepalive < /dev/zero > /dev/null 2>&1
}

pulse_settle() {
  if pulse_is_pipewire; then
    local spec
    for spec in "$@"; do
      pulse_add_sink "$spec" > /dev/null || return 1
    done
    if [ $# -gt 0 ]; then
      pactl set-default-sink "${1%%:*}" || return 1
    fi
    pulse_wait_low_latency "${@%%:*}"
    return
  fi
  if [ $# -gt 0 ]; then
    pactl set-default-sink "${1%%:*}" || return 1
  fi
  local idle
  idle=$(pulse_module_of harness_idle) || return 1
  pactl unload-module "$idle" || return 1
  local names=() spec
  for spec in "$@"; do
    names+=("${spec%%:*}")
  done
  pulse_wait_low_latency "${names[@]}"
}

# Not the default: its keep-alive must not follow the default around.
pulse_add_sink() {
  # shellcheck disable=SC2046 # the module arguments are words
  pactl load-module $(pulse_null_sink_args "$1")
}

pulse_add_pipe_sink() {
  pactl load-module module-pipe-sink "sink_name=$1" "file=$3" format=s16le "rate=$2" channels=2
}

pulse_module_of() {
  local m
  m=$(pactl list short modules | awk -v want="sink_name=$1" '
    { for (i = 3; i <= NF; i++) if ($i == want) { print $1; exit } }')
  if [ -z "$m" ]; then
    echo "no module for sink $1 in:" >&2
    pactl list short modules >&2
    return 1
  fi
  echo "$m"
}

# A new null sink starts with ~1.9 s of latency (its first idle block), which drains in real
# time; only then does the keep-alive hold it at ~1 ms. A stream opened before then stalls.
pulse_wait_low_latency() {
  if pulse_is_pipewire; then
    # A new sink is usable once the server lists it (no latency ramp there).
    local i name ok
    for i in $(seq 1 300); do
      ok=1
      for name in "$@"; do
        pactl list short sinks | awk -v n="$name" '$2 == n { f = 1 } END { exit !f }' || ok=0
      done
      [ "$ok" = 1 ] && return 0
      sleep 0.05
    done
    echo "sinks $* never appeared:" >&2
    pactl list short sinks >&2
    return 1
  fi
  local i settled
  for i in $(seq 1 300); do
    settled=$(pactl list sinks | awk -v names=" $* " '
      /^[ \t]*Name: / { name = $2 }
      /^[ \t]*Latency: / { if (index(names, " " name " ") && $2 < 50000) n++ }
      END { print n + 0 }')
    [ "$settled" -ge $# ] && return 0
    sleep 0.05
  done
  echo "sinks $* never reached low latency:" >&2
  pactl list sinks >&2
  return 1
}

pulse_start() {
  local dir="$1"; shift
  rm -rf "$dir"; mkdir -p "$dir/home"
  export XDG_RUNTIME_DIR="$dir" HOME="$dir/home"
  unset PULSE_SERVER PULSE_RUNTIME_PATH
  pulse_daemon "$@" 2> "$dir/pulse.log" &
  PULSE_PIDS+=($!)
  pulse_prepare || return 1
  local spec
  for spec in "$@"; do
    pulse_keepalive "$spec" &
    PULSE_PIDS+=($!)
  done
  pulse_settle "$@"
}

pulse_stop() {
  local p
  for p in "${PULSE_PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${PULSE_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  PULSE_PIDS=()
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  step="${1:-}"
  shift || true
  case "$step" in
    daemon) pulse_daemon "$@" ;;
    prepare) pulse_prepare ;;
    keepalive) pulse_keepalive "$1" ;;
    settle) pulse_settle "$@" ;;
    add-sink) pulse_add_sink "$1" ;;
    add-pipe-sink) pulse_add_pipe_sink "$1" "$2" "$3" ;;
    module-of) pulse_module_of "$1" ;;
    wait-low-latency) pulse_wait_low_latency "$@" ;;
    *) echo "usage: $0 daemon|prepare|keepalive|settle|add-sink|add-pipe-sink|module-of|wait-low-latency ARGS" >&2; exit 2 ;;
  esac
fi
