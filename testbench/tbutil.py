"""Helpers shared by the cocotb testbenches: clock/reset ownership, packing."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from tinycl_hdl.config import TinyCLConfig


def config_from_env() -> TinyCLConfig:
    """The configuration the pytest side built the design for."""
    return TinyCLConfig.from_json(os.environ["TINYCL_CONFIG"])


def params_from_env() -> dict:
    return json.loads(os.environ.get("TINYCL_TB_PARAMS", "{}"))


def pack(values, width: int) -> int:
    """Lane values (signed or unsigned) to one packed integer, lane 0 lowest."""
    mask = (1 << width) - 1
    word = 0
    for i, value in enumerate(values):
        word |= (int(value) & mask) << (i * width)
    return word


def unpack(word: int, width: int, count: int, signed: bool = True):
    out = []
    for i in range(count):
        value = (word >> (i * width)) & ((1 << width) - 1)
        if signed and value >> (width - 1):
            value -= 1 << width
        out.append(value)
    return out


class ClockedTB:
    """Owns the clock and reset of an Amaranth-generated design (``clk``, ``rst``).

    Inputs are written at the falling edge and outputs sampled there, so every
    value read is stable whatever the simulator's scheduling.
    """

    period_ns = 10

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0
        dut.rst.value = 1          # held from time zero so that no bus model samples X
        cocotb.start_soon(Clock(dut.clk, self.period_ns, unit="ns").start())

    async def reset(self, cycles: int = 2):
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def tick(self):
        """Advance one clock cycle, to the next falling edge."""
        await FallingEdge(self.dut.clk)
        self.cycle += 1
