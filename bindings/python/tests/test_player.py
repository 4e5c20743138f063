"""Playback and the whole API, through the real PulseAudio server."""

from __future__ import annotations

import math
import subprocess
import threading
import time

import pytest

import audioplay
from audioplay import Error, Player
from conftest import events_until, tone_f32, tone_s16


def test_plays_a_tone_and_metrics_show_every_frame_played():
    with Player(rate=24000, channels=1, format="f32") as p:
        p.mark(7)
        assert p.write(tone_f32(12000)) == 12000
        assert p.drain(5000)
        m = p.metrics()
        assert m["frames_written"] == m["frames_played"] == 12000
        assert m["underruns"] == 0 and m["frames_queued"] == 0
        assert m["stream_rate"] > 0 and m["device_id"]
        kinds = [(e.kind, e.id) for e in events_until(p, "utterance_end")]
        assert kinds == [("utterance_start", 0), ("marker", 7), ("utterance_end", 0)]
        assert list(p.events()) == [] and p.poll_event() is None


def test_write_queues_everything_by_default():
    # A 200 ms queue and 50 ms write timeout: one second of audio only fits as it plays.
    with Player(rate=22050, ring_capacity_ms=200, write_timeout_ms=50) as p:
        second = tone_s16(22050)
        t = time.monotonic()
        assert p.write(second) == 22050
        assert time.monotonic() - t > 0.5  # it waited for room, and queued it all
        # The partial mode is one call: with the queue full it returns what fitted.
        n = p.write(second, partial=True)
        assert 0 <= n < 22050
        assert p.drain(5000)
        m = p.metrics()
        assert m["frames_written"] == m["frames_played"] == 22050 + n


def test_write_with_write_timeout_zero_still_queues_everything():
    with Player(rate=22050, ring_capacity_ms=100, write_timeout_ms=0) as p:
        assert p.write(tone_s16(11025)) == 11025
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 11025


def test_flush_stops_a_full_write_on_another_thread():
    with Player(rate=22050, ring_capacity_ms=200) as p:
        result = []
        # The tone is made first (in the thread, a loaded CI machine took longer than the
        # sleep to make it, so the flush came before the write and 5 s were queued after it),
        # and the flush waits until the write is blocked on a full queue.
        tone = tone_s16(22050 * 5)
        t = threading.Thread(target=lambda: result.append(p.write(tone)))
        t.start()
        deadline = time.monotonic() + 10
        while p.metrics()["frames_written"] < 22050 * 2 // 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        heard = p.flush(5)
        t.join(2)
        assert not t.is_alive(), "write went on after flush"
        assert 0 < result[0] < 22050 * 5
        assert 0 < heard <= result[0]
        assert events_until(p, "flushed")[-1].frame >= heard  # the fade is over
        m = p.metrics()
        assert m["frames_flushed"] > 0, m
        assert m["frames_written"] == (m["frames_played"] + m["frames_queued"]
                                       + m["frames_flushed"] + m["frames_dropped"])


def test_drain_times_out_and_reports_it():
    with Player(rate=22050, ring_capacity_ms=5000) as p:
        p.write(tone_s16(22050 * 2))
        t = time.monotonic()
        assert p.drain(200) is False
        assert 0.15 < time.monotonic() - t < 0.6
        assert p.drain(0) is False
        p.flush(0)


def test_errors_carry_the_library_reason():
    with pytest.raises(Error) as e:
        Player(rate=5)
    assert e.value.status == -2 and e.value.call == "ap_create_ex"
    assert "input_rate" in str(e.value) and "input_rate 5" in e.value.reason
    with pytest.raises(Error) as e:
        Player(ring_capacity_ms=5)
    assert "ring_capacity_ms" in str(e.value)
    with pytest.raises(Error) as e:
        Player(device="no-such-device")
    assert e.value.status == -5 and "no-such-device" in str(e.value)
    with Player() as p:
        with pytest.raises(Error) as e:
            p.set_volume(float("nan"))
        assert e.value.status == -2 and "volume" in e.value.reason
        with pytest.raises(Error) as e:
            p.set_volume(5.0)
        assert "out of range" in str(e.value)
        for bad in (float("nan"), 0.49, 4.01):
            with pytest.raises(Error) as e:
                p.set_speed(bad)
            assert e.value.status == -2 and "speed" in e.value.reason
        with pytest.raises(TypeError):
            p.set_speed("fast")  # type: ignore[arg-type]
        p.set_speed(2.5)
        p.set_speed(1.0)
        with pytest.raises(Error) as e:
            p.set_input_format("s16", 1, 5)
        assert "input_rate" in str(e.value)
        with pytest.raises(Error) as e:
            p.set_device("no-such-device")
        assert e.value.status == -5 and "no-such-device" in str(e.value)
    with pytest.raises(Error) as e:
        p.write(b"\x00\x00")
    assert "closed" in str(e.value)


def test_arguments_are_checked_before_they_reach_c():
    with Player() as p:
        for bad in (-1, 2**64):
            with pytest.raises(ValueError, match="marker_id"):
                p.mark(bad)
        with pytest.raises(TypeError, match="marker_id"):
            p.mark("1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout_ms"):
            p.drain(-5)
        with pytest.raises(ValueError, match="fade_ms"):
            p.flush(-1)
        with pytest.raises(ValueError, match="ramp_ms"):
            p.pause(-1)
        with pytest.raises(TypeError, match="gain"):
            p.set_volume("loud")  # type: ignore[arg-type]
        p.mark(2**64 - 1)
    with pytest.raises(ValueError, match="rate"):
        Player(rate=-22050)
    with pytest.raises(ValueError, match="format"):
        Player(format="u8")
    with pytest.raises(TypeError, match="unknown setting"):
        Player(ring_capacity=100)
    with pytest.raises(ValueError, match="write_timeout_ms"):
        Player(write_timeout_ms=-1)


def test_pause_holds_the_position_and_resume_moves_it():
    with Player(rate=22050, ring_capacity_ms=5000) as p:
        p.write(tone_s16(22050 * 2))
        time.sleep(0.3)
        p.pause(5)
        time.sleep(0.15)
        a = p.position()
        time.sleep(0.3)
        b = p.position()
        assert 0 < a.frames_heard == b.frames_heard
        assert b.frames_queued > 0
        p.resume(5)
        time.sleep(0.3)
        c = p.position()
        assert c.frames_heard > b.frames_heard + 22050 * 0.15
        p.set_volume(0.5, 20)
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 44100
        assert p.position().frames_queued == 0


def test_voice_change_switches_what_write_takes():
    with Player(rate=24000, format="f32") as p:
        assert p.write(tone_f32(6000)) == 6000
        p.set_input_format("s16", 2, 16000)
        assert (p.format, p.channels, p.rate) == ("s16", 2, 16000)
        with pytest.raises(TypeError):
            p.write(tone_f32(100))
        with pytest.raises(ValueError):
            p.write(tone_s16(101))  # 101 samples: not whole stereo frames
        assert p.write(tone_s16(4000, rate=16000, channels=2)) == 4000
        assert p.drain(5000)
        assert p.metrics()["frames_played"] == 10000
        assert p.state()["content_rate"] == 16000
        p.set_voice("f32", 1, 22050)
        assert p.write(tone_f32(2205, rate=22050)) == 2205
        assert p.drain(5000)


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout


def test_devices_list_and_set():
    devices = audioplay.list_devices()
    assert devices and sum(d.is_default for d in devices) == 1
    default = next(d for d in devices if d.is_default)
    assert default.rate > 0 and default.channels > 0
    module = None
    others = [d for d in devices if not d.is_default]
    if not others:
        module = _pactl("load-module", "module-null-sink", "sink_name=pytest_other",
                        "rate=16000", "channels=1").strip()
    try:
        for _ in range(100):
            others = [d for d in audioplay.list_devices() if not d.is_default]
            if others:
                break
            time.sleep(0.05)
        other = others[0]
        with Player(rate=22050) as p:
            assert p.metrics()["device_id"] == default.id
            p.set_device(other.id)
            e = p.wait_event(5000)
            while e is not None and e.kind != "device_changed":
                e = p.wait_event(5000)
            assert e is not None, "no device_changed event"
            assert p.metrics()["device_id"] == other.id
            assert p.write(tone_s16(4410)) == 4410
            assert p.drain(10000)
            assert p.metrics()["frames_played"] == 4410
            p.set_device(None)
        with Player(rate=22050, device=other.id) as p:
            assert p.metrics()["device_id"] == other.id
    finally:
        if module:
            _pactl("unload-module", module)


def test_events_wait_and_iterate():
    with Player(rate=22050) as p:
        assert p.wait_event(50) is None
        p.write(tone_s16(2205))
        p.mark(1)
        p.write(tone_s16(2205))
        p.end_utterance()
        got = events_until(p, "utterance_end")
        marker = next(e for e in got if e.kind == "marker")
        assert marker.id == 1 and marker.frame == 2205
        assert all(isinstance(e.heard_ms, float) for e in got)
        assert math.isfinite(got[-1].heard_ms)


def test_on_event_callback_runs_on_the_event_thread():
    got = []
    threads = set()

    def on_event(e: audioplay.Event) -> None:
        threads.add(threading.get_ident())
        got.append(e)
        if e.kind == "marker":
            raise RuntimeError("a faulty callback")

    with Player(rate=22050, on_event=on_event) as p:
        p.write(tone_s16(2205))
        p.mark(3)
        p.write(tone_s16(2205))
        assert p.drain(5000)
        deadline = time.monotonic() + 3
        while not any(e.kind == "utterance_end" for e in got) and time.monotonic() < deadline:
            time.sleep(0.01)
        kinds = [(e.kind, e.id) for e in got]
        assert ("marker", 3) in kinds and ("utterance_end", 0) in kinds, kinds
        assert threading.get_ident() not in threads
        assert [str(x) for x in p.event_errors] == ["a faulty callback"]
        # The events are queued for polling as well.
        polled = [(e.kind, e.id) for e in events_until(p, "utterance_end")]
        assert polled == kinds, (polled, kinds)
    with pytest.raises(TypeError, match="on_event"):
        Player(on_event=5)  # type: ignore[arg-type]


def test_exit_with_a_callback_player_open_is_clean():
    from conftest import child_env, run_child
    code = ("import audioplay\n"
            "p = audioplay.Player(rate=22050, on_event=lambda e: None)\n"
            "p.write(b'\\x00\\x10' * 22050)\n"
            "print('leaving')\n")
    r = run_child(code, child_env())
    assert r.returncode == 0 and r.stdout == "leaving\n" and r.stderr == "", r


def test_identity_and_keep_awake_settings_reach_the_server():
    with pytest.raises(TypeError):
        Player(application_name=5)
    with pytest.raises(Error) as e:
        Player(stream_name="x" * 300)
    assert "stream_name" in e.value.reason
    with Player(rate=22050, application_name="Py Reader", media_role="event",
                keep_awake_ms=60000, wake_preroll_ms=20) as p:
        assert p.write(tone_s16(11025)) == 11025
        listing = subprocess.run(["pactl", "list", "sink-inputs"], capture_output=True,
                                 text=True, check=True).stdout
        assert p.drain(5000)
    mine = [b for b in listing.split("\n\n") if 'application.name = "Py Reader"' in b]
    assert mine and 'media.role = "event"' in mine[0], listing
