"""The package itself: where the library comes from, the ctypes mirrors, typing."""

from __future__ import annotations

import ctypes
import os

import audioplay
from conftest import child_env, run_child

INSTALLED = os.environ.get("AUDIOPLAY_TEST_INSTALLED") == "1"


def test_installed_package_carries_the_library():
    bundled = os.path.isfile(audioplay.BUNDLED_LIB)
    if INSTALLED:
        assert bundled, f"no bundled library at {audioplay.BUNDLED_LIB}"
        repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        assert not os.path.abspath(audioplay.__file__).startswith(repo), audioplay.__file__
    if bundled:
        assert audioplay.library_path() == audioplay.BUNDLED_LIB
    else:
        assert audioplay.library_path() == os.environ["AUDIOPLAY_LIB"]


def test_bundled_library_comes_before_audioplay_lib_and_needs_no_environment():
    code = ("import audioplay\n"
            "with audioplay.Player(rate=22050) as p:\n"
            "    p.write(b'\\x00\\x10' * 4410)\n"
            "    assert p.drain(5000)\n"
            "    print(audioplay.library_path(), p.metrics()['frames_played'])\n")
    env = child_env(AUDIOPLAY_LIB="/nonexistent/libaudioplay.so")
    env.pop("LD_LIBRARY_PATH", None)
    r = run_child(code, env)
    if os.path.isfile(audioplay.BUNDLED_LIB):
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [audioplay.BUNDLED_LIB, "4410"]
    else:
        # The source tree: the bogus AUDIOPLAY_LIB is tried, then the system's loader.
        assert r.returncode != 0 or "/nonexistent" not in r.stdout
        if r.returncode != 0:
            assert "AUDIOPLAY_LIB /nonexistent/libaudioplay.so" in r.stderr


def test_struct_mirrors_match_the_library():
    lib = audioplay.load_library()
    raw = (ctypes.c_char * 4096)()
    assert lib.ap_config_init(ctypes.byref(raw)) == 0
    assert ctypes.c_uint32.from_buffer(raw).value == ctypes.sizeof(audioplay.ApConfig)
    assert ctypes.sizeof(audioplay.ApEvent) == 32
    assert ctypes.sizeof(audioplay.ApDeviceInfo) == 4 * 4 + 2 * 128
    assert ctypes.sizeof(audioplay.ApStreamState) == 4 + 4 + 8 + 5 * 4 + 4 + 2 * 128
    # ap_metrics and ap_snapshot_state refuse a struct_size they do not know.
    with audioplay.Player(rate=24000, format="f32") as p:
        assert p.metrics()["content_rate"] == 24000
        assert p.state()["content_rate"] == 24000


def test_typed():
    here = os.path.dirname(os.path.abspath(audioplay.__file__))
    assert os.path.isfile(os.path.join(here, "py.typed"))
    assert audioplay.Player.write.__annotations__["return"] in ("int", int)
    assert audioplay.version().count(".") == 2


def test_library_messages_stay_off_stdout_and_stderr():
    # A failed create and a bad call: the reasons come back as exceptions, nothing printed.
    code = ("import audioplay\n"
            "try:\n    audioplay.Player(rate=5)\nexcept audioplay.Error as e:\n    r = e.reason\n"
            "with audioplay.Player() as p:\n"
            "    try:\n        p.set_volume(9.0)\n    except audioplay.Error:\n        pass\n"
            "import sys; sys.stdout.write('ok:' + r)\n")
    r = run_child(code, child_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok:input_rate 5")
    assert r.stderr == ""


def test_lookup_order_bundled_then_audioplay_lib_then_system():
    real = audioplay.library_path()
    # Without a bundled copy, AUDIOPLAY_LIB is used; with neither, the system's loader is
    # asked; when nothing loads, the error names everything tried.
    code = ("import audioplay, sys\n"
            "audioplay.BUNDLED_LIB = '/nonexistent/bundled/libaudioplay.so'\n"
            "if sys.argv[1] == 'nosystem':\n"
            "    f = audioplay._candidates\n"
            "    audioplay._candidates = lambda: [c for c in f() if c[0] != 'system']\n"
            "try:\n    print('loaded', audioplay.library_path())\n"
            "except OSError as e:\n    print('failed', e)\n")
    r = run_child(code.replace("sys.argv[1]", "'system'"), child_env(AUDIOPLAY_LIB=real))
    assert r.stdout.strip() == f"loaded {real}", r.stdout + r.stderr
    bad = "/nonexistent/libaudioplay.so"
    r = run_child(code.replace("sys.argv[1]", "'nosystem'"), child_env(AUDIOPLAY_LIB=bad))
    assert r.stdout.startswith("failed libaudioplay not found"), r.stdout + r.stderr
    assert f"AUDIOPLAY_LIB {bad}" in r.stdout
    env = child_env()
    env.pop("AUDIOPLAY_LIB", None)
    r = run_child(code.replace("sys.argv[1]", "'system'"), env)
    # Whatever the system has: loaded through the loader's name, or a failure naming it.
    assert r.stdout.startswith("loaded libaudioplay") or "system libaudioplay.so.0" in r.stdout, r.stdout
