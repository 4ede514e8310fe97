"""A proof that the hardware LFSR (:class:`~tinycl_hdl.rtl.lfsr.Lfsr`) draws the golden
model's sequence.

The harness keeps a shadow state advanced by the specification's definition itself:
:func:`tinycl_hdl.spec.lfsr.step` (shift right, XOR :data:`~tinycl_hdl.spec.lfsr.POLY_MASK`
when a one falls out) applied :data:`~tinycl_hdl.spec.lfsr.DRAW_STEPS` times per draw, and
:func:`~tinycl_hdl.spec.lfsr.seed_state` on a load, or the state as it is on a state load
(a restore writes ``LFSR``).  ``draw``, the loads, ``seed_in`` and ``state_in`` are free in
every cycle, but a load comes only between draws (not while one is in progress, nor with a
``draw``), as ``SEED`` and ``LFSR`` are written only while the accelerator is idle, and a
loaded state is nonzero, as the register refuses zero.  Whenever the LFSR is ``ready`` its state
equals the shadow's.  k-induction proves it for every reachable state, so every draw of
every sequence equals the golden model's, step for step.
"""

from __future__ import annotations

import pathlib

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..rtl.lfsr import Lfsr
from ..spec import lfsr as spec
from .formal import _summary, run_sby

__all__ = ["lfsr_harness", "prove_lfsr"]


def _spec_step(state):
    """:func:`tinycl_hdl.spec.lfsr.step` as a circuit."""
    return Mux(state[0], (state >> 1) ^ spec.POLY_MASK, state >> 1)


class _LfsrHarness(wiring.Component):
    def __init__(self, steps_per_cycle: int, seed: int, draw_steps: int):
        self._steps, self._seed, self._draw_steps = steps_per_cycle, seed, draw_steps
        super().__init__({"draw": In(1), "load": In(1), "seed_in": In(31), "load_state": In(1),
                          "state_in": In(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.lfsr = lfsr = Lfsr(self._seed, self._steps)
        m.d.comb += Assume(~ResetSignal())
        m.d.comb += Assume(~self.load | (lfsr.ready & ~self.draw))
        m.d.comb += Assume(~self.load_state | (lfsr.ready & ~self.draw & ~self.load & self.state_in.any()))
        m.d.comb += [lfsr.draw.eq(self.draw), lfsr.load.eq(self.load), lfsr.seed_in.eq(self.seed_in),
                     lfsr.load_state.eq(self.load_state), lfsr.state_in.eq(self.state_in)]
        shadow = Signal(32, init=spec.seed_state(self._seed), name="f_shadow")
        drawn = shadow
        for n in range(self._draw_steps):
            # A signal per step: the step's expression uses its input three times.
            after = Signal(32, name=f"f_step{n}")
            m.d.comb += after.eq(_spec_step(drawn))
            drawn = after
        with m.If(self.load):
            m.d.sync += shadow.eq(Cat(Const(1, 1), self.seed_in))
        with m.Elif(self.load_state):
            m.d.sync += shadow.eq(self.state_in)
        with m.Elif(self.draw & lfsr.ready):
            m.d.sync += shadow.eq(drawn)
        with m.If(lfsr.ready):
            m.d.comb += Assert(lfsr.state == shadow, "the LFSR's state is not the golden model's draw")
        draws = Signal(2, name="f_draws")
        with m.If(self.draw & lfsr.ready & (draws != 3)):
            m.d.sync += draws.eq(draws + 1)
        m.d.comb += Cover((draws == 2) & lfsr.ready)
        return m


def lfsr_harness(steps_per_cycle: int = spec.DRAW_STEPS, seed: int = 1,
                 draw_steps: int = spec.DRAW_STEPS) -> wiring.Component:
    """The LFSR under the shadow; ``draw_steps`` other than the specification's makes a shadow
    that the proof must reject (the tests' check that it can fail)."""
    return _LfsrHarness(steps_per_cycle, seed, draw_steps)


def prove_lfsr(folder, steps_per_cycle: int = spec.DRAW_STEPS, mode: str = "prove",
               draw_steps: int = spec.DRAW_STEPS) -> tuple:
    """k-induction (``mode="prove"``) or the cover (two draws completed) of the LFSR taking
    ``steps_per_cycle`` Galois steps a cycle; returns ``(passed, summary)``."""
    cycles = spec.DRAW_STEPS // steps_per_cycle
    proc = run_sby(lfsr_harness(steps_per_cycle, draw_steps=draw_steps), pathlib.Path(folder), mode=mode,
                   depth=cycles + 3 if mode == "prove" else 2 * cycles + 4,
                   name=f"lfsr_{mode}")
    return proc.returncode == 0, _summary(proc.stdout)
