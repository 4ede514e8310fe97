"""SampleWindow on Icarus and Verilator (testbench/tb_sample_window.py)."""

import dataclasses

import pytest

from rtl_harness import run_block
from tinycl_hdl.spec.catalogue import WINDOWS
from tinycl_hdl.rtl.window import SampleWindow

BASE = WINDOWS
CONFIGS = {f"{name}-{order}": dataclasses.replace(cfg, window=order)
           for name, cfg in BASE.items() for order in ("snake", "raster")}


# Verilator builds cost ~15 s each: it runs one order per shape, Icarus both.
VERILATOR = {"digits-snake", "digits-raster", "7x5x2-snake", "6x6x1-k2-raster", "9x6x3-k4-snake",
             "3x8x1-k3-raster"}
CASES = [(name, "icarus") for name in sorted(CONFIGS)] + [(name, "verilator") for name in sorted(VERILATOR)]


def _params(cfg):
    window = SampleWindow(cfg)
    return {"reads_per_sweep": window.reads_per_sweep, "latency": window.latency, "seed": 3}


@pytest.mark.parametrize("name, simulator", CASES)
def test_sample_window(name, simulator, request):
    cfg = CONFIGS[name]
    run_block("sample_window", cfg, simulator, "tb_sample_window",
              params=_params(cfg),
              waves=request.config.getoption("--waves"))


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", ["7x5x2-snake"])
def test_sample_window_with_sram_black_boxes(name, simulator, request):
    """The same tests pass with the banks emitted as SRAM macros bound to their behavioural model."""
    cfg = CONFIGS[name]
    run_block("sample_window", cfg, simulator, "tb_sample_window",
              params=_params(cfg), sram_blackbox=True,
              waves=request.config.getoption("--waves"))
