"""The board top (``tinycl_uart``) driven through its UART pins (testbench/tb_board.py)."""

import pytest

from tinycl_hdl.spec.catalogue import BOARD
from tinycl_hdl.flows.sim import run_design

# Small enough for Icarus to read back every weight over the UART.
CONFIG = BOARD
UART_DIVISOR = 8
CLEAN_LINK = ["uart_insert_train_infer_bit_exact", "uart_bad_frames_answer_slverr_or_resynchronise"]


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_board_top_over_uart(simulator, request):
    run_design("tinycl_uart", CONFIG, simulator, "tb_board", params={"seed": 3, "uart_divisor": UART_DIVISOR},
               module_options={"uart_divisor": UART_DIVISOR}, testcase=CLEAN_LINK,
               waves=request.config.getoption("--waves"))


@pytest.mark.parametrize("seed", [5, 6])
def test_board_top_over_a_noisy_uart(seed, request):
    # Icarus: the test watches the bus behind the bridge, nets Verilator does not expose.
    # One fault in 60 bytes: about one frame in five meets one.
    run_design("tinycl_uart", CONFIG, "icarus", "tb_board",
               params={"seed": seed, "uart_divisor": UART_DIVISOR, "noise": 1 / 60},
               module_options={"uart_divisor": UART_DIVISOR}, testcase="uart_noise_never_executes_a_corrupted_frame",
               waves=request.config.getoption("--waves"))
