"""Sequential softmax cross-entropy gradient unit (see :mod:`tinycl_hdl.softmax`).

``MAX`` scans the logits, ``EXP`` pipelines one ``exp(z_i - max)`` per cycle
from the two power-of-two tables (:attr:`LossGradient.exp_latency` stages), and ``DIV`` divides each by the sum with a
restoring divider (one quotient bit per cycle), then subtracts the one-hot
label and saturates.  About ``classes * (frac_bits + 4)`` cycles.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TinyCLConfig
from ..softmax import EXP_FRAC, LOG2E_FRAC, LOG2E_Q, MAX_EXP_SHIFT, exp2_tables
from .arith import index, round_shift, saturate

__all__ = ["LossGradient"]


class LossGradient(wiring.Component):
    """``delta = softmax(logits) - onehot(label)``, bit-exact with the golden model.

    Members
    -------
    start : In(1)
        Begin with the current ``logits`` and ``label``.
    cancel : In(1)
        Return to idle.
    logits : In(ArrayLayout(signed(data_width), classes))
    label : In(index(classes))
    busy, done : Out(1)
        ``done`` pulses when ``delta`` is complete.
    delta : Out(ArrayLayout(signed(data_width), classes))
    """

    def __init__(self, cfg: TinyCLConfig):
        self._cfg = cfg
        vec = data.ArrayLayout(signed(cfg.data_width), cfg.classes)
        super().__init__({"start": In(1), "cancel": In(1), "logits": In(vec), "label": In(index(cfg.classes)),
                          "busy": Out(1), "done": Out(1), "delta": Out(vec)})

    #: register stages of the exp pipeline (``EXP`` takes ``classes + exp_latency`` cycles)
    exp_latency = 5

    @property
    def quotient_bits(self) -> int:
        return self._cfg.frac_bits + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        dw, frac, n = cfg.data_width, cfg.frac_bits, cfg.classes
        hi, lo, lo_bits = exp2_tables(frac)
        hi_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in hi)
        lo_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in lo)
        logits = Array(Signal(signed(dw), name=f"z{k}") for k in range(n))
        exps = Array(Signal(unsigned(EXP_FRAC + 1), name=f"e{k}") for k in range(n))
        deltas = Array(Signal(signed(dw), name=f"delta{k}") for k in range(n))
        for k in range(n):
            m.d.comb += [logits[k].eq(self.logits[k]), self.delta[k].eq(deltas[k])]
        i = Signal(index(n))
        zmax = Signal(signed(dw))
        total = Signal(unsigned(EXP_FRAC + 1 + n.bit_length()))
        label = Signal.like(self.label)
        issued = Signal()               # every class has entered the exp pipeline

        # exp(z_i - max) (steps 2-5) as a pipeline taking one class per cycle; each stage has
        # at most one multiplier or one wide adder, so the unit does not limit the clock.
        depth = self.exp_latency
        valid = [Signal(name=f"exp_valid{s}") for s in range(depth + 1)]
        which = [Signal(index(n), name=f"exp_index{s}") for s in range(depth + 1)]
        m.d.sync += [valid[s + 1].eq(valid[s]) for s in range(depth)]
        m.d.sync += [which[s + 1].eq(which[s]) for s in range(depth)]
        m.d.comb += which[0].eq(i)
        d = Signal(signed(dw + 1))
        t = Signal(signed(dw + 2))          # |t| <= 1.45 * 2**dw
        hi_q = Signal(unsigned(EXP_FRAC + 1))
        lo_q = Signal(unsigned(EXP_FRAC + 1))
        shift = Signal(range(MAX_EXP_SHIFT + 1))
        mant = Signal(unsigned(EXP_FRAC + 1))
        shift_m = Signal.like(shift)
        m.d.sync += [d.eq(logits[i] - zmax),                                     # stage 1
                     t.eq(round_shift(d * LOG2E_Q, LOG2E_FRAC))]                 # stage 2
        whole = Signal(signed(dw + 2))
        part = Signal(unsigned(frac))
        m.d.comb += [whole.eq(t >> frac), part.eq(t[:frac])]
        m.d.sync += [hi_q.eq(hi_rom[part[lo_bits:]] if lo_bits else hi_rom[part]),    # stage 3
                     lo_q.eq(lo_rom[part[:lo_bits]] if lo_bits else lo_rom[0]),
                     shift.eq(Mux(-whole > MAX_EXP_SHIFT, MAX_EXP_SHIFT, -whole))]
        m.d.sync += [mant.eq(round_shift(hi_q * lo_q, EXP_FRAC)), shift_m.eq(shift)]  # stage 4
        e = Signal(unsigned(EXP_FRAC + 1))                                          # stage 5
        with m.If(shift_m == 0):
            m.d.sync += e.eq(mant)
        with m.Else():
            m.d.sync += e.eq(round_shift(mant, shift_m))

        # Restoring division of (e_i << frac) + S//2 by S (step 7).
        qbits = self.quotient_bits
        rem = Signal(unsigned(EXP_FRAC + 1 + frac + n.bit_length() + 1))
        quot = Signal(unsigned(qbits))
        bit = Signal(range(qbits + 1))
        trial = Signal(unsigned(len(rem) + qbits))
        bit_less_one = Signal(range(qbits))
        m.d.comb += [bit_less_one.eq(bit - 1), trial.eq(total << bit_less_one)]

        def abortable():
            with m.If(self.cancel):
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [v.eq(0) for v in valid[1:]]      # nothing of a cancelled run lands later
                with m.If(self.start):
                    m.d.sync += [i.eq(0), zmax.eq(logits[0]), label.eq(self.label), total.eq(0)]
                    m.next = "MAX"
            with m.State("MAX"):
                m.d.comb += self.busy.eq(1)
                with m.If(logits[i] > zmax):
                    m.d.sync += zmax.eq(logits[i])
                with m.If(i == n - 1):
                    m.d.sync += [i.eq(0), issued.eq(0)]
                    m.next = "EXP"
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                abortable()
            with m.State("EXP"):
                m.d.comb += self.busy.eq(1)
                with m.If(i != n - 1):
                    m.d.sync += i.eq(i + 1)
                m.d.comb += valid[0].eq(~issued)
                m.d.sync += issued.eq(issued | (i == n - 1))
                with m.If(valid[depth]):
                    m.d.sync += [exps[which[depth]].eq(e), total.eq(total + e)]
                    with m.If(which[depth] == n - 1):
                        m.d.sync += i.eq(0)
                        m.next = "DIV_START"
                abortable()
            with m.State("DIV_START"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [rem.eq((exps[i] << frac) + (total >> 1)), quot.eq(0), bit.eq(qbits)]
                m.next = "DIV"
                abortable()
            with m.State("DIV"):
                m.d.comb += self.busy.eq(1)
                with m.If(bit == 0):
                    one_hot = Mux(i == label, 1 << frac, 0)
                    m.d.sync += deltas[i].eq(saturate(quot - one_hot, dw))
                    with m.If(i == n - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                        m.next = "DIV_START"
                with m.Else():
                    with m.If(rem >= trial):
                        m.d.sync += [rem.eq(rem - trial), quot.eq(quot | (Const(1, 1) << bit_less_one))]
                    m.d.sync += bit.eq(bit - 1)
                abortable()
        return m
