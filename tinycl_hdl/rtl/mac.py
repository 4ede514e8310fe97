"""The processing unit: ``kernel**2`` run-time reconfigurable MAC lanes.

Every lane multiplies its two operands exactly each cycle; the *mode* decides
what happens to the products (docs/architecture.md, "Processing unit"):

========== ==================================================================
``DOT``    products summed by an adder tree into the unit's dot accumulator
           (conv forward, dense forward); ``first`` restarts it from ``init_bias * 1.0``
``OUTER``  each lane accumulates its own product (conv weight gradient with a
           broadcast ``delta``, dense input gradient); ``first`` restarts the
           lanes; with ``bias`` the dot accumulator sums ``b[0] * 1.0`` (the
           bias gradient) alongside
``UPDATE`` each lane produces ``sat(w - R(g >> (frac + lr_shift)))`` with
           ``g`` its product or its accumulator (``source``) and ``R`` the
           configured rounding (:mod:`tinycl_hdl.spec.update`); ``w_bias`` is
           updated the same way from ``b[0] * 1.0`` or the dot accumulator
``CLEAR``  zero all accumulators
========== ==================================================================

All modes take one operand set per cycle and finish :attr:`ProcessingUnit.latency`
cycles later, so modes may follow each other back to back.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.update import DITHER_BITS, Coordinates, rounding_bits
from .arith import pairwise_sum, round_shift, saturate, update_clamp
from .dither import coordinate_image

__all__ = ["Mode", "GradSource", "MacLane", "ProcessingUnit"]


class Mode(enum.IntEnum, shape=2):
    """What a lane does with this cycle's operands."""
    CLEAR = 0
    DOT = 1
    OUTER = 2
    UPDATE = 3


class GradSource(enum.IntEnum, shape=1):
    """Where an ``UPDATE`` takes its gradient from."""
    PRODUCT = 0   # the product of this cycle's operands (dense weight update)
    ACC = 1       # the lane accumulator (conv weight update)


def _narrow_stages(m, value, out, frac):
    """``out`` gets ``value`` rounded by ``frac`` bits (one stage) and saturated (the next)."""
    rounded = Signal(round_shift(value, frac).shape())
    m.d.sync += [rounded.eq(round_shift(value, frac)), out.eq(saturate(rounded, len(out)))]


def _update_stages(m, grad, lr_shift, frac, bits, dither, w, apply, out):
    """``out`` gets ``saturate(w - dithered_shift(grad, frac + lr_shift, dither, bits))``
    (:func:`tinycl_hdl.spec.update.dithered_shift`) over three stages: shift; clamp and add
    the dither (which belongs to this stage); subtract and saturate when ``apply`` (``w`` and
    ``apply`` belong to the third).

    ``floor(grad * 2**(bits - frac - lr_shift))`` is a constant shift by ``frac - bits``
    (wiring) followed by a run-time shift by ``lr_shift`` alone: the shifter is as narrow as
    the shifted value and has as many levels as ``lr_shift`` has bits (the register holds at
    most ``data_width``), not the levels of a sum that reaches ``frac + data_width``.
    ``lr_shift`` is registered first, so a new value applies to operand sets issued at
    least two cycles after it.  With ``bits = 1`` and ``dither = 1`` this is round half up.
    """
    dw = len(out)
    lr = Signal.like(lr_shift, name="lr_shift_reg")
    pre = grad.shift_right(frac - bits)
    shifted_wide, summed = Signal(pre.shape()), Signal(signed(dw + 3 + bits))
    m.d.sync += [lr.eq(lr_shift), shifted_wide.eq(pre >> lr),
                 summed.eq(update_clamp(shifted_wide, dw, bits) + dither)]
    with m.If(apply):
        m.d.sync += out.eq(saturate(w - summed.shift_right(bits), dw))


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")


class Control(data.Struct):
    """Per-operand-set control, carried down the pipeline with the operands."""
    valid: 1
    mode: Mode
    first: 1
    bias: 1
    source: GradSource


class MacLane(wiring.Component):
    """One MAC lane: exact signed multiplier, accumulator and update arithmetic.

    Parameters
    ----------
    data_width, frac_bits : int
        Data format of the operands and of :attr:`upd`.
    acc_width : int
        Accumulator width: exact for as many products as the lane is asked to sum.
    rounding_bits : int
        The ``bits`` of the update's rounding (:func:`tinycl_hdl.spec.update.rounding_bits`):
        1 rounds half up (the lane then ignores :attr:`dither`), more rounds stochastically.

    Attributes
    ----------
    ctl : In(Control)
        Mode and flags of this cycle's operands.
    a, b : In(signed(data_width))
        Operands; their product is exact.
    w : In(signed(data_width))
        Old weight for ``UPDATE``.
    lr_shift : In(range(data_width + 1))
        Learning-rate shift for ``UPDATE`` (the host register allows at most ``data_width``).
    dither : In(rounding_bits)
        The dither of the ``UPDATE`` operand set issued :attr:`dither_stage` cycles before:
        it meets the shifted gradient in the middle of the update stages, so a unit that
        feeds many lanes carries one dither word down its pipeline, not one per lane.
    product : Out(signed(2*data_width))
        The product, one cycle after the operands (for the unit's adder tree).
    acc : Out(signed(acc_width))
        The accumulator (updated in stage 4).
    acc_narrow : Out(signed(data_width))
        The accumulator rounded (stage 5) and saturated (stage 6) to data format:
        :attr:`latency` cycles after an operand set it reflects that set and no later one.
    upd : Out(signed(data_width))
        The last ``UPDATE`` result.

    ``lr_shift`` is registered before it reaches the shifter, so a new value applies to
    operand sets issued at least two cycles after it.
    """

    latency = 6
    #: Cycles from an operand set to the cycle its :attr:`dither` is read.
    dither_stage = 4

    def __init__(self, data_width: int, frac_bits: int, acc_width: int, rounding_bits: int = 1):
        for name, value in (("data_width", data_width), ("frac_bits", frac_bits), ("acc_width", acc_width),
                            ("rounding_bits", rounding_bits)):
            _check_positive(name, value)
        self._data_width, self._frac_bits, self._acc_width = data_width, frac_bits, acc_width
        self._rounding_bits = rounding_bits
        super().__init__({
            "ctl": In(Control),
            "a": In(signed(data_width)),
            "b": In(signed(data_width)),
            "w": In(signed(data_width)),
            "lr_shift": In(range(data_width + 1)),
            "dither": In(rounding_bits),
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

    @property
    def rounding_bits(self):
        return self._rounding_bits

    def elaborate(self, platform):
        m = Module()
        dw, frac, aw = self._data_width, self._frac_bits, self._acc_width
        ctl1, ctl2, ctl3, ctl4, ctl5 = (Signal(Control, name=f"ctl{s}") for s in range(1, 6))
        w1, w2, w3, w4, w5 = (Signal(signed(dw), name=f"w{s}") for s in range(1, 6))
        p2, p3 = Signal(signed(2 * dw)), Signal(signed(2 * dw))
        # Stage 1: registered product (maps onto a DSP with its output register).
        m.d.sync += [self.product.eq(self.a * self.b), ctl1.eq(self.ctl), w1.eq(self.w)]
        # Stages 2-3: delay, so that lane results land together with the unit's adder tree.
        m.d.sync += [p2.eq(self.product), ctl2.eq(ctl1), w2.eq(w1), p3.eq(p2), ctl3.eq(ctl2), w3.eq(w2)]
        # Stages 4-6: accumulate; UPDATE shifts, clamps and applies its gradient; the
        # accumulator as it stood after this operand set (the next set's stage 4 may already
        # be changing ``acc``) is rounded, then saturated.
        grad = Signal(signed(aw))
        m.d.comb += grad.eq(Mux(ctl3.source == GradSource.ACC, self.acc, p3))
        acc = Signal(signed(aw))     # the accumulator as of the previous stage 4
        m.d.sync += [ctl4.eq(ctl3), w4.eq(w3), ctl5.eq(ctl4), w5.eq(w4)]
        m.d.comb += self.acc.eq(acc)
        with m.If(ctl3.valid):
            with m.Switch(ctl3.mode):
                with m.Case(Mode.CLEAR):
                    m.d.sync += acc.eq(0)
                with m.Case(Mode.OUTER):
                    with m.If(ctl3.first):
                        m.d.sync += acc.eq(p3)
                    with m.Else():
                        m.d.sync += acc.eq(acc + p3)
        bits = self._rounding_bits
        _update_stages(m, grad, self.lr_shift, frac, bits, self.dither if bits > 1 else 1, w5,
                       ctl5.valid & (ctl5.mode == Mode.UPDATE), self.upd)
        _narrow_stages(m, acc, self.acc_narrow, frac)
        return m


class ProcessingUnit(wiring.Component):
    """``kernel**2`` MAC lanes, an adder tree and a dot/bias accumulator.

    Parameters
    ----------
    cfg : TinyCLConfig
        Gives ``kernel`` (lanes = ``kernel**2``), ``data_width``, ``frac_bits``,
        ``acc_width`` (the dot accumulator) and ``lane_acc_width`` (each lane's): an
        ``OUTER`` run, from its ``first`` operand set, sums at most ``longest_lane_sum``
        products per lane.
    tag_width : int
        Width of :attr:`tag`, carried with the operands to :attr:`out_tag`.

    Attributes
    ----------
    valid, mode, first, bias, source : In
        Control of this cycle's operand set (see the module documentation).
    a, b, w : In(ArrayLayout(signed(data_width), lanes))
        Per-lane operands and old weights.
    w_bias : In(signed(data_width))
        Old bias, updated from the dot accumulator in ``UPDATE``.
    init_bias : In(signed(data_width))
        Bias that ``DOT`` with ``first`` starts the dot accumulator from, as ``init_bias * 1.0``
        (``init_bias << frac_bits``): the carried value is a data word, not an accumulator.
    tag : In(unsigned(tag_width))
    lr_shift : In(range(data_width + 1))
    dither : In(DITHER_BITS)
        With ``update_rounding = "stochastic"``: the unit's dither word for this operand set,
        the step seed XORed with the coordinates that the lanes share
        (:func:`~tinycl_hdl.rtl.dither.coordinate_image` with ``lane = 0``); lane ``i`` adds
        its own lane's image, the bias update lane ``kernel**2``'s.  Unused when rounding to
        nearest.
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
            "valid": In(1), "mode": In(Mode), "first": In(1), "bias": In(1), "source": In(GradSource),
            "a": In(vec), "b": In(vec), "w": In(vec),
            "w_bias": In(signed(dw)),
            "init_bias": In(signed(dw)),
            "tag": In(tag_width),
            "lr_shift": In(range(dw + 1)),
            "dither": In(DITHER_BITS),
            "out_valid": Out(1), "out_mode": Out(Mode), "out_tag": Out(tag_width),
            "dot": Out(signed(cfg.acc_width)),
            "dot_narrow": Out(signed(dw)),
            "lane_narrow": Out(vec),
            "upd": Out(vec),
            "upd_bias": Out(signed(dw)),
        })

    @property
    def lanes(self) -> int:
        return self._cfg.kernel * self._cfg.kernel

    #: Cycles from an operand set to its effect on the outputs: one input register stage
    #: (operands arrive from memories and the control unit's multiplexers, so nothing
    #: combinational reaches the multipliers) plus the lanes'.
    latency = MacLane.latency + 1

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
        w_bias, init, tag = Signal.like(self.w_bias), Signal.like(self.init_bias), Signal.like(self.tag)
        m.d.sync += [a.eq(self.a), b.eq(self.b), w.eq(self.w), w_bias.eq(self.w_bias), init.eq(self.init_bias),
                     tag.eq(self.tag)]

        # The dither word reaches the lanes' update stage with its operand set (the input
        # register and MacLane.dither_stage); each lane XORs its own lane's image.
        bits = rounding_bits(cfg)
        dither = self.dither
        for s_ in range(1 + MacLane.dither_stage if bits > 1 else 0):
            delayed = Signal.like(dither, name=f"dither{s_}")
            m.d.sync += delayed.eq(dither)
            dither = delayed
        coords = Coordinates.of(cfg)

        def lane_dither(i):
            return dither ^ coordinate_image(coords, lane=Const(i, coords.lane))

        lanes = []
        for i in range(self.lanes):
            lane = MacLane(dw, frac, cfg.lane_acc_width, bits)
            m.submodules[f"lane{i}"] = lane
            m.d.comb += [lane.ctl.eq(ctl), lane.a.eq(a[i]), lane.b.eq(b[i]), lane.w.eq(w[i]),
                         lane.lr_shift.eq(self.lr_shift),
                         self.lane_narrow[i].eq(lane.acc_narrow), self.upd[i].eq(lane.upd)]
            if bits > 1:
                m.d.comb += lane.dither.eq(lane_dither(i))
            lanes.append(lane)

        # Unit-level pipeline alongside the lanes (stage numbers as in MacLane).
        ctls = [ctl] + [Signal(Control, name=f"unit_ctl{s}") for s in range(1, 6)]
        tags = [tag] + [Signal(self._tag_width, name=f"tag{s}") for s in range(1, 6)]
        inits = [init] + [Signal(signed(dw), name=f"init{s}") for s in range(1, 4)]
        wbs = [w_bias] + [Signal(signed(dw), name=f"wb{s}") for s in range(1, 6)]
        # b[0] for the bias gradient, carried as a data word and aligned (b[0] * 1.0) at use.
        bias_bs = [Signal(signed(dw), name=f"bias_b{s}") for s in range(1, 4)]
        for s_ in range(5):
            m.d.sync += [ctls[s_ + 1].eq(ctls[s_]), tags[s_ + 1].eq(tags[s_]), wbs[s_ + 1].eq(wbs[s_])]
        for s_ in range(3):
            m.d.sync += inits[s_ + 1].eq(inits[s_])
        m.d.sync += [bias_bs[0].eq(b[0]), bias_bs[1].eq(bias_bs[0]), bias_bs[2].eq(bias_bs[1])]
        bias_term = bias_bs[2].shift_left(frac)
        ctl3, ctl5 = ctls[3], ctls[5]

        # Stages 2-3: adder tree over the stage-1 products, registered half way.
        depth = (self.lanes - 1).bit_length()
        half = [Signal(signed(2 * dw + depth), name=f"tree_half{i}")
                for i in range(len(pairwise_sum([lane.product for lane in lanes], depth // 2)))]
        m.d.sync += [h.eq(t) for h, t in zip(half, pairwise_sum([lane.product for lane in lanes], depth // 2))]
        tree = Signal(signed(2 * dw + depth))
        m.d.sync += tree.eq(pairwise_sum(half, depth - depth // 2)[0])

        # Stages 4-6: the dot/bias accumulator; UPDATE shifts, clamps and applies the bias
        # gradient (as in MacLane); the dot accumulator is held, rounded, then saturated.
        dot = Signal(signed(aw))
        # The bias's input is 1.0: its gradient is b[0] * 1.0 (PRODUCT) or the sum of such
        # terms gathered by OUTER with ``bias`` (ACC).
        grad_bias = Signal(signed(aw))
        m.d.comb += grad_bias.eq(Mux(ctl3.source == GradSource.ACC, dot, bias_term))
        with m.If(ctl3.valid):
            with m.Switch(ctl3.mode):
                with m.Case(Mode.CLEAR):
                    m.d.sync += dot.eq(0)
                with m.Case(Mode.DOT):
                    with m.If(ctl3.first):
                        m.d.sync += dot.eq(inits[3].shift_left(frac) + tree)
                    with m.Else():
                        m.d.sync += dot.eq(dot + tree)
                with m.Case(Mode.OUTER):
                    with m.If(ctl3.bias):
                        with m.If(ctl3.first):
                            m.d.sync += dot.eq(bias_term)
                        with m.Else():
                            m.d.sync += dot.eq(dot + bias_term)
        _update_stages(m, grad_bias, self.lr_shift, frac, bits, lane_dither(self.lanes) if bits > 1 else 1, wbs[5],
                       ctl5.valid & (ctl5.mode == Mode.UPDATE), self.upd_bias)
        _narrow_stages(m, dot, self.dot_narrow, frac)
        dot5 = Signal(signed(aw))
        m.d.sync += [dot5.eq(dot), self.dot.eq(dot5),
                     self.out_valid.eq(ctl5.valid), self.out_mode.eq(ctl5.mode), self.out_tag.eq(tags[5])]
        return m
