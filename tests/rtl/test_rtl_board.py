"""The board top (``tinycl_uart``) driven through its UART pins (testbench/tb_board.py)."""

import pytest

from tinycl_hdl.spec.catalogue import BOARD
from tinycl_hdl.flows.sim import run_design

# Small enough for Icarus to read back every weight over the UART.
CONFIG = BOARD
UART_DIVISOR = 8


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_board_top_over_uart(simulator, request):
    run_design("tinycl_uart", CONFIG, simulator, "tb_board", params={"seed": 3, "uart_divisor": UART_DIVISOR},
               module_options={"uart_divisor": UART_DIVISOR}, waves=request.config.getoption("--waves"))
