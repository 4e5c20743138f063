"""Samples are checked against the player's format and channels; conversion only on request."""

from __future__ import annotations

import array

import numpy as np
import pytest

import audioplay
from audioplay import Player


def sine(frames: int, rate: int) -> np.ndarray:
    return 0.4 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate)  # float64, as np.sin gives


def test_float64_into_s16_is_refused_naming_both():
    with Player(rate=22050, format="s16") as p:
        with pytest.raises(TypeError) as e:
            p.write(sine(2205, 22050))
        msg = str(e.value)
        assert "float64" in msg and "s16" in msg and "convert=True" in msg
        with pytest.raises(TypeError, match="float32.*s16"):
            p.write(sine(2205, 22050).astype(np.float32))
        with pytest.raises(TypeError, match="int32"):
            p.write(np.zeros(100, np.int32))
        with pytest.raises(TypeError, match=">i2"):
            p.write(np.zeros(100, ">i2"))  # int16, but not native byte order
        assert p.metrics()["frames_written"] == 0


def test_int16_into_f32_is_refused():
    with Player(rate=24000, format="f32") as p:
        with pytest.raises(TypeError, match="int16.*f32"):
            p.write(np.zeros(100, np.int16))
        with pytest.raises(TypeError, match="float64.*f32"):
            p.write(array.array("d", [0.0] * 100))
        with pytest.raises(TypeError, match="int16.*f32"):
            p.write(array.array("h", [0] * 100))


def test_channel_mismatches_are_refused_naming_both():
    with Player(rate=22050, format="s16", channels=1) as p:
        with pytest.raises(ValueError) as e:
            p.write(np.zeros((1000, 2), np.int16))
        assert "(1000, 2)" in str(e.value) and "2 channels" in str(e.value)
        assert "takes 1" in str(e.value)
        with pytest.raises(ValueError, match="shape"):
            p.write(np.zeros((10, 10, 1), np.int16))
        # (frames, 1) is mono.
        assert p.write(np.zeros((441, 1), np.int16)) == 441
    with Player(rate=22050, format="s16", channels=2) as p:
        with pytest.raises(ValueError, match=r"1-D.*\(1000,\).*2 channels"):
            p.write(np.zeros(1000, np.int16))
        with pytest.raises(ValueError, match="3 channels"):
            p.write(np.zeros((100, 3), np.int16))
        with pytest.raises(ValueError, match="whole number of 4-byte frames"):
            p.write(b"\x00" * 6)
        assert p.write(np.zeros((441, 2), np.int16)) == 441
        assert p.write(np.zeros((441, 2), np.int16).T.copy().T) == 441  # not C-contiguous
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 882


def test_other_types_are_refused():
    with Player() as p:
        with pytest.raises(TypeError, match="not str"):
            p.write("hello")
        with pytest.raises(TypeError, match="not list"):
            p.write([1, 2, 3])
        with pytest.raises(ValueError, match="whole number"):
            p.write(b"\x00")  # half an s16 frame


def test_conversion_when_asked():
    with Player(rate=22050, format="s16") as p:
        x = sine(4410, 22050)
        assert p.write(x, convert=True) == 4410
        assert p.write(array.array("d", x.tolist()), convert=True) == 4410
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 8820
    with Player(rate=24000, format="f32", channels=2) as p:
        assert p.write(np.zeros((2400, 2), np.int16), convert=True) == 2400
        with pytest.raises(ValueError):  # conversion is of the sample type, not the channels
            p.write(np.zeros(2400, np.int16), convert=True)
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 2400
    # What the conversions compute.
    f = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, np.nan])
    assert audioplay._convert_numpy(np, f, "s16").tolist() == [0, 16384, -16384, 32767, -32767, 32767, 0]
    assert audioplay._convert_numpy(np, np.array([16384, -32768], np.int16), "f32").tolist() == [0.5, -1.0]
    assert audioplay._convert_numpy(np, np.array([1 << 30], np.int32), "s16").tolist() == [1 << 14]
    assert audioplay._convert_numpy(np, np.array([0, 255], np.uint8), "s16").tolist() == [-32768, 32512]
    assert audioplay._convert_list([0.5, -2.0], "d", "s16").tolist() == [16384, -32767]
    assert audioplay._convert_list([16384], "h", "f32").tolist() == [0.5]


def test_buffer_inputs_without_numpy():
    samples = array.array("h", [1000, -1000] * 1103)
    with Player(rate=22050, format="s16") as p:
        assert p.write(samples) == 2206
        assert p.write(samples.tobytes()) == 2206
        assert p.write(bytearray(samples.tobytes())) == 2206
        assert p.write(memoryview(samples)) == 2206
        assert p.write(memoryview(samples.tobytes())[4:]) == 2204
        assert p.write(b"") == 0
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 4 * 2206 + 2204
    with Player(rate=24000, format="f32") as p:
        assert p.write(array.array("f", [0.1] * 2400)) == 2400
        assert p.write(np.full(2400, 0.1, np.float32)) == 2400
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 4800
