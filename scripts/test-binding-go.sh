#!/usr/bin/env bash
# The Go binding as a user gets it, with no environment variables pointing at the library:
#   1. installs the library as a system package would (scripts/install.sh --prefix /usr/local,
#      then ldconfig), and removes it again on exit, whatever happens;
#   2. in WORK, outside the repository, makes a fresh Go module that requires
#      github.com/audioplay/audioplay/bindings/go (a replace directive points it at this
#      checkout's bindings/go; no module proxy), builds it with PKG_CONFIG_PATH,
#      LD_LIBRARY_PATH and AUDIOPLAY_LIB unset, checks that it links the installed
#      /usr/local library, and plays a tone;
#   3. runs the binding's own tests (go test), gofmt and go vet, the same way.
#
#   scripts/test-binding-go.sh WORK
#
# Needs root (it writes /usr/local), cargo (install.sh builds the release library; scripts/test.sh
# has built it already) and Go. It plays through the PulseAudio server of the caller's
# environment (scripts/test.sh starts one); without a reachable server it starts a private one
# in WORK (scripts/lib/pulse.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
[ $# -eq 1 ] || { echo "usage: scripts/test-binding-go.sh WORK" >&2; exit 2; }
mkdir -p "$1"
work="$(cd "$1" && pwd)"
prefix=/usr/local
module=github.com/audioplay/audioplay/bindings/go
t0=$EPOCHREALTIME
lap() { printf '  [%5.1f s] %s\n' "$(python3 -c 'import sys; print(float(sys.argv[1]) - float(sys.argv[2]))' "$EPOCHREALTIME" "$t0")" "$*"; }

if [ -e "$prefix/share/audioplay/install-manifest.txt" ]; then
  echo "scripts/test-binding-go.sh: audioplay is already installed in $prefix (its manifest exists);" >&2
  echo "  not installing over it (the uninstall on exit would remove it). Remove it with" >&2
  echo "  scripts/install.sh --uninstall --prefix $prefix" >&2
  exit 1
fi

source scripts/lib/pulse.sh
installed=0
cleanup() {
  local rc=$?
  pulse_stop
  if [ "$installed" = 1 ]; then
    if [ -e "$prefix/share/audioplay/install-manifest.txt" ]; then
      "$root/scripts/install.sh" --uninstall --prefix "$prefix" > /dev/null || rc=1
    else
      echo "scripts/test-binding-go.sh: the install into $prefix did not finish (no manifest)" >&2
    fi
    ldconfig || rc=1
    if [ -e "$prefix/lib/libaudioplay.so.0" ] || ldconfig -p | grep -qF "$prefix/lib/libaudioplay.so"; then
      echo "scripts/test-binding-go.sh: audioplay still installed in $prefix after uninstalling" >&2
      rc=1
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== Go binding, installed as a system library in $prefix"
installed=1 # from here on, whatever happens, the trap uninstalls what the manifest lists
# Without the caller's PKG_CONFIG_PATH: alsa-sys's build script reruns when it changes, which
# would rebuild the release library that scripts/test.sh's own install built without it.
env -u PKG_CONFIG_PATH scripts/install.sh --prefix "$prefix" > "$work/install-go.log" 2>&1 \
  || { cat "$work/install-go.log"; exit 1; }
ldconfig
lap "installed into $prefix and ran ldconfig"

if ! pactl info > /dev/null 2>&1; then
  pulse_start "$work/pulse-go" s48:48000:2 s16:16000:1
  lap "no sound server reachable: started a private one"
fi

# Nothing in the environment points at the library; Go keeps its caches in WORK and never
# asks a module proxy.
clean_env=(env -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH -u AUDIOPLAY_LIB -u LIBRARY_PATH -u CPATH
  -u CGO_CFLAGS -u CGO_LDFLAGS -u GOPATH -u GOCACHE -u GOMODCACHE -u GOFLAGS
  GOENV=off GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS=-mod=mod GOPROXY=off
  GOSUMDB=off GO111MODULE=on CGO_ENABLED=1)

app="$work/go-app"
rm -rf "$app"
mkdir -p "$app"
cp bindings/go/examples/tone/main.go "$app/main.go"
cat > "$app/go.mod" <<EOF
module example.com/go-app

go 1.19

require $module v0.0.0

replace $module => $root/bindings/go
EOF
(cd "$app" && "${clean_env[@]}" go build -o "$app/tone" .)
lap "a fresh module outside the repository built against $module"
lib="$("${clean_env[@]}" ldd "$app/tone" | awk '/libaudioplay\.so/ { print $3 }')"
case "$lib" in
  "$prefix"/lib/libaudioplay.so.0) ;;
  *) echo "the Go program links '$lib', not $prefix/lib/libaudioplay.so.0:" >&2; "${clean_env[@]}" ldd "$app/tone" >&2; exit 1 ;;
esac
"${clean_env[@]}" "$app/tone" -seconds 1 -freq 440
lap "it played a tone, linking $lib"

cd bindings/go
unformatted="$(gofmt -l .)"
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted" >&2; exit 1; }
"${clean_env[@]}" go vet ./...
"${clean_env[@]}" go test -count=1 ./...
lap "gofmt, go vet and the binding's tests passed"
