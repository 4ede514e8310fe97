"""The TinyCL top end to end on Icarus and Verilator (testbench/tb_tinycl.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.config import TinyCLConfig

CONFIGS = {
    "digits-small": TinyCLConfig(slots=12, filters=4, classes=4),
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=4, classes=4, slots=8, n_pu=2),
    "6x6x1-k2-raster": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6,
                                    window="raster", lr_shift=3),
    "5x9x3-q3.12": TinyCLConfig(in_h=5, in_w=9, in_c=3, kernel=3, filters=3, classes=5, slots=10, n_pu=3,
                                frac_bits=12, lr_shift=5),
}
# The serial datapath (one MAC lane) on the same shapes; it allows one processing unit only.
# The single-channel K=2 one runs on Icarus, which also watches its memories; the longer ones
# on Verilator (digits-small-serial took 209 s on Icarus, half the suite's longest path).
SERIAL = {
    # Six filters and four classes: the parameter memory's regions are wider than the class
    # index, and clearing them (4 x 8 words) counts past the slots.
    "digits-small-serial": ("verilator", TinyCLConfig(slots=8, filters=6, classes=4, datapath="serial")),
    "6x6x1-k2-raster-serial": ("icarus", TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3,
                                                      slots=6, window="raster", lr_shift=3, datapath="serial")),
    "7x5x2-serial": ("verilator", TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=4, classes=4, slots=8,
                                               datapath="serial")),
}
CASES = ([(name, "icarus") for name in sorted(CONFIGS)] + [("digits-small", "verilator"), ("7x5x2", "verilator")]
         + [(name, sim) for name, (sim, _) in SERIAL.items()])
CONFIGS.update({name: cfg for name, (_, cfg) in SERIAL.items()})


@pytest.mark.parametrize("name, simulator", CASES)
def test_tinycl(name, simulator, request):
    # One lane takes kernel**2 times the cycles: the serial top trains one epoch, then one more.
    epochs = 1 if name in SERIAL else 2
    run_block("tinycl", CONFIGS[name], simulator, "tb_tinycl", params={"seed": 5, "epochs": epochs},
              waves=request.config.getoption("--waves"))
