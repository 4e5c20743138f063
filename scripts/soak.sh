#!/usr/bin/env bash
# The full soak (issue 7, SPEC A1): 3 minutes of speech-like production on a private
# PulseAudio server; zero underruns inside utterances, exact frame accounting, flat RSS.
# CI runs a 30 s version inside scripts/reliability.sh.
#
#   scripts/soak.sh [seconds]      # default 180
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
AUDIOPLAY_SOAK_SECONDS="${1:-180}" cargo test --locked -q --test soak -- --ignored --nocapture
