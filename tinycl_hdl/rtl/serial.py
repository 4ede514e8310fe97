"""The serial datapath: one MAC lane for devices too small for the lane array.

The lane array gives each processing unit ``kernel**2`` lanes.  On an iCE40
UP5K (5,280 logic cells) nine lanes and the control unit that feeds them
144-bit operand words need about three times the device, so
``datapath="serial"`` builds the same accelerator around one lane
(:class:`SerialMac`) that takes one operand pair per cycle:

* the operations are those of the array (``DOT``, ``OUTER``, ``UPDATE``), and
  every product and sum is exact, so the order of the products changes no bit
  of any result: the golden model holds unchanged;
* ``OUTER``'s per-lane accumulators (the conv weight gradient) live in a small
  memory, one word per kernel position plus one for the bias gradient, read,
  added to and written back as the products arrive;
* every weight, activation and gradient is one memory word in the golden
  model's order, so each loop walks its memory with a counter and no address
  needs a multiplier;
* the snake window is the array's (:class:`~tinycl_hdl.rtl.window.SnakeWindow`),
  fetching once every ``kernel**2`` cycles (``kernel**2 + 1`` in the weight
  gradient, whose bias term takes a cycle of its own), so the sample memory is
  read exactly as often as with the array.

Per training sample (``KK = kernel**2``, ``P = out_h * out_w``,
``D = filters * P``):

``CONV_FWD``
    per filter, one window sweep over all channels; per window
    ``KK`` ``DOT`` products; the position's sum (from the bias) is
    narrowed, ReLU'd and written to the activations.
``DENSE_FWD``
    per class, ``D`` ``DOT`` products from the bias; narrowed to the logit.
``LOSS``
    :class:`~tinycl_hdl.rtl.loss.LossGradient`.
``DENSE_BWD``
    per activation ``k`` and class ``o``: one weight read feeds a
    ``DOT`` product ``w * delta[o]`` (the input gradient, old weight)
    and an ``UPDATE`` from ``a[k] * delta[o]``; after the last class
    the masked input gradient is written; then the biases, from
    ``delta[o] * 1.0``.
``CONV_BWD``
    per filter and channel, a single-channel sweep of ``OUTER``
    products ``window x grad[f, y, x]`` (and ``grad * 1.0`` into the
    bias accumulator on channel 0), then ``UPDATE`` of the kernel
    slice (and the bias) from the accumulators.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.regmap import Command, Phase
from ..spec.update import CONV, DENSE, DITHER_BITS, Coordinates, rounding_bits
from .arith import index, less_than, positive, round_shift, saturate, shift_saturate, update_apply
from .counters import CounterBank
from .datapath import Datapath, pixel_data
from .dither import coordinate_image
from .loss import loss_memory_shape
from .mac import Control, GradSource, Mode, _check_positive
from .memory import MemoryShape, Sram, sample_bank_shape

__all__ = ["SerialMac", "SerialDatapath", "serial_mac", "serial_layout"]

#: The performance counters, in register-map order.
COUNTERS = ["CYCLES"] + [f"CYC_{ph.name}" for ph in Phase] + ["OPERAND_SETS", "SAMPLE_READS", "TRAIN_SAMPLES"]


class Kind(enum.Enum, shape=3):
    """Where a lane result is written back (carried in its tag)."""
    NONE = 0
    ACT = 1
    LOGIT = 2
    GRAD = 3
    DW = 4
    CW = 5
    CB = 6
    DB = 7


class Op(enum.Enum, shape=4):
    """What a prepared operand pair is, which selects its operands at issue."""
    NONE = 0
    CF = 1          # conv forward: pixel x weight
    DF = 2          # dense forward: activation x weight
    DB_GRAD = 3     # dense backward: weight x delta (the input gradient)
    DB_UPD = 4      # dense backward: the weight's update from activation x delta
    DB_BIAS = 5     # dense backward: the bias's update from delta x 1.0
    CB = 6          # conv backward: pixel x gradient into a lane accumulator
    CB_BIAS = 7     # conv backward: gradient x 1.0 into the bias accumulator
    CB_UPD = 8      # conv backward: a weight's update from its accumulator
    CB_BUPD = 9     # conv backward: the bias's update from its accumulator


#: The regions of the parameter memories, in address order.
CONV_B, DENSE_B, LOGIT, COUNT = range(4)


class SerialMac(wiring.Component):
    """One MAC lane with a dot accumulator and a memory of lane accumulators.

    Parameters
    ----------
    data_width, frac_bits : int
        Data format of operands and results.
    acc_width : int
        Width of the dot accumulator.
    lane_acc_width : int
        Width of each lane accumulator.
    lanes : int
        Number of lane accumulators (``OUTER`` and ``UPDATE`` with ``source = ACC`` name one).
    tag_width : int
        Width of :attr:`tag`, carried to :attr:`out_tag`.
    rounding_bits : int
        The ``bits`` of the update's rounding (:func:`tinycl_hdl.spec.update.rounding_bits`):
        1 rounds half up, more rounds stochastically with :attr:`dither`.
    blackbox : bool
        The lane accumulators as an SRAM macro.

    Attributes
    ----------
    valid, mode, first, source, lane : In
        Control of this cycle's operand pair.  ``DOT`` adds ``a * b`` to the dot accumulator
        (``first``: to ``init_bias * 1.0``); ``OUTER`` adds it to lane ``lane``'s accumulator
        (``first``: to zero); ``UPDATE`` produces ``sat(w - round(g >> (frac + lr_shift)))``
        with ``g`` the product or lane ``lane``'s accumulator (``source``) and ``R`` the
        configured rounding.
    a, b, w, init_bias : In(signed(data_width))
    dither : In(rounding_bits)
        The ``UPDATE`` pair's dither (unused with ``rounding_bits = 1``).
    tag : In(tag_width)
    lr_shift : In(range(data_width + 1))
    out_valid, out_mode, out_tag : Out
        The operand pair issued :attr:`latency` cycles ago, its mode and tag.
    dot_narrow : Out(signed(data_width))
        The dot accumulator after that pair, rounded and saturated.
    upd : Out(signed(data_width))
        That pair's ``UPDATE`` result.

    A lane accumulator is read one cycle after its pair is issued and written the cycle
    after: pairs that name the same lane must be at least three cycles apart.
    """

    #: input registers, product, accumulate (or shift), narrow (or clamp and apply): the
    #: serial datapath runs at the UP5K's 30 MHz, so rounding and saturation share a stage
    latency = 4

    def __init__(self, data_width: int, frac_bits: int, acc_width: int, lane_acc_width: int, lanes: int,
                 tag_width: int = 8, rounding_bits: int = 1, *, blackbox: bool = False):
        for name, value in (("data_width", data_width), ("frac_bits", frac_bits), ("acc_width", acc_width),
                            ("lane_acc_width", lane_acc_width), ("lanes", lanes), ("tag_width", tag_width),
                            ("rounding_bits", rounding_bits)):
            _check_positive(name, value)
        self._dw, self._frac, self._aw, self._law = data_width, frac_bits, acc_width, lane_acc_width
        self._lanes, self._tag_width, self._blackbox = lanes, tag_width, blackbox
        self._bits = rounding_bits
        dw = data_width
        super().__init__({
            "valid": In(1), "mode": In(Mode), "first": In(1), "source": In(GradSource), "lane": In(index(lanes)),
            "a": In(signed(dw)), "b": In(signed(dw)), "w": In(signed(dw)), "init_bias": In(signed(dw)),
            "dither": In(rounding_bits),
            "tag": In(tag_width), "lr_shift": In(range(dw + 1)),
            "out_valid": Out(1), "out_mode": Out(Mode), "out_tag": Out(tag_width),
            "dot_narrow": Out(signed(dw)), "upd": Out(signed(dw)),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def accumulator_shape(self) -> MemoryShape:
        """The lane accumulators' memory."""
        return MemoryShape(self._law, self._lanes)

    def elaborate(self, platform):
        m = Module()
        dw, frac = self._dw, self._frac
        m.submodules.lane_acc = lane_acc = Sram.of(self.accumulator_shape, blackbox=self._blackbox)
        # v1: registered inputs; the lane accumulator is read from them.  ``w`` (UPDATE) and
        # ``init_bias`` (DOT) never meet in one pair, so one register chain carries either.
        ctl1, ctl2, ctl3 = (Signal(Control, name=f"ctl{s}") for s in range(1, 4))
        lane1, lane2 = Signal.like(self.lane, name="lane1"), Signal.like(self.lane, name="lane2")
        a1, b1 = Signal(signed(dw)), Signal(signed(dw))
        wi1, wi2, wi3 = (Signal(signed(dw), name=f"w_or_init{s}") for s in range(1, 4))
        tags = [Signal(self._tag_width, name=f"tag{s}") for s in range(1, 4)]
        m.d.sync += [ctl1.valid.eq(self.valid), ctl1.mode.eq(self.mode), ctl1.first.eq(self.first),
                     ctl1.source.eq(self.source), lane1.eq(self.lane), a1.eq(self.a), b1.eq(self.b),
                     wi1.eq(Mux(self.mode == Mode.DOT, self.init_bias, self.w)), tags[0].eq(self.tag)]
        m.d.comb += [lane_acc.r_en.eq(1), lane_acc.r_addr.eq(lane1)]
        # v2: the registered product (a DSP with its output register) and the lane's accumulator.
        product = Signal(signed(2 * dw))
        m.d.sync += [product.eq(a1 * b1), ctl2.eq(ctl1), lane2.eq(lane1), wi2.eq(wi1), ctl3.eq(ctl2), wi3.eq(wi2),
                     tags[1].eq(tags[0]), tags[2].eq(tags[1])]
        lane_value = lane_acc.r_data.as_signed()
        # The dither rides with the pair to v4 (none when rounding to nearest).
        bits = self._bits
        dither = self.dither
        if bits > 1:
            for s_ in range(1, 4):
                delayed = Signal.like(dither, name=f"dither{s_}")
                m.d.sync += delayed.eq(dither)
                dither = delayed
        else:
            dither = 1
        # v3: accumulate; the UPDATE gradient shifted to ``bits`` fractional bits below the
        # weight's LSB and clamped (as _update_stages does; lr_shift registered first, so a
        # new value applies two cycles on).
        dot = Signal(signed(self._aw))
        with m.If(ctl2.valid & (ctl2.mode == Mode.DOT)):
            m.d.sync += dot.eq(Mux(ctl2.first, wi2.shift_left(frac), dot) + product)
        with m.If(ctl2.valid & (ctl2.mode == Mode.OUTER)):
            m.d.comb += [lane_acc.w_en.eq(1), lane_acc.w_addr.eq(lane2),
                         lane_acc.w_data.eq(Mux(ctl2.first, 0, lane_value) + product)]
        grad = Signal(signed(max(self._law, 2 * dw)))
        m.d.comb += grad.eq(Mux(ctl2.source == GradSource.ACC, lane_value, product))
        lr = Signal.like(self.lr_shift, name="lr_shift_reg")
        clamped = Signal(signed(dw + 2 + bits))
        m.d.sync += [lr.eq(self.lr_shift),
                     clamped.eq(shift_saturate(grad.shift_right(frac - bits), lr, dw + 2 + bits))]
        # v4: the UPDATE result and the dot accumulator narrowed.
        with m.If(ctl3.valid & (ctl3.mode == Mode.UPDATE)):
            m.d.sync += self.upd.eq(update_apply(wi3, clamped, dw, dither, bits))
        m.d.sync += [self.dot_narrow.eq(saturate(round_shift(dot, frac), dw)),
                     self.out_valid.eq(ctl3.valid), self.out_mode.eq(ctl3.mode), self.out_tag.eq(tags[2])]
        return m


def _tag_layout(cfg: TinyCLConfig) -> data.StructLayout:
    """What a pair carries to its write-back: a kind, a word address, the ReLU mask."""
    lay = serial_layout(cfg)
    words = max(lay["dense_words"], lay["conv_words"], cfg.dense_in, 4 << param_region_bits(cfg))
    return data.StructLayout({"kind": Kind, "addr": index(words), "mask": 1})


def serial_mac(cfg: TinyCLConfig, *, blackbox: bool = False) -> "SerialMac":
    """The :class:`SerialMac` of the serial top for ``cfg``."""
    return SerialMac(cfg.data_width, cfg.frac_bits, cfg.acc_width, cfg.lane_acc_width, cfg.kernel ** 2 + 1,
                     _tag_layout(cfg).size, rounding_bits(cfg), blackbox=blackbox)


def serial_layout(cfg: TinyCLConfig) -> dict:
    kk = cfg.kernel ** 2
    positions = cfg.out_h * cfg.out_w
    return {"kk": kk, "positions": positions, "dense_in": cfg.dense_in, "conv_words": cfg.filters * cfg.conv_fan_in,
            "dense_words": cfg.classes * cfg.dense_in}


def param_region_bits(cfg: TinyCLConfig) -> int:
    """Address bits of one region of the parameter memories (conv biases, dense biases,
    logits, class counts, in that order): a region's word address is its index with the
    region's number above it, so no address needs an adder."""
    return max(1, (max(cfg.filters, cfg.classes) - 1).bit_length())


def _param_width(cfg: TinyCLConfig) -> int:
    """Bits of a word of the host's parameter copy: a data word or a class count."""
    return max(cfg.data_width, cfg.slots.bit_length())


def times(value, constant: int):
    """``value * constant`` as shifts and adds: a constant product needs no multiplier."""
    terms = [value.shift_left(b) for b in range(constant.bit_length()) if constant >> b & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)



class SerialDatapath(Datapath):
    """The one-lane datapath around :class:`SerialMac` (``datapath="serial"``); see the module
    documentation."""

    # Sized for the UP5K at 30 MHz: four LFSR steps per cycle (a draw in eight, about 110
    # LUT4s fewer than 32), and the window without its stages for a fast clock.
    lfsr_steps_per_cycle = 4
    window_pipelined = False
    # One divider stage: the UP5K has no room for a pipeline of them.
    loss_pipelined = False
    # Reset zeroes the parameter memories first.
    reset_state = "PARAM_CLEAR"
    insert_next = "INS_COUNT_LABEL"

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        super().__init__(cfg, blackbox=blackbox)
        self.lay = serial_layout(cfg)
        self.region_bits = param_region_bits(cfg)
        self.param_words = 4 << self.region_bits
        self.latency = SerialMac.latency

    # -- memories ---------------------------------------------------------------------------

    def own_memories(self) -> dict:
        cfg, lay, dw = self.cfg, self.lay, self.cfg.data_width
        return {"conv_w": MemoryShape(dw, lay["conv_words"]), "dense_w": MemoryShape(dw, lay["dense_words"]),
                "act": MemoryShape(dw, cfg.dense_in), "grad": MemoryShape(dw, cfg.dense_in),
                "labels": MemoryShape(8, cfg.slots), "order": MemoryShape(16, cfg.slots),
                # Conv biases, dense biases, logits and class counts, in two copies written together:
                # the datapath and the control unit read ``biases``, the host ``host_params``.
                "biases": MemoryShape(_param_width(cfg), self.param_words),
                "host_params": MemoryShape(_param_width(cfg), self.param_words)}

    def memories(self) -> dict:
        cfg = self.cfg
        return {**self.own_memories(), "mac.lane_acc": MemoryShape(cfg.lane_acc_width, cfg.kernel ** 2 + 1),
                "counters.mem": MemoryShape(32, len(COUNTERS)), "loss.mem": loss_memory_shape(cfg),
                **{f"samples.bank{b}": sample_bank_shape(cfg) for b in range(cfg.kernel)}}

    @property
    def ctr_limit(self) -> int:
        # ``ctr`` also walks the parameter memories when they are cleared.
        return max(self.lay["kk"] + 2, self.latency + 3, self.param_words)

    @property
    def drain_cycles(self) -> int:
        return self.latency + 2

    def param(self, region, i):
        """The word of ``i`` in ``region`` of the parameter memories."""
        i, rb = Value.cast(i), self.region_bits
        return Cat(i[:rb], Const(0, max(0, rb - len(i))), Const(region, 2))

    def count_memory(self):
        biases = self.biases

        def read_count(m, c):
            m.d.comb += [biases.r_en.eq(1), biases.r_addr.eq(self.param(COUNT, c))]
        return read_count, biases.r_data

    def build_memories(self, m, blocks):
        self.blocks = blocks
        cfg, dw = self.cfg, self.cfg.data_width
        mems = self.make_memories(m)
        self.conv_w, self.dense_w, self.act, self.grad = mems["conv_w"], mems["dense_w"], mems["act"], mems["grad"]
        self.biases, self.host_params = mems["biases"], mems["host_params"]
        # Both parameter copies are written together.
        self.param_w_en, self.param_w_addr = Signal(), Signal(self.region_bits + 2)
        self.param_w_data = Signal(_param_width(cfg))
        for mem in (self.host_params, self.biases):
            m.d.comb += [mem.w_en.eq(self.param_w_en), mem.w_addr.eq(self.param_w_addr),
                         mem.w_data.eq(self.param_w_data)]
        self.bias_value = self.biases.r_data[:dw].as_signed()
        self.tag_layout = _tag_layout(cfg)
        m.submodules.mac = self.mac = serial_mac(cfg, blackbox=self.blackbox)
        # The performance counters, in register-map order, in block RAM.
        m.submodules.counters = self.counters = CounterBank(len(COUNTERS), cfg.kernel, blackbox=self.blackbox)
        # This cycle's events, registered before the bank: no path runs from the control
        # state through the counters' fold logic in one cycle.  A count lags its events by a
        # cycle, which a host read (at least three cycles after busy falls) never sees.
        events = Signal.like(self.counters.inc, name="counter_events")
        m.d.sync += self.counters.inc.eq(events)
        self.counter_inc = {name: events[i] for i, name in enumerate(COUNTERS)}

    # -- operand issue and write-back -------------------------------------------------------

    def build(self, m, ctl):
        m.d.comb += self.mac.lr_shift.eq(ctl.lr_shift)
        self._issue(m, ctl)
        self._write_back(m)
        self._sweeps(m)
        self._loop_state(m, ctl)

    def _issue(self, m, ctl):
        """A *prepare* cycle drives the memory reads of one operand pair and registers what it
        is (``prep``); the next cycle, *issue*, selects the operands from the memories'
        outputs and the holding registers and hands them to the lane."""
        cfg, KK, dw, F = self.cfg, self.lay["kk"], self.cfg.data_width, self.cfg.filters
        op_layout = data.StructLayout({"op": Op, "lane": index(KK + 1), "first": 1, "last": 1,
                                       "addr": self.tag_layout["addr"].shape,
                                       "dither": DITHER_BITS if ctl.stochastic else 1})
        self.prep = Signal(op_layout)     # driven combinationally by the phase that prepares
        iss = Signal(op_layout)           # the same, one cycle later
        m.d.sync += iss.eq(self.prep)
        iss_o = Signal.like(ctl.o)
        m.d.sync += iss_o.eq(ctl.o)
        self.f = Signal(index(F))
        self.px = Signal(8)               # the window pixel of the prepared pair
        mac, tag = self.mac, Signal(self.tag_layout)
        m.d.comb += [mac.valid.eq(iss.op != Op.NONE), mac.lane.eq(iss.lane), mac.tag.eq(tag), tag.addr.eq(iss.addr),
                     mac.dither.eq(iss.dither)]
        m.d.comb += self.counter_inc["OPERAND_SETS"].eq(iss.op != Op.NONE)
        with m.Switch(iss.op):
            self._forward_operands(m, iss, iss_o, tag)
            self._backward_operands(m, iss, iss_o, tag)

    def _forward_operands(self, m, iss, iss_o, tag):
        cfg, mac = self.cfg, self.mac
        with m.Case(Op.CF):
            m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(pixel_data(cfg, self.px)),
                         mac.b.eq(self.conv_w.r_data.as_signed()), mac.init_bias.eq(self.bias_value),
                         tag.kind.eq(Mux(iss.last, Kind.ACT, Kind.NONE))]
        with m.Case(Op.DF):
            m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(self.act.r_data.as_signed()),
                         mac.b.eq(self.dense_w.r_data.as_signed()), mac.init_bias.eq(self.bias_value),
                         tag.kind.eq(Mux(iss.last, Kind.LOGIT, Kind.NONE)), tag.addr.eq(iss_o)]

    def _backward_operands(self, m, iss, iss_o, tag):
        cfg, mac, dw = self.cfg, self.mac, self.cfg.data_width
        ONE = Const(1 << cfg.frac_bits, signed(dw))
        w_hold, act_hold, g_hold = Signal(signed(dw)), Signal(signed(dw)), Signal(signed(dw))
        delta = self.blocks.loss.rd_data  # delta[o], read by the prepare cycle
        act_value, dense_value = self.act.r_data.as_signed(), self.dense_w.r_data.as_signed()
        conv_value, grad_value = self.conv_w.r_data.as_signed(), self.grad.r_data.as_signed()
        with m.Case(Op.DB_GRAD):
            # The first class's pair also brings the activation, held for the others.
            a_k = Mux(iss.first, act_value, act_hold)
            m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(dense_value),
                         mac.b.eq(delta), tag.kind.eq(Mux(iss.last, Kind.GRAD, Kind.NONE)),
                         tag.mask.eq(positive(a_k))]
            m.d.sync += [w_hold.eq(dense_value), act_hold.eq(a_k)]
        with m.Case(Op.DB_UPD):
            m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(act_hold),
                         mac.b.eq(delta), mac.w.eq(w_hold), tag.kind.eq(Kind.DW)]
        with m.Case(Op.DB_BIAS):
            m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(delta),
                         mac.b.eq(ONE), mac.w.eq(self.bias_value), tag.kind.eq(Kind.DB),
                         tag.addr.eq(self.param(DENSE_B, iss_o))]
        with m.Case(Op.CB):
            # The position's gradient arrives with its first lane and is held for the rest.
            g = Mux(iss.lane == 0, grad_value, g_hold)
            m.d.comb += [mac.mode.eq(Mode.OUTER), mac.first.eq(iss.first), mac.a.eq(pixel_data(cfg, self.px)),
                         mac.b.eq(g)]
            m.d.sync += g_hold.eq(g)
        with m.Case(Op.CB_BIAS):
            m.d.comb += [mac.mode.eq(Mode.OUTER), mac.first.eq(iss.first), mac.a.eq(g_hold), mac.b.eq(ONE)]
        with m.Case(Op.CB_UPD):
            m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.ACC), mac.w.eq(conv_value),
                         tag.kind.eq(Kind.CW)]
        with m.Case(Op.CB_BUPD):
            m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.ACC),
                         mac.w.eq(self.bias_value), tag.kind.eq(Kind.CB)]

    def _write_back(self, m):
        mac, loss = self.mac, self.blocks.loss
        act, grad, dense_w, conv_w = self.act, self.grad, self.dense_w, self.conv_w
        out_tag = Signal(self.tag_layout)
        m.d.comb += out_tag.eq(mac.out_tag)
        with m.If(mac.out_valid):
            with m.Switch(out_tag.kind):
                with m.Case(Kind.ACT):
                    m.d.comb += [act.w_en.eq(1), act.w_addr.eq(out_tag.addr),
                                 act.w_data.eq(Mux(positive(mac.dot_narrow), mac.dot_narrow, 0))]
                with m.Case(Kind.LOGIT):
                    m.d.comb += [loss.z_en.eq(1), loss.z_index.eq(out_tag.addr), loss.z_data.eq(mac.dot_narrow)]
                    m.d.comb += [self.param_w_en.eq(1), self.param_w_addr.eq(self.param(LOGIT, out_tag.addr)),
                                 self.param_w_data.eq(mac.dot_narrow)]
                with m.Case(Kind.GRAD):
                    m.d.comb += [grad.w_en.eq(1), grad.w_addr.eq(out_tag.addr),
                                 grad.w_data.eq(Mux(out_tag.mask, mac.dot_narrow, 0))]
                with m.Case(Kind.DW):
                    m.d.comb += [dense_w.w_en.eq(1), dense_w.w_addr.eq(out_tag.addr), dense_w.w_data.eq(mac.upd)]
                with m.Case(Kind.CW):
                    m.d.comb += [conv_w.w_en.eq(1), conv_w.w_addr.eq(out_tag.addr), conv_w.w_data.eq(mac.upd)]
                with m.Case(Kind.CB, Kind.DB):
                    m.d.comb += [self.param_w_en.eq(1), self.param_w_addr.eq(out_tag.addr),
                                 self.param_w_data.eq(mac.upd)]

    def _sweeps(self, m):
        """Window sweeps: one fetch per ``beats`` cycles, ``beats`` pairs per window."""
        cfg, lay, window = self.cfg, self.lay, self.blocks.window
        KK, C = lay["kk"], cfg.in_c
        self.sweep_fwd = sweep_fwd = Signal()  # the sweep feeds the conv forward pass (else the gradient)
        self.sweeping = Signal()          # the window or the lane walk is at work
        beat = Signal(range(KK + 1))
        beats = Mux(sweep_fwd, KK, KK + 1)
        m.d.comb += window.advance.eq(beat == 0)
        with m.If(self.sweeping):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
        with m.Else():
            m.d.sync += beat.eq(0)
        self.chan_sweep = Signal(index(C))
        self.walking = Signal()           # the lanes of a window are being prepared
        self.lane = Signal(index(KK + 1))
        self.seen_output = Signal()       # the sweep has produced a window (the weight gradient's ``first``)
        self.f_conv_base = Signal(index(lay["conv_words"] + 1))    # f * C * KK
        self.f_plane_base = Signal(index(lay["dense_in"] + 1))     # f * P
        self.cw_addr = Signal.like(self.f_conv_base)
        self._lane_walk(m)

    def _lane_walk(self, m):
        """Each window's lanes prepared one per cycle, from the window's valid cycle on."""
        lay, window, KK = self.lay, self.blocks.window, self.lay["kk"]
        prep, lane, walking, seen_output = self.prep, self.lane, self.walking, self.seen_output
        w_first, w_last_chan, w_last = Signal(), Signal(), Signal()
        w_pos = Signal.like(window.pos)
        w_first_out = Signal()
        lane_count = Mux(self.sweep_fwd, KK, Mux(self.chan_sweep == 0, KK + 1, KK))
        walk_lane = Signal.like(lane)     # this cycle's lane (0 on the window's valid cycle)
        m.d.comb += walk_lane.eq(Mux(window.valid, 0, lane))
        walk = Signal()
        m.d.comb += walk.eq(window.valid | walking)
        with m.If(window.valid):
            m.d.sync += [w_first.eq(window.first_chan), w_last_chan.eq(window.last_chan), w_last.eq(window.last),
                         w_pos.eq(window.pos), w_first_out.eq(~seen_output), seen_output.eq(1)]
        first_lane_first = Mux(window.valid, window.first_chan, w_first)
        with m.If(walk):
            # The bias lane (KK) uses no pixel: whatever this yields for it goes unread.
            m.d.sync += self.px.eq(Array(window.window[j] for j in range(KK))[walk_lane])
            with m.If(walk_lane == lane_count - 1):
                m.d.sync += [walking.eq(0), lane.eq(0)]
            with m.Else():
                m.d.sync += [walking.eq(1), lane.eq(walk_lane + 1)]
            with m.If(self.sweep_fwd):
                with m.If(window.valid):
                    m.d.comb += [self.biases.r_en.eq(1), self.biases.r_addr.eq(self.f)]
                addr = Mux(window.valid & window.first_chan, self.f_conv_base, self.cw_addr)
                m.d.comb += [self.conv_w.r_en.eq(1), self.conv_w.r_addr.eq(addr),
                             prep.op.eq(Op.CF), prep.lane.eq(walk_lane),
                             prep.first.eq(first_lane_first & (walk_lane == 0)),
                             prep.last.eq(Mux(window.valid, window.last_chan, w_last_chan) & (walk_lane == KK - 1)),
                             prep.addr.eq(self.f_plane_base + Mux(window.valid, window.pos, w_pos))]
                m.d.sync += self.cw_addr.eq(addr + 1)
            with m.Else():
                with m.If(window.valid):
                    m.d.comb += [self.grad.r_en.eq(1), self.grad.r_addr.eq(self.f_plane_base + window.pos)]
                m.d.comb += [prep.op.eq(Mux(walk_lane == KK, Op.CB_BIAS, Op.CB)), prep.lane.eq(walk_lane),
                             prep.first.eq(Mux(window.valid, ~seen_output, w_first_out))]

    def _loop_state(self, m, ctl):
        cfg, lay, window, K = self.cfg, self.lay, self.blocks.window, self.cfg.kernel
        m.d.comb += window.slot.eq(ctl.slot)
        self.k = Signal(range(lay["dense_in"] + 1))
        # The dense backward pass's activation as filter, word and lane (the dither's coordinates).
        self.db_f, self.db_lane = Signal(index(cfg.filters)), Signal(index(lay["kk"]))
        self.db_word = Signal(index(-(-lay["positions"] // lay["kk"])))
        self.run_addr = Signal(index(lay["dense_words"] + 1))
        self.half = Signal()
        self.init_addr = Signal(index(max(lay["dense_words"], lay["conv_words"]) + 1))
        self.init_valid, self.init_dense, self.init_waddr = Signal(), Signal(), Signal.like(self.init_addr)
        self.init_wdense = Signal()       # the draw being written is a dense weight
        self.drawn = ctl.initial_weight(m, self.blocks.lfsr, self.init_wdense)
        # Busy cycles of a command (the clearing after reset is none); pixels fetched.
        self.counting = Signal()
        m.d.comb += [self.counters.clear.eq(ctl.clear_counters), self.counter_inc["CYCLES"].eq(self.counting),
                     self.counter_inc["SAMPLE_READS"].eq(Mux(window.busy & window.advance, K, 0))]
        for ph in Phase:
            m.d.comb += self.counter_inc[f"CYC_{ph.name}"].eq(self.counting & (ctl.phase == ph))
        m.d.comb += self.blocks.loss.label.eq(ctl.sample_label)
        # Windows still inside the window's pipeline after its sequencer stopped.
        self.window_pending = Signal()
        pend_ctr = Signal(range(window.latency + 2))
        with m.If(window.busy):
            m.d.sync += pend_ctr.eq(window.latency + 1)
        with m.Elif(pend_ctr != 0):
            m.d.sync += pend_ctr.eq(pend_ctr - 1)
        m.d.comb += self.window_pending.eq(window.busy | (pend_ctr != 0))

    def start_sweep(self, m, forward, first_chan, last_chan):
        window = self.blocks.window
        m.d.comb += [window.start.eq(1), window.chan_first.eq(first_chan), window.chan_last.eq(last_chan)]
        m.d.sync += [self.sweep_fwd.eq(forward), self.sweeping.eq(1), self.seen_output.eq(0)]

    def sweep_done(self):
        """The window has delivered its last window and its lanes are prepared."""
        window = self.blocks.window
        return ~self.window_pending & ~window.valid & ~self.walking & self.seen_output

    # -- the control unit's hooks -----------------------------------------------------------

    def reset_states(self, m, ctl):
        """``PARAM_CLEAR``: reset zeroes the parameter memories (biases, logit and count copies),
        TRAIN the two bias regions, one word per cycle."""
        ctr, words = ctl.ctr, self.param_words
        with m.State("PARAM_CLEAR"):
            m.d.comb += [self.param_w_en.eq(1), self.param_w_addr.eq(ctr), self.param_w_data.eq(0)]
            with m.If(ctr == Mux(ctl.from_scratch, 2 * (words // 4) - 1, words - 1)):
                m.d.sync += ctr.eq(0)
                with m.If(ctl.from_scratch):
                    m.next = "INIT"
                with m.Else():
                    m.next = "IDLE"
            with m.Else():
                m.d.sync += ctr.eq(ctr + 1)

    def on_train(self, m, ctl):
        m.d.sync += [self.init_addr.eq(0), self.init_dense.eq(0), self.init_valid.eq(0)]
        with m.If(ctl.start_cmd == Command.TRAIN):
            m.next = "PARAM_CLEAR"
        with m.Else():
            m.next = "ORDER_INIT"

    def on_infer(self, m, ctl):
        m.next = "CF_START"

    def insert_finish_states(self, m, ctl):
        """The two counts that changed, one write each (to both copies)."""
        with m.State("INS_COUNT_LABEL"):
            m.d.comb += [self.param_w_en.eq(1), self.param_w_addr.eq(self.param(COUNT, ctl.label_reg[:8])),
                         self.param_w_data.eq(ctl.label_count + 1)]
            m.next = "INS_COUNT_EVICTED"
        with m.State("INS_COUNT_EVICTED"):
            with m.If(ctl.evict):
                m.d.comb += [self.param_w_en.eq(1), self.param_w_addr.eq(self.param(COUNT, ctl.largest)),
                             self.param_w_data.eq(ctl.largest_count - 1)]
            m.next = "DONE"

    def init_states(self, m, ctl):
        """One draw per weight in the golden model's order, which is the memories' order; each
        is written when the LFSR is ready again, as the next draw starts."""
        lay, lfsr = self.lay, self.blocks.lfsr
        init_addr, init_dense = self.init_addr, self.init_dense
        with m.State("INIT"):
            with m.If(lfsr.ready):
                m.d.comb += lfsr.draw.eq(1)
                m.d.sync += [self.init_valid.eq(1), self.init_waddr.eq(init_addr), self.init_wdense.eq(init_dense)]
                with m.If(~init_dense & (init_addr == lay["conv_words"] - 1)):
                    m.d.sync += [init_dense.eq(1), init_addr.eq(0)]
                with m.Elif(init_dense & (init_addr == lay["dense_words"] - 1)):
                    m.next = "INIT_LAST"
                with m.Else():
                    m.d.sync += init_addr.eq(init_addr + 1)
        with m.State("INIT_LAST"):
            with m.If(lfsr.ready):
                m.d.sync += [self.init_valid.eq(0), ctl.ctr.eq(0)]
                m.next = "ORDER_INIT"

    def on_order(self):
        return [self.init_dense.eq(0)]

    def on_cancel(self, m):
        m.d.sync += [self.sweeping.eq(0), self.walking.eq(0), self.lane.eq(0)]

    def on_done(self, m):
        m.d.sync += [self.sweep_fwd.eq(0), self.sweeping.eq(0)]

    def count_sample(self, m):
        m.d.comb += self.counter_inc["TRAIN_SAMPLES"].eq(1)

    def on_loss_done(self, m, ctl):
        m.d.sync += [self.k.eq(0), ctl.o.eq(0), self.run_addr.eq(0), self.half.eq(0),
                     self.db_f.eq(0), self.db_word.eq(0), self.db_lane.eq(0)]

    # -- the phases ---------------------------------------------------------------------------

    def _prepare_dither(self, m, ctl, kind, **coordinates):
        """The prepared ``UPDATE`` pair's dither: the step seed XORed with the image of its
        coordinates (:mod:`tinycl_hdl.spec.update`); nothing when rounding to nearest."""
        if ctl.stochastic:
            image = coordinate_image(Coordinates.of(self.cfg), kind=kind, **coordinates)
            m.d.comb += self.prep.dither.eq(ctl.step_seed ^ image)

    def _next_dense_position(self, m):
        """The dense backward pass moves to the next activation: its filter, and its position's
        word and lane (``pos // kernel**2``, ``pos % kernel**2``) for the dither."""
        KK, P = self.lay["kk"], self.lay["positions"]
        last_word, last_lane = (P - 1) // KK, (P - 1) % KK
        with m.If((self.db_word == last_word) & (self.db_lane == last_lane)):
            m.d.sync += [self.db_word.eq(0), self.db_lane.eq(0), self.db_f.eq(self.db_f + 1)]
        with m.Elif(self.db_lane == KK - 1):
            m.d.sync += [self.db_lane.eq(0), self.db_word.eq(self.db_word + 1)]
        with m.Else():
            m.d.sync += self.db_lane.eq(self.db_lane + 1)

    def _next_filter(self, m):
        C, KK, P = self.cfg.in_c, self.lay["kk"], self.lay["positions"]
        m.d.sync += [self.f.eq(self.f + 1), self.f_conv_base.eq(self.f_conv_base + C * KK),
                     self.f_plane_base.eq(self.f_plane_base + P)]

    def conv_forward(self, m, ctl):
        """One sweep per filter."""
        C, F = self.cfg.in_c, self.cfg.filters
        with m.State("CF_START"):
            self.start_sweep(m, 1, 0, C - 1)
            m.d.sync += [self.f.eq(0), self.f_conv_base.eq(0), self.f_plane_base.eq(0), ctl.phase.eq(Phase.CONV_FWD)]
            m.next = "CF_RUN"
        with m.State("CF_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.sweep_done()):
                with m.If(self.f == F - 1):
                    m.d.sync += [self.sweeping.eq(0), ctl.ctr.eq(0)]
                    m.next = "CF_DRAIN"
                with m.Else():
                    self.start_sweep(m, 1, 0, C - 1)
                    self._next_filter(m)
        with m.State("CF_DRAIN"):
            ctl.drain(m, "DF_RUN")
            m.d.sync += [ctl.o.eq(0), self.k.eq(0), self.run_addr.eq(0)]
            with m.If(ctl.ctr == self.latency + 1):
                m.d.sync += ctl.phase.eq(Phase.DENSE_FWD)

    def dense_forward(self, m, ctl):
        """Per class, ``D`` pairs from the bias."""
        D, NC, o, k, prep = self.lay["dense_in"], self.cfg.classes, ctl.o, self.k, self.prep
        with m.State("DF_RUN"):
            m.d.comb += [self.dense_w.r_en.eq(1), self.dense_w.r_addr.eq(self.run_addr), self.act.r_en.eq(1),
                         self.act.r_addr.eq(k), prep.op.eq(Op.DF), prep.first.eq(k == 0), prep.last.eq(k == D - 1)]
            with m.If(k == 0):
                m.d.comb += [self.biases.r_en.eq(1), self.biases.r_addr.eq(self.param(DENSE_B, o))]
            m.d.sync += self.run_addr.eq(self.run_addr + 1)
            with m.If(k == D - 1):
                m.d.sync += k.eq(0)
                with m.If(o == NC - 1):
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "DF_DRAIN"
                with m.Else():
                    m.d.sync += o.eq(o + 1)
            with m.Else():
                m.d.sync += k.eq(k + 1)
        with m.State("DF_DRAIN"):
            ctl.logits_ready(m, self.blocks.loss, self.latency + 3)

    def dense_backward(self, m, ctl):
        """Per activation and class, a gradient pair and an update pair; then the biases."""
        D, NC, o, k, prep, loss = self.lay["dense_in"], self.cfg.classes, ctl.o, self.k, self.prep, self.blocks.loss
        with m.State("DB_RUN"):
            m.d.sync += self.half.eq(~self.half)
            with m.If(~self.half):
                # delta[o] stays on the loss unit's output for both pairs of (k, o).
                m.d.comb += [self.dense_w.r_en.eq(1), self.dense_w.r_addr.eq(self.run_addr),
                             loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o),
                             prep.op.eq(Op.DB_GRAD), prep.first.eq(o == 0), prep.last.eq(o == NC - 1),
                             prep.addr.eq(k)]
                with m.If(o == 0):
                    m.d.comb += [self.act.r_en.eq(1), self.act.r_addr.eq(k)]
            with m.Else():
                m.d.comb += [prep.op.eq(Op.DB_UPD), prep.addr.eq(self.run_addr)]
                self._prepare_dither(m, ctl, DENSE, o=o, f=self.db_f, word=self.db_word, lane=self.db_lane)
                with m.If(o == NC - 1):
                    m.d.sync += [o.eq(0), k.eq(k + 1), self.run_addr.eq(k + 1)]
                    self._next_dense_position(m)
                    with m.If(k == D - 1):
                        m.d.sync += o.eq(0)
                        m.next = "DB_BIAS"
                with m.Else():
                    m.d.sync += [o.eq(o + 1), self.run_addr.eq(self.run_addr + D)]
        with m.State("DB_BIAS"):
            m.d.comb += [prep.op.eq(Op.DB_BIAS), self.biases.r_en.eq(1), self.biases.r_addr.eq(self.param(DENSE_B, o)),
                         loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o)]
            self._prepare_dither(m, ctl, DENSE, o=o, lane=self.lay["kk"])
            with m.If(o == NC - 1):
                m.d.sync += ctl.ctr.eq(0)
                m.next = "DB_DRAIN"
            with m.Else():
                m.d.sync += o.eq(o + 1)
        with m.State("DB_DRAIN"):
            ctl.drain(m, "CB_START")
            with m.If(ctl.ctr == self.latency + 1):
                # The updates walk the conv weights in order: f, channel, kernel position.
                m.d.sync += [self.f.eq(0), self.chan_sweep.eq(0), self.f_conv_base.eq(0), self.f_plane_base.eq(0),
                             self.cw_addr.eq(0), ctl.phase.eq(Phase.CONV_BWD)]

    def conv_backward(self, m, ctl):
        """Per filter and channel, a sweep then the updates."""
        chan_sweep = self.chan_sweep
        with m.State("CB_START"):
            self.start_sweep(m, 0, chan_sweep, chan_sweep)
            m.next = "CB_RUN"
        with m.State("CB_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.sweep_done()):
                m.d.sync += [self.sweeping.eq(0), self.lane.eq(0)]
                m.next = "CB_UPDATE"
        with m.State("CB_UPDATE"):
            self._conv_update(m, ctl)
        with m.State("CB_DRAIN"):
            ctl.drain(m, "SAMPLE_NEXT")

    def _conv_update(self, m, ctl):
        """The kernel slice of this channel (and the bias after channel 0), lane by lane; the
        lanes' last OUTER pairs were issued at least a window's beats ago."""
        KK, C, F, lane, prep, chan_sweep = self.lay["kk"], self.cfg.in_c, self.cfg.filters, self.lane, self.prep, \
            self.chan_sweep
        with m.If(lane == KK):
            m.d.comb += [prep.op.eq(Op.CB_BUPD), prep.lane.eq(KK), prep.addr.eq(self.f),
                         self.biases.r_en.eq(1), self.biases.r_addr.eq(self.f)]
            self._prepare_dither(m, ctl, CONV, f=self.f, lane=KK)
        with m.Else():
            m.d.comb += [self.conv_w.r_en.eq(1), self.conv_w.r_addr.eq(self.cw_addr), prep.op.eq(Op.CB_UPD),
                         prep.lane.eq(lane), prep.addr.eq(self.cw_addr)]
            self._prepare_dither(m, ctl, CONV, f=self.f, word=chan_sweep, lane=lane)
            m.d.sync += self.cw_addr.eq(self.cw_addr + 1)
        with m.If(lane == Mux(chan_sweep == 0, KK, KK - 1)):
            m.d.sync += lane.eq(0)
            with m.If(chan_sweep != C - 1):
                m.d.sync += chan_sweep.eq(chan_sweep + 1)
                m.next = "CB_START"
            with m.Elif(self.f != F - 1):
                m.d.sync += chan_sweep.eq(0)
                self._next_filter(m)
                m.next = "CB_START"
            with m.Else():
                m.d.sync += ctl.ctr.eq(0)
                m.next = "CB_DRAIN"
        with m.Else():
            m.d.sync += lane.eq(lane + 1)

    # -- after the FSM ------------------------------------------------------------------------

    def after_fsm(self, m, ctl, control):
        m.d.comb += self.counting.eq(ctl.busy & ~(control.ongoing("PARAM_CLEAR") & ~ctl.from_scratch))
        # Weight initialisation writes (as each draw is ready).
        with m.If(self.init_valid & self.blocks.lfsr.ready):
            with m.If(self.init_wdense):
                m.d.comb += [self.dense_w.w_en.eq(1), self.dense_w.w_addr.eq(self.init_waddr),
                             self.dense_w.w_data.eq(self.drawn)]
            with m.Else():
                m.d.comb += [self.conv_w.w_en.eq(1), self.conv_w.w_addr.eq(self.init_waddr),
                             self.conv_w.w_data.eq(self.drawn)]

    # -- the host's reads ---------------------------------------------------------------------

    def host_port(self, m, ctl, host):
        """Registers sit in blocks of 256 words (the scalars, then one block per array), so an
        address splits into a block and a word: a block's value is a multiplexer indexed by the
        word, and whether a register is there a range test, not one comparator per register."""
        blocks = {}
        for reg in ctl.regmap.registers:
            blocks.setdefault(reg.offset >> 10, {})[(reg.offset >> 2) & 0xFF] = reg
        blk, word, is_reg, present = self._register_decode(m, host, blocks)
        is_counter, counter_q = self._counter_decode(m, ctl, host)
        is_param, param_addr_q, param_signed_q = self._param_decode(m, ctl, host, blocks, present)
        block_value = self._block_value(m, host, blocks, blk, word)
        cw_addr_q, dw_addr_q = self._weight_addresses(m, host)

        def read_request(m):
            with m.If(is_counter):
                m.next = "COUNTER_READ"
            with m.Elif(is_param):
                m.d.comb += [self.host_params.r_en.eq(1), self.host_params.r_addr.eq(param_addr_q)]
                m.d.sync += host.mem_kind.eq(3)
                m.next = "MEM_READ"
            with m.Elif(is_reg):
                # Every read answers from ``mem_rdata``: one source for the AXI read data.
                m.d.sync += host.mem_rdata.eq(block_value)
                m.next = "MEM_RESPOND"
            host.window_reads(m, self.labels, [(self.conv_w, cw_addr_q)], [(self.dense_w, dw_addr_q)])
        return read_request, self._memory_states(host, counter_q, param_signed_q)

    def _register_decode(self, m, host, blocks):
        """Cycle 1: the block, the word, and whether a register is there."""
        addr = host.addr
        blk, word = Signal(range(max(blocks) + 1)), Signal(8)
        is_reg = Signal()
        present = Const(0)
        for b, regs_in in blocks.items():
            runs, start_w = [], None
            for w in range(257):
                if w in regs_in and start_w is None:
                    start_w = w
                elif w not in regs_in and start_w is not None:
                    runs.append((start_w, w))
                    start_w = None
            w_bits = addr[2:10]
            in_block = addr.shift_right(10) == b
            present = present | (in_block & sum(((~less_than(w_bits, lo) & less_than(w_bits, hi)) for lo, hi in runs),
                                                Const(0)).bool())
        m.d.sync += [blk.eq(addr.shift_right(10)), word.eq(addr[2:10]), is_reg.eq(present & (addr[:2] == 0))]
        return blk, word, is_reg, present

    def _counter_decode(self, m, ctl, host):
        """The counters are read from their bank, which sits at an aligned block: a block test
        and a word test, no subtractor."""
        regs, addr = ctl.regmap.by_name, host.addr
        first_counter = regs[COUNTERS[0]].offset
        assert [regs[name].offset for name in COUNTERS] == [first_counter + 4 * i for i in range(len(COUNTERS))]
        counter_bits = (4 * len(COUNTERS) - 1).bit_length()
        assert first_counter % (1 << counter_bits) == 0
        is_counter, counter_q = Signal(), Signal(range(len(COUNTERS)))
        m.d.sync += [is_counter.eq((addr.shift_right(counter_bits) == first_counter >> counter_bits)
                                   & less_than(addr[2:counter_bits], len(COUNTERS)) & (addr[:2] == 0)),
                     counter_q.eq(addr[2:counter_bits])]
        return is_counter, counter_q

    def _param_decode(self, m, ctl, host, blocks, present):
        """CONV_B, DENSE_B, LOGIT and CLASS_COUNT are words of the host's parameter copy."""
        regs, addr, F, NC = ctl.regmap.by_name, host.addr, self.cfg.filters, self.cfg.classes
        param_blocks = {regs[name].offset >> 10: (region, count, signed_)
                        for name, region, count, signed_ in (("CONV_B0", CONV_B, F, True),
                                                             ("DENSE_B0", DENSE_B, NC, True),
                                                             ("LOGIT0", LOGIT, NC, True),
                                                             ("CLASS_COUNT0", COUNT, NC, False))}
        assert all(len(blocks[b]) == count for b, (_, count, _) in param_blocks.items())
        is_param, param_addr_q, param_signed_q = Signal(), Signal(self.region_bits + 2), Signal()
        m.d.sync += is_param.eq(0)
        for b, (region, _, signed_) in param_blocks.items():
            with m.If(addr.shift_right(10) == b):
                m.d.sync += [is_param.eq(present & (addr[:2] == 0)), param_addr_q.eq(self.param(region, addr[2:10])),
                             param_signed_q.eq(signed_)]
        return is_param, param_addr_q, param_signed_q

    def _block_value(self, m, host, blocks, blk, word):
        """Cycle 2: the register's value.  Each block is multiplexed at the width of its widest
        register and extended after: a block of 16-bit signed values needs a 16-bit
        multiplexer, not a 32-bit one."""
        readable = host.readable

        def reg_source(reg):
            source = readable.get(reg.name)
            return Const(reg.reset, 32) if source is None else Value.cast(source)

        block_values = []
        for b in range(max(blocks) + 1):
            sources = {w: reg_source(reg) for w, reg in blocks.get(b, {}).items()}
            signed_block = any(v.shape().signed for v in sources.values())
            width = max((len(v) + (signed_block and not v.shape().signed) for v in sources.values()), default=1)
            shape = signed(width) if signed_block else unsigned(width)
            block_values.append(Array(sources[w].as_signed() if w in sources and signed_block else
                                      sources.get(w, Const(0, shape)) for w in range(max(sources, default=0) + 1)))
        block_value = Signal(signed(32))
        with m.Switch(blk):
            for b, values in enumerate(block_values):
                with m.Case(b):
                    m.d.comb += block_value.eq(values[word])
        return block_value

    def _weight_addresses(self, m, host):
        """The golden model's index of a weight, which is its word: constant products as shifts and adds."""
        cfg, lay, cw, dwf = self.cfg, self.lay, host.cw, host.dwf
        C, K, KK, D, P = cfg.in_c, cfg.kernel, lay["kk"], lay["dense_in"], lay["positions"]
        cw_addr_q = Signal(index(lay["conv_words"]))
        dw_addr_q = Signal(index(lay["dense_words"]))
        m.d.sync += [cw_addr_q.eq(times(cw["f"][0], C * KK) + times(cw["c"][0], KK) + times(cw["i"][0], K)
                                  + cw["j"][0]),
                     dw_addr_q.eq(times(dwf["o"][0], D) + times(dwf["f"][0], P) + times(dwf["y"][0], cfg.out_w)
                                  + dwf["x"][0])]
        return cw_addr_q, dw_addr_q

    def _memory_states(self, host, counter_q, param_signed_q):
        mem_kind, mem_rdata, dw, counters = host.mem_kind, host.mem_rdata, self.cfg.data_width, self.counters

        def memory_states(m):
            with m.State("MEM_READ"):
                # The word read is registered before it answers.
                with m.Switch(mem_kind):
                    with m.Case(0):
                        m.d.sync += mem_rdata.eq(self.labels.r_data)
                    with m.Case(1):
                        m.d.sync += mem_rdata.eq(self.conv_w.r_data.as_signed())
                    with m.Case(2):
                        m.d.sync += mem_rdata.eq(self.dense_w.r_data.as_signed())
                    with m.Case(3):
                        pw = len(self.host_params.r_data)
                        m.d.sync += mem_rdata.eq(Mux(param_signed_q, self.host_params.r_data[:dw].as_signed(),
                                                     self.host_params.r_data[:pw]))
                m.next = "MEM_RESPOND"
            with m.State("COUNTER_READ"):
                m.d.comb += [counters.rd_en.eq(1), counters.rd_index.eq(counter_q)]
                with m.If(counters.rd_ready):
                    m.next = "COUNTER_WAIT"
            with m.State("COUNTER_WAIT"):
                with m.If(counters.rd_valid):
                    m.d.sync += mem_rdata.eq(counters.rd_data)
                    m.next = "MEM_RESPOND"
        return memory_states
