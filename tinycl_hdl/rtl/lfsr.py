"""The on-chip LFSR: one draw (32 Galois steps) per cycle, or over several cycles.

The steps are linear over GF(2); the XOR network that takes a cycle's steps is
derived here from :func:`tinycl_hdl.spec.lfsr.step`, the definition the golden model
uses.  Thirty-two steps in one cycle need about 140 iCE40 LUT4s; four per cycle
about 32, and a draw then takes eight cycles.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec import lfsr as _lfsr

__all__ = ["Lfsr", "draw_network"]


def draw_network(steps: int = _lfsr.DRAW_STEPS):
    """For each bit of the state after ``steps`` steps, the old-state bits XORed into it."""
    images = []
    for bit in range(32):
        state = 1 << bit
        for _ in range(steps):
            state = _lfsr.step(state)
        images.append(state)
    return [[bit for bit in range(32) if images[bit] >> out & 1] for out in range(32)]


class Lfsr(wiring.Component):
    """32-bit Galois LFSR advanced one draw per ``draw`` pulse.

    Parameters
    ----------
    seed : int
        Seed loaded at reset.
    steps_per_cycle : int
        Galois steps taken per cycle; must divide 32.  A draw takes :attr:`draw_cycles`.

    Attributes
    ----------
    load : In(1)
        Load ``(seed_in << 1) | 1`` (the ``seed`` register was written).
    seed_in : In(31)
    load_state : In(1)
        Load ``state_in`` as it is (a saved state restored; the caller keeps it nonzero).
    state_in : In(32)
    draw : In(1)
        Advance one draw (only while :attr:`ready`).
    ready : Out(1)
        No draw is in progress: :attr:`state` is the last draw.  It falls for
        ``draw_cycles - 1`` cycles after ``draw`` (never with one cycle per draw).
    state : Out(32)
    """

    def __init__(self, seed: int, steps_per_cycle: int = _lfsr.DRAW_STEPS):
        if not isinstance(steps_per_cycle, int) or isinstance(steps_per_cycle, bool) or steps_per_cycle < 1 \
                or _lfsr.DRAW_STEPS % steps_per_cycle:
            raise TypeError(f"steps_per_cycle must be a positive integer dividing {_lfsr.DRAW_STEPS}, "
                            f"not {steps_per_cycle!r}")
        self._seed, self._steps = seed, steps_per_cycle
        super().__init__({"load": In(1), "seed_in": In(31), "load_state": In(1),
                          "state_in": In(32), "draw": In(1), "ready": Out(1),
                          "state": Out(32, init=_lfsr.seed_state(seed))})

    @property
    def steps_per_cycle(self) -> int:
        return self._steps

    @property
    def draw_cycles(self) -> int:
        """Cycles from ``draw`` to the drawn :attr:`state`."""
        return _lfsr.DRAW_STEPS // self._steps

    def elaborate(self, platform):
        m = Module()
        network = draw_network(self._steps)
        # Cycles of the current draw still to come (one bit at least: a zero-width signal
        # becomes an invalid Verilog range).
        left = Signal(range(max(self.draw_cycles, 2)))
        m.d.comb += self.ready.eq(left == 0)
        advance = Signal()
        with m.If(self.draw & self.ready):
            m.d.comb += advance.eq(1)
            m.d.sync += left.eq(self.draw_cycles - 1)
        with m.Elif(~self.ready):
            m.d.comb += advance.eq(1)
            m.d.sync += left.eq(left - 1)
        with m.If(self.load):
            m.d.sync += self.state.eq(Cat(Const(1, 1), self.seed_in))
        with m.Elif(self.load_state):
            m.d.sync += self.state.eq(self.state_in)
        with m.Elif(advance):
            for out, taps in enumerate(network):
                value = self.state[taps[0]]
                for tap in taps[1:]:
                    value = value ^ self.state[tap]
                m.d.sync += self.state[out].eq(value)
        return m
