"""audioplay for Python: glitch-free speech playback through the audioplay C library.

    from audioplay import Player
    with Player(rate=22050, channels=1, format="s16") as p:
        p.write(samples)          # bytes, array('h'), or an int16 numpy array: all of it is queued
        p.drain()                 # Ctrl-C interrupts it
        print(p.metrics()["frames_played"])

Pure ctypes. The library is looked up in this order: the copy bundled in the package
(audioplay/_lib/libaudioplay.so, put there when the wheel is built), then AUDIOPLAY_LIB (a
path to libaudioplay.so), then the system's loader (libaudioplay.so.0). `library_path()` says
which one was loaded.

Samples must match the player's format and channel count: int16 for "s16", float32 for
"f32" (numpy arrays, array.array 'h'/'f', or memoryviews of those), shaped (frames,) for
mono or (frames, channels); raw bytes/bytearray are taken as whole frames of the format.
Anything else is a TypeError or ValueError naming both sides, unless the call asks for
conversion (`convert=True`).
"""

from __future__ import annotations

import array
import atexit
import ctypes
import ctypes.util
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Dict, Generator, Iterator, List, NamedTuple,
                    Optional, Tuple, TypeVar, Union)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["Player", "Error", "Event", "Device", "Position", "list_devices", "load_library",
           "library_path", "version", "FORMATS", "EVENT_KINDS"]

AP_OK = 0
AP_ERR_INVALID_ARG = -2
AP_ERR_BAD_HANDLE = -4
AP_ERR_TIMEOUT = -7
FORMATS = {"s16": 1, "f32": 2}
_SAMPLE_BYTES = {"s16": 2, "f32": 4}
_SAMPLE_CODE = {"s16": "h", "f32": "f"}  # struct/array type codes
_NUMPY_DTYPE = {"s16": "int16", "f32": "float32"}
EVENT_KINDS = {1: "marker", 2: "utterance_start", 3: "utterance_end", 4: "underrun_start",
               5: "underrun_end", 6: "device_changed", 7: "flushed", 8: "output_lost",
               9: "output_restored"}
DEVICE_ID_LEN = 128
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1
# Calls into the library that may block are cut into slices this long, so that Ctrl-C
# (which Python handles between calls) and asyncio cancellation take effect promptly.
_SLICE_MS = 50

_T = TypeVar("_T")

# A plan step that waits a little (the queue is full) rather than calling the library.
_PAUSE = object()
_PAUSE_S = 0.005


def _run_plan(plan: "Generator[Tuple[Any, ...], Any, _T]") -> "_T":
    """Runs a blocking plan (see Player._write_plan) on this thread."""
    result: Any = None
    try:
        while True:
            step = plan.send(result)
            if step[0] is _PAUSE:
                time.sleep(_PAUSE_S)
                result = None
            else:
                result = step[0](*step[1:])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _run_plan_async(plan: "Generator[Tuple[Any, ...], Any, _T]") -> "_T":
    """Runs a plan under asyncio: each library call in the loop's default executor."""
    import asyncio
    loop = asyncio.get_running_loop()
    result: Any = None
    try:
        while True:
            step = plan.send(result)
            if step[0] is _PAUSE:
                await asyncio.sleep(_PAUSE_S)
                result = None
            else:
                result = await loop.run_in_executor(None, step[0], *step[1:])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


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
        # How the sound server shows and routes the stream (None: the library's default).
        ("application_name", ctypes.c_char_p), ("application_id", ctypes.c_char_p),
        ("stream_name", ctypes.c_char_p), ("media_role", ctypes.c_char_p),
        ("keep_awake_ms", ctypes.c_uint32), ("wake_preroll_ms", ctypes.c_uint32),
        # Leading-silence trim (0.0: off) and the silence kept before the first sound.
        ("trim_threshold", ctypes.c_float), ("trim_keep_ms", ctypes.c_uint32),
    ]


# Config fields a caller may set as keyword arguments of Player (the rest have arguments
# of their own or are pointers the binding owns).
_SETTINGS = {f[0]: f[1] for f in ApConfig._fields_
             if f[0] not in ("struct_size", "input_format", "input_channels", "input_rate",
                             "device_id", "log_fn", "log_user", "event_fn", "event_user")}


class ApEvent(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("kind", ctypes.c_uint32),
                ("id", ctypes.c_uint64), ("frame", ctypes.c_uint64), ("heard_ms", ctypes.c_double)]


class ApDeviceInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("rate", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("is_default", ctypes.c_uint32),
                ("id", ctypes.c_char * DEVICE_ID_LEN), ("name", ctypes.c_char * DEVICE_ID_LEN)]


_STATE_FIELDS: List[Tuple[str, Any]] = (
    [("struct_size", ctypes.c_uint32), ("started", ctypes.c_uint32),
     ("generation", ctypes.c_uint64)]
    + [(n, ctypes.c_uint32) for n in ["stream_rate", "device_rate", "content_rate",
                                      "output_channels", "recreating"]]
    + [("device_format", ctypes.c_int32),
       ("device_id", ctypes.c_char * DEVICE_ID_LEN),
       ("device_name", ctypes.c_char * DEVICE_ID_LEN)]
)


class ApStreamState(ctypes.Structure):
    _fields_ = _STATE_FIELDS


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
        + [("device_id", ctypes.c_char * DEVICE_ID_LEN),
           ("device_name", ctypes.c_char * DEVICE_ID_LEN)]
        + [(n, ctypes.c_uint64) for n in ["frames_flushed", "frames_heard", "markers_flushed",
                                          "events_dropped"]]
        + [("last_wake_ms", ctypes.c_double), ("suspended", ctypes.c_uint32)]
        + [("late_callbacks", ctypes.c_uint64), ("resample_fallback", ctypes.c_uint32)]
        + [("output_lost", ctypes.c_uint32)]
        + [(n, ctypes.c_uint64) for n in ["outages", "last_outage_ms", "server_reconnects"]]
        + [("server_underflows", ctypes.c_uint64)]
        + [("trimmed_ms", ctypes.c_double)]
        + [("flushes_rewritten", ctypes.c_uint64), ("server_moves", ctypes.c_uint64)]
    )


class Error(RuntimeError):
    """A failed library call. `status` is the ApStatus code, `reason` the library's own
    explanation (from ap_create_ex or ap_last_error; may be empty), `call` the C function."""

    def __init__(self, status: int, message: str, reason: str = "", call: str = ""):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.call = call


@dataclass(frozen=True)
class Event:
    """Something the listener heard: `kind` is one of EVENT_KINDS' names ("marker",
    "utterance_end", ...), `id` the marker id or new stream generation, `frame` the content
    frame, `heard_ms` when it was heard (ms since the player was created)."""
    kind: str
    id: int
    frame: int
    heard_ms: float


@dataclass(frozen=True)
class Device:
    """An output device: pass `id` to Player(device=...) or Player.set_device."""
    id: str
    name: str
    rate: int
    channels: int
    is_default: bool


class Position(NamedTuple):
    frames_heard: int   # the content frame being heard now
    frames_queued: int  # content frames waiting
    latency_ms: float   # the device's latency


# Loading the library.

_HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED_LIB = os.path.join(_HERE, "_lib", "libaudioplay.so")
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None
_lib_lock = threading.Lock()


def _candidates() -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    if os.path.exists(BUNDLED_LIB):
        out.append(("bundled", BUNDLED_LIB))
    env = os.environ.get("AUDIOPLAY_LIB")
    if env:
        out.append(("AUDIOPLAY_LIB", env))
    found = ctypes.util.find_library("audioplay")
    for name in (found, "libaudioplay.so.0", "libaudioplay.so"):
        if name and ("system", name) not in out:
            out.append(("system", name))
    return out


def _declare(lib: ctypes.CDLL) -> None:
    P, I32, U32, U64, SZ = ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
    ptr = ctypes.POINTER
    sigs: Dict[str, List[Any]] = {
        "ap_config_init": [P],
        "ap_create_ex": [P, ptr(P), ctypes.c_char_p, SZ],
        "ap_destroy": [P],
        "ap_write": [P, P, SZ, ptr(SZ)],
        "ap_drain": [P, U32],
        "ap_end_utterance": [P],
        "ap_mark": [P, U64],
        "ap_flush": [P, U32, ptr(U64)],
        "ap_pause": [P, U32],
        "ap_resume": [P, U32],
        "ap_set_volume": [P, ctypes.c_float, U32],
        "ap_set_gain_pan": [P, ctypes.c_float, ctypes.c_float, U32, U32],
        "ap_set_speed": [P, ctypes.c_float],
        "ap_set_input_format": [P, I32, U32, U32],
        "ap_list_devices": [P, SZ, ptr(SZ)],
        "ap_set_device": [P, ctypes.c_char_p],
        "ap_position": [P, ptr(U64), ptr(U64), ptr(ctypes.c_double)],
        "ap_metrics": [P, ptr(ApMetrics)],
        "ap_snapshot_state": [P, ptr(ApStreamState)],
        "ap_poll_event": [P, ptr(ApEvent), ptr(SZ)],
        "ap_last_error": [P, ctypes.c_char_p, SZ],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)  # AttributeError: a library too old for this binding
        f.argtypes = args
        f.restype = I32
    lib.ap_strerror.argtypes = [I32]
    lib.ap_strerror.restype = ctypes.c_char_p
    lib.ap_version.argtypes = []
    lib.ap_version.restype = ctypes.c_char_p


def load_library() -> ctypes.CDLL:
    """Loads libaudioplay once (bundled copy, then AUDIOPLAY_LIB, then the system's) and
    declares its functions. OSError says what was tried when none loads."""
    global _lib, _lib_path
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for origin, path in _candidates():
            try:
                lib = ctypes.CDLL(path)
                _declare(lib)
            except (OSError, AttributeError) as e:
                tried.append(f"{origin} {path}: {e}")
                continue
            _lib, _lib_path = lib, path
            return lib
        raise OSError("libaudioplay not found; tried " + ("; ".join(tried) or "nothing")
                      + " (install the audioplay wheel, or set AUDIOPLAY_LIB to libaudioplay.so)")


def library_path() -> str:
    """The path (or loader name) of the libaudioplay that was loaded."""
    load_library()
    assert _lib_path is not None
    return _lib_path


def version() -> str:
    """The library's version, "MAJOR.MINOR.PATCH"."""
    v: bytes = load_library().ap_version()
    return v.decode()


def _strerror(lib: ctypes.CDLL, status: int) -> str:
    s: bytes = lib.ap_strerror(status)
    return s.decode(errors="replace")


def _message(call: str, strerror: str, reason: str) -> str:
    """"call: status text: reason", without the repetitions of the library's own messages
    ("ap_set_device: no output device: output device 'x' not found")."""
    r = reason[len(call) + 2:] if reason.startswith(call + ": ") else reason
    if not r:
        return f"{call}: {strerror}"
    return f"{call}: {r}" if r.startswith(strerror) else f"{call}: {strerror}: {r}"


def list_devices() -> List[Device]:
    """The system's output devices (the default one has is_default True)."""
    lib = load_library()
    count = ctypes.c_size_t(0)
    for _ in range(5):  # the list can grow between the two calls
        st = lib.ap_list_devices(None, 0, ctypes.byref(count))
        if st != AP_OK:
            raise Error(st, f"ap_list_devices: {_strerror(lib, st)}", call="ap_list_devices")
        cap = count.value + 4
        arr = (ApDeviceInfo * cap)()
        st = lib.ap_list_devices(arr, cap, ctypes.byref(count))
        if st == AP_OK and count.value <= cap:
            return [Device(d.id.decode(errors="replace"), d.name.decode(errors="replace"),
                           d.rate, d.channels, bool(d.is_default))
                    for d in arr[:count.value]]
        if st != AP_OK and st != -10:  # AP_ERR_BUFFER_TOO_SMALL: try again
            raise Error(st, f"ap_list_devices: {_strerror(lib, st)}", call="ap_list_devices")
    raise Error(-10, "ap_list_devices: the device list kept changing", call="ap_list_devices")


# Argument checks: Python ints are unbounded and ctypes wraps silently (-1 as uint32 is
# 4294967295), so every integer is checked here, naming the argument.

def _uint(value: object, name: str, maximum: int = _U32_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be in 0..={maximum}, got {value}")
    return value


def _int32(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -2**31 <= value < 2**31:
        raise ValueError(f"{name} must fit in a 32-bit signed int, got {value}")
    return value


def _format_code(format: object) -> int:
    if not isinstance(format, str) or format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {format!r}")
    return FORMATS[format]


def _native(fmt: str) -> str:
    """A buffer format's type code if it is in native byte order, else ''."""
    if fmt[:1] in ("@", "="):
        return fmt[1:]
    if fmt[:1] in ("<", ">", "!"):
        native = "<" if sys.byteorder == "little" else ">"
        return fmt[1:] if fmt[:1] == native else ""
    return fmt


class Player:
    """A player on the system's default output (or `device`, an id from list_devices()).

    `on_event`, if given, is called with each Event when it is heard, on the library's
    event thread (keep it short; events are also queued for poll_event()/events()).
    Exceptions it raises are kept in `event_errors` rather than printed.

    `format` is "s16" (int16 samples) or "f32" (float32), `channels` the interleaved channel
    count, `rate` the content rate in Hz; other ApConfig fields (ring_capacity_ms,
    write_timeout_ms, target_latency_ms, ...) are keyword arguments. Use it as a context
    manager, or call close(). Failed calls raise Error with the library's reason.
    """

    def __init__(self, rate: int = 22050, channels: int = 1, format: str = "s16",
                 device: Optional[str] = None,
                 on_event: Optional[Callable[[Event], None]] = None,
                 **settings: Union[int, str, None]) -> None:
        self._p: Optional[int] = None
        self.event_errors: List[BaseException] = []
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be callable, not {type(on_event).__name__}")
        code = _format_code(format)
        rate = _uint(rate, "rate")
        channels = _uint(channels, "channels")
        if device is not None and not isinstance(device, str):
            raise TypeError(f"device must be a str or None, not {type(device).__name__}")
        lib = load_library()
        self._lib = lib
        # Room past our struct in case a newer library's ap_config_init writes more fields.
        raw = (ctypes.c_char * (ctypes.sizeof(ApConfig) + 512))()
        cfg = ApConfig.from_buffer(raw)
        lib.ap_config_init(ctypes.byref(raw))
        cfg.struct_size = ctypes.sizeof(ApConfig)
        cfg.input_format, cfg.input_channels, cfg.input_rate = code, channels, rate
        self._device_arg = device.encode() if device is not None else None
        cfg.device_id = self._device_arg
        self._strings: List[bytes] = []  # kept alive until ap_create_ex has copied them
        for k, v in settings.items():
            ctype = _SETTINGS.get(k)
            if ctype is None:
                raise TypeError(f"unknown setting {k!r}; settings are {sorted(_SETTINGS)}")
            if ctype is ctypes.c_char_p:
                if v is None:
                    continue
                if not isinstance(v, str):
                    raise TypeError(f"{k} must be a str or None, not {type(v).__name__}")
                if "\0" in v:
                    raise ValueError(f"{k} must not contain a NUL character")
                b = v.encode()
                self._strings.append(b)
                setattr(cfg, k, b)
                continue
            if ctype is ctypes.c_float:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError(f"{k} must be a number, not {type(v).__name__}")
                setattr(cfg, k, float(v))  # the range is checked by the library (its reason)
                continue
            setattr(cfg, k, _uint(v, k) if ctype is ctypes.c_uint32 else _int32(v, k))
        self._event_cb = None if on_event is None else _event_trampoline(on_event, self.event_errors)
        if self._event_cb is not None:
            cfg.event_fn = ctypes.cast(self._event_cb, ctypes.c_void_p).value
        out = ctypes.c_void_p()
        reason = ctypes.create_string_buffer(512)
        st = lib.ap_create_ex(ctypes.byref(raw), ctypes.byref(out), reason, len(reason))
        if st != AP_OK:
            why = reason.value.decode(errors="replace")
            raise Error(st, _message("ap_create_ex", _strerror(lib, st), why), why, "ap_create_ex")
        self._p = out.value
        if self._event_cb is not None:
            _with_callbacks.add(self)  # closed at exit, before the interpreter goes
        self._format, self._channels, self._rate = format, channels, rate
        self._state_lock = threading.Lock()
        self._flushes = 0  # bumped by flush(): a full write stops queueing after one

    # Properties of the input the player takes now (set_input_format changes them).

    @property
    def format(self) -> str:
        return self._format

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def closed(self) -> bool:
        return self._p is None

    def _handle(self) -> int:
        p = self._p
        if p is None:
            raise Error(AP_ERR_BAD_HANDLE, "the player is closed", call="")
        return p

    def _check(self, st: int, call: str, p: Optional[int] = None) -> None:
        if st == AP_OK:
            return
        buf = ctypes.create_string_buffer(512)
        handle = p if p is not None else self._p
        reason = ""
        if handle is not None and self._lib.ap_last_error(handle, buf, len(buf)) == AP_OK:
            reason = buf.value.decode(errors="replace")
        raise Error(st, _message(call, _strerror(self._lib, st), reason), reason, call)

    # Writing.

    def _describe(self) -> str:
        return f"{self._format}, {self._channels} channel{'s' * (self._channels != 1)}, {self._rate} Hz"

    def _prepare(self, samples: object, convert: bool) -> Tuple[memoryview, int]:
        """The samples as native bytes of whole frames in the player's format, and how many
        frames. Raises TypeError/ValueError when they do not match (unless converting)."""
        fmt, ch = self._format, self._channels
        fb = ch * _SAMPLE_BYTES[fmt]
        if hasattr(samples, "dtype") and hasattr(samples, "shape") \
                and type(samples).__module__.split(".")[0] == "numpy":
            return self._prepare_numpy(samples, convert)
        if isinstance(samples, str):
            raise TypeError("write() takes bytes, bytearray, memoryview, array.array or a "
                            "numpy array of samples, not str")
        try:
            mv = memoryview(samples)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError("write() takes bytes, bytearray, memoryview, array.array or a numpy "
                            f"array of samples, not {type(samples).__name__}") from None
        code = _native(mv.format)
        want = _SAMPLE_CODE[fmt]
        if code in ("B", "c") and mv.ndim <= 1:
            raw = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
            if raw.nbytes % fb:
                raise ValueError(f"{raw.nbytes} bytes is not a whole number of {fb}-byte frames "
                                 f"(player: {self._describe()})")
            return raw, raw.nbytes // fb
        if mv.ndim > 2 or (mv.ndim == 2 and mv.shape is not None and mv.shape[1] != ch):
            raise ValueError(f"samples of shape {mv.shape} do not fit the player ({self._describe()}): "
                             f"pass shape (frames, {ch})")
        if code != want:
            if not convert:
                raise TypeError(
                    f"samples of type code {mv.format!r} ({array_kind(mv.format)}) cannot be written "
                    f"to a player taking {fmt} ({array_kind(want)}; {self._describe()}): pass "
                    f"array('{want}') samples, or write(..., convert=True) to convert")
            values: List[Any] = mv.tolist()
            if mv.ndim == 2:
                values = [x for row in values for x in row]
            mv = memoryview(_convert_list(values, code, fmt))
        raw = mv.cast("B") if mv.c_contiguous else memoryview(mv.tobytes())
        if raw.nbytes % fb:
            raise ValueError(f"{raw.nbytes // _SAMPLE_BYTES[fmt]} samples is not a whole number of "
                             f"{ch}-channel frames (player: {self._describe()})")
        return raw, raw.nbytes // fb

    def _prepare_numpy(self, arr: Any, convert: bool) -> Tuple[memoryview, int]:
        import numpy as np
        fmt, ch = self._format, self._channels
        target = np.dtype(_NUMPY_DTYPE[fmt])
        shape = tuple(arr.shape)
        if len(shape) == 1 and ch == 1:
            pass
        elif len(shape) == 2 and shape[1] == ch:
            pass
        elif len(shape) == 1:
            raise ValueError(f"a 1-D array of shape {shape} is mono; the player takes {ch} channels "
                             f"({self._describe()}): pass shape (frames, {ch})")
        elif len(shape) == 2:
            raise ValueError(f"an array of shape {shape} has {shape[1]} channels; the player takes "
                             f"{ch} ({self._describe()})")
        else:
            raise ValueError(f"an array of shape {shape} is not (frames,) or (frames, channels); "
                             f"the player takes {self._describe()}")
        if arr.dtype != target:
            if not convert:
                raise TypeError(
                    f"a numpy {arr.dtype} array cannot be written to a player taking {fmt} "
                    f"({target}; {self._describe()}): pass {target} samples, or "
                    f"write(..., convert=True) to convert")
            arr = _convert_numpy(np, arr, fmt)
        arr = np.ascontiguousarray(arr)
        return memoryview(arr).cast("B"), int(shape[0])

    def write(self, samples: object, *, partial: bool = False, convert: bool = False) -> int:
        """Queues interleaved samples and returns how many frames were queued.

        By default all of them are queued: the call blocks while the queue is full (Ctrl-C
        interrupts it) and returns fewer frames only when flush() interrupted it. With
        `partial=True` it makes one library call, which waits at most the player's
        write_timeout_ms and returns what fitted. `convert=True` converts other sample types
        (float64, int32, float <-> int16 ...) instead of refusing them; the channel count
        must match either way."""
        data, frames = self._prepare(samples, convert)
        return self._write(data, frames, partial)

    def _pointer(self, data: memoryview) -> Tuple[int, object]:
        """The address of `data` and an object that keeps it alive."""
        if data.nbytes == 0:
            return 0, None
        if data.readonly:
            obj = data.obj
            if isinstance(obj, bytes) and len(obj) == data.nbytes:
                c = ctypes.c_char_p(obj)
                return ctypes.cast(c, ctypes.c_void_p).value or 0, (c, obj)
            copy = (ctypes.c_char * data.nbytes).from_buffer_copy(data)
            return ctypes.addressof(copy), copy
        buf = (ctypes.c_char * data.nbytes).from_buffer(data)
        return ctypes.addressof(buf), buf

    def _write_call(self, p: int, address: int, frames: int, keep: object = None) -> int:
        # `keep` holds the buffer at `address` for as long as the call runs: an executor
        # thread may still be in it after its asyncio task was cancelled.
        n = ctypes.c_size_t(0)
        self._check(self._lib.ap_write(p, address, frames, ctypes.byref(n)), "ap_write", p)
        return n.value

    # The blocking loops of write() and drain() are written once, as plans: generators that
    # yield the next blocking step (a library call, or a pause while the queue is full) and
    # receive its result. write()/drain() run the steps on the calling thread (Ctrl-C lands
    # between them); the *_async forms run each call in the loop's default executor.

    def _write_plan(self, data: memoryview, frames: int,
                    partial: bool) -> Generator[Tuple[Any, ...], Any, int]:
        p = self._handle()
        address, keep = self._pointer(data)
        fb = data.nbytes // frames if frames else 0
        if partial or frames == 0:
            n: int = yield (self._write_call, p, address, frames, keep)
            return n
        flushes = self._flushes
        chunk = max(1, self._rate * _SLICE_MS // 1000)
        done = 0
        while done < frames and self._flushes == flushes:
            want = min(chunk, frames - done)
            n = yield (self._write_call, p, address + done * fb, want, keep)
            done += n
            if n < want and self._flushes == flushes:
                yield (_PAUSE,)  # write_timeout_ms 0: the queue is full, wait for room
        return done

    def _write(self, data: memoryview, frames: int, partial: bool) -> int:
        return _run_plan(self._write_plan(data, frames, partial))

    async def write_async(self, samples: object, *, partial: bool = False,
                          convert: bool = False) -> int:
        """write() for asyncio: the blocking library calls run in the loop's default
        executor, a slice at a time, so the event loop keeps running and cancelling the
        task stops queueing within one slice (about 50 ms of audio)."""
        data, frames = self._prepare(samples, convert)
        result: int = await _run_plan_async(self._write_plan(data, frames, partial))
        return result

    # Waiting for playback.

    def _drain_slice(self, p: int, ms: int) -> bool:
        st = self._lib.ap_drain(p, ms)
        if st == AP_ERR_TIMEOUT:
            return False
        self._check(st, "ap_drain", p)
        return True

    def _drain_plan(self, timeout_ms: Optional[int]) -> Generator[Tuple[Any, ...], Any, bool]:
        if timeout_ms is not None:
            timeout_ms = _uint(timeout_ms, "timeout_ms")
        p = self._handle()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            left = _SLICE_MS if deadline is None else \
                max(0, min(_SLICE_MS, int((deadline - time.monotonic()) * 1000)))
            if (yield (self._drain_slice, p, left)):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def drain(self, timeout_ms: Optional[int] = None) -> bool:
        """Waits until everything written has been heard: True, or False if `timeout_ms`
        passed first (None: no limit). Ctrl-C interrupts it (KeyboardInterrupt)."""
        return _run_plan(self._drain_plan(timeout_ms))

    async def drain_async(self, timeout_ms: Optional[int] = None) -> bool:
        """drain() for asyncio: waits in the default executor a slice at a time;
        cancellation takes effect within a slice."""
        result: bool = await _run_plan_async(self._drain_plan(timeout_ms))
        return result

    # Control.

    def end_utterance(self) -> None:
        """Ends the utterance at what was written so far (its end is not an underrun)."""
        self._check(self._lib.ap_end_utterance(self._handle()), "ap_end_utterance")

    def mark(self, marker_id: int) -> None:
        """Places marker `marker_id` (0..2**64-1) here: a "marker" event fires when it is heard."""
        marker_id = _uint(marker_id, "marker_id", _U64_MAX)
        self._check(self._lib.ap_mark(self._handle(), marker_id), "ap_mark")

    def flush(self, fade_ms: int = 10) -> int:
        """Barge-in: drops everything queued, fading out over `fade_ms`; a write() running
        on another thread stops queueing. Returns the content frame heard when asked."""
        fade_ms = _uint(fade_ms, "fade_ms")
        p = self._handle()
        with self._state_lock:
            self._flushes += 1
        heard = ctypes.c_uint64(0)
        self._check(self._lib.ap_flush(p, fade_ms, ctypes.byref(heard)), "ap_flush")
        return heard.value

    def pause(self, ramp_ms: int = 10) -> None:
        """Pauses with a `ramp_ms` fade; writes still queue."""
        self._check(self._lib.ap_pause(self._handle(), _uint(ramp_ms, "ramp_ms")), "ap_pause")

    def resume(self, ramp_ms: int = 10) -> None:
        """Resumes after pause(), fading in over `ramp_ms`."""
        self._check(self._lib.ap_resume(self._handle(), _uint(ramp_ms, "ramp_ms")), "ap_resume")

    def set_volume(self, gain: float, ramp_ms: int = 10) -> None:
        """Output gain, linear 0..4 (1 = unchanged), ramped over `ramp_ms`."""
        if isinstance(gain, bool) or not isinstance(gain, (int, float)):
            raise TypeError(f"gain must be a number, not {type(gain).__name__}")
        ramp_ms = _uint(ramp_ms, "ramp_ms")
        self._check(self._lib.ap_set_volume(self._handle(), float(gain), ramp_ms), "ap_set_volume")

    def set_gain_pan(self, gain: float, pan: float = 0.0, ramp_ms: int = 10,
                     utterance: bool = False) -> None:
        """Gain (linear 0..4) and pan (-1 left .. 1 right, equal-power, ignored on mono) from
        the next frame written, ramped over `ramp_ms`; for this utterance only if
        `utterance`, else until changed. Above unity a soft limiter prevents clipping."""
        for name, v in (("gain", gain), ("pan", pan)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(v).__name__}")
        ramp_ms = _uint(ramp_ms, "ramp_ms")
        scope = 0 if utterance else 1  # AP_GAIN_UTTERANCE, AP_GAIN_UNTIL_CHANGED
        self._check(self._lib.ap_set_gain_pan(self._handle(), float(gain), float(pan), ramp_ms,
                                              scope), "ap_set_gain_pan")

    def set_speed(self, speed: float) -> None:
        """Speed without pitch change, in band: audio written from now on plays at `speed`
        (0.5..4; 1 = as written, a bypass); the change is crossfaded. Positions and event
        frames stay content frames; markers fire when their frame is heard."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)):
            raise TypeError(f"speed must be a number, not {type(speed).__name__}")
        self._check(self._lib.ap_set_speed(self._handle(), float(speed)), "ap_set_speed")

    def set_input_format(self, format: str, channels: int, rate: int) -> None:
        """Voice change, in band: audio written from now on is `format`/`channels`/`rate`;
        what was written before plays as it was. Call it from the writing thread."""
        code = _format_code(format)
        channels = _uint(channels, "channels")
        rate = _uint(rate, "rate")
        self._check(self._lib.ap_set_input_format(self._handle(), code, channels, rate),
                    "ap_set_input_format")
        self._format, self._channels, self._rate = format, channels, rate

    set_voice = set_input_format

    def set_device(self, device_id: Optional[str]) -> None:
        """Moves playback to `device_id` (from list_devices()), or None to follow the system
        default. Nothing queued is lost; a "device_changed" event says when it is done."""
        if device_id is not None and not isinstance(device_id, str):
            raise TypeError(f"device_id must be a str or None, not {type(device_id).__name__}")
        arg = device_id.encode() if device_id is not None else None
        self._check(self._lib.ap_set_device(self._handle(), arg), "ap_set_device")

    # State.

    def position(self) -> Position:
        """Where playback is: (frames_heard, frames_queued, latency_ms)."""
        heard, queued, lat = ctypes.c_uint64(0), ctypes.c_uint64(0), ctypes.c_double(0)
        self._check(self._lib.ap_position(self._handle(), ctypes.byref(heard),
                                          ctypes.byref(queued), ctypes.byref(lat)), "ap_position")
        return Position(heard.value, queued.value, lat.value)

    def metrics(self) -> Dict[str, Any]:
        """A snapshot of the player's counters and timings (ApMetrics' fields)."""
        m = ApMetrics()
        m.struct_size = ctypes.sizeof(ApMetrics)
        self._check(self._lib.ap_metrics(self._handle(), ctypes.byref(m)), "ap_metrics")
        out: Dict[str, Any] = {f[0]: getattr(m, f[0]) for f in ApMetrics._fields_
                               if f[0] != "struct_size"}
        out["device_id"] = m.device_id.decode(errors="replace")
        out["device_name"] = m.device_name.decode(errors="replace")
        return out

    def state(self) -> Dict[str, Any]:
        """The current stream (ApStreamState), read without locks: cheap to poll."""
        s = ApStreamState()
        s.struct_size = ctypes.sizeof(ApStreamState)
        self._check(self._lib.ap_snapshot_state(self._handle(), ctypes.byref(s)), "ap_snapshot_state")
        out: Dict[str, Any] = {f[0]: getattr(s, f[0]) for f in ApStreamState._fields_
                               if f[0] != "struct_size"}
        out["device_id"] = s.device_id.decode(errors="replace")
        out["device_name"] = s.device_name.decode(errors="replace")
        return out

    # Events.

    def poll_event(self) -> Optional[Event]:
        """The oldest event heard and not yet taken, or None."""
        e = ApEvent()
        e.struct_size = ctypes.sizeof(ApEvent)
        n = ctypes.c_size_t(0)
        self._check(self._lib.ap_poll_event(self._handle(), ctypes.byref(e), ctypes.byref(n)),
                    "ap_poll_event")
        if n.value == 0:
            return None
        return Event(EVENT_KINDS.get(e.kind, str(e.kind)), e.id, e.frame, e.heard_ms)

    def events(self) -> Iterator[Event]:
        """The events waiting now, oldest first."""
        while (e := self.poll_event()) is not None:
            yield e

    def wait_event(self, timeout_ms: Optional[int] = None) -> Optional[Event]:
        """The next event, waiting up to `timeout_ms` (None: no limit) for one; None if none
        came. Ctrl-C interrupts it."""
        if timeout_ms is not None:
            timeout_ms = _uint(timeout_ms, "timeout_ms")
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            e = self.poll_event()
            if e is not None or (deadline is not None and time.monotonic() >= deadline):
                return e
            time.sleep(0.005)

    async def wait_event_async(self, timeout_ms: Optional[int] = None) -> Optional[Event]:
        """wait_event() for asyncio (polls every 5 ms without blocking the loop)."""
        import asyncio
        if timeout_ms is not None:
            timeout_ms = _uint(timeout_ms, "timeout_ms")
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            e = self.poll_event()
            if e is not None or (deadline is not None and time.monotonic() >= deadline):
                return e
            await asyncio.sleep(0.005)

    async def events_async(self) -> AsyncIterator[Event]:
        """Every event as it is heard, for `async for`; ends when the player is closed."""
        import asyncio
        while self._p is not None:
            e = self.poll_event()
            if e is None:
                await asyncio.sleep(0.005)
            else:
                yield e

    # Lifetime.

    def close(self) -> None:
        """Stops playback (what is queued is dropped) and frees the player. Idempotent."""
        p, self._p = getattr(self, "_p", None), None
        if p is not None:
            self._lib.ap_destroy(p)

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._p is None else self._describe()
        return f"<audioplay.Player {state}>"


_EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ApEvent))
_with_callbacks: "weakref.WeakSet[Player]" = weakref.WeakSet()


def _event_trampoline(fn: Callable[[Event], None], errors: List[BaseException]) -> Any:
    # Holds the user's function and the error list, not the Player: no reference cycle.
    def call(_user: Optional[int], ev: Any) -> None:
        try:
            e = ev.contents
            fn(Event(EVENT_KINDS.get(e.kind, str(e.kind)), e.id, e.frame, e.heard_ms))
        except BaseException as exc:  # never into C; never printed from a library thread
            if len(errors) < 100:
                errors.append(exc)
    return _EVENT_FN(call)


@atexit.register
def _close_players_with_callbacks() -> None:
    # A callback must not run into a finalizing interpreter.
    for p in list(_with_callbacks):
        p.close()


def array_kind(code: str) -> str:
    """A buffer type code in words (for error messages)."""
    c = _native(code) or code
    names = {"h": "int16", "H": "uint16", "f": "float32", "d": "float64", "b": "int8",
             "B": "bytes", "i": "int32", "I": "uint32", "l": "int64", "L": "uint64",
             "q": "int64", "Q": "uint64", "e": "float16"}
    return names.get(c[-1:], c)


def _convert_list(values: List[Any], code: str, fmt: str) -> array.array[Any]:
    """Converts plain samples (floats in [-1, 1] or integers of type `code`) to `fmt`."""
    c = _native(code)
    if c in ("f", "d", "e"):
        if fmt == "f32":
            return array.array("f", values)
        return array.array("h", (0 if v != v else int(round(max(-1.0, min(1.0, v)) * 32767))
                                 for v in values))
    sizes = {"b": 8, "h": 16, "i": 32, "l": 64, "q": 64}
    if c not in sizes:
        raise TypeError(f"cannot convert samples of type code {code!r} to {fmt}")
    bits = sizes[c] if c != "l" else 8 * array.array("l").itemsize
    if fmt == "f32":
        scale = float(2 ** (bits - 1))
        return array.array("f", (v / scale for v in values))
    shift = bits - 16
    return array.array("h", ((v >> shift) if shift >= 0 else (v << -shift) for v in values))


def _convert_numpy(np: Any, arr: Any, fmt: str) -> Any:
    kind = arr.dtype.kind
    if kind == "f":
        x = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        if fmt == "f32":
            return x.astype(np.float32)
        return np.rint(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    if kind in ("i", "u"):
        bits = arr.dtype.itemsize * 8
        x = arr.astype(np.int64)
        if kind == "u":
            x = x - (1 << (bits - 1))
        if fmt == "f32":
            return (x / float(1 << (bits - 1))).astype(np.float32)
        shift = bits - 16
        return (x >> shift if shift >= 0 else x << -shift).astype(np.int16)
    raise TypeError(f"cannot convert a numpy {arr.dtype} array to {fmt}")
