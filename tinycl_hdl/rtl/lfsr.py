"""The on-chip LFSR: one draw (32 Galois steps) per cycle.

The 32 steps are linear over GF(2); the XOR network is derived here from
:func:`tinycl_hdl.lfsr.step`, the definition the golden model uses.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import lfsr as _lfsr

__all__ = ["Lfsr", "draw_network"]


def draw_network():
    """For each bit of the new state, the old-state bits XORed into it."""
    images = []
    for bit in range(32):
        state = 1 << bit
        for _ in range(_lfsr.DRAW_STEPS):
            state = _lfsr.step(state)
        images.append(state)
    return [[bit for bit in range(32) if images[bit] >> out & 1] for out in range(32)]


class Lfsr(wiring.Component):
    """32-bit Galois LFSR advanced one draw per ``draw`` pulse.

    Parameters
    ----------
    seed : int
        Seed loaded at reset.

    Members
    -------
    load : In(1)
        Load ``(seed_in << 1) | 1`` (the ``seed`` register was written).
    seed_in : In(31)
    draw : In(1)
        Advance one draw; the drawn value is :attr:`state` from the next cycle.
    state : Out(32)
    """

    def __init__(self, seed: int):
        self._seed = seed
        super().__init__({"load": In(1), "seed_in": In(31), "draw": In(1),
                          "state": Out(32, init=_lfsr.seed_state(seed))})

    def elaborate(self, platform):
        m = Module()
        network = draw_network()
        with m.If(self.load):
            m.d.sync += self.state.eq((self.seed_in << 1) | 1)
        with m.Elif(self.draw):
            for out, taps in enumerate(network):
                value = self.state[taps[0]]
                for tap in taps[1:]:
                    value = value ^ self.state[tap]
                m.d.sync += self.state[out].eq(value)
        return m
