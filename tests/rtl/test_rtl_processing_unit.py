"""ProcessingUnit on Icarus and Verilator against the golden model (testbench/tb_processing_unit.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.spec.catalogue import PROCESSING_UNITS
from tinycl_hdl.rtl.mac import ProcessingUnit

PU_CONFIGS = PROCESSING_UNITS


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", sorted(PU_CONFIGS))
def test_processing_unit(name, simulator, request):
    cfg = PU_CONFIGS[name]
    run_block("processing_unit", cfg, simulator, "tb_processing_unit",
              params={"latency": ProcessingUnit(cfg).latency, "seed": 7}, waves=request.config.getoption("--waves"))
