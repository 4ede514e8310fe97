"""Coverage of the end-to-end runs: Verilator's line and toggle coverage, and what the
control unit reached.

:func:`run_coverage` builds the native model of each configuration with line and toggle
coverage (:func:`~tinycl_hdl.flows.native.build_native`), runs :func:`coverage_workload` on
it (the bit-exact run against the golden model, every refusal, ``ABORT`` of a ``TRAIN``
and of an ``INFER``, ``CLEAR_COUNTERS``) and writes Verilator's ``coverage.dat``.  The
wrapper of a coverage build carries :func:`observers`: a register per state of the control
unit's FSM, per command and per error code, which rises when the state is entered, the
command accepted or the code set; their toggle counts in the coverage data say what the
run reached.  :func:`summarise` reads a ``coverage.dat`` into line and toggle figures and
the observers reached; with Verilator's ``verilator_coverage`` installed, :func:`run_coverage`
also writes the annotated source.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess

import numpy as np

from ..spec.config import TinyCLConfig
from ..spec.regmap import Command, ErrorCode

__all__ = ["PREFIX", "observers", "coverage_workload", "summarise", "run_coverage"]

#: Names of the observer registers in the wrapper.
PREFIX = "cov_"


def control_states(cfg: TinyCLConfig) -> dict:
    """``{state name: encoding}`` of the control unit's FSM of ``cfg``'s top."""
    from amaranth.hdl import Fragment

    from ..rtl.top import TinyCL

    top = TinyCL(cfg)
    Fragment.get(top, None)
    return top.control_states


def observers(cfg: TinyCLConfig) -> list:
    """``(register, condition)`` pairs for :func:`~tinycl_hdl.flows.native.wrapper`: every
    state of the control FSM (``core.control_state``), every accepted command (``COMMAND``
    reads back the last; ``ABORT`` raises ``abort``, ``CLEAR_COUNTERS`` pulses
    ``clear_counters``) and every error code (``core.error``)."""
    out = [(f"{PREFIX}state_{name}", f"core.control_state == {code}") for name, code in control_states(cfg).items()]
    for command in Command:
        if command in (Command.INSERT, Command.TRAIN, Command.TRAIN_KEEP, Command.INFER):
            out.append((f"{PREFIX}command_{command.name}", f"core.command == {int(command)}"))
    out += [(f"{PREFIX}command_ABORT", "core.abort"), (f"{PREFIX}command_CLEAR_COUNTERS", "core.clear_counters")]
    out += [(f"{PREFIX}error_{code.name}", f"core.error == {int(code)}") for code in ErrorCode]
    return out


async def coverage_workload(host, seed: int = 1) -> dict:
    """The end-to-end run of :func:`~tinycl_hdl.host.session.bit_exact_run` (its checks
    against the golden model included), then each refusal, an ``ABORT`` of a ``TRAIN`` and
    of an ``INFER``, and ``CLEAR_COUNTERS``."""
    from ..host.driver import BusError, CommandError
    from ..host.session import GoldenSession, bit_exact_run

    cfg = host.cfg
    await host.identify()
    session = GoldenSession(host, seed)
    result = await bit_exact_run(session, cfg.slots + 2 * cfg.classes, 1, 2)
    refused = []
    for name, value, command in (("LABEL", cfg.classes, Command.INSERT), ("EPOCHS", 0, Command.TRAIN),
                                 (None, None, Command.NONE)):
        if name:
            await host.write(name, value)
        try:
            await host.command(command)
        except CommandError as error:
            refused.append(error.code.name)
    await host.write("LABEL", 0)
    await host.write("EPOCHS", 50)
    await host.command(Command.TRAIN, wait=False)
    try:
        await host.command(Command.INSERT, wait=False)
    except CommandError as error:
        refused.append(error.code.name)
    try:
        await host.write("LR_SHIFT", cfg.lr_shift)
    except BusError:
        refused.append("SLVERR")
    await host.abort()
    await host.stage(np.zeros((cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8))
    await host.command(Command.INFER, wait=False)
    await host.abort()
    await host.command(Command.CLEAR_COUNTERS)
    return dict(result, refused=refused)


def _points(text: str):
    """``(fields, count)`` of every point of a ``coverage.dat``."""
    for key, count in re.findall(r"^C '(.*)' (\d+)$", text, re.MULTILINE):
        yield dict(f.split("\x02", 1) for f in key.split("\x01") if "\x02" in f), int(count)


#: The branch Yosys's Verilog backend opens every combinational block with, on a register
#: that is never set: a coverage point that no run can reach.
_DUMMY = "dump_module"


def summarise(text: str, source: str = "") -> dict:
    """Line and toggle points hit of a ``coverage.dat`` (the observers apart), and
    ``{observer: reached}``.  With the ``source`` the data counts (``tinycl.v``), the taken
    branches of the Verilog backend's never-set trigger are counted apart (``dummy``)."""
    figures = {"line": [0, 0], "toggle": [0, 0]}
    reached, dummy = {}, 0
    lines = source.splitlines()
    for fields, count in _points(text):
        page = fields.get("page", "")
        signal = fields.get("o", "")
        if page.startswith("v_toggle") and signal.startswith(PREFIX):
            if signal.endswith(":0->1"):
                reached[signal[:-len(":0->1")]] = count > 0
            continue
        kind = "line" if page.startswith(("v_line", "v_branch")) else "toggle" if page.startswith("v_toggle") else None
        if (page.startswith("v_branch") and signal == "if" and fields.get("f") == "tinycl.v" and lines
                and _DUMMY in lines[int(fields["l"]) - 1]):
            dummy += 1
            continue
        if kind:
            figures[kind][0] += count > 0
            figures[kind][1] += 1
    return {"line_points": figures["line"][1], "line_hit": figures["line"][0], "dummy_points": dummy,
            "toggle_points": figures["toggle"][1], "toggle_hit": figures["toggle"][0], "reached": reached}


def run_coverage(configs: dict, out_dir, seed: int = 1) -> dict:
    """For each ``{name: cfg}``: build the coverage model, run :func:`coverage_workload`,
    keep ``<name>.dat`` in ``out_dir`` (annotated into ``<name>-annotated/`` when
    ``verilator_coverage`` is installed) and summarise it; writes ``coverage.json`` and
    ``coverage.md`` and returns the summaries."""
    import asyncio

    from ..host.driver import TinyCLHost
    from ..host.native import NativeTransport
    from .native import build_native

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, cfg in configs.items():
        executable = build_native(cfg, coverage="full")
        data = out / f"{name}.dat"
        transport = NativeTransport(executable, coverage=data)
        try:
            run = asyncio.run(coverage_workload(TinyCLHost(transport, cfg), seed))
        finally:
            transport.close()
        summary = summarise(data.read_text(), (executable.parent.parent / "tinycl.v").read_text())
        annotate = shutil.which("verilator_coverage")
        if annotate:
            # The data names the sources relative to the build folder.
            subprocess.run([annotate, "--annotate", str((out / f"{name}-annotated").resolve()), "--annotate-min", "1",
                            str(data.resolve())], cwd=executable.parent.parent, check=True, capture_output=True)
        results[name] = dict(summary, config=cfg.to_dict(), refused=run["refused"], annotated=bool(annotate))
    (out / "coverage.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "coverage.md").write_text(report(results))
    return results


def report(results: dict) -> str:
    lines = ["| run | datapath | line and branch points hit | toggle points hit | states, commands, error codes reached |",
             "|---|---|---|---|---|"]
    # The backend's never-set triggers are left out of the line figures (summarise).
    for name, r in results.items():
        reached = r["reached"]
        lines.append(f"| {name} | {r['config']['datapath']} | {r['line_hit']:,} / {r['line_points']:,} "
                     f"({100 * r['line_hit'] / r['line_points']:.1f} %) | {r['toggle_hit']:,} / {r['toggle_points']:,} "
                     f"({100 * r['toggle_hit'] / r['toggle_points']:.1f} %) | {sum(reached.values())} / {len(reached)} |")
    missed = [f"{name}: {obs}" for name, r in results.items() for obs, hit in r["reached"].items() if not hit]
    return "\n".join(lines) + "\n" + ("\nNot reached: " + ", ".join(missed) + "\n" if missed else "")
