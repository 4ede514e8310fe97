"""The C driver (``driver/`` in a checkout) linked into the native Verilator model.

The driver and a test program are compiled as C99 with ``-Wall -Wextra -Werror``, then
linked into the native harness built with ``TINYCL_DRIVER_SELFTEST``: its ``main`` clocks
the model and hands the program an accessor pair of AXI4-Lite accesses and an irq wait.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import subprocess

from ..spec.config import TinyCLConfig
from ..spec.regmap import RegisterMap
from .native import VERILATOR_FLAGS, _make_flags, _verilate, write_sources
from .peakrdl import map_header
from .sim import build_root, config_key, prepare_environment, write_if_changed

__all__ = ["DRIVER", "C_FLAGS", "compile_c", "build_selftest"]

#: The driver's sources in a checkout.
DRIVER = pathlib.Path(__file__).resolve().parents[2] / "driver"

#: The flags the driver must compile with.
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def compile_c(compiler: str, source, include_dirs, output, extra=()) -> None:
    """Compile one C file to an object; ``RuntimeError`` with the compiler's output on failure."""
    cmd = [compiler, *C_FLAGS, *extra, *(f"-I{d}" for d in include_dirs), "-c", str(source), "-o", str(output)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr}")


def build_selftest(cfg: TinyCLConfig, program) -> pathlib.Path:
    """The native model of ``cfg`` with the driver and ``program`` (a C file defining
    ``int tinycl_selftest(tinycl_bus_t)``) linked in; returns the executable."""
    prepare_environment()
    build_dir = build_root() / "driver" / config_key(cfg)
    build_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(build_dir / "tinycl_map.h", map_header(RegisterMap(cfg)))
    objects = []
    for source in (DRIVER / "tinycl.c", pathlib.Path(program)):
        objects.append(build_dir / f"{source.stem}.o")
        compile_c("gcc", source, [build_dir, DRIVER], objects[-1])
    sources = write_sources(cfg, build_dir)
    flags = [*VERILATOR_FLAGS, "-CFLAGS", f"-DTINYCL_DRIVER_SELFTEST -I{build_dir} -I{DRIVER}",
             "-LDFLAGS", " ".join(str(o) for o in objects), *_make_flags()]
    digest = hashlib.sha256(repr(flags).encode())
    for path in [build_dir / "harness.cpp", *sources, *objects]:
        digest.update(path.read_bytes())
    executable = build_dir / "obj" / "tinycl_native"
    stamp = build_dir / "build.stamp"
    if executable.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return executable
    shutil.rmtree(build_dir / "obj", ignore_errors=True)
    _verilate(build_dir, flags, sources, quiet=True)
    stamp.write_text(digest.hexdigest())
    return executable
