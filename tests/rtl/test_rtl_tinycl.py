"""The TinyCL top end to end on Icarus and Verilator (testbench/tb_tinycl.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.spec.catalogue import SERIAL_TOPS, TOPS

# The serial datapath (one MAC lane): one processing unit only.  The single-channel K=2 one
# runs on Icarus, which also watches its memories; the longer ones on Verilator.
SERIAL_SIMULATOR = {"digits-small-serial": "verilator", "6x6x1-k2-raster-serial": "icarus",
                    "7x5x2-serial": "verilator"}
CONFIGS = {**TOPS, **SERIAL_TOPS}
CASES = ([(name, "icarus") for name in sorted(TOPS)] + [("digits-small", "verilator"), ("7x5x2", "verilator")]
         + [(name, SERIAL_SIMULATOR[name]) for name in SERIAL_TOPS])


@pytest.mark.parametrize("name, simulator", CASES)
def test_tinycl(name, simulator, request):
    # One lane takes kernel**2 times the cycles: the serial top trains one epoch, then one more.
    epochs = 1 if name in SERIAL_TOPS else 2
    run_block("tinycl", CONFIGS[name], simulator, "tb_tinycl", params={"seed": 5, "epochs": epochs},
              waves=request.config.getoption("--waves"))
