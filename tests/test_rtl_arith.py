"""RTL arithmetic helpers (tinycl_hdl.rtl.arith) in the Amaranth simulator, against
tinycl_hdl.fixedpoint's definitions."""

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from tinycl_hdl.fixedpoint import saturate
from tinycl_hdl.rtl.arith import shift_saturate


def test_shift_saturate_is_saturate_of_the_shift():
    """Every shift, values at and around each saturation boundary and random ones, for the
    serial MAC's shape (a 39-bit gradient, a 5-bit shift, 19 bits out)."""
    n, shift_bits, width = 39, 5, 19
    value, shift = Signal(signed(n)), Signal(unsigned(shift_bits))
    out = Signal(signed(width))
    m = Module()
    m.d.comb += out.eq(shift_saturate(value, shift, width))
    rng = np.random.default_rng(5)
    cases = []
    for s in range(1 << shift_bits):
        for edge in (1 << (s + width - 1), -(1 << (s + width - 1))):
            cases += [(edge + d, s) for d in (-(1 << s) - 1, -(1 << s), -1, 0, 1, 1 << s)]
        cases += [((1 << (n - 1)) - 1, s), (-(1 << (n - 1)), s), (0, s), (-1, s)]
        cases += [(int(v), s) for v in rng.integers(-(1 << (n - 1)), 1 << (n - 1), 40)]
        cases += [(int(v), s) for v in rng.integers(-(1 << (s + width + 1)), 1 << (s + width + 1), 40)]
    cases = [(max(-(1 << (n - 1)), min((1 << (n - 1)) - 1, v)), s) for v, s in cases]
    mismatches = []

    async def bench(ctx):
        for v, s in cases:
            ctx.set(value, v)
            ctx.set(shift, s)
            want = int(saturate(v >> s, width))
            if ctx.get(out) != want:
                mismatches.append((v, s, ctx.get(out), want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(cases) > 3000
    assert not mismatches, mismatches[:5]
