"""audioplay for Python: glitch-free speech playback through the audioplay C library.

    from audioplay import Player
    with Player(rate=22050, channels=1, format="s16") as p:
        p.write(samples)          # bytes, array('h'/'f') or a numpy array
        p.drain()
        print(p.metrics()["underruns"])

Pure ctypes: no compiler needed. The library is found through AUDIOPLAY_LIB (a path to
libaudioplay.so), then next to this package's install prefix, then the system's loader.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from typing import Optional

__all__ = ["Player", "Error", "Event", "load_library", "version"]

AP_OK = 0
AP_ERR_TIMEOUT = -7
FORMATS = {"s16": 1, "f32": 2}
EVENT_KINDS = {1: "marker", 2: "utterance_start", 3: "utterance_end", 4: "underrun_start",
               5: "underrun_end", 6: "device_changed", 7: "flushed"}


class ApConfig(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32), ("input_format", ctypes.c_int32),
        ("input_channels", ctypes.c_uint32), ("input_rate", ctypes.c_uint32),
        ("device_id", ctypes.c_char_p), ("target_latency_ms", ctypes.c_uint32),
        ("ring_capacity_ms", ctypes.c_uint32), ("write_timeout_ms", ctypes.c_uint32),
        ("prefer_stream_rate", ctypes.c_int32), ("resample_mode", ctypes.c_int32),
        ("log_level", ctypes.c_int32), ("log_fn", ctypes.c_void_p), ("log_user", ctypes.c_void_p),
        ("device_poll_ms", ctypes.c_uint32), ("device_query_cooldown_ms", ctypes.c_uint32),
        ("max_recreate_per_minute", ctypes.c_uint32), ("debounce_ms", ctypes.c_uint32),
        ("max_replay_ms", ctypes.c_uint32), ("recreate_warn_ms", ctypes.c_uint32),
        ("start_threshold_ms", ctypes.c_uint32), ("idle_suspend_ms", ctypes.c_uint32),
        ("event_fn", ctypes.c_void_p), ("event_user", ctypes.c_void_p),
        ("resample_quality", ctypes.c_int32), ("resample_p95_limit_us", ctypes.c_uint32),
        ("audio_thread_priority", ctypes.c_uint32), ("device_lost_timeout_ms", ctypes.c_uint32),
    ]


class ApEvent(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("kind", ctypes.c_uint32),
                ("id", ctypes.c_uint64), ("frame", ctypes.c_uint64), ("heard_ms", ctypes.c_double)]


_U64 = ["frames_written", "frames_played", "frames_queued", "frames_dropped", "underruns",
        "generation_mismatches", "shape_mismatches", "callback_errors", "resample_errors",
        "callbacks", "stream_errors", "stream_generation"]
_F64 = ["callback_us_p50", "callback_us_p95", "callback_us_p99", "callback_us_max",
        "resample_us_p50", "resample_us_p95", "resample_us_p99", "resample_us_max",
        "output_latency_ms"]


class ApMetrics(ctypes.Structure):
    _fields_ = (
        [("struct_size", ctypes.c_uint32), ("output_channels", ctypes.c_uint32)]
        + [(n, ctypes.c_uint64) for n in _U64]
        + [(n, ctypes.c_double) for n in _F64]
        + [(n, ctypes.c_uint32) for n in ["stream_rate", "device_rate", "content_rate"]]
        + [("device_format", ctypes.c_int32)]
        + [(n, ctypes.c_uint32) for n in ["needs_resample", "recreating", "last_recreate_reason"]]
        + [(n, ctypes.c_uint64) for n in ["frames_replayed", "recreates", "recreate_failures",
                                          "recreates_refused", "device_query_failures"]]
        + [(n, ctypes.c_double) for n in ["last_route_gap_ms", "recreate_ms_p50",
                                          "recreate_ms_p95", "recreate_ms_max"]]
        + [("device_id", ctypes.c_char * 128), ("device_name", ctypes.c_char * 128)]
        + [(n, ctypes.c_uint64) for n in ["frames_flushed", "frames_heard", "markers_flushed",
                                          "events_dropped"]]
        + [("last_wake_ms", ctypes.c_double), ("suspended", ctypes.c_uint32)]
        + [("late_callbacks", ctypes.c_uint64), ("resample_fallback", ctypes.c_uint32)]
        + [("output_lost", ctypes.c_uint32)]
        + [(n, ctypes.c_uint64) for n in ["outages", "last_outage_ms", "server_reconnects"]]
        + [("server_underflows", ctypes.c_uint64)]
    )


class Error(RuntimeError):
    """A failed call: `status` is the ApStatus code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Event:
    kind: str
    id: int
    frame: int
    heard_ms: float


_lib: Optional[ctypes.CDLL] = None


def load_library() -> ctypes.CDLL:
    """Loads libaudioplay once and declares the functions used here."""
    global _lib
    if _lib is not None:
        return _lib
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("AUDIOPLAY_LIB"),
                  os.path.join(here, "..", "..", "..", "lib", "libaudioplay.so"),
                  ctypes.util.find_library("audioplay")]
    last = None
    for c in filter(None, candidates):
        try:
            _lib = ctypes.CDLL(c)
            break
        except OSError as e:
            last = e
    if _lib is None:
        raise OSError(f"libaudioplay not found (set AUDIOPLAY_LIB): {last}")
    L, P, I32, U32, U64, SZ = _lib, ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
    sigs = {
        "ap_config_init": [ctypes.POINTER(ApConfig)],
        "ap_create": [ctypes.POINTER(ApConfig), ctypes.POINTER(P)],
        "ap_destroy": [P],
        "ap_write": [P, P, SZ, ctypes.POINTER(SZ)],
        "ap_drain": [P, U32],
        "ap_end_utterance": [P],
        "ap_mark": [P, U64],
        "ap_flush": [P, U32, ctypes.POINTER(U64)],
        "ap_pause": [P, U32],
        "ap_resume": [P, U32],
        "ap_set_volume": [P, ctypes.c_float, U32],
        "ap_metrics": [P, ctypes.POINTER(ApMetrics)],
        "ap_poll_event": [P, ctypes.POINTER(ApEvent), ctypes.POINTER(SZ)],
        "ap_last_error": [P, ctypes.c_char_p, SZ],
    }
    for name, args in sigs.items():
        f = getattr(L, name)
        f.argtypes = args
        f.restype = I32
    L.ap_strerror.argtypes = [I32]
    L.ap_strerror.restype = ctypes.c_char_p
    L.ap_version.restype = ctypes.c_char_p
    return _lib


def version() -> str:
    return load_library().ap_version().decode()


class Player:
    """A player on the system's default output (or `device`). Use as a context manager,
    or call close(). Methods raise Error on failure."""

    def __init__(self, rate: int = 22050, channels: int = 1, format: str = "s16",
                 device: Optional[str] = None, **settings: int):
        lib = load_library()
        self._lib = lib
        cfg = ApConfig()
        lib.ap_config_init(ctypes.byref(cfg))
        cfg.input_rate, cfg.input_channels = rate, channels
        if format not in FORMATS:
            raise ValueError(f"format must be one of {sorted(FORMATS)}")
        cfg.input_format = FORMATS[format]
        if device is not None:
            self._device = device.encode()
            cfg.device_id = self._device
        for k, v in settings.items():
            if not hasattr(cfg, k) or k in ("struct_size", "log_fn", "event_fn"):
                raise TypeError(f"unknown setting {k}")
            setattr(cfg, k, v)
        self._frame_bytes = channels * (2 if format == "s16" else 4)
        self._p = ctypes.c_void_p()
        st = lib.ap_create(ctypes.byref(cfg), ctypes.byref(self._p))
        if st != AP_OK:
            raise Error(st, f"ap_create: {lib.ap_strerror(st).decode()}")

    def _check(self, st: int, call: str) -> None:
        if st != AP_OK:
            buf = ctypes.create_string_buffer(256)
            self._lib.ap_last_error(self._p, buf, 256)
            raise Error(st, f"{call}: {self._lib.ap_strerror(st).decode()} ({buf.value.decode()})")

    def write(self, samples) -> int:
        """Queues interleaved samples: bytes, an array.array, a memoryview or a numpy array
        of the player's sample type. Returns the frames queued."""
        mv = memoryview(samples).cast("B")
        if mv.nbytes % self._frame_bytes:
            raise ValueError(f"{mv.nbytes} bytes is not a whole number of {self._frame_bytes}-byte frames")
        buf = (ctypes.c_char * mv.nbytes).from_buffer_copy(mv) if mv.readonly else (ctypes.c_char * mv.nbytes).from_buffer(mv)
        n = ctypes.c_size_t(0)
        self._check(self._lib.ap_write(self._p, buf, mv.nbytes // self._frame_bytes, ctypes.byref(n)), "ap_write")
        return n.value

    def drain(self, timeout_ms: int = 60000) -> bool:
        st = self._lib.ap_drain(self._p, timeout_ms)
        if st == AP_ERR_TIMEOUT:
            return False
        self._check(st, "ap_drain")
        return True

    def end_utterance(self) -> None:
        self._check(self._lib.ap_end_utterance(self._p), "ap_end_utterance")

    def mark(self, marker_id: int) -> None:
        self._check(self._lib.ap_mark(self._p, marker_id), "ap_mark")

    def flush(self, fade_ms: int = 10) -> int:
        """Barge-in; returns the content frame being heard when it was asked for."""
        heard = ctypes.c_uint64(0)
        self._check(self._lib.ap_flush(self._p, fade_ms, ctypes.byref(heard)), "ap_flush")
        return heard.value

    def pause(self, ramp_ms: int = 10) -> None:
        self._check(self._lib.ap_pause(self._p, ramp_ms), "ap_pause")

    def resume(self, ramp_ms: int = 10) -> None:
        self._check(self._lib.ap_resume(self._p, ramp_ms), "ap_resume")

    def set_volume(self, gain: float, ramp_ms: int = 10) -> None:
        self._check(self._lib.ap_set_volume(self._p, gain, ramp_ms), "ap_set_volume")

    def metrics(self) -> dict:
        m = ApMetrics()
        m.struct_size = ctypes.sizeof(ApMetrics)
        self._check(self._lib.ap_metrics(self._p, ctypes.byref(m)), "ap_metrics")
        out = {name: getattr(m, name) for name, _ in ApMetrics._fields_ if name != "struct_size"}
        out["device_id"] = m.device_id.decode(errors="replace")
        out["device_name"] = m.device_name.decode(errors="replace")
        return out

    def poll_event(self) -> Optional[Event]:
        e = ApEvent()
        e.struct_size = ctypes.sizeof(ApEvent)
        n = ctypes.c_size_t(0)
        self._check(self._lib.ap_poll_event(self._p, ctypes.byref(e), ctypes.byref(n)), "ap_poll_event")
        if n.value == 0:
            return None
        return Event(EVENT_KINDS.get(e.kind, str(e.kind)), e.id, e.frame, e.heard_ms)

    def close(self) -> None:
        if self._p:
            self._lib.ap_destroy(self._p)
            self._p = ctypes.c_void_p()

    def __enter__(self) -> "Player":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
