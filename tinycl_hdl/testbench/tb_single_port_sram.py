"""A single-port :class:`~tinycl_hdl.rtl.memory.Sram` (an Amaranth memory or an iCE40 SPRAM)
against a Python model of its contract: a read shows the last word written at its address one
cycle later and holds it while idle; in a cycle with a write, the write goes to ``w_addr``
whatever the read port asks, and the read is dropped; after a write the output is undefined
until the next read."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from tbutil import params_from_env


@cocotb.test()
async def reads_return_the_last_word_written(dut):
    params = params_from_env()
    depth, width, steps = params["depth"], params["width"], params["steps"]
    rng = random.Random(params["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in ("r_en", "r_addr", "w_en", "w_addr", "w_data"):
        getattr(dut, name).value = 0
    await FallingEdge(dut.clk)
    model = {}
    # A few addresses come back often (so reads hit rewritten words), the rest anywhere,
    # including both ends of the memory.
    hot = [0, depth - 1] + [rng.randrange(depth) for _ in range(6)]
    shown = None                  # what r_data must show, None while undefined
    checked = held = 0
    for _ in range(steps):
        op = rng.choice("rrwwi")
        if op == "r" and not model:
            op = "w"
        dut.r_en.value = dut.w_en.value = 0
        if op == "w":
            addr = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(depth)
            word = rng.getrandbits(width)
            dut.w_en.value, dut.w_addr.value, dut.w_data.value = 1, addr, word
            # Half the writes also ask for a read elsewhere: the write must win.
            dut.r_en.value, dut.r_addr.value = rng.getrandbits(1), rng.randrange(depth)
        elif op == "r":
            addr = rng.choice(sorted(model))
            dut.r_en.value, dut.r_addr.value, dut.w_addr.value = 1, addr, rng.randrange(depth)
        await FallingEdge(dut.clk)
        if op == "w":
            model[addr] = word
            shown = None
        elif op == "r":
            shown = model[addr]
        if shown is not None:
            got = int(dut.r_data.value)
            assert got == shown, f"r_data is {got:#x}, the model says {shown:#x} (last op {op})"
            checked += 1
            held += op == "i"
    assert checked > steps // 3 and held > 0, f"only {checked} reads checked, {held} of them held"
