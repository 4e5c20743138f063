#!/usr/bin/env bash
# Regenerates include/audioplay.h from src/ffi with cbindgen (commit the result; a test fails
# while the committed header differs from what the code generates).
set -euo pipefail
cd "$(dirname "$0")/.."
AUDIOPLAY_WRITE_HEADER=1 cargo build --lib
python3 scripts/gen-api-doc.py
git diff --stat -- include/audioplay.h docs/API.md
