"""LossGradient on Icarus and Verilator (testbench/tb_loss_gradient.py)."""

import pytest

from rtl_harness import run_block
from tinycl_hdl.config import TinyCLConfig

CONFIGS = {
    "q5.10-10": TinyCLConfig(),
    "q3.12-4": TinyCLConfig(classes=4, slots=8, frac_bits=12),
    "q7.8-3": TinyCLConfig(classes=3, slots=6, frac_bits=8),
    "q5.6-12b-5": TinyCLConfig(classes=5, slots=10, data_width=12, frac_bits=6, acc_width=33, lr_shift=3),
    # The rounded exp tables reach 2.0 for fractions just below one at these frac_bits.
    "q2.21-24b-4": TinyCLConfig(classes=4, slots=8, data_width=24, frac_bits=21, acc_width=58),
    "q9.18-28b-3": TinyCLConfig(classes=3, slots=6, data_width=28, frac_bits=18, acc_width=62, in_h=4, in_w=4),
}
CASES = [(name, "icarus") for name in sorted(CONFIGS)] + [("q5.10-10", "verilator"), ("q3.12-4", "verilator")]


@pytest.mark.parametrize("name, simulator", CASES)
def test_loss_gradient(name, simulator, request):
    run_block("loss_gradient", CONFIGS[name], simulator, "tb_loss_gradient",
              waves=request.config.getoption("--waves"))
