"""Sequential softmax cross-entropy gradient unit (see :mod:`tinycl_hdl.spec.softmax`).

The logits and the gradient live in a small memory of the unit (:attr:`LossGradient.memory_shape`):
the datapath writes each logit as it is produced, and reads the gradient (and
the arg-max the logits) back one word per cycle, so no class needs a register
and no class index a wide multiplexer.

``MAX`` scans the logits, ``EXP`` pipelines one ``exp(z_i - max)`` per cycle
from the two power-of-two tables (:attr:`LossGradient.exp_latency` stages) and
sums them, and ``DIV`` divides each by the sum with a restoring divider (one
quotient bit per cycle), then subtracts the one-hot label and saturates.  The
exponentials are not kept: while class ``i`` divides, the pipeline computes
class ``i + 1``'s again.  About ``classes * (frac_bits + 4)`` cycles.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.softmax import EXP_FRAC, LOG2E_FRAC, LOG2E_Q, MAX_EXP_SHIFT, exp2_tables
from .arith import index, less_than, round_shift, saturate
from .memory import MemoryShape, Sram

__all__ = ["LossGradient", "loss_memory_shape"]


def loss_memory_shape(cfg: TinyCLConfig) -> MemoryShape:
    """The memory of :class:`LossGradient`: the logits at words ``0 ..``, the gradient at
    ``2**len(index(classes)) ..`` (an address is the class with one bit above it)."""
    return MemoryShape(cfg.data_width, 2 << index(cfg.classes).width)


class LossGradient(wiring.Component):
    """``delta = softmax(logits) - onehot(label)``, bit-exact with the golden model.

    Parameters
    ----------
    cfg : TinyCLConfig
    blackbox : bool
        The unit's memory as an SRAM macro.

    Attributes
    ----------
    start : In(1)
        Begin with the logits written so far and ``label``.
    cancel : In(1)
        Return to idle.
    label : In(index(classes))
    busy, done : Out(1)
        ``done`` pulses when every ``delta`` is written.
    z_en, z_index, z_data : In
        Write logit ``z_index`` (while not busy).
    rd_en, rd_delta, rd_index : In
        Read ``delta[rd_index]`` (``rd_delta``) or logit ``rd_index`` (while not busy).
    rd_data : Out(signed(data_width))
        The word read, :attr:`read_latency` cycles after ``rd_en``; it holds while ``rd_en`` is low.
    """

    #: register stages of the exp pipeline (``EXP`` takes ``classes + exp_latency`` cycles)
    exp_latency = 5
    #: cycles from ``rd_en`` to ``rd_data``
    read_latency = 1

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg, self._blackbox = cfg, bool(blackbox)
        dw, cls = signed(cfg.data_width), index(cfg.classes)
        super().__init__({"start": In(1), "cancel": In(1), "label": In(cls), "busy": Out(1), "done": Out(1),
                          "z_en": In(1), "z_index": In(cls), "z_data": In(dw),
                          "rd_en": In(1), "rd_delta": In(1), "rd_index": In(cls), "rd_data": Out(dw)})

    @property
    def quotient_bits(self) -> int:
        return self._cfg.frac_bits + 1

    @property
    def memory_shape(self) -> MemoryShape:
        """See :func:`loss_memory_shape`."""
        return loss_memory_shape(self._cfg)

    def macros(self):
        return [self.memory_shape]

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        dw, frac, n = cfg.data_width, cfg.frac_bits, cfg.classes
        m.submodules.mem = mem = Sram.of(self.memory_shape, blackbox=self._blackbox)
        hi, lo, lo_bits = exp2_tables(frac)
        hi_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in hi)
        lo_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in lo)
        i = Signal(index(n))
        z = mem.r_data.as_signed()            # the word read the cycle before
        zmax = Signal(signed(dw))
        total = Signal(unsigned(EXP_FRAC + 1 + n.bit_length()))
        label = Signal.like(self.label)
        issued = Signal()                     # every class has entered the exp pipeline

        # The host side of the memory while idle; the states below take it over while busy.
        internal = Signal()
        read_z, read_index = Signal(), Signal.like(i)    # the unit's own read of a logit
        write_delta, delta_value = Signal(), Signal(signed(dw))
        m.d.comb += [mem.r_en.eq(Mux(internal, read_z, self.rd_en)),
                     mem.r_addr.eq(Mux(internal, read_index, Cat(self.rd_index, self.rd_delta))),
                     self.rd_data.eq(mem.r_data),
                     mem.w_en.eq(write_delta | self.z_en),
                     mem.w_addr.eq(Mux(write_delta, Cat(i, Const(1, 1)), self.z_index)),
                     mem.w_data.eq(Mux(write_delta, delta_value, self.z_data))]

        # exp(z_i - max) (steps 2-5) as a pipeline taking one class per cycle; each stage has
        # at most one multiplier or one wide adder, so the unit does not limit the clock.
        depth = self.exp_latency
        valid = [Signal(name=f"exp_valid{s}") for s in range(depth + 1)]
        m.d.sync += [valid[s + 1].eq(valid[s]) for s in range(depth)]
        d = Signal(signed(dw + 1))
        t = Signal(signed(dw + 2))          # |t| <= 1.45 * 2**dw
        hi_q = Signal(unsigned(EXP_FRAC + 1))
        lo_q = Signal(unsigned(EXP_FRAC + 1))
        shift = Signal(range(MAX_EXP_SHIFT + 1))
        # 2**(r / 2**frac) rounds to 2.0, or one step past it, for r just below 2**frac at
        # some frac_bits (18 and 21 to 28): one bit above EXP_FRAC + 1.
        mant = Signal(unsigned(EXP_FRAC + 2))
        shift_m = Signal.like(shift)
        m.d.sync += [d.eq(z - zmax),                                             # stage 1
                     t.eq(round_shift(d * LOG2E_Q, LOG2E_FRAC))]                 # stage 2
        whole = Signal(signed(dw + 2))
        part = Signal(unsigned(frac))
        exponent = Signal(unsigned(dw + 2))     # -whole: whole = floor(t / 2**frac) <= 0
        m.d.comb += [whole.eq(t.shift_right(frac)), part.eq(t[:frac]), exponent.eq(-whole)]
        m.d.sync += [hi_q.eq(hi_rom[part[lo_bits:]] if lo_bits else hi_rom[part]),    # stage 3
                     lo_q.eq(lo_rom[part[:lo_bits]] if lo_bits else lo_rom[0]),
                     shift.eq(Mux(less_than(exponent, MAX_EXP_SHIFT + 1), exponent, MAX_EXP_SHIFT))]
        m.d.sync += [mant.eq(round_shift(hi_q * lo_q, EXP_FRAC)), shift_m.eq(shift)]  # stage 4
        shifted_mant = Mux(shift_m == 0, mant, round_shift(mant, shift_m))
        # Stage 5 holds its exponential until the next leaves the pipeline, so it is the one
        # the next division starts from: class 0's after EXP (which takes class 0 last),
        # class i + 1's during the division of class i (``e_ready`` until DIV_START takes it).
        e, e_ready = Signal(unsigned(EXP_FRAC + 1)), Signal()                       # stage 5
        with m.If(valid[depth - 1]):
            m.d.sync += [e.eq(shifted_mant), e_ready.eq(1)]

        # Restoring division of N = (e_i << frac) + S//2 by S (step 7), one quotient bit per
        # cycle with the divisor fixed: the partial remainder ``rem`` (below S) shifts left
        # through ``low``, N's low bits, which the quotient bits replace.  N < S << qbits
        # (e_i <= S), so the quotient fits and ``rem`` starts as N >> qbits < S.
        qbits = self.quotient_bits
        rem = Signal.like(total)
        low = Signal(unsigned(qbits))
        bit = Signal(range(qbits + 1))
        dividend = Signal(unsigned(len(e) + frac + 1))
        shifted = Signal(unsigned(len(total) + 1))
        fits = Signal()
        m.d.comb += [dividend.eq(e.shift_left(frac) + total.shift_right(1)), shifted.eq(Cat(low[-1], rem)),
                     fits.eq(shifted >= total)]
        m.d.comb += delta_value.eq(saturate(low - Mux(i == label, 1 << frac, 0), dw))

        def abortable():
            with m.If(self.cancel):
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [v.eq(0) for v in valid[1:]]      # nothing of a cancelled run lands later
                with m.If(self.start):
                    # Logit 0 is read as the unit starts.
                    m.d.comb += [internal.eq(1), read_z.eq(1), read_index.eq(0)]
                    m.d.sync += [i.eq(0), label.eq(self.label), total.eq(0), e_ready.eq(0)]
                    m.next = "MAX"
            # MAX and EXP read the logit of the next cycle's class: MAX takes them in order, EXP
            # takes class 0 last (1 .. n - 1, 0).
            next_i = Mux(i == n - 1, 0, i + 1)
            with m.State("MAX"):
                # ``z`` is logit ``i``.
                m.d.comb += [self.busy.eq(1), internal.eq(1), read_z.eq(1),
                             read_index.eq(Mux(i == n - 1, 1 % n, i + 1))]
                with m.If((i == 0) | (z > zmax)):
                    m.d.sync += zmax.eq(z)
                with m.If(i == n - 1):
                    m.d.sync += [i.eq(1 % n), issued.eq(0)]
                    m.next = "EXP"
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                abortable()
            with m.State("EXP"):
                m.d.comb += [self.busy.eq(1), internal.eq(1), read_z.eq(1), read_index.eq(next_i)]
                with m.If(~issued):
                    m.d.sync += i.eq(next_i)
                m.d.comb += valid[0].eq(~issued)
                m.d.sync += issued.eq(issued | (i == 0))
                with m.If(valid[depth]):
                    m.d.sync += total.eq(total + e)
                # The classes enter on consecutive cycles, so the last leaves when the stage
                # before is empty.
                with m.If(issued & valid[depth] & ~valid[depth - 1]):
                    m.d.sync += i.eq(0)
                    m.next = "DIV_START"
                abortable()
            with m.State("DIV_START"):
                # Class i + 1's logit is read now and enters the pipeline next cycle; its
                # exponential is ready before this class's division ends (unless the
                # quotient is shorter than the pipeline, when DIV_START waits for it).
                m.d.comb += [self.busy.eq(1), internal.eq(1)]
                with m.If(e_ready):
                    m.d.comb += [read_z.eq(1), read_index.eq(i + 1)]
                    m.d.sync += [rem.eq(dividend.shift_right(qbits)), low.eq(dividend[:qbits]), bit.eq(qbits),
                                 e_ready.eq(0)]
                    m.next = "DIV"
                abortable()
            with m.State("DIV"):
                m.d.comb += [self.busy.eq(1), internal.eq(1)]
                # The cycle after DIV_START: the next class's logit enters the pipeline.
                m.d.comb += valid[0].eq((bit == qbits) & (i != n - 1))
                with m.If(bit == 0):
                    m.d.comb += write_delta.eq(1)
                    with m.If(i == n - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                        m.next = "DIV_START"
                with m.Else():
                    m.d.sync += [rem.eq(Mux(fits, shifted - total, shifted)), low.eq(Cat(fits, low[:-1])),
                                 bit.eq(bit - 1)]
                abortable()
        return m
