"""The board top (``tinycl_uart``) driven through its UART pins (testbench/tb_board.py)."""

import pytest

from tinycl_hdl.config import TinyCLConfig
from tinycl_hdl.sim import run_design

# Small enough for Icarus to read back every weight over the UART.
CONFIG = TinyCLConfig(slots=6, filters=2, classes=3)
UART_DIVISOR = 8


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_board_top_over_uart(simulator, request):
    run_design("tinycl_uart", CONFIG, simulator, "tb_board", params={"seed": 3, "uart_divisor": UART_DIVISOR},
               module_options={"uart_divisor": UART_DIVISOR}, waves=request.config.getoption("--waves"))
