"""The native Verilator backend: the TinyCL top compiled with a C++ harness that clocks it.

cocotb drives every clock edge from Python, which holds a Verilator model of the
``digits`` top to some 40,000 cycles per second.  Here Verilator compiles the top with
``native_harness.cpp``, which clocks the model in C++ and performs whole AXI4-Lite
accesses, and waits for the interrupt, on request.  Python talks to it over a pipe
(:class:`~tinycl_hdl.host.native.NativeTransport`): one request per register access,
one per staged sample, one per command's wait, so Python runs once per access rather
than once per cycle.  A pipe to a child process keeps the model out of the Python
process (no extension module to build against each Python) and lets one harness serve
every caller: the CLI, the tests and the benchmark.

Builds are cached like cocotb's (:func:`~tinycl_hdl.flows.sim.build_root`), one per
configuration and waveform option, keyed by the hash of the Verilog, the harness and the
flags.

A build without waveforms is profile-guided: gcc compiles the model instrumented, the
harness runs a short workload of the configuration (:func:`profile_workload`), and gcc
compiles it again from the profile.  The model's per-cycle code is one long function of
branches over the design's state; the profile tells gcc which way they go.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import shutil
import os
import pathlib
import subprocess
import time

from ..host.driver import TinyCLHost
from ..host.native import NativeTransport
from ..spec.config import TinyCLConfig
from .sim import build_root, config_key, prepare_environment, write_if_changed

__all__ = ["HARNESS", "build_native", "write_sources", "native_host", "profile_workload", "run_native", "wrapper"]

#: The C++ harness (package data).
HARNESS = pathlib.Path(__file__).resolve().parent / "native_harness.cpp"

#: Verilator's options: the model's per-cycle code in one C++ file, so that gcc inlines
#: across it (``--output-split 0``), and its ``case`` statements left as branches for the
#: profile to order rather than turned into lookup tables (``-fno-table``); both are faster
#: on ``digits`` (docs/performance.md).  Warnings that the lint step owns are off.
VERILATOR_FLAGS = ["--cc", "--exe", "--build", "-O3", "--noassert", "--output-split", "0", "--output-split-cfuncs", "0",
                   "--top-module", "tinycl_native",
                   "--prefix", "Vtinycl", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-fno-table"]
#: gcc's flags for the per-cycle code; the construction code (large, run once) is built at
#: -O0 for build time.  ``-fwrapv``: without it gcc 12 at -O2 built a ``digits-small``
#: model whose INSERT refused a sample that the golden model, Icarus and the cocotb
#: Verilator build keep; -O1, -Os, and -O2 with -fwrapv agree with them.
OPT_FAST = "-O2 -fwrapv -march=native"

#: The two passes of a profile-guided build: gcc's flags added to ``OPT_FAST``, and to the link.
#: ``-fprofile-partial-training``: code the short workload never ran is still optimised
#: for speed, not for size.
PROFILE_GENERATE = ("-fprofile-generate", "-fprofile-generate")
PROFILE_USE = ("-fprofile-use -fprofile-partial-training -Wno-missing-profile", "")


def _make_flags(extra_opt: str = "", link: str = "") -> list:
    opt_fast = " ".join(filter(None, [OPT_FAST, extra_opt]))
    flags = ["-MAKEFLAGS", f"OPT_FAST='{opt_fast}' OPT_SLOW=-O0 OPT_GLOBAL=-O2"]
    return flags + (["-LDFLAGS", link] if link else [])


def wrapper(cfg: TinyCLConfig, observers=()) -> str:
    """``tinycl_native``: the ``tinycl`` top with the same ports but ``rst``, which a
    power-on counter holds for three cycles.  A reset from a top-level input would put every
    register's next-state logic in Verilator's input-evaluation region, run at both clock
    edges; from a register it runs once per cycle.

    ``observers``: ``(name, condition)`` pairs, each a register ``name`` that rises and
    stays up once ``condition`` (Verilog on the top's signals, ``core.``) holds at a clock
    edge; a coverage build's toggle counts then say which conditions were reached."""
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import In

    from ..rtl.axi import axi_lite_members
    from ..spec.regmap import RegisterMap

    ports = ["  input wire clk"]
    members = dict(axi_lite_members(RegisterMap(cfg).address_width), busy=None, irq=None)
    for name, member in members.items():
        width = 1 if member is None else Shape.cast(member.shape).width
        direction = "output" if member is None or member.flow != In else "input"
        ports.append(f"  {direction} wire {f'[{width - 1}:0] ' if width > 1 else ''}{name}")
    return ("module tinycl_native(\n" + ",\n".join(ports) + "\n);\n"
            "  reg [1:0] power_on = 2'd3;\n"
            "  always @(posedge clk) if (power_on != 2'd0) power_on <= power_on - 2'd1;\n"
            "  tinycl core(.clk(clk), .rst(power_on != 2'd0), .*);\n"
            + "".join(f"  reg {name} = 1'b0;\n  always @(posedge clk) if ({condition}) {name} <= 1'b1;\n"
                      for name, condition in observers)
            + "endmodule\n")


#: Coverage builds: Verilator's options, and whether the wrapper carries the observers.
COVERAGE = {"toggle": (["--coverage-toggle"], False),
            "full": (["--coverage-line", "--coverage-toggle"], True)}


def build_native(cfg: TinyCLConfig, waves: bool = False, quiet: bool = True, coverage=None) -> pathlib.Path:
    """Compile the top for ``cfg`` with the harness unless an identical build exists;
    returns the executable.  ``coverage``: ``"toggle"``, Verilator's toggle coverage (the
    measured switching activity of :mod:`tinycl_hdl.flows.activity`), or ``"full"``, line
    and toggle coverage with the observers of :func:`tinycl_hdl.flows.coverage.observers`
    (:mod:`tinycl_hdl.flows.coverage`)."""
    if coverage not in (None, *COVERAGE):
        raise ValueError(f"coverage must be None or one of {', '.join(COVERAGE)}, not {coverage!r}")
    prepare_environment()
    suffix = ("-fst" if waves else "") + ({"toggle": "-cov", "full": "-covfull"}[coverage] if coverage else "")
    build_dir = build_root() / "native" / f"{config_key(cfg)}{suffix}"
    build_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may ask for the same model: one builds, the others wait for it.
    with open(build_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(cfg, build_dir, waves, quiet, coverage)


def write_sources(cfg: TinyCLConfig, build_dir: pathlib.Path, observers=()) -> list:
    """The top's Verilog, the ``tinycl_native`` wrapper (with ``observers``, see
    :func:`wrapper`) and the harness into ``build_dir`` (unchanged files keep their
    timestamps); returns the Verilog files."""
    from .generate import module_files

    sources = []
    for name, text in module_files(cfg, "tinycl").items():
        sources.append(build_dir / name)
        write_if_changed(sources[-1], text)
    sources.append(build_dir / "tinycl_native.v")
    write_if_changed(sources[-1], wrapper(cfg, observers))
    write_if_changed(build_dir / "harness.cpp", HARNESS.read_text())
    return sources


def _build_locked(cfg: TinyCLConfig, build_dir: pathlib.Path, waves: bool, quiet: bool,
                  coverage=None) -> pathlib.Path:
    options, observed = COVERAGE[coverage] if coverage else ([], False)
    if observed:
        from .coverage import observers
        sources = write_sources(cfg, build_dir, observers(cfg))
    else:
        sources = write_sources(cfg, build_dir)
    harness = build_dir / "harness.cpp"
    flags = (VERILATOR_FLAGS + (["--trace-fst"] if waves else [])
             + options
             + ["--build-jobs", str(os.cpu_count() or 1)])
    passes = [_make_flags()] if waves else [_make_flags(*PROFILE_GENERATE), _make_flags(*PROFILE_USE)]
    if coverage:
        # Counted once, not a benchmark: the model compiles split and at -O1, in a fraction of
        # the time the one-file -O2 build of a large configuration takes.
        flags += ["--output-split", "20000", "--output-split-cfuncs", "20000"]
        passes = [["-MAKEFLAGS", "OPT_FAST='-O1 -fwrapv' OPT_SLOW=-O0 OPT_GLOBAL=-O1"]]
    digest = hashlib.sha256()
    for path in [harness, *sources]:
        digest.update(path.read_bytes())
    digest.update(repr((flags, passes)).encode())
    obj = build_dir / "obj"
    executable = obj / "tinycl_native"
    stamp = build_dir / "build.stamp"
    if executable.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return executable
    stamp.unlink(missing_ok=True)
    # A rebuild starts from an empty folder: the cache outlives the Verilator install that
    # filled it, and make's dependency files would name that install's headers.
    shutil.rmtree(obj, ignore_errors=True)
    for n, make_flags in enumerate(passes):
        if n:
            # The flags changed, not the sources: make would keep the instrumented objects.
            for built in [executable, *obj.glob("*.o"), *obj.glob("*.a")]:
                built.unlink(missing_ok=True)
        _verilate(build_dir, [*flags, *make_flags], sources, quiet)
        if n + 1 < len(passes):
            asyncio.run(profile_workload(cfg, executable))
    stamp.write_text(digest.hexdigest())
    return executable


def _verilate(build_dir: pathlib.Path, flags: list, sources: list, quiet: bool) -> None:
    cmd = ["verilator", *flags, "-Mdir", "obj", "-o", "tinycl_native", "harness.cpp", *(p.name for p in sources)]
    result = subprocess.run(cmd, cwd=build_dir, capture_output=quiet, text=True)
    if result.returncode != 0:
        (build_dir / "build.log").write_text((result.stdout or "") + (result.stderr or ""))
        raise RuntimeError(f"Verilator build failed (see {build_dir / 'build.log'})")


async def profile_workload(cfg: TinyCLConfig, executable, seed: int = 1) -> None:
    """The profile-guided build's training run, on random samples: identification, up to
    eight inserts, a two-epoch TRAIN, an INFER and the logit and counter reads (a few
    seconds of the instrumented model on the presets)."""
    import numpy as np

    transport = NativeTransport(executable)
    try:
        host = TinyCLHost(transport, cfg)
        await host.identify()
        rng = np.random.default_rng(seed)
        shape = (cfg.in_h, cfg.in_w, cfg.in_c)
        for n in range(min(cfg.slots, 2 * cfg.classes, 8)):
            await host.insert(rng.integers(0, 256, shape, dtype=np.uint8), n % cfg.classes)
        await host.train(epochs=2)
        await host.infer(rng.integers(0, 256, shape, dtype=np.uint8))
        await host.read_logits()
        await host.counters()
    finally:
        transport.close()      # the harness writes its profile as it exits


@contextlib.contextmanager
def native_host(cfg: TinyCLConfig, waves=None, **host_options):
    """A :class:`TinyCLHost` on a fresh native model of ``cfg`` (built if needed); ``waves``
    is the FST file to write, or ``None``."""
    executable = build_native(cfg, waves=waves is not None)
    transport = NativeTransport(executable, waves=waves)
    try:
        yield TinyCLHost(transport, cfg, **host_options)
    finally:
        transport.close()


def run_native(cfg: TinyCLConfig, run, waves=None) -> dict:
    """Build (if needed), start the model, ``await run(host)`` and add the simulated cycles,
    the wall time of the run (the build excluded) and ``cycles_per_second`` to its result."""
    import asyncio

    with native_host(cfg, waves=waves) as host:
        start = time.monotonic()
        result = asyncio.run(_identified(host, run))
        seconds = time.monotonic() - start
        cycles = host.transport.cycles()
    return dict(result, simulated_cycles=cycles, wall_seconds=seconds, cycles_per_second=cycles / seconds)


async def _identified(host, run):
    await host.identify()
    return await run(host)
