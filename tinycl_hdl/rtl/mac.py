"""The processing unit: ``kernel**2`` run-time reconfigurable MAC lanes.

Every lane multiplies its two operands exactly each cycle; the *mode* decides
what happens to the products (ARCHITECTURE 4.1):

========= ===================================================================
``DOT``    products summed by an adder tree into the unit's dot accumulator
           (conv forward, dense forward); ``first`` restarts it from ``init``
``OUTER``  each lane accumulates its own product (conv weight gradient with a
           broadcast ``delta``, dense input gradient); ``first`` restarts the
           lanes; with ``bias`` the dot accumulator sums ``b[0] * 1.0`` (the
           bias gradient) alongside
``UPDATE`` each lane produces ``sat(w - round(g >> (frac + lr_shift)))`` with
           ``g`` its product or its accumulator (``source``); ``w_bias`` is
           updated the same way from ``b[0] * 1.0`` or the dot accumulator
``CLEAR``  zero all accumulators
========= ===================================================================

All modes take one operand set per cycle and finish :attr:`ProcessingUnit.latency`
cycles later, so modes may follow each other back to back.
"""

import enum

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TinyCLConfig
from .arith import narrow, round_shift, saturate

__all__ = ["Mode", "GradSource", "MacLane", "ProcessingUnit"]


class Mode(enum.IntEnum):
    CLEAR = 0
    DOT = 1
    OUTER = 2
    UPDATE = 3


class GradSource(enum.IntEnum):
    PRODUCT = 0   # the product of this cycle's operands (dense weight update)
    ACC = 1       # the lane accumulator (conv weight update)


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")


class Control(data.Struct):
    """Per-operand-set control, carried down the pipeline with the operands."""
    valid: 1
    mode: 2
    first: 1
    bias: 1
    source: 1


class MacLane(wiring.Component):
    """One MAC lane: exact signed multiplier, accumulator and update arithmetic.

    Parameters
    ----------
    data_width, frac_bits : int
        Data format of the operands and of :attr:`upd`.
    acc_width : int
        Accumulator width.

    Members
    -------
    ctl : In(Control)
        Mode and flags of this cycle's operands.
    a, b : In(signed(data_width))
        Operands; their product is exact.
    w : In(signed(data_width))
        Old weight for ``UPDATE``.
    lr_shift : In(unsigned(6))
        Learning-rate shift for ``UPDATE``.
    product : Out(signed(2*data_width))
        The product, one cycle after the operands (for the unit's adder tree).
    acc : Out(signed(acc_width))
        The accumulator.
    acc_narrow : Out(signed(data_width))
        The accumulator rounded and saturated to data format.
    upd : Out(signed(data_width))
        The last ``UPDATE`` result.
    """

    latency = 3

    def __init__(self, data_width: int, frac_bits: int, acc_width: int):
        for name, value in (("data_width", data_width), ("frac_bits", frac_bits), ("acc_width", acc_width)):
            _check_positive(name, value)
        self._data_width, self._frac_bits, self._acc_width = data_width, frac_bits, acc_width
        super().__init__({
            "ctl": In(Control),
            "a": In(signed(data_width)),
            "b": In(signed(data_width)),
            "w": In(signed(data_width)),
            "lr_shift": In(unsigned(6)),
            "product": Out(signed(2 * data_width)),
            "acc": Out(signed(acc_width)),
            "acc_narrow": Out(signed(data_width)),
            "upd": Out(signed(data_width)),
        })

    @property
    def data_width(self):
        return self._data_width

    @property
    def frac_bits(self):
        return self._frac_bits

    @property
    def acc_width(self):
        return self._acc_width

    def elaborate(self, platform):
        m = Module()
        dw, frac = self._data_width, self._frac_bits
        ctl1, ctl2 = Signal(Control), Signal(Control)
        w1, w2 = Signal(signed(dw)), Signal(signed(dw))
        p2 = Signal(signed(2 * dw))
        # Stage 1: registered product (maps onto a DSP with its output register).
        m.d.sync += [self.product.eq(self.a * self.b), ctl1.eq(self.ctl), w1.eq(self.w)]
        # Stage 2: delay, so that lane results land together with the adder tree.
        m.d.sync += [p2.eq(self.product), ctl2.eq(ctl1), w2.eq(w1)]
        # Stage 3: accumulate or update.
        shift = Signal(unsigned(7))
        m.d.comb += shift.eq(frac + self.lr_shift)
        grad = Signal(signed(self._acc_width))
        m.d.comb += grad.eq(p2)
        with m.If(ctl2.source == GradSource.ACC):
            m.d.comb += grad.eq(self.acc)
        with m.If(ctl2.valid):
            with m.Switch(ctl2.mode):
                with m.Case(Mode.CLEAR):
                    m.d.sync += self.acc.eq(0)
                with m.Case(Mode.OUTER):
                    with m.If(ctl2.first):
                        m.d.sync += self.acc.eq(p2)
                    with m.Else():
                        m.d.sync += self.acc.eq(self.acc + p2)
                with m.Case(Mode.UPDATE):
                    m.d.sync += self.upd.eq(saturate(w2 - round_shift(grad, shift), dw))
        m.d.comb += self.acc_narrow.eq(narrow(self.acc, frac, dw))
        return m


class ProcessingUnit(wiring.Component):
    """``kernel**2`` MAC lanes, an adder tree and a dot/bias accumulator.

    Parameters
    ----------
    cfg : TinyCLConfig
        Gives ``kernel`` (lanes = ``kernel**2``), ``data_width``, ``frac_bits``
        and ``acc_width``.
    tag_width : int
        Width of :attr:`tag`, carried with the operands to :attr:`out_tag`.

    Members
    -------
    valid, mode, first, bias, source : In
        Control of this cycle's operand set (see the module documentation).
    a, b, w : In(ArrayLayout(signed(data_width), lanes))
        Per-lane operands and old weights.
    w_bias : In(signed(data_width))
        Old bias, updated from the dot accumulator in ``UPDATE``.
    init : In(signed(acc_width))
        Dot accumulator start value for ``DOT`` with ``first`` (a bias ``b << frac``).
    tag : In(unsigned(tag_width))
    lr_shift : In(unsigned(6))
    out_valid : Out(1)
        An operand set issued :attr:`latency` cycles ago has taken effect.
    out_mode, out_tag : Out
        Its mode and tag.
    dot, dot_narrow : Out
        Dot accumulator, and rounded and saturated to data format.
    lane_narrow : Out(ArrayLayout(signed(data_width), lanes))
        Lane accumulators in data format.
    upd : Out(ArrayLayout(signed(data_width), lanes))
        Updated weights of the last ``UPDATE``.
    upd_bias : Out(signed(data_width))
        Updated bias of the last ``UPDATE``.
    """

    def __init__(self, cfg: TinyCLConfig, tag_width: int = 8):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        _check_positive("tag_width", tag_width)
        self._cfg = cfg
        self._tag_width = tag_width
        lanes, dw = cfg.kernel * cfg.kernel, cfg.data_width
        vec = data.ArrayLayout(signed(dw), lanes)
        super().__init__({
            "valid": In(1), "mode": In(2), "first": In(1), "bias": In(1), "source": In(1),
            "a": In(vec), "b": In(vec), "w": In(vec),
            "w_bias": In(signed(dw)),
            "init": In(signed(cfg.acc_width)),
            "tag": In(tag_width),
            "lr_shift": In(unsigned(6)),
            "out_valid": Out(1), "out_mode": Out(2), "out_tag": Out(tag_width),
            "dot": Out(signed(cfg.acc_width)),
            "dot_narrow": Out(signed(dw)),
            "lane_narrow": Out(vec),
            "upd": Out(vec),
            "upd_bias": Out(signed(dw)),
        })

    @property
    def lanes(self) -> int:
        return self._cfg.kernel * self._cfg.kernel

    @property
    def latency(self) -> int:
        """Cycles from an operand set to its effect on the outputs.

        One input register stage (operands arrive from memories and the control unit's
        multiplexers, so nothing combinational reaches the multipliers) plus the lanes'.
        """
        return MacLane.latency + 1

    @property
    def tag_width(self) -> int:
        return self._tag_width

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        dw, frac, aw = cfg.data_width, cfg.frac_bits, cfg.acc_width
        # Stage 0: input registers.
        ctl = Signal(Control)
        m.d.sync += [ctl.valid.eq(self.valid), ctl.mode.eq(self.mode), ctl.first.eq(self.first),
                     ctl.bias.eq(self.bias), ctl.source.eq(self.source)]
        a, b, w = (Signal.like(port, name=f"{name}0") for name, port in (("a", self.a), ("b", self.b), ("w", self.w)))
        w_bias, init, tag = Signal.like(self.w_bias), Signal.like(self.init), Signal.like(self.tag)
        m.d.sync += [a.eq(self.a), b.eq(self.b), w.eq(self.w), w_bias.eq(self.w_bias), init.eq(self.init),
                     tag.eq(self.tag)]

        lanes = []
        for i in range(self.lanes):
            lane = MacLane(dw, frac, aw)
            m.submodules[f"lane{i}"] = lane
            m.d.comb += [lane.ctl.eq(ctl), lane.a.eq(a[i]), lane.b.eq(b[i]), lane.w.eq(w[i]),
                         lane.lr_shift.eq(self.lr_shift),
                         self.lane_narrow[i].eq(lane.acc_narrow), self.upd[i].eq(lane.upd)]
            lanes.append(lane)

        # Unit-level pipeline alongside the lanes.
        ctl1, ctl2 = Signal(Control), Signal(Control)
        tag1, tag2 = Signal(self._tag_width), Signal(self._tag_width)
        init1, init2 = Signal(signed(aw)), Signal(signed(aw))
        wb1, wb2 = Signal(signed(dw)), Signal(signed(dw))
        bias_term1, bias_term2 = Signal(signed(dw + frac)), Signal(signed(dw + frac))
        tree = Signal(signed(2 * dw + (self.lanes - 1).bit_length()))
        m.d.sync += [ctl1.eq(ctl), ctl2.eq(ctl1), tag1.eq(tag), tag2.eq(tag1),
                     init1.eq(init), init2.eq(init1), wb1.eq(w_bias), wb2.eq(wb1),
                     bias_term1.eq(b[0] << frac), bias_term2.eq(bias_term1)]
        # Stage 2: adder tree over the stage-1 products.
        terms = [lane.product for lane in lanes]
        while len(terms) > 1:
            terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
        m.d.sync += tree.eq(terms[0])

        # Stage 3: the dot/bias accumulator.
        shift = Signal(unsigned(7))
        m.d.comb += shift.eq(frac + self.lr_shift)
        with m.If(ctl2.valid):
            with m.Switch(ctl2.mode):
                with m.Case(Mode.CLEAR):
                    m.d.sync += self.dot.eq(0)
                with m.Case(Mode.DOT):
                    with m.If(ctl2.first):
                        m.d.sync += self.dot.eq(init2 + tree)
                    with m.Else():
                        m.d.sync += self.dot.eq(self.dot + tree)
                with m.Case(Mode.OUTER):
                    with m.If(ctl2.bias):
                        with m.If(ctl2.first):
                            m.d.sync += self.dot.eq(bias_term2)
                        with m.Else():
                            m.d.sync += self.dot.eq(self.dot + bias_term2)
                with m.Case(Mode.UPDATE):
                    # The bias's input is 1.0: its gradient is b[0] * 1.0 (PRODUCT) or
                    # the sum of such terms gathered by OUTER with ``bias`` (ACC).
                    grad_bias = Signal(signed(aw))
                    m.d.comb += grad_bias.eq(Mux(ctl2.source == GradSource.ACC, self.dot, bias_term2))
                    m.d.sync += self.upd_bias.eq(saturate(wb2 - round_shift(grad_bias, shift), dw))
        m.d.sync += [self.out_valid.eq(ctl2.valid), self.out_mode.eq(ctl2.mode), self.out_tag.eq(tag2)]
        m.d.comb += self.dot_narrow.eq(narrow(self.dot, frac, dw))
        return m
