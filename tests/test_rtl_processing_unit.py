"""ProcessingUnit on Icarus and Verilator against the golden model (testbench/tb_processing_unit.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.config import TinyCLConfig
from tinycl_hdl.rtl.mac import ProcessingUnit

PU_CONFIGS = {
    "digits": TinyCLConfig(filters=3, classes=4),
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=3, classes=4, slots=8),
    "6x6x1-k2-q12.6": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6,
                                   data_width=12, frac_bits=6, acc_width=30, lr_shift=3),
    "6x7x1-k5-q3.12": TinyCLConfig(in_h=6, in_w=7, in_c=1, kernel=5, filters=2, classes=3, slots=6,
                                   frac_bits=12, lr_shift=6),
}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", sorted(PU_CONFIGS))
def test_processing_unit(name, simulator, request):
    cfg = PU_CONFIGS[name]
    run_block("processing_unit", cfg, simulator, "tb_processing_unit",
              params={"latency": ProcessingUnit(cfg).latency, "seed": 7}, waves=request.config.getoption("--waves"))
