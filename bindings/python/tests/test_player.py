"""Python binding tests, on the PulseAudio harness scripts/test.sh starts (it exports the
server's XDG_RUNTIME_DIR) and the library it installs (AUDIOPLAY_LIB)."""

import array
import ctypes
import math
import time

import numpy as np
import pytest

import audioplay
from audioplay import Error, Player


def tone(freq, rate, frames, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(frames) / rate)).astype(np.float32)


def test_struct_sizes_match_the_library():
    # The ctypes mirrors must match the C structs exactly (ap_metrics checks struct_size).
    with Player(rate=24000, format="f32") as p:
        assert p.metrics()["content_rate"] == 24000
    assert ctypes.sizeof(audioplay.ApEvent) == 32


def test_plays_a_numpy_tone_reads_metrics_and_flushes():
    with Player(rate=24000, channels=1, format="f32") as p:
        p.mark(7)
        assert p.write(tone(440, 24000, 12000)) == 12000
        assert p.drain(5000)
        m = p.metrics()
        assert m["frames_played"] == 12000 and m["underruns"] == 0
        assert m["stream_rate"] == 48000 and m["device_id"] == "s48"
        kinds = []
        while (e := p.poll_event()) is not None:
            kinds.append((e.kind, e.id))
        assert ("marker", 7) in kinds and kinds[0][0] == "utterance_start"
        p.write(tone(440, 24000, 48000))
        time.sleep(0.3)
        heard = p.flush(10)
        assert 0 < heard < 12000 + 48000
        time.sleep(0.2)
        m = p.metrics()
        assert m["frames_flushed"] > 0
        assert m["frames_written"] == m["frames_played"] + m["frames_queued"] + m["frames_flushed"] + m["frames_dropped"]


def test_bytes_and_array_inputs_s16():
    samples = array.array("h", (int(16000 * math.sin(2 * math.pi * 440 * i / 22050)) for i in range(4410)))
    with Player(rate=22050, format="s16") as p:
        assert p.write(samples) == 4410
        assert p.write(samples.tobytes()) == 4410
        p.set_volume(0.5, 20)
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 8820


def test_errors_are_exceptions_with_the_status():
    with pytest.raises(Error) as e:
        Player(rate=5)
    assert e.value.status == -2
    with pytest.raises(ValueError):
        Player(format="u8")
    with Player(rate=22050, format="s16") as p:
        with pytest.raises(ValueError):
            p.write(b"\x00")  # half a frame
        with pytest.raises(Error):
            p.set_volume(float("nan"))
    assert audioplay.version().count(".") == 2
