#!/usr/bin/env bash
# Checks the Swift binding against the C header without a Swift toolchain (none runs here):
# the module map and shim point at audioplay.h, and every ap_* function and AP_* constant the
# wrapper uses is declared in the header.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=bindings/swift
grep -q 'header "shim.h"' "$dir/Sources/CAudioPlay/module.modulemap"
grep -q 'link "audioplay"' "$dir/Sources/CAudioPlay/module.modulemap"
grep -q '#include <audioplay.h>' "$dir/Sources/CAudioPlay/shim.h"
grep -q 'pkgConfig: "audioplay"' "$dir/Package.swift"
missing=0
for sym in $(grep -oE '\b(ap_[a-z_]+|AP_[A-Z0-9_]+)\b' "$dir/Sources/AudioPlay/AudioPlay.swift" | sort -u); do
  if ! grep -qE "\b$sym\b" include/audioplay.h; then
    echo "Swift wrapper uses $sym, which include/audioplay.h does not declare" >&2
    missing=1
  fi
done
for ty in ApConfig ApMetrics ApEvent ApStatus; do
  grep -q "$ty" include/audioplay.h || { echo "header lacks $ty" >&2; missing=1; }
done
[ "$missing" -eq 0 ]
echo "swift binding: module map and wrapper match include/audioplay.h"
