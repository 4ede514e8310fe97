"""LossGradient on Icarus and Verilator (testbench/tb_loss_gradient.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.spec.catalogue import LOSS_UNITS

CONFIGS = LOSS_UNITS
CASES = [(name, "icarus") for name in sorted(CONFIGS)] + [("q5.10-10", "verilator"), ("q3.12-4", "verilator")]


@pytest.mark.parametrize("name, simulator", CASES)
def test_loss_gradient(name, simulator, request):
    run_block("loss_gradient", CONFIGS[name], simulator, "tb_loss_gradient",
              waves=request.config.getoption("--waves"))
