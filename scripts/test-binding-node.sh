#!/usr/bin/env bash
# The Node binding as its users get it, then its test suite:
#   scripts/test-binding-node.sh WORK
# WORK is a scratch directory outside the repository. Needs target/release/libaudioplay.so
# (a release build; scripts/install.sh makes one) and a sound server in the environment
# (PULSE_SERVER or XDG_RUNTIME_DIR: scripts/test.sh starts a private PulseAudio server).
#
#  1. a fresh npm project, `npm install <folder>`: the binding folder starts without
#     node_modules (this script deletes it; npm recreates it), so koffi must come from the
#     package's install script; a tone plays with AUDIOPLAY_LIB and LD_LIBRARY_PATH unset,
#     from the repository's release build, and its metrics must add up;
#  2. `npm pack` (prepack bundles the library) and the tarball installed into a second fresh
#     project: a tone plays again, from the library bundled in the package;
#  3. tsc --strict on the installed package's types: ok.ts compiles, every bad-*.ts fails;
#  4. the test suite (node --test) in bindings/node, less its own tsc run (done in 3).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/test-binding-node.sh WORK" >&2; exit 2; }
cd "$(dirname "$0")/.."
root="$PWD"
pkg="$root/bindings/node"
mkdir -p "$1"
work="$(cd "$1" && pwd)/node-binding"
case "$work/" in "$root"/*) echo "WORK must be outside the repository ($root)" >&2; exit 2 ;; esac
[ -f target/release/libaudioplay.so ] \
  || { echo "no target/release/libaudioplay.so: build it first (cargo build --release --lib)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s%N)
step() { local ms=$(( ($(date +%s%N) - start) / 1000000 )); printf '%s (%d.%d s)\n' "$1" $((ms / 1000)) $((ms % 1000 / 100)); }
npm_quiet=(--no-audit --no-fund --loglevel=error)

# Plays 0.3 s of a tone through the installed package and checks where the library came from
# and that every frame written was played.
cat > "$work/tone.js" <<'EOF'
'use strict';
const { Player, library } = require('audioplay');
const want = process.argv[2];
if (library.from !== want) throw new Error(`library from ${library.from} (${library.path}), expected ${want}`);
(async () => {
  const rate = 24000;
  const frames = 7200;
  const p = new Player({ rate, format: 'f32' });
  const tone = Float32Array.from({ length: frames }, (_, i) => 0.3 * Math.sin(2 * Math.PI * 440 * i / rate));
  const wrote = await p.write(tone);
  p.endUtterance();
  if (!(await p.drain(5000))) throw new Error('drain timed out');
  const m = p.metrics();
  p.close();
  if (wrote !== frames || m.frames_written !== frames || m.frames_played !== frames || m.underruns !== 0) {
    throw new Error(`metrics: wrote ${wrote}, frames_written ${m.frames_written}, frames_played ${m.frames_played}, underruns ${m.underruns}`);
  }
  console.log(`played ${m.frames_played} of ${frames} frames on ${m.device_id} (library: ${library.from}, ${library.path})`);
})().catch((e) => { console.error(e); process.exit(1); });
EOF

new_project() {
  mkdir -p "$1"
  (cd "$1" && npm init -y > /dev/null && cp "$work/tone.js" .)
}

echo "== Node: npm install <folder>"
rm -rf "$pkg/node_modules" "$pkg/native"
new_project "$work/folder-app"
(cd "$work/folder-app" && npm install "${npm_quiet[@]}" "$pkg" 2>&1 | { grep -v '^npm warn install-scripts' || true; })
[ -L "$work/folder-app/node_modules/audioplay" ] || { echo "npm install <folder> did not link the folder" >&2; exit 1; }
(cd "$work/folder-app" && env -u AUDIOPLAY_LIB -u LD_LIBRARY_PATH node tone.js 'repository build')
step "folder install played"

echo "== Node: npm pack, npm install <tarball>"
tarball="$(cd "$pkg" && npm pack --silent --pack-destination "$work" 2> "$work/pack.log" | tail -1)" \
  || { cat "$work/pack.log" >&2; exit 1; }
tar -tzf "$work/$tarball" > "$work/tarball.txt"
grep -qx 'package/native/libaudioplay.so' "$work/tarball.txt" \
  || { echo "$tarball lacks native/libaudioplay.so:" >&2; cat "$work/tarball.txt" >&2; exit 1; }
[ ! -e "$pkg/native" ] || { echo "postpack left $pkg/native behind" >&2; exit 1; }
new_project "$work/tarball-app"
(cd "$work/tarball-app" && npm install "${npm_quiet[@]}" "$work/$tarball" 2>&1 | { grep -v '^npm warn install-scripts' || true; })
(cd "$work/tarball-app" && env -u AUDIOPLAY_LIB -u LD_LIBRARY_PATH node tone.js bundled)
step "tarball ($(du -k "$work/$tarball" | cut -f1) KiB) install played"

echo "== Node: tsc --strict on the installed package's types"
dev="$(node -e 'const d = require(process.argv[1]).devDependencies; console.log(`typescript@${d.typescript} @types/node@${d["@types/node"]}`)' "$pkg/package.json")"
# shellcheck disable=SC2086 # two package specs
(cd "$work/tarball-app" && npm install "${npm_quiet[@]}" --no-save $dev > /dev/null)
node "$pkg/test-types/check.js" "$work/tarball-app"
step "types checked"

echo "== Node: test suite"
# The folder install put koffi into the folder, all the suite needs; tsc ran above.
(cd "$pkg" && AUDIOPLAY_TYPES_CHECKED="$work/tarball-app" node --test test/)
step "Node binding done"
