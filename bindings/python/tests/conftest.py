"""Shared helpers. Every test plays through the real PulseAudio server of the caller's
environment (scripts/test-binding-python.sh runs them under scripts/test.sh's private
server: XDG_RUNTIME_DIR points at it), against whichever audioplay is imported: the
installed package there (AUDIOPLAY_TEST_INSTALLED=1), or the source tree with AUDIOPLAY_LIB."""

from __future__ import annotations

import array
import math
import os
import subprocess
import sys
import tempfile
from typing import Dict, List

import audioplay


def tone_s16(frames: int, rate: int = 22050, freq: float = 440.0, channels: int = 1) -> array.array:
    out = array.array("h")
    for i in range(frames):
        v = int(12000 * math.sin(2 * math.pi * freq * i / rate))
        out.extend([v] * channels)
    return out


def tone_f32(frames: int, rate: int = 24000, freq: float = 440.0) -> array.array:
    return array.array("f", (0.4 * math.sin(2 * math.pi * freq * i / rate) for i in range(frames)))


def child_env(**extra: str) -> Dict[str, str]:
    """The environment for a child Python that must import the same audioplay as this one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(audioplay.__file__)))
    env.update(extra)
    return env


def run_child(code: str, env: Dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    # Not from the source tree: `python -c` imports from its working directory first.
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=tempfile.gettempdir())


def events_until(p: audioplay.Player, kind: str, timeout_ms: int = 3000) -> List[audioplay.Event]:
    """The player's events up to and including the first of `kind`. Events are delivered
    on the library's event thread, a little after drain() has returned."""
    got: List[audioplay.Event] = []
    while not got or got[-1].kind != kind:
        e = p.wait_event(timeout_ms)
        assert e is not None, f"no {kind} event within {timeout_ms} ms; got {got}"
        got.append(e)
    return got
