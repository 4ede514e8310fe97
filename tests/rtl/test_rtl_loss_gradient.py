"""LossGradient on Icarus and Verilator (testbench/tb_loss_gradient.py)."""

import pytest

from tinycl_hdl.flows.sim import run_design
from tinycl_hdl.rtl.loss import LossGradient
from tinycl_hdl.spec.catalogue import LOSS_UNITS

CONFIGS = LOSS_UNITS
CASES = [(name, "icarus") for name in sorted(CONFIGS)] + [("q5.10-10", "verilator"), ("q3.12-4", "verilator")]


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sequential"])
@pytest.mark.parametrize("name, simulator", CASES)
def test_loss_gradient(name, simulator, pipelined, request):
    cfg = CONFIGS[name]
    run_design("loss_gradient", cfg, simulator, "tb_loss_gradient", waves=request.config.getoption("--waves"),
               module_options={"pipelined": pipelined},
               params={"cycles": LossGradient(cfg, pipelined=pipelined).cycles,
                       "ready_cycles": LossGradient(cfg, pipelined=pipelined).ready_cycles})
