"""Softmax cross-entropy gradient unit (see :mod:`tinycl_hdl.spec.softmax`).

The logits and the gradient live in a small memory of the unit (:attr:`LossGradient.memory_shape`):
the datapath writes each logit as it is produced, and reads the gradient (and
the arg-max the logits) back one word per cycle, so no class needs a register
and no class index a wide multiplexer.  The unit keeps the largest logit as they are
written (class 0 first), so it starts from the exponentials.

``EXP`` pipelines one ``exp(z_i - max)`` per cycle from the two power-of-two tables
(:attr:`LossGradient.exp_latency` stages) and sums them; then each is divided by the
sum, the one-hot label subtracted and the result saturated.  The exponentials are not
kept: the division computes them again, one class per cycle.  The division is a
restoring divider, one quotient bit per stage, either

* *pipelined* (:attr:`LossGradient.pipelined`): stages of two quotient bits each, a class
  entering every cycle, so the gradient is written about ``2 * classes + frac_bits / 2 + 5``
  cycles after ``start`` (31 for ten classes and Q5.10); or
* *sequential*: one stage reused, a class every ``frac_bits + 3`` cycles (about 140 cycles
  for ten classes and Q5.10) in a tenth of the logic, for the serial datapath.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.schedule import DIVIDER_STEPS, EXP_LATENCY, divider_stages, loss_cycles, loss_ready
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
    pipelined : bool
        A divider of ``frac_bits + 1`` stages taking a class every cycle (else one stage,
        reused for every quotient bit); see the module documentation.
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
    delta_ready : Out(1)
        Pulses once per computation, in the first cycle from which ``delta[i]`` may be read
        from the next cycle on for every ``i`` whose turn comes no sooner than ``i`` cycles
        later: ``delta[i]`` is written ``i`` cycles after ``delta[0]`` and the unit no longer
        reads the memory.  With the sequential divider it pulses with ``done``.
    z_en, z_index, z_data : In
        Write logit ``z_index`` (while not busy).  The logits of one computation are
        written in class order, class 0 first: the unit keeps their maximum as they come.
    rd_en, rd_delta, rd_index : In
        Read ``delta[rd_index]`` (``rd_delta``) or logit ``rd_index`` (while not busy).
    rd_data : Out(signed(data_width))
        The word read, :attr:`read_latency` cycles after ``rd_en``; it holds while ``rd_en`` is low.
    """

    #: register stages of the exp pipeline
    exp_latency = EXP_LATENCY
    #: cycles from ``rd_en`` to ``rd_data``
    read_latency = 1

    def __init__(self, cfg: TinyCLConfig, *, pipelined: bool = True, blackbox: bool = False):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg, self._pipelined, self._blackbox = cfg, bool(pipelined), bool(blackbox)
        dw, cls = signed(cfg.data_width), index(cfg.classes)
        super().__init__({"start": In(1), "cancel": In(1), "label": In(cls), "busy": Out(1), "done": Out(1),
                          "delta_ready": Out(1),
                          "z_en": In(1), "z_index": In(cls), "z_data": In(dw),
                          "rd_en": In(1), "rd_delta": In(1), "rd_index": In(cls), "rd_data": Out(dw)})

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def quotient_bits(self) -> int:
        return self._cfg.frac_bits + 1

    @property
    def cycles(self) -> int:
        """Cycles from ``start`` to ``done`` (inclusive of neither): :func:`~tinycl_hdl.spec.schedule.loss_cycles`."""
        return loss_cycles(self._cfg, self._pipelined)

    @property
    def ready_cycles(self) -> int:
        """Cycles from ``start`` to ``delta_ready``: :func:`~tinycl_hdl.spec.schedule.loss_ready`."""
        return loss_ready(self._cfg, self._pipelined)

    @property
    def memory_shape(self) -> MemoryShape:
        """See :func:`loss_memory_shape`."""
        return loss_memory_shape(self._cfg)

    def macros(self):
        return [self.memory_shape]

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        dw, n = cfg.data_width, cfg.classes
        m.submodules.mem = mem = Sram.of(self.memory_shape, blackbox=self._blackbox)
        self._i = i = Signal(index(n))
        self._total = Signal(unsigned(EXP_FRAC + 1 + n.bit_length()))
        self._label = Signal.like(self.label)
        # The host side of the memory while idle; the states take it over while busy.
        internal = Signal()
        self._read_z, self._read_index = Signal(), Signal.like(i)   # the unit's own read of a logit
        self._write_delta, self._write_index, self._delta_value = Signal(), Signal.like(i), Signal(signed(dw))
        self._reading = Signal()          # the unit has the memory's read port (else the host side)
        m.d.comb += [mem.r_en.eq(Mux(internal, self._read_z, self.rd_en)),
                     mem.r_addr.eq(Mux(internal, self._read_index, Cat(self.rd_index, self.rd_delta))),
                     self.rd_data.eq(mem.r_data),
                     mem.w_en.eq(self._write_delta | self.z_en),
                     mem.w_addr.eq(Mux(self._write_delta, Cat(self._write_index, Const(1, 1)), self.z_index)),
                     mem.w_data.eq(Mux(self._write_delta, self._delta_value, self.z_data)),
                     internal.eq(self._reading)]
        # The largest logit, kept as the logits are written (class 0 first).
        self._zmax = zmax = Signal(signed(dw))
        with m.If(self.z_en):
            m.d.sync += zmax.eq(Mux((self.z_index == 0) | (self.z_data > zmax), self.z_data, zmax))
        self._exp_pipeline(m, mem.r_data.as_signed())
        if self._pipelined:
            self._pipelined_division(m)
        else:
            self._sequential_division(m)
        return m

    def _exp_pipeline(self, m, z):
        """``exp(z - max)`` (steps 2-5) of the logit read the cycle before, one class per cycle:
        ``self._exp_in`` enters a class, ``self._exp_valid[-1]`` marks it in ``self._e_next``
        (stage 4's output) and ``self._e`` (stage 5).  Each stage has at most one multiplier or
        one wide adder, so the unit does not limit the clock."""
        cfg = self._cfg
        dw, frac = cfg.data_width, cfg.frac_bits
        hi, lo, lo_bits = exp2_tables(frac)
        hi_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in hi)
        lo_rom = Array(Const(v, unsigned(EXP_FRAC + 1)) for v in lo)
        depth = self.exp_latency
        self._exp_in = Signal()
        valid = [self._exp_in] + [Signal(name=f"exp_valid{s}") for s in range(1, depth + 1)]
        m.d.sync += [valid[s + 1].eq(valid[s]) for s in range(depth)]
        self._exp_valid = valid
        d = Signal(signed(dw + 1))
        t = Signal(signed(dw + 2))          # |t| <= 1.45 * 2**dw
        hi_q = Signal(unsigned(EXP_FRAC + 1))
        lo_q = Signal(unsigned(EXP_FRAC + 1))
        shift = Signal(range(MAX_EXP_SHIFT + 1))
        # 2**(r / 2**frac) rounds to 2.0, or one step past it, for r just below 2**frac at
        # some frac_bits (18 and 21 to 28): one bit above EXP_FRAC + 1.
        mant = Signal(unsigned(EXP_FRAC + 2))
        shift_m = Signal.like(shift)
        m.d.sync += [d.eq(z - self._zmax),                                       # stage 1
                     t.eq(round_shift(d * LOG2E_Q, LOG2E_FRAC))]                 # stage 2
        whole = Signal(signed(dw + 2))
        part = Signal(unsigned(frac))
        exponent = Signal(unsigned(dw + 2))     # -whole: whole = floor(t / 2**frac) <= 0
        m.d.comb += [whole.eq(t.shift_right(frac)), part.eq(t[:frac]), exponent.eq(-whole)]
        m.d.sync += [hi_q.eq(hi_rom[part[lo_bits:]] if lo_bits else hi_rom[part]),    # stage 3
                     lo_q.eq(lo_rom[part[:lo_bits]] if lo_bits else lo_rom[0]),
                     shift.eq(Mux(less_than(exponent, MAX_EXP_SHIFT + 1), exponent, MAX_EXP_SHIFT))]
        m.d.sync += [mant.eq(round_shift(hi_q * lo_q, EXP_FRAC)), shift_m.eq(shift)]  # stage 4
        self._e_next = Signal(unsigned(EXP_FRAC + 1))
        m.d.comb += self._e_next.eq(Mux(shift_m == 0, mant, round_shift(mant, shift_m)))
        self._e = Signal(unsigned(EXP_FRAC + 1))                                    # stage 5
        with m.If(valid[depth - 1]):
            m.d.sync += self._e.eq(self._e_next)

    def _dividend(self, e):
        """``N = (e << frac) + S // 2`` (step 7); ``N < S << quotient_bits`` since ``e <= S``."""
        return (e.shift_left(self._cfg.frac_bits) + self._total.shift_right(1))[:len(e) + self._cfg.frac_bits + 1]

    def _quotient_bit(self, rem, low):
        """One restoring step: ``(rem, low)`` shifted left one bit, the divisor subtracted where
        it fits; returns the next ``(rem, low)`` with the new quotient bit at ``low``'s bottom."""
        total = self._total
        shifted = Cat(low[-1], rem)
        fits = shifted >= total
        return Mux(fits, shifted - total, shifted)[:len(rem)], Cat(fits, low[:-1])

    def _delta(self, quotient, klass):
        """Step 8: the quotient minus one for the label, saturated."""
        cfg = self._cfg
        return saturate(quotient - Mux(klass == self._label, 1 << cfg.frac_bits, 0), cfg.data_width)

    def _pipelined_division(self, m):
        """``SUM`` reads every logit once through the exp pipeline and sums; ``DIVIDE`` reads
        them again, and each exponential enters a divider of ``quotient_bits`` stages, the sum
        complete by the time the first arrives; the gradient is written as each class leaves."""
        n, i, total, qbits = self._cfg.classes, self._i, self._total, self.quotient_bits
        valid = self._exp_valid
        # Each class in the exp pipeline carries its number and its pass (the second divides).
        read_class, read_pass2 = Signal.like(i), Signal()
        classes = [Signal.like(i, name=f"exp_class{s}") for s in range(len(valid) - 1)]
        passes = [Signal(name=f"exp_pass2_{s}") for s in range(len(valid) - 1)]
        m.d.sync += [self._exp_in.eq(self._read_z), classes[0].eq(read_class), passes[0].eq(read_pass2)]
        m.d.sync += [b.eq(a) for chain in (classes, passes) for a, b in zip(chain, chain[1:])]
        at_e = len(valid) - 2             # the stage whose exponential is ``_e_next``
        with m.If(valid[at_e] & ~passes[at_e]):
            m.d.sync += total.eq(total + self._e_next)
        # The divider: stage 0 splits N, each further stage makes DIVIDER_STEPS quotient bits.
        n_stages = divider_stages(self._cfg)
        stages = []
        for s in range(n_stages + 1):
            stages.append((Signal(name=f"div_valid{s}"), Signal.like(total, name=f"div_rem{s}"),
                           Signal(qbits, name=f"div_low{s}"), Signal.like(i, name=f"div_class{s}")))
        dividend = self._dividend(self._e_next)
        v0, rem0, low0, class0 = stages[0]
        m.d.sync += [v0.eq(valid[at_e] & passes[at_e]), rem0.eq(dividend.shift_right(qbits)), low0.eq(dividend[:qbits]),
                     class0.eq(classes[at_e])]
        steps = [DIVIDER_STEPS] * (qbits // DIVIDER_STEPS) + ([qbits % DIVIDER_STEPS] if qbits % DIVIDER_STEPS else [])
        for count, (v, rem, low, klass), (v_next, rem_next, low_next, class_next) in zip(steps, stages, stages[1:]):
            for _ in range(count):
                rem, low = self._quotient_bit(rem, low)
            m.d.sync += [v_next.eq(v), rem_next.eq(rem), low_next.eq(low), class_next.eq(klass)]
        out_valid, _, quotient, out_class = stages[-1]
        m.d.comb += [self._write_delta.eq(out_valid), self._write_index.eq(out_class),
                     self._delta_value.eq(self._delta(quotient, out_class))]

        reads_done = Signal()
        # delta_ready: delta[0] written (now or before) and the reads of the logits over.
        first_written, announced = Signal(), Signal()
        written = first_written | (out_valid & (out_class == 0))
        with m.If(out_valid & (out_class == 0)):
            m.d.sync += first_written.eq(1)
        m.d.comb += [self._reading.eq(self.start | (self.busy & ~reads_done)),
                     self.delta_ready.eq(self.busy & written & reads_done & ~announced)]
        with m.If(self.delta_ready):
            m.d.sync += announced.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                # Nothing of a cancelled run lands later.
                m.d.sync += [v.eq(0) for v in valid[1:]] + [stage[0].eq(0) for stage in stages]
                with m.If(self.start):
                    m.d.comb += [self._read_z.eq(1), self._read_index.eq(0), read_class.eq(0)]
                    m.d.sync += [i.eq(1), self._label.eq(self.label), total.eq(0), reads_done.eq(0),
                                 first_written.eq(0), announced.eq(0)]
                    m.next = "SUM"
            with m.State("SUM"):
                m.d.comb += [self.busy.eq(1), self._read_z.eq(1), self._read_index.eq(i), read_class.eq(i)]
                with m.If(i == n - 1):
                    m.d.sync += i.eq(0)
                    m.next = "DIVIDE"
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                with m.If(self.cancel):
                    m.next = "IDLE"
            with m.State("DIVIDE"):
                m.d.comb += [self.busy.eq(1), self._read_z.eq(~reads_done), self._read_index.eq(i),
                             read_class.eq(i), read_pass2.eq(1)]
                with m.If(i == n - 1):
                    m.d.sync += reads_done.eq(1)
                with m.Else():
                    m.d.sync += i.eq(i + 1)
                with m.If(out_valid & (out_class == n - 1)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.If(self.cancel):
                    m.next = "IDLE"

    def _sequential_division(self, m):
        """``EXP`` sums every class's exponential (class 0 last); per class, ``DIV_START``
        takes stage 5's exponential and ``DIV`` makes its quotient bits, while the pipeline
        computes the next class's exponential again."""
        cfg, n = self._cfg, self._cfg.classes
        i, total, qbits = self._i, self._total, self.quotient_bits
        valid, depth = self._exp_valid, self.exp_latency
        issued = Signal()                     # every class has entered the exp pipeline
        e_ready = Signal()                    # stage 5 holds the next division's exponential
        with m.If(valid[depth - 1]):
            m.d.sync += e_ready.eq(1)
        m.d.comb += [self._reading.eq(self.busy | self.start), self.delta_ready.eq(self.done)]
        rem = Signal.like(total)
        low = Signal(unsigned(qbits))
        bit = Signal(range(qbits + 1))
        dividend = self._dividend(self._e)
        rem_next, low_next = self._quotient_bit(rem, low)
        m.d.comb += [self._write_index.eq(i), self._delta_value.eq(self._delta(low, i))]

        def abortable():
            with m.If(self.cancel):
                m.next = "IDLE"

        next_i = Mux(i == n - 1, 0, i + 1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [v.eq(0) for v in valid[1:]]      # nothing of a cancelled run lands later
                with m.If(self.start):
                    # EXP takes the classes 1 .. n - 1, 0: class 0's exponential is left in stage
                    # 5 for the first division.  Logit 1 is read as the unit starts.
                    m.d.comb += [self._read_z.eq(1), self._read_index.eq(1 % n)]
                    m.d.sync += [i.eq(1 % n), self._label.eq(self.label), total.eq(0), e_ready.eq(0),
                                 issued.eq(0)]
                    m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [self.busy.eq(1), self._read_z.eq(1), self._read_index.eq(next_i)]
                with m.If(~issued):
                    m.d.sync += i.eq(next_i)
                m.d.comb += self._exp_in.eq(~issued)
                m.d.sync += issued.eq(issued | (i == 0))
                with m.If(valid[depth]):
                    m.d.sync += total.eq(total + self._e)
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
                m.d.comb += self.busy.eq(1)
                with m.If(e_ready):
                    m.d.comb += [self._read_z.eq(1), self._read_index.eq(i + 1)]
                    m.d.sync += [rem.eq(dividend.shift_right(qbits)), low.eq(dividend[:qbits]), bit.eq(qbits),
                                 e_ready.eq(0)]
                    m.next = "DIV"
                abortable()
            with m.State("DIV"):
                m.d.comb += self.busy.eq(1)
                # The cycle after DIV_START: the next class's logit enters the pipeline.
                m.d.comb += self._exp_in.eq((bit == qbits) & (i != n - 1))
                with m.If(bit == 0):
                    m.d.comb += self._write_delta.eq(1)
                    with m.If(i == n - 1):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                        m.next = "DIV_START"
                with m.Else():
                    m.d.sync += [rem.eq(rem_next), low.eq(low_next), bit.eq(bit - 1)]
                abortable()
