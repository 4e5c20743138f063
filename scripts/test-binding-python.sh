#!/usr/bin/env bash
# The Python binding as a user gets it (issue 17):
#   scripts/test-binding-python.sh WORK
# WORK is a scratch directory outside the repository (scripts/test.sh passes its own). With a
# sound server already running for this environment (test.sh's private PulseAudio), it
#   1. makes a fresh venv and `pip install`s bindings/python into it (the in-tree backend
#      runs cargo: a no-op when target/release is built);
#   2. builds a wheel with `pip wheel`, checks it is platform-specific and carries
#      audioplay/_lib/libaudioplay.so and audioplay/py.typed, and installs it into a second
#      fresh venv, which gets pytest, numpy and mypy from PyPI meanwhile;
#   3. in both venvs, from a directory outside the repository with PYTHONPATH,
#      AUDIOPLAY_LIB and LD_LIBRARY_PATH unset: imports audioplay from the venv, plays a tone
#      and checks metrics' frames_played;
#   4. runs mypy --strict on the installed package and on a program using it;
#   5. runs bindings/python/tests with pytest against the installed wheel.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/test-binding-python.sh WORK" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
work="$(cd "$1" && pwd)"
case "$work/" in "$root"/*) echo "WORK must be outside the repository" >&2; exit 2 ;; esac
py="${PYTHON:-python3}"
dir="$work/python-binding"
rm -rf "$dir"
mkdir -p "$dir/run"
# Nothing may lead Python or the loader to the source tree or to another library.
unset PYTHONPATH AUDIOPLAY_LIB LD_LIBRARY_PATH PYTHONHOME
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
start=$SECONDS
step() { echo "-- $* ($((SECONDS - start)) s)"; }

step "two fresh venvs; pytest, numpy and mypy into the second, in the background"
"$py" -m venv "$dir/venv-src"
"$py" -m venv --without-pip "$dir/venv-whl"
pip_whl() { "$dir/venv-src/bin/python" -m pip --python "$dir/venv-whl/bin/python" "$@"; }
# The download overlaps the build below.
pip_whl install -q pytest numpy mypy > "$dir/deps.log" 2>&1 &
deps=$!
trap 'kill "$deps" 2> /dev/null || true' EXIT

step "pip install bindings/python into the first venv"
"$dir/venv-src/bin/python" -m pip install -q "$root/bindings/python"

step "pip wheel bindings/python"
"$dir/venv-src/bin/python" -m pip wheel -q --no-deps -w "$dir/wheels" "$root/bindings/python"
whl="$(echo "$dir"/wheels/audioplay-*.whl)"
[ -f "$whl" ] || { echo "no wheel built in $dir/wheels" >&2; exit 1; }
case "$(basename "$whl")" in
  *-none-any.whl) echo "wheel $(basename "$whl") is not platform-specific" >&2; exit 1 ;;
esac
"$py" - "$whl" <<'EOF2'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
for need in ("audioplay/__init__.py", "audioplay/py.typed", "audioplay/_lib/libaudioplay.so"):
    assert need in names, f"{need} missing from {sys.argv[1]}: {sorted(names)}"
EOF2
echo "$(basename "$whl"): $(du -k "$whl" | cut -f1) KiB, carries _lib/libaudioplay.so and py.typed"

step "install the wheel into the second venv"
wait "$deps" || { cat "$dir/deps.log" >&2; echo "installing pytest, numpy and mypy failed" >&2; exit 1; }
pip_whl install -q --no-deps "$whl"

cd "$dir/run"  # outside the repository: nothing is imported from a working directory there
for venv in venv-src venv-whl; do
  step "$venv: a tone, with no environment variables"
  "$dir/$venv/bin/python" - <<'EOF'
import array, math, os, sys
import audioplay
here = os.path.realpath(audioplay.__file__)
assert here.startswith(os.path.realpath(sys.prefix) + os.sep), f"imported {here}, not the venv's"
assert audioplay.library_path() == audioplay.BUNDLED_LIB, audioplay.library_path()
tone = array.array("h", (int(12000 * math.sin(2 * math.pi * 440 * i / 22050)) for i in range(11025)))
with audioplay.Player(rate=22050) as p:
    n = p.write(tone)
    assert p.drain(5000)
    m = p.metrics()
assert n == m["frames_played"] == 11025 and m["underruns"] == 0, m
print(f"played {m['frames_played']} frames on {m['device_id']} with {audioplay.library_path()}")
EOF
done

step "mypy --strict"
cat > "$dir/run/use_audioplay.py" <<'EOF'
import audioplay

def speak(p: audioplay.Player, pcm: bytes) -> int:
    n: int = p.write(pcm)
    done: bool = p.drain(1000)
    pos: audioplay.Position = p.position()
    ev: "audioplay.Event | None" = p.poll_event()
    return n + int(done) + pos.frames_heard + (ev.id if ev else 0)
EOF
"$dir/venv-whl/bin/mypy" --strict --no-incremental -p audioplay
"$dir/venv-whl/bin/mypy" --strict --no-incremental "$dir/run/use_audioplay.py"

step "pytest bindings/python/tests against the installed wheel"
AUDIOPLAY_TEST_INSTALLED=1 "$dir/venv-whl/bin/python" -m pytest -q -p no:cacheprovider \
  --rootdir "$dir/run" "$root/bindings/python/tests"
step "Python binding done"
