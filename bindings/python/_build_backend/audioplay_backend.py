"""In-tree PEP 517 backend for the audioplay Python package.

`pip install ./bindings/python` and `pip wheel ./bindings/python` call it. It needs nothing
but the standard library and cargo: it runs `cargo build --release --lib --locked` on the
repository (two directories above this pyproject; CARGO_TARGET_DIR is honoured, and a
target/release already built makes it a no-op), and writes a platform wheel (tag
py3-none-<platform>, never py3-none-any) with the stdlib zipfile holding

    audioplay/__init__.py, audioplay/py.typed, audioplay/_lib/libaudioplay.so

so the installed package works with no environment variables. The library is stripped of
debug info on the way in when `strip` is there (about 13 MB -> 1.5 MB).

AUDIOPLAY_BUNDLE_LIB=/path/to/libaudioplay.so bundles that file instead of building.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

NAME = "audioplay"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bindings/python
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository
PKG_FILES = ["__init__.py", "py.typed"]


def _version() -> str:
    # The package's version is the one in pyproject.toml (kept equal to Cargo.toml's).
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.partition("=")
            if k.strip() == "version":
                return v.strip().strip('"')
    raise RuntimeError("no version in pyproject.toml")


def _metadata() -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {_version()}\n"
        "Summary: Glitch-free speech playback for TTS engines (ctypes binding to libaudioplay)\n"
        "License: MIT OR Apache-2.0\n"
        "Requires-Python: >=3.8\n"
        "Provides-Extra: numpy\n"
        "Requires-Dist: numpy; extra == \"numpy\"\n"
    )


def _tag() -> str:
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"py3-none-{plat}"


def _log(msg: str) -> None:
    print(f"audioplay build: {msg}", file=sys.stderr, flush=True)


def _build_library() -> str:
    given = os.environ.get("AUDIOPLAY_BUNDLE_LIB")
    if given:
        if not os.path.isfile(given):
            raise RuntimeError(f"AUDIOPLAY_BUNDLE_LIB={given} is not a file")
        return given
    if not os.path.isfile(os.path.join(ROOT, "Cargo.toml")):
        raise RuntimeError(
            f"no Cargo.toml at {ROOT}: build from the audioplay repository "
            "(bindings/python), or set AUDIOPLAY_BUNDLE_LIB to a built libaudioplay.so")
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        raise RuntimeError("cargo not found on PATH (needed to build libaudioplay)")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    if not os.path.isabs(target):
        target = os.path.join(ROOT, target)
    cmd = [cargo, "build", "--release", "--lib", "--locked"]
    _log(" ".join(cmd) + f" (in {ROOT}, target {target})")
    # cargo's progress goes to our stderr; pip shows it on failure or with -v.
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr,
                   env=dict(os.environ, CARGO_TARGET_DIR=target))
    lib = os.path.join(target, "release", "libaudioplay.so")
    if not os.path.isfile(lib):
        raise RuntimeError(f"cargo built no {lib}")
    return lib


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _dist_info_files() -> dict[str, bytes]:
    di = f"{NAME}-{_version()}.dist-info"
    wheel = ("Wheel-Version: 1.0\nGenerator: audioplay_backend\n"
             f"Root-Is-Purelib: false\nTag: {_tag()}\n")
    return {f"{di}/METADATA": _metadata().encode(), f"{di}/WHEEL": wheel.encode(),
            f"{di}/top_level.txt": f"{NAME}\n".encode()}


def _write_wheel(wheel_directory: str, lib_path: str | None) -> str:
    files: dict[str, bytes] = {}
    for f in PKG_FILES:
        with open(os.path.join(HERE, NAME, f), "rb") as fh:
            files[f"{NAME}/{f}"] = fh.read()
    if lib_path is not None:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "libaudioplay.so")
            shutil.copyfile(lib_path, copy)
            strip = shutil.which("strip")
            if strip:
                subprocess.run([strip, "--strip-debug", copy], check=True)
            with open(copy, "rb") as fh:
                files[f"{NAME}/_lib/libaudioplay.so"] = fh.read()
    files.update(_dist_info_files())
    di = f"{NAME}-{_version()}.dist-info"
    name = f"{NAME}-{_version()}-{_tag()}.whl"
    record = [_record_line(a, d) for a, d in files.items()] + [f"{di}/RECORD,,"]
    os.makedirs(wheel_directory, exist_ok=True)
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files.items():
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if arcname.endswith(".so") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, data)
        info = zipfile.ZipInfo(f"{di}/RECORD", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        z.writestr(info, "\n".join(record) + "\n", zipfile.ZIP_DEFLATED)
    _log(f"wrote {path}")
    return name


# PEP 517 hooks.

def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: object = None) -> str:
    di = f"{NAME}-{_version()}.dist-info"
    for arcname, data in _dist_info_files().items():
        out = os.path.join(metadata_directory, arcname)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as fh:
            fh.write(data)
    return di


def build_wheel(wheel_directory: str, config_settings: object = None,
                metadata_directory: str | None = None) -> str:
    return _write_wheel(wheel_directory, _build_library())
