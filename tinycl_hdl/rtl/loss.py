"""Sequential softmax cross-entropy gradient unit (see :mod:`tinycl_hdl.softmax`).

``MAX`` scans the logits, ``EXP`` evaluates one ``exp(z_i - max)`` per cycle
from the two power-of-two tables, and ``DIV`` divides each by the sum with a
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

        # exp(z_i - max) for the current i, combinationally (steps 2-5).
        d = Signal(signed(dw + 1))
        t = Signal(signed(dw + 2))          # |t| <= 1.45 * 2**dw
        m.d.comb += [d.eq(logits[i] - zmax), t.eq(round_shift(d * LOG2E_Q, LOG2E_FRAC))]
        whole = Signal(signed(dw + 2))
        part = Signal(unsigned(frac))
        m.d.comb += [whole.eq(t >> frac), part.eq(t[:frac])]
        mant = Signal(unsigned(EXP_FRAC + 1))
        prod = hi_rom[part[lo_bits:]] * lo_rom[part[:lo_bits]] if lo_bits else hi_rom[part] * lo_rom[0]
        m.d.comb += mant.eq(round_shift(prod, EXP_FRAC))
        shift = Signal(range(MAX_EXP_SHIFT + 1))
        m.d.comb += shift.eq(Mux(-whole > MAX_EXP_SHIFT, MAX_EXP_SHIFT, -whole))
        e = Signal(unsigned(EXP_FRAC + 1))
        with m.If(shift == 0):
            m.d.comb += e.eq(mant)
        with m.Else():
            m.d.comb += e.eq(round_shift(mant, shift))

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
                with m.If(self.start):
                    m.d.sync += [i.eq(0), zmax.eq(logits[0]), label.eq(self.label), total.eq(0)]
                    m.next = "MAX"
            with m.State("MAX"):
                m.d.comb += self.busy.eq(1)
                with m.If(logits[i] > zmax):
                    m.d.sync += zmax.eq(logits[i])
                with m.If(i == n - 1):
                    m.d.sync += i.eq(0)
                    m.next = "EXP"
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                abortable()
            with m.State("EXP"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [exps[i].eq(e), total.eq(total + e)]
                with m.If(i == n - 1):
                    m.d.sync += i.eq(0)
                    m.next = "DIV_START"
                with m.Else():
                    m.d.sync += i.eq(i + 1)
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
