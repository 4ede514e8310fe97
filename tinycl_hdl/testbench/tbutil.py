"""Helpers shared by the cocotb testbenches: clock/reset ownership, packing."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from tinycl_hdl.spec.config import TinyCLConfig


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


class ReadWriteCollisionMonitor:
    """Records every cycle in which a memory reads the word it writes in the same cycle.

    The iCE40 flow lets such a read return anything (``fpga.ICE40_NO_COLLISION``); the
    design promises never to do it, and this checks the promise in simulation for the
    memories at ``paths`` (dotted instance paths below ``dut``).  Icarus only: Verilator
    does not expose the design's inner modules to cocotb.
    """

    def __init__(self, dut, paths):
        self.dut = dut
        self.memories = []
        if cocotb.SIM_NAME.lower().startswith("icarus"):
            for path in paths:
                handle = dut
                for part in path.split("."):
                    handle = getattr(handle, part)
                self.memories.append(handle)
        self.collisions = []
        if self.memories:
            cocotb.start_soon(self._watch())

    async def _watch(self):
        while True:
            await FallingEdge(self.dut.clk)
            for mem in self.memories:
                w_en = mem.w_en.value
                if w_en.is_resolvable and int(w_en) and int(mem.r_en.value) and \
                        int(mem.r_addr.value) == int(mem.w_addr.value):
                    self.collisions.append((mem._path, int(mem.w_addr.value)))
