"""The serial datapath: one MAC lane for devices too small for the lane array.

ARCHITECTURE 4.1 gives each processing unit ``kernel**2`` lanes.  On an iCE40
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

``CONV_FWD``  per filter, one window sweep over all channels; per window
              ``KK`` ``DOT`` products; the position's sum (from the bias) is
              narrowed, ReLU'd and written to the activations.
``DENSE_FWD`` per class, ``D`` ``DOT`` products from the bias; narrowed to the logit.
``LOSS``      :class:`~tinycl_hdl.rtl.loss.LossGradient`.
``DENSE_BWD`` per activation ``k`` and class ``o``: one weight read feeds a
              ``DOT`` product ``w * delta[o]`` (the input gradient, old weight)
              and an ``UPDATE`` from ``a[k] * delta[o]``; after the last class
              the masked input gradient is written; then the biases, from
              ``delta[o] * 1.0``.
``CONV_BWD``  per filter and channel, a single-channel sweep of ``OUTER``
              products ``window x grad[f, y, x]`` (and ``grad * 1.0`` into the
              bias accumulator on channel 0), then ``UPDATE`` of the kernel
              slice (and the bias) from the accumulators.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import TinyCLConfig
from ..golden import init_bits
from ..regmap import Command, ErrorCode, Phase, RegisterMap
from .arith import index, round_shift, saturate
from .axi import AxiLiteSlave, axi_lite_members
from .lfsr import Lfsr
from .loss import LossGradient
from .mac import Control, GradSource, Mode, _check_positive, _narrow_stages, _update_stages
from .memory import MemoryShape, SampleMemory, Sram, sample_bank_shape, sample_layout
from .counters import CounterBank
from .window import SnakeWindow

__all__ = ["SerialMac", "SerialTinyCL", "serial_memory_shapes", "serial_dual_port_memories"]

#: The performance counters, in register-map order.
COUNTERS = ["CYCLES"] + [f"CYC_{ph.name}" for ph in Phase] + ["OPERAND_SETS", "SAMPLE_READS", "TRAIN_SAMPLES"]
#: Cycles INSERT waits for the registered class-balance test.
INS_LOOKUP_CYCLES = 3


class SerialControl(data.Struct):
    """Control of one operand pair: :class:`~tinycl_hdl.rtl.mac.Control` and the lane it uses."""
    ctl: Control
    lane: 8


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
    blackbox : bool
        The lane accumulators as an SRAM macro.

    Members
    -------
    valid, mode, first, source, lane : In
        Control of this cycle's operand pair.  ``DOT`` adds ``a * b`` to the dot accumulator
        (``first``: to ``init_bias * 1.0``); ``OUTER`` adds it to lane ``lane``'s accumulator
        (``first``: to zero); ``UPDATE`` produces ``sat(w - round(g >> (frac + lr_shift)))``
        with ``g`` the product or lane ``lane``'s accumulator (``source``).
    a, b, w, init_bias : In(signed(data_width))
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

    #: input registers, product, accumulate, round (or clamp), saturate (or apply)
    latency = 5

    def __init__(self, data_width: int, frac_bits: int, acc_width: int, lane_acc_width: int, lanes: int,
                 tag_width: int = 8, *, blackbox: bool = False):
        for name, value in (("data_width", data_width), ("frac_bits", frac_bits), ("acc_width", acc_width),
                            ("lane_acc_width", lane_acc_width), ("lanes", lanes), ("tag_width", tag_width)):
            _check_positive(name, value)
        self._dw, self._frac, self._aw, self._law = data_width, frac_bits, acc_width, lane_acc_width
        self._lanes, self._tag_width, self._blackbox = lanes, tag_width, blackbox
        dw = data_width
        super().__init__({
            "valid": In(1), "mode": In(2), "first": In(1), "source": In(1), "lane": In(index(lanes)),
            "a": In(signed(dw)), "b": In(signed(dw)), "w": In(signed(dw)), "init_bias": In(signed(dw)),
            "tag": In(tag_width), "lr_shift": In(range(dw + 1)),
            "out_valid": Out(1), "out_mode": Out(2), "out_tag": Out(tag_width),
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
        # v1: registered inputs; the lane accumulator is read from them.
        ctl1, ctl2, ctl3, ctl4 = (Signal(Control, name=f"ctl{s}") for s in range(1, 5))
        lane1, lane2 = Signal.like(self.lane, name="lane1"), Signal.like(self.lane, name="lane2")
        a1, b1 = Signal(signed(dw)), Signal(signed(dw))
        w1, w2, w3, w4 = (Signal(signed(dw), name=f"w{s}") for s in range(1, 5))
        init1, init2 = Signal(signed(dw)), Signal(signed(dw))
        tags = [Signal(self._tag_width, name=f"tag{s}") for s in range(1, 5)]
        m.d.sync += [ctl1.valid.eq(self.valid), ctl1.mode.eq(self.mode), ctl1.first.eq(self.first),
                     ctl1.source.eq(self.source), lane1.eq(self.lane), a1.eq(self.a), b1.eq(self.b),
                     w1.eq(self.w), init1.eq(self.init_bias), tags[0].eq(self.tag)]
        m.d.comb += [lane_acc.r_en.eq(1), lane_acc.r_addr.eq(lane1)]
        # v2: the registered product (a DSP with its output register) and the lane's accumulator.
        product = Signal(signed(2 * dw))
        m.d.sync += [product.eq(a1 * b1), ctl2.eq(ctl1), lane2.eq(lane1), w2.eq(w1), init2.eq(init1),
                     ctl3.eq(ctl2), w3.eq(w2), ctl4.eq(ctl3), w4.eq(w3),
                     tags[1].eq(tags[0]), tags[2].eq(tags[1]), tags[3].eq(tags[2])]
        lane_value = lane_acc.r_data.as_signed()
        dot = Signal(signed(self._aw))
        with m.If(ctl2.valid & (ctl2.mode == Mode.DOT)):
            m.d.sync += dot.eq(Mux(ctl2.first, init2 << frac, dot) + product)
        with m.If(ctl2.valid & (ctl2.mode == Mode.OUTER)):
            m.d.comb += [lane_acc.w_en.eq(1), lane_acc.w_addr.eq(lane2),
                         lane_acc.w_data.eq(Mux(ctl2.first, 0, lane_value) + product)]
        grad = Signal(signed(max(self._law, 2 * dw)))
        m.d.comb += grad.eq(Mux(ctl2.source == GradSource.ACC, lane_value, product))
        # v3 .. v5: shift, clamp, apply (UPDATE); round, saturate (the dot accumulator).
        _update_stages(m, grad, self.lr_shift, frac, w4, ctl4.valid & (ctl4.mode == Mode.UPDATE), self.upd)
        _narrow_stages(m, dot, self.dot_narrow, frac)
        m.d.sync += [self.out_valid.eq(ctl4.valid), self.out_mode.eq(ctl4.mode), self.out_tag.eq(tags[3])]
        return m


def serial_layout(cfg: TinyCLConfig) -> dict:
    kk = cfg.kernel ** 2
    positions = cfg.out_h * cfg.out_w
    return {"kk": kk, "positions": positions, "dense_in": cfg.dense_in, "conv_words": cfg.filters * cfg.conv_fan_in,
            "dense_words": cfg.classes * cfg.dense_in}


def _param_width(cfg: TinyCLConfig) -> int:
    """Bits of a word of the host's parameter copy: a data word or a class count."""
    return max(cfg.data_width, cfg.slots.bit_length())


def _memories(cfg: TinyCLConfig) -> dict:
    lay = serial_layout(cfg)
    dw = cfg.data_width
    return {"conv_w": MemoryShape(dw, lay["conv_words"]), "dense_w": MemoryShape(dw, lay["dense_words"]),
            "act": MemoryShape(dw, cfg.dense_in), "grad": MemoryShape(dw, cfg.dense_in),
            "labels": MemoryShape(8, cfg.slots), "order": MemoryShape(16, cfg.slots),
            # Conv biases then dense biases, which the datapath reads; the host reads its own copy,
            # which also mirrors the logits and the class counts (HOST_PARAMS), written together.
            "biases": MemoryShape(dw, cfg.filters + cfg.classes),
            "host_params": MemoryShape(_param_width(cfg), cfg.filters + 3 * cfg.classes)}


def serial_memory_shapes(cfg: TinyCLConfig) -> list:
    """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory of the serial top."""
    return (list(_memories(cfg).values()) + [MemoryShape(cfg.lane_acc_width, cfg.kernel ** 2 + 1),
                                             MemoryShape(32, len(COUNTERS))]
            + [sample_bank_shape(cfg)] * cfg.kernel)


def serial_dual_port_memories(cfg: TinyCLConfig) -> list:
    """Instance paths, below :class:`~tinycl_hdl.rtl.top.TinyCL`, of the memories with a read
    and a write port."""
    return [f"serial.{name}" for name in _memories(cfg)] + ["serial.mac.lane_acc", "serial.counters.mem"]


def times(value, constant: int):
    """``value * constant`` as shifts and adds: a constant product needs no multiplier."""
    terms = [value << b for b in range(constant.bit_length()) if constant >> b & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


class SerialTinyCL(wiring.Component):
    """The accelerator around :class:`SerialMac` (``datapath="serial"``); ports and register
    map as :class:`~tinycl_hdl.rtl.top.TinyCL`."""

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg = cfg
        self._blackbox = blackbox
        self._regmap = RegisterMap(cfg)
        members = axi_lite_members(self._regmap.address_width)
        members["busy"] = Out(1)
        super().__init__(members)

    @property
    def regmap(self) -> RegisterMap:
        return self._regmap

    def macros(self):
        return serial_memory_shapes(self._cfg)

    def elaborate(self, platform):
        m = Module()
        cfg, regmap = self._cfg, self._regmap
        dw, frac, K = cfg.data_width, cfg.frac_bits, cfg.kernel
        lay = serial_layout(cfg)
        KK, P, D = lay["kk"], lay["positions"], lay["dense_in"]
        C, NC, F = cfg.in_c, cfg.classes, cfg.filters
        bb = self._blackbox
        slay = sample_layout(cfg)
        ONE = Const(1 << frac, signed(dw))

        # -- submodules ------------------------------------------------------------------
        m.submodules.axi = axi = AxiLiteSlave(regmap.address_width)
        for name in axi_lite_members(regmap.address_width):
            port, inner = getattr(self, name), getattr(axi, name)
            if name in ("s_axil_awready", "s_axil_wready", "s_axil_bresp", "s_axil_bvalid", "s_axil_arready",
                        "s_axil_rdata", "s_axil_rresp", "s_axil_rvalid"):
                m.d.comb += port.eq(inner)
            else:
                m.d.comb += inner.eq(port)
        m.submodules.samples = samples = SampleMemory(cfg, blackbox=bb)
        m.submodules.window = window = SnakeWindow(cfg)
        m.submodules.loss = loss = LossGradient(cfg)
        m.submodules.lfsr = lfsr = Lfsr(cfg.seed)
        m.d.comb += [samples.rd_en.eq(window.rd_en), samples.rd_addr.eq(window.rd_addr),
                     window.rd_data.eq(samples.rd_data)]
        mems = {}
        for name, shape in _memories(cfg).items():
            mems[name] = m.submodules[name] = Sram.of(shape, blackbox=bb)
        conv_w, dense_w, act, grad = mems["conv_w"], mems["dense_w"], mems["act"], mems["grad"]
        labels, order = mems["labels"], mems["order"]
        biases, host_params = mems["biases"], mems["host_params"]
        # Words of ``host_params``: conv biases, dense biases (also in ``biases``), logits, counts.
        LOGIT_BASE, COUNT_BASE = F + NC, F + 2 * NC
        param_w_en, param_w_addr = Signal(), Signal(index(F + 3 * NC))
        param_w_data = Signal(_param_width(cfg))
        m.d.comb += [host_params.w_en.eq(param_w_en), host_params.w_addr.eq(param_w_addr),
                     host_params.w_data.eq(param_w_data),
                     biases.w_en.eq(param_w_en & (param_w_addr < F + NC)), biases.w_addr.eq(param_w_addr),
                     biases.w_data.eq(param_w_data)]
        bias_value = biases.r_data.as_signed()

        KIND_NONE, KIND_ACT, KIND_LOGIT, KIND_GRAD, KIND_DW, KIND_CW, KIND_CB, KIND_DB = range(8)
        tag_layout = data.StructLayout({"kind": 3, "addr": index(max(lay["dense_words"], lay["conv_words"], D)),
                                        "mask": 1})
        m.submodules.mac = mac = SerialMac(dw, frac, cfg.acc_width, cfg.lane_acc_width, KK + 1,
                                           tag_layout.size, blackbox=bb)
        latency = mac.latency

        # -- architectural state -----------------------------------------------------------
        lr_shift = Signal(range(dw + 1), init=cfg.lr_shift)
        epochs = Signal(16, init=cfg.epochs)
        seed = Signal(31, init=cfg.seed)
        label_reg = Signal(32)
        command = Signal(4)
        error = Signal(4)
        result = Signal(32)
        kept = Signal()
        size = Signal(range(cfg.slots + 1))
        counts = Array(Signal(range(cfg.slots + 1), name=f"count{c}") for c in range(NC))
        logits = Array(Signal(signed(dw), name=f"logit{o}") for o in range(NC))
        busy = Signal()
        abort = Signal()
        phase = Signal(3, init=Phase.OTHER)
        # The performance counters, in register-map order, in block RAM.
        counter_names = COUNTERS
        m.submodules.counters = counters = CounterBank(len(counter_names), K, blackbox=bb)
        counter_inc = {name: counters.inc[i] for i, name in enumerate(counter_names)}
        clear_counters = Signal()
        start = Signal()
        start_cmd = Signal(4)
        m.d.comb += [self.busy.eq(busy), lfsr.seed_in.eq(seed), mac.lr_shift.eq(lr_shift)]
        for c in range(NC):
            m.d.comb += loss.logits[c].eq(logits[c])

        def pixel_data(pixel):
            if frac >= 8:
                return (pixel << (frac - 8)).as_signed()
            return saturate(round_shift(pixel, 8 - frac), dw)

        # -- operand issue ------------------------------------------------------------------
        # A *prepare* cycle drives the memory reads of one operand pair and registers what it
        # is (``prep``); the next cycle, *issue*, selects the operands from the memories'
        # outputs and the holding registers and hands them to the lane.
        OP_NONE, OP_CF, OP_DF, OP_DB_GRAD, OP_DB_UPD, OP_DB_BIAS, OP_CB, OP_CB_BIAS, OP_CB_UPD, OP_CB_BUPD = range(10)
        op_layout = data.StructLayout({"op": 4, "lane": index(KK + 1), "first": 1, "last": 1,
                                       "addr": tag_layout["addr"].shape})
        prep = Signal(op_layout)          # driven combinationally by the phase that prepares
        iss = Signal(op_layout)           # the same, one cycle later
        m.d.sync += iss.eq(prep)
        o = Signal(index(NC))             # class of the dense loops
        iss_o = Signal.like(o)
        m.d.sync += iss_o.eq(o)
        f = Signal(index(F))
        px = Signal(8)                    # the window pixel of the prepared pair
        w_hold, act_hold, g_hold = Signal(signed(dw)), Signal(signed(dw)), Signal(signed(dw))
        delta = Signal(signed(dw))
        m.d.comb += delta.eq(loss.delta[iss_o])
        act_value, dense_value = act.r_data.as_signed(), dense_w.r_data.as_signed()
        conv_value, grad_value = conv_w.r_data.as_signed(), grad.r_data.as_signed()
        tag = Signal(tag_layout)
        m.d.comb += [mac.valid.eq(iss.op != OP_NONE), mac.lane.eq(iss.lane), mac.tag.eq(tag),
                     tag.addr.eq(iss.addr)]
        m.d.comb += counter_inc["OPERAND_SETS"].eq(iss.op != OP_NONE)
        with m.Switch(iss.op):
            with m.Case(OP_CF):
                m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(pixel_data(px)),
                             mac.b.eq(conv_value), mac.init_bias.eq(bias_value),
                             tag.kind.eq(Mux(iss.last, KIND_ACT, KIND_NONE))]
            with m.Case(OP_DF):
                m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(act_value),
                             mac.b.eq(dense_value), mac.init_bias.eq(bias_value),
                             tag.kind.eq(Mux(iss.last, KIND_LOGIT, KIND_NONE)), tag.addr.eq(iss_o)]
            with m.Case(OP_DB_GRAD):
                # The first class's pair also brings the activation, held for the others.
                a_k = Mux(iss.first, act_value, act_hold)
                m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(dense_value),
                             mac.b.eq(delta), tag.kind.eq(Mux(iss.last, KIND_GRAD, KIND_NONE)),
                             tag.mask.eq(a_k > 0)]
                m.d.sync += [w_hold.eq(dense_value), act_hold.eq(a_k)]
            with m.Case(OP_DB_UPD):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(act_hold),
                             mac.b.eq(delta), mac.w.eq(w_hold), tag.kind.eq(KIND_DW)]
            with m.Case(OP_DB_BIAS):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(delta),
                             mac.b.eq(ONE), mac.w.eq(bias_value), tag.kind.eq(KIND_DB), tag.addr.eq(F + iss_o)]
            with m.Case(OP_CB):
                # The position's gradient arrives with its first lane and is held for the rest.
                g = Mux(iss.lane == 0, grad_value, g_hold)
                m.d.comb += [mac.mode.eq(Mode.OUTER), mac.first.eq(iss.first), mac.a.eq(pixel_data(px)),
                             mac.b.eq(g)]
                m.d.sync += g_hold.eq(g)
            with m.Case(OP_CB_BIAS):
                m.d.comb += [mac.mode.eq(Mode.OUTER), mac.first.eq(iss.first), mac.a.eq(g_hold), mac.b.eq(ONE)]
            with m.Case(OP_CB_UPD):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.ACC), mac.w.eq(conv_value),
                             tag.kind.eq(KIND_CW)]
            with m.Case(OP_CB_BUPD):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.ACC),
                             mac.w.eq(bias_value), tag.kind.eq(KIND_CB)]

        # -- write-back ------------------------------------------------------------------------
        out_tag = Signal(tag_layout)
        m.d.comb += out_tag.eq(mac.out_tag)
        with m.If(mac.out_valid):
            with m.Switch(out_tag.kind):
                with m.Case(KIND_ACT):
                    m.d.comb += [act.w_en.eq(1), act.w_addr.eq(out_tag.addr),
                                 act.w_data.eq(Mux(mac.dot_narrow > 0, mac.dot_narrow, 0))]
                with m.Case(KIND_LOGIT):
                    m.d.sync += logits[out_tag.addr[:len(o)]].eq(mac.dot_narrow)
                    m.d.comb += [param_w_en.eq(1), param_w_addr.eq(LOGIT_BASE + out_tag.addr),
                                 param_w_data.eq(mac.dot_narrow)]
                with m.Case(KIND_GRAD):
                    m.d.comb += [grad.w_en.eq(1), grad.w_addr.eq(out_tag.addr),
                                 grad.w_data.eq(Mux(out_tag.mask, mac.dot_narrow, 0))]
                with m.Case(KIND_DW):
                    m.d.comb += [dense_w.w_en.eq(1), dense_w.w_addr.eq(out_tag.addr), dense_w.w_data.eq(mac.upd)]
                with m.Case(KIND_CW):
                    m.d.comb += [conv_w.w_en.eq(1), conv_w.w_addr.eq(out_tag.addr), conv_w.w_data.eq(mac.upd)]
                with m.Case(KIND_CB, KIND_DB):
                    m.d.comb += [param_w_en.eq(1), param_w_addr.eq(out_tag.addr), param_w_data.eq(mac.upd)]

        # -- window sweeps: one fetch per ``beats`` cycles, ``beats`` pairs per window ----------
        sweep_fwd = Signal()              # the sweep feeds the conv forward pass (else the gradient)
        sweeping = Signal()               # the window or the lane walk is at work
        beat = Signal(range(KK + 1))
        beats = Mux(sweep_fwd, KK, KK + 1)
        m.d.comb += window.advance.eq(beat == 0)
        with m.If(sweeping):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
        with m.Else():
            m.d.sync += beat.eq(0)
        chan_sweep = Signal(index(C))
        walking = Signal()                # the lanes of a window are being prepared
        lane = Signal(index(KK + 1))
        w_first, w_last_chan, w_last = Signal(), Signal(), Signal()
        w_pos = Signal.like(window.pos)
        seen_output = Signal()            # the sweep has produced a window (the weight gradient's ``first``)
        w_first_out = Signal()
        f_conv_base = Signal(index(lay["conv_words"] + 1))    # f * C * KK
        f_plane_base = Signal(index(D + 1))                    # f * P
        cw_addr = Signal.like(f_conv_base)
        lane_count = Mux(sweep_fwd, KK, Mux(chan_sweep == 0, KK + 1, KK))
        walk_lane = Signal.like(lane)     # this cycle's lane (0 on the window's valid cycle)
        m.d.comb += walk_lane.eq(Mux(window.valid, 0, lane))
        walk = Signal()
        m.d.comb += walk.eq(window.valid | walking)
        with m.If(window.valid):
            m.d.sync += [w_first.eq(window.first_chan), w_last_chan.eq(window.last_chan), w_last.eq(window.last),
                         w_pos.eq(window.pos), w_first_out.eq(~seen_output), seen_output.eq(1)]
        first_lane_first = Mux(window.valid, window.first_chan, w_first)
        with m.If(walk):
            m.d.sync += px.eq(Array(window.window[j] for j in range(KK))[walk_lane])
            with m.If(walk_lane == lane_count - 1):
                m.d.sync += [walking.eq(0), lane.eq(0)]
            with m.Else():
                m.d.sync += [walking.eq(1), lane.eq(walk_lane + 1)]
            with m.If(sweep_fwd):
                with m.If(window.valid):
                    m.d.comb += [biases.r_en.eq(1), biases.r_addr.eq(f)]
                addr = Mux(window.valid & window.first_chan, f_conv_base, cw_addr)
                m.d.comb += [conv_w.r_en.eq(1), conv_w.r_addr.eq(addr),
                             prep.op.eq(OP_CF), prep.lane.eq(walk_lane),
                             prep.first.eq(first_lane_first & (walk_lane == 0)),
                             prep.last.eq(Mux(window.valid, window.last_chan, w_last_chan) & (walk_lane == KK - 1)),
                             prep.addr.eq(f_plane_base + Mux(window.valid, window.pos, w_pos))]
                m.d.sync += cw_addr.eq(addr + 1)
            with m.Else():
                with m.If(window.valid):
                    m.d.comb += [grad.r_en.eq(1), grad.r_addr.eq(f_plane_base + window.pos)]
                m.d.comb += [prep.op.eq(Mux(walk_lane == KK, OP_CB_BIAS, OP_CB)), prep.lane.eq(walk_lane),
                             prep.first.eq(Mux(window.valid, ~seen_output, w_first_out))]

        # -- control unit -----------------------------------------------------------------------
        slot = Signal(index(cfg.slots + 1))
        m.d.comb += window.slot.eq(slot)
        sample_label = Signal(8)
        epoch = Signal(16)
        idx = Signal(index(cfg.slots + 1))
        ctr = Signal(range(max(cfg.slots, KK + 2, latency + 3, INS_LOOKUP_CYCLES) + 1))
        k = Signal(range(D + 1))
        run_addr = Signal(index(lay["dense_words"] + 1))
        half = Signal()
        vi, sh_i, sh_j = (Signal(index(cfg.slots), name=n) for n in ("vi", "sh_i", "sh_j"))
        target = Signal(index(cfg.slots))
        largest = Signal(index(NC))
        largest_count = Signal.like(counts[0])
        victim = Signal(index(cfg.slots))
        matches = Signal(index(cfg.slots))
        evict = Signal()
        scan_hit, scan_victim = Signal(), Signal()
        copy_w = Signal(index(slay["slot_words"]))
        copy_write = Signal()
        copy_waddr = Signal(samples.addr_width)
        best = Signal(signed(dw))
        candidate, candidate_o, candidate_valid = Signal(signed(dw)), Signal.like(o), Signal()
        from_scratch = Signal()
        is_infer = Signal()
        init_addr = Signal(index(max(lay["dense_words"], lay["conv_words"]) + 1))
        init_valid, init_dense, init_waddr = Signal(), Signal(), Signal.like(init_addr)
        init_wdense = Signal()            # the draw being written is a dense weight

        # GDumb's class-balance test over three registered steps (INS_LOOKUP_CYCLES).
        seen_before, label_new = Signal(range(NC + 1)), Signal()
        seen = Signal(range(NC + 2))
        label_count = Signal.like(counts[0])
        threshold = Array(Const(cfg.slots // max(1, s), range(cfg.slots + 1)) for s in range(NC + 2))
        label_full = Signal()
        count_of_label = counts[label_reg[:8]]
        m.d.sync += [seen_before.eq(sum((c != 0 for c in counts), Const(0, range(NC + 1)))),
                     label_count.eq(count_of_label), label_new.eq(count_of_label == 0),
                     seen.eq(seen_before + label_new),
                     label_full.eq(label_count >= threshold[seen])]
        conv_bits, dense_bits = init_bits(cfg, cfg.conv_fan_in), init_bits(cfg, cfg.dense_in)
        drawn = Signal(signed(dw))
        m.d.comb += drawn.eq(Mux(init_wdense,
                                 lfsr.state[32 - dense_bits:] - (1 << (dense_bits - 1)),
                                 lfsr.state[32 - conv_bits:] - (1 << (conv_bits - 1))))

        def below(n):
            return ((lfsr.state >> 16) * n) >> 16

        # Busy cycles of a command (the clearing after reset is none); pixels fetched.
        counting = Signal()
        m.d.comb += [counters.clear.eq(clear_counters), counter_inc["CYCLES"].eq(counting),
                     counter_inc["SAMPLE_READS"].eq(Mux(window.busy & window.advance, K, 0))]
        for ph in Phase:
            m.d.comb += counter_inc[f"CYC_{ph.name}"].eq(counting & (phase == ph))

        m.d.comb += loss.label.eq(sample_label)

        def wait(cycles, next_state):
            with m.If(ctr == cycles - 1):
                m.d.sync += ctr.eq(0)
                m.next = next_state
            with m.Else():
                m.d.sync += ctr.eq(ctr + 1)

        def drain(next_state):
            """Wait until the pairs issued so far are written back."""
            wait(latency + 2, next_state)

        def check_abort():
            with m.If(abort):
                m.d.sync += [sweeping.eq(0), walking.eq(0), lane.eq(0)]
                m.d.comb += [window.cancel.eq(1), loss.cancel.eq(1)]
                m.next = "ABORT_DRAIN"

        def start_sweep(forward, first_chan, last_chan):
            m.d.comb += [window.start.eq(1), window.chan_first.eq(first_chan), window.chan_last.eq(last_chan)]
            m.d.sync += [sweep_fwd.eq(forward), sweeping.eq(1), seen_output.eq(0)]

        def sweep_done():
            """The window has delivered its last window and its lanes are prepared."""
            return ~window_pending & ~window.valid & ~walking & seen_output

        # Windows still inside the window's pipeline after its sequencer stopped.
        window_pending = Signal()
        pend_ctr = Signal(range(window.latency + 2))
        with m.If(window.busy):
            m.d.sync += pend_ctr.eq(window.latency + 1)
        with m.Elif(pend_ctr != 0):
            m.d.sync += pend_ctr.eq(pend_ctr - 1)
        m.d.comb += window_pending.eq(window.busy | (pend_ctr != 0))

        with m.FSM(name="control", init="PARAM_CLEAR") as control:
            with m.State("PARAM_CLEAR"):
                # Reset zeroes the parameter memories (biases, logit and count copies), TRAIN
                # the biases, one word per cycle.
                m.d.comb += [param_w_en.eq(1), param_w_addr.eq(ctr), param_w_data.eq(0)]
                with m.If(ctr == Mux(from_scratch, F + NC - 1, F + 3 * NC - 1)):
                    m.d.sync += ctr.eq(0)
                    with m.If(from_scratch):
                        m.next = "INIT"
                    with m.Else():
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += ctr.eq(ctr + 1)
            with m.State("IDLE"):
                with m.If(start):
                    m.d.sync += [ctr.eq(0), abort.eq(0)]
                    with m.Switch(start_cmd):
                        with m.Case(Command.INSERT):
                            m.next = "INS_LOOKUP"
                        with m.Case(Command.TRAIN, Command.TRAIN_KEEP):
                            m.d.sync += [from_scratch.eq(start_cmd == Command.TRAIN), is_infer.eq(0),
                                         init_addr.eq(0), init_dense.eq(0), init_valid.eq(0)]
                            with m.If(start_cmd == Command.TRAIN):
                                m.next = "PARAM_CLEAR"
                            with m.Else():
                                m.next = "ORDER_INIT"
                        with m.Case(Command.INFER):
                            m.d.sync += [is_infer.eq(1), slot.eq(cfg.slots)]
                            m.next = "CF_START"
            # ---- INSERT -------------------------------------------------------------------
            with m.State("INS_LOOKUP"):
                wait(INS_LOOKUP_CYCLES, "INS_CHECK")
            with m.State("INS_CHECK"):
                m.d.sync += [evict.eq(0), o.eq(0), largest.eq(0), largest_count.eq(0)]
                with m.If(size < cfg.slots):
                    m.d.sync += [target.eq(size), copy_w.eq(0), copy_write.eq(0)]
                    m.next = "INS_COPY"
                with m.Elif(label_full):
                    m.d.sync += [kept.eq(0), result.eq(0xFFFFFFFF)]
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += evict.eq(1)
                    m.next = "INS_LARGEST"
            with m.State("INS_LARGEST"):
                with m.If(counts[o] > largest_count):
                    m.d.sync += [largest.eq(o), largest_count.eq(counts[o])]
                with m.If(o == NC - 1):
                    m.d.comb += lfsr.draw.eq(1)
                    m.next = "INS_VICTIM"
                with m.Else():
                    m.d.sync += o.eq(o + 1)
            with m.State("INS_VICTIM"):
                m.d.sync += [victim.eq(below(largest_count)), matches.eq(0), ctr.eq(0)]
                m.next = "INS_SCAN_READ"
            with m.State("INS_SCAN_READ"):
                m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(ctr)]
                m.next = "INS_SCAN_COMPARE"
            with m.State("INS_SCAN_COMPARE"):
                m.d.sync += [scan_hit.eq(labels.r_data == largest), scan_victim.eq(matches == victim)]
                m.next = "INS_SCAN_CHECK"
            with m.State("INS_SCAN_CHECK"):
                with m.If(scan_hit):
                    with m.If(scan_victim):
                        m.d.sync += [target.eq(ctr), copy_w.eq(0), copy_write.eq(0)]
                        m.next = "INS_COPY"
                    with m.Else():
                        m.d.sync += [matches.eq(matches + 1), ctr.eq(ctr + 1)]
                        m.next = "INS_SCAN_READ"
                with m.Else():
                    m.d.sync += ctr.eq(ctr + 1)
                    m.next = "INS_SCAN_READ"
            with m.State("INS_COPY"):
                with m.If(~copy_write):
                    m.d.comb += samples.rd_en.eq(1)
                    for b in range(K):
                        m.d.comb += samples.rd_addr[b].eq(cfg.slots * slay["slot_words"] + copy_w)
                    m.d.sync += [copy_write.eq(1), copy_waddr.eq(target * slay["slot_words"] + copy_w)]
                with m.Else():
                    for b in range(K):
                        m.d.comb += [samples.wr_en[b].eq(1), samples.wr_addr[b].eq(copy_waddr),
                                     samples.wr_data[b].eq(samples.rd_data[b])]
                    m.d.sync += [copy_write.eq(0), copy_w.eq(copy_w + 1)]
                    with m.If(copy_w == slay["slot_words"] - 1):
                        m.next = "INS_FINISH"
            with m.State("INS_FINISH"):
                m.d.comb += [labels.w_en.eq(1), labels.w_addr.eq(target), labels.w_data.eq(label_reg[:8])]
                with m.If(evict):
                    m.d.sync += counts[largest].eq(counts[largest] - 1)
                with m.Else():
                    m.d.sync += size.eq(size + 1)
                m.d.sync += [counts[label_reg[:8]].eq(counts[label_reg[:8]] + 1), kept.eq(1), result.eq(target)]
                m.next = "INS_COUNT_LABEL"
            # The host's copies of the two counts that changed, one write each.
            with m.State("INS_COUNT_LABEL"):
                m.d.comb += [param_w_en.eq(1), param_w_addr.eq(COUNT_BASE + label_reg[:8]),
                             param_w_data.eq(count_of_label)]
                m.next = "INS_COUNT_EVICTED"
            with m.State("INS_COUNT_EVICTED"):
                with m.If(evict):
                    m.d.comb += [param_w_en.eq(1), param_w_addr.eq(COUNT_BASE + largest),
                                 param_w_data.eq(counts[largest])]
                m.next = "DONE"
            # ---- TRAIN / INFER ---------------------------------------------------------------
            with m.State("INIT"):
                # One draw per weight in the golden model's order, which is the memories' order;
                # each is written a cycle later.
                m.d.comb += lfsr.draw.eq(1)
                m.d.sync += [init_valid.eq(1), init_waddr.eq(init_addr), init_wdense.eq(init_dense)]
                with m.If(~init_dense & (init_addr == lay["conv_words"] - 1)):
                    m.d.sync += [init_dense.eq(1), init_addr.eq(0)]
                with m.Elif(init_dense & (init_addr == lay["dense_words"] - 1)):
                    m.next = "INIT_LAST"
                with m.Else():
                    m.d.sync += init_addr.eq(init_addr + 1)
            with m.State("INIT_LAST"):
                m.d.sync += [init_valid.eq(0), ctr.eq(0)]
                m.next = "ORDER_INIT"
            with m.State("ORDER_INIT"):
                m.d.sync += [epoch.eq(0), init_dense.eq(0)]
                with m.If(ctr == size):
                    m.d.sync += ctr.eq(0)
                    m.next = "EPOCH_START"
                with m.Else():
                    m.d.comb += [order.w_en.eq(1), order.w_addr.eq(ctr), order.w_data.eq(ctr)]
                    m.d.sync += ctr.eq(ctr + 1)
            with m.State("EPOCH_START"):
                check_abort()
                with m.If(~abort):
                    with m.If(epoch == epochs):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += [sh_i.eq(size - 1), epoch.eq(epoch + 1)]
                        m.next = "SH_DRAW"
            with m.State("SH_DRAW"):
                with m.If((size <= 1) | (sh_i == 0)):
                    m.d.sync += [idx.eq(0), phase.eq(Phase.CONV_FWD)]
                    m.next = "SAMPLE_FETCH"
                with m.Else():
                    m.d.comb += lfsr.draw.eq(1)
                    m.next = "SH_J"
            with m.State("SH_J"):
                m.d.comb += [order.r_en.eq(1), order.r_addr.eq(sh_i)]
                m.d.sync += sh_j.eq(below(sh_i + 1))
                m.next = "SH_READ_J"
            with m.State("SH_READ_J"):
                m.d.comb += [order.r_en.eq(1), order.r_addr.eq(sh_j)]
                m.d.sync += vi.eq(order.r_data)
                m.next = "SH_WRITE_I"
            with m.State("SH_WRITE_I"):
                m.d.comb += [order.w_en.eq(1), order.w_addr.eq(sh_i), order.w_data.eq(order.r_data)]
                m.next = "SH_WRITE_J"
            with m.State("SH_WRITE_J"):
                m.d.comb += [order.w_en.eq(1), order.w_addr.eq(sh_j), order.w_data.eq(vi)]
                m.d.sync += sh_i.eq(sh_i - 1)
                m.next = "SH_DRAW"
            with m.State("SAMPLE_FETCH"):
                check_abort()
                with m.If(~abort):
                    with m.If(idx == size):
                        m.d.sync += phase.eq(Phase.OTHER)
                        m.next = "EPOCH_START"
                    with m.Else():
                        m.d.comb += [order.r_en.eq(1), order.r_addr.eq(idx)]
                        m.next = "SAMPLE_SLOT"
            with m.State("SAMPLE_SLOT"):
                m.d.sync += slot.eq(order.r_data)
                m.next = "SAMPLE_LABEL_READ"
            with m.State("SAMPLE_LABEL_READ"):
                m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(slot)]
                m.next = "SAMPLE_LABEL"
            with m.State("SAMPLE_LABEL"):
                m.d.sync += sample_label.eq(labels.r_data)
                m.next = "CF_START"
            # ---- conv forward: one sweep per filter ------------------------------------------
            with m.State("CF_START"):
                start_sweep(1, 0, C - 1)
                m.d.sync += [f.eq(0), f_conv_base.eq(0), f_plane_base.eq(0), phase.eq(Phase.CONV_FWD)]
                m.next = "CF_RUN"
            with m.State("CF_RUN"):
                check_abort()
                with m.If(~abort & sweep_done()):
                    with m.If(f == F - 1):
                        m.d.sync += [sweeping.eq(0), ctr.eq(0)]
                        m.next = "CF_DRAIN"
                    with m.Else():
                        start_sweep(1, 0, C - 1)
                        m.d.sync += [f.eq(f + 1), f_conv_base.eq(f_conv_base + C * KK), f_plane_base.eq(f_plane_base + P)]
            with m.State("CF_DRAIN"):
                drain("DF_RUN")
                m.d.sync += [o.eq(0), k.eq(0), run_addr.eq(0)]
                with m.If(ctr == latency + 1):
                    m.d.sync += phase.eq(Phase.DENSE_FWD)
            # ---- dense forward: per class, D pairs from the bias -------------------------------
            with m.State("DF_RUN"):
                m.d.comb += [dense_w.r_en.eq(1), dense_w.r_addr.eq(run_addr), act.r_en.eq(1), act.r_addr.eq(k),
                             prep.op.eq(OP_DF), prep.first.eq(k == 0), prep.last.eq(k == D - 1)]
                with m.If(k == 0):
                    m.d.comb += [biases.r_en.eq(1), biases.r_addr.eq(F + o)]
                m.d.sync += run_addr.eq(run_addr + 1)
                with m.If(k == D - 1):
                    m.d.sync += k.eq(0)
                    with m.If(o == NC - 1):
                        m.d.sync += ctr.eq(0)
                        m.next = "DF_DRAIN"
                    with m.Else():
                        m.d.sync += o.eq(o + 1)
                with m.Else():
                    m.d.sync += k.eq(k + 1)
            with m.State("DF_DRAIN"):
                with m.If(ctr == latency + 2):
                    m.d.sync += [ctr.eq(0), o.eq(0)]
                    with m.If(is_infer):
                        m.d.sync += [best.eq(logits[0]), result.eq(0), candidate_valid.eq(0),
                                     phase.eq(Phase.OTHER)]
                        m.next = "ARGMAX"
                    with m.Else():
                        m.d.comb += loss.start.eq(1)
                        m.d.sync += phase.eq(Phase.LOSS)
                        m.next = "LOSS_WAIT"
                with m.Else():
                    m.d.sync += ctr.eq(ctr + 1)
            with m.State("ARGMAX"):
                m.d.sync += [candidate.eq(logits[o]), candidate_o.eq(o), candidate_valid.eq(1)]
                with m.If(o != NC - 1):
                    m.d.sync += o.eq(o + 1)
                with m.If(candidate_valid & (candidate > best)):
                    m.d.sync += [best.eq(candidate), result.eq(candidate_o)]
                with m.If(candidate_valid & (candidate_o == NC - 1)):
                    m.next = "DONE"
            with m.State("LOSS_WAIT"):
                check_abort()
                with m.If(~abort & loss.done):
                    m.d.sync += [k.eq(0), o.eq(0), run_addr.eq(0), half.eq(0), phase.eq(Phase.DENSE_BWD)]
                    m.next = "DB_RUN"
            # ---- dense backward: per activation and class, a gradient pair and an update pair ---
            with m.State("DB_RUN"):
                m.d.sync += half.eq(~half)
                with m.If(~half):
                    m.d.comb += [dense_w.r_en.eq(1), dense_w.r_addr.eq(run_addr),
                                 prep.op.eq(OP_DB_GRAD), prep.first.eq(o == 0), prep.last.eq(o == NC - 1),
                                 prep.addr.eq(k)]
                    with m.If(o == 0):
                        m.d.comb += [act.r_en.eq(1), act.r_addr.eq(k)]
                with m.Else():
                    m.d.comb += [prep.op.eq(OP_DB_UPD), prep.addr.eq(run_addr)]
                    with m.If(o == NC - 1):
                        m.d.sync += [o.eq(0), k.eq(k + 1), run_addr.eq(k + 1)]
                        with m.If(k == D - 1):
                            m.d.sync += o.eq(0)
                            m.next = "DB_BIAS"
                    with m.Else():
                        m.d.sync += [o.eq(o + 1), run_addr.eq(run_addr + D)]
            with m.State("DB_BIAS"):
                m.d.comb += [prep.op.eq(OP_DB_BIAS), biases.r_en.eq(1), biases.r_addr.eq(F + o)]
                with m.If(o == NC - 1):
                    m.d.sync += ctr.eq(0)
                    m.next = "DB_DRAIN"
                with m.Else():
                    m.d.sync += o.eq(o + 1)
            with m.State("DB_DRAIN"):
                drain("CB_START")
                with m.If(ctr == latency + 1):
                    # The updates walk the conv weights in order: f, channel, kernel position.
                    m.d.sync += [f.eq(0), chan_sweep.eq(0), f_conv_base.eq(0), f_plane_base.eq(0), cw_addr.eq(0),
                                 phase.eq(Phase.CONV_BWD)]
            # ---- conv backward: per filter and channel, a sweep then the updates -----------------
            with m.State("CB_START"):
                start_sweep(0, chan_sweep, chan_sweep)
                m.next = "CB_RUN"
            with m.State("CB_RUN"):
                check_abort()
                with m.If(~abort & sweep_done()):
                    m.d.sync += [sweeping.eq(0), lane.eq(0)]
                    m.next = "CB_UPDATE"
            with m.State("CB_UPDATE"):
                # The kernel slice of this channel (and the bias after channel 0), lane by lane;
                # the lanes' last OUTER pairs were issued at least a window's beats ago.
                with m.If(lane == KK):
                    m.d.comb += [prep.op.eq(OP_CB_BUPD), prep.lane.eq(KK), prep.addr.eq(f),
                                 biases.r_en.eq(1), biases.r_addr.eq(f)]
                with m.Else():
                    m.d.comb += [conv_w.r_en.eq(1), conv_w.r_addr.eq(cw_addr), prep.op.eq(OP_CB_UPD),
                                 prep.lane.eq(lane), prep.addr.eq(cw_addr)]
                    m.d.sync += cw_addr.eq(cw_addr + 1)
                with m.If(lane == Mux(chan_sweep == 0, KK, KK - 1)):
                    m.d.sync += lane.eq(0)
                    with m.If(chan_sweep != C - 1):
                        m.d.sync += chan_sweep.eq(chan_sweep + 1)
                        m.next = "CB_START"
                    with m.Elif(f != F - 1):
                        m.d.sync += [chan_sweep.eq(0), f.eq(f + 1), f_conv_base.eq(f_conv_base + C * KK),
                                     f_plane_base.eq(f_plane_base + P)]
                        m.next = "CB_START"
                    with m.Else():
                        m.d.sync += ctr.eq(0)
                        m.next = "CB_DRAIN"
                with m.Else():
                    m.d.sync += lane.eq(lane + 1)
            with m.State("CB_DRAIN"):
                drain("SAMPLE_NEXT")
            with m.State("SAMPLE_NEXT"):
                m.d.sync += [idx.eq(idx + 1), phase.eq(Phase.CONV_FWD)]
                m.d.comb += counter_inc["TRAIN_SAMPLES"].eq(1)
                m.next = "SAMPLE_FETCH"
            with m.State("ABORT_DRAIN"):
                drain("DONE")
            with m.State("DONE"):
                m.d.sync += [abort.eq(0), phase.eq(Phase.OTHER), sweep_fwd.eq(0), sweeping.eq(0)]
                m.next = "IDLE"

        m.d.comb += [busy.eq(~control.ongoing("IDLE")),
                     counting.eq(busy & ~(control.ongoing("PARAM_CLEAR") & ~from_scratch))]

        # Weight initialisation writes (one cycle after each draw).
        with m.If(init_valid):
            with m.If(init_wdense):
                m.d.comb += [dense_w.w_en.eq(1), dense_w.w_addr.eq(init_waddr), dense_w.w_data.eq(drawn)]
            with m.Else():
                m.d.comb += [conv_w.w_en.eq(1), conv_w.w_addr.eq(init_waddr), conv_w.w_data.eq(drawn)]

        # -- host requests ------------------------------------------------------------------------
        rm = regmap
        regs = rm.by_name
        addr = axi.req_addr
        rdata = Signal(32)
        error_resp = Signal()
        done_resp = Signal()
        m.d.comb += [axi.resp_rdata.eq(rdata), axi.resp_error.eq(error_resp), axi.resp_ready.eq(done_resp)]
        value = axi.req_wdata
        readable = {
            "COMMAND": command, "STATUS": Cat(busy, Const(0, 3), command, kept), "ERROR": error,
            "LR_SHIFT": lr_shift, "EPOCHS": epochs, "SEED": seed, "LABEL": label_reg, "RESULT": result,
            "MEM_SIZE": size,
        }

        def fields(window):
            out, shift = {}, 2
            for name, bits, count in window.fields:
                out[name] = (addr[shift:shift + bits], count)
                shift += bits
            return out

        def in_window(window):
            size_bits = (rm.window_size(window) - 1).bit_length()
            return (addr >> size_bits) == (window.base >> size_bits)

        def in_range(flds):
            ok = Const(1)
            for sig, count in flds.values():
                if count != 1 << len(sig):
                    ok = ok & (sig < count)
            return ok

        stage = fields(rm.staging)
        lab = fields(rm.labels)
        cw = fields(rm.conv_w)
        dwf = fields(rm.dense_w)
        stage_c = Signal(index(C))
        stage_row, stage_col, stage_data = Signal.like(samples.px_row), Signal.like(samples.px_col), Signal(32)
        mem_kind = Signal(2)
        mem_rdata = Signal(32)
        # Every request is decoded over two registered cycles before it acts, so that no
        # address comparison, index product or read multiplexer shares a cycle with the
        # response logic.  The AXI adapter holds the request until answered and leaves at least
        # an idle cycle between requests, so ``req_valid`` registered once (``decoding``) and
        # twice (``decoded``) marks the first and second cycles of the same request; ``decoded``
        # outlives the request by one cycle, hence the ``req_valid`` beside it below.
        decoding, decoded = Signal(), Signal()
        m.d.sync += [decoding.eq(axi.req_valid), decoded.eq(decoding & axi.req_valid)]
        # Cycle 1: which register, which window (in range), the dense position.
        # Registers sit in blocks of 256 words (the scalars, then one block per array), so the
        # address splits into a block and a word: a block's value is a multiplexer indexed by
        # the word, and whether a register is there a range test, not one comparator per register.
        blocks = {}
        for reg in rm.registers:
            blocks.setdefault(reg.offset >> 10, {})[(reg.offset >> 2) & 0xFF] = reg
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
            in_block = (addr >> 10) == b
            present = present | (in_block & sum((((w_bits >= lo) & (w_bits < hi)) for lo, hi in runs), Const(0)).bool())
        m.d.sync += [blk.eq(addr >> 10), word.eq(addr[2:10]), is_reg.eq(present & (addr[:2] == 0))]
        # The counters are read from their bank.
        first_counter = regs[counter_names[0]].offset
        assert [regs[name].offset for name in counter_names] == [first_counter + 4 * i for i in range(len(counter_names))]
        is_counter, counter_q = Signal(), Signal(range(len(counter_names)))
        m.d.sync += [is_counter.eq((addr >= first_counter) & (addr < first_counter + 4 * len(counter_names))
                                   & (addr[:2] == 0)),
                     counter_q.eq((addr - first_counter)[2:])]
        # CONV_B, DENSE_B, LOGIT and CLASS_COUNT are words of the host's parameter copy.
        param_blocks = {regs[name].offset >> 10: (base, count, signed_)
                        for name, base, count, signed_ in (("CONV_B0", 0, F, True), ("DENSE_B0", F, NC, True),
                                                           ("LOGIT0", LOGIT_BASE, NC, True),
                                                           ("CLASS_COUNT0", COUNT_BASE, NC, False))}
        assert all(len(blocks[b]) == count for b, (_, count, _) in param_blocks.items())
        is_param, param_addr_q, param_signed_q = Signal(), Signal(index(F + 3 * NC)), Signal()
        m.d.sync += is_param.eq(0)
        for b, (base, _, signed_) in param_blocks.items():
            with m.If((addr >> 10) == b):
                m.d.sync += [is_param.eq(present & (addr[:2] == 0)), param_addr_q.eq(base + addr[2:10]),
                             param_signed_q.eq(signed_)]
        to_reg = {name: Signal(name=f"to_{name.lower()}") for name in
                  ("COMMAND", "LR_SHIFT", "EPOCHS", "SEED", "LABEL")}
        m.d.sync += [flag.eq(addr == regs[name].offset) for name, flag in to_reg.items()]
        to_stage, to_labels, to_cw, to_dw = (Signal(name=f"to_{n}") for n in ("stage", "labels", "cw", "dw"))
        m.d.sync += [to_stage.eq(in_window(rm.staging) & in_range(stage)),
                     to_labels.eq(in_window(rm.labels) & in_range(lab)),
                     to_cw.eq(in_window(rm.conv_w) & in_range(cw)),
                     to_dw.eq(in_window(rm.dense_w) & in_range(dwf))]
        # ... and the checks of the written value (32-bit comparisons).
        bad_command, lr_ok, epochs_ok = Signal(), Signal(), Signal()
        m.d.sync += [bad_command.eq((value > max(Command)) | (value == Command.NONE)),
                     lr_ok.eq(value <= dw), epochs_ok.eq(value < 1 << 16)]
        # Cycle 2: the register's value, the weight windows' word addresses and lanes.
        reg_value = Signal(32)

        def reg_source(reg):
            source = readable.get(reg.name)
            return Const(reg.reset, 32) if source is None else Value.cast(source)

        # Each block is multiplexed at the width of its widest register and extended after:
        # a block of 16-bit signed values needs a 16-bit multiplexer, not a 32-bit one.
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
        m.d.sync += reg_value.eq(block_value)
        # The golden model's index of a weight, which is its word: constant products as shifts and adds.
        cw_addr_q = Signal(index(lay["conv_words"]))
        dw_addr_q = Signal(index(lay["dense_words"]))
        m.d.sync += [cw_addr_q.eq(times(cw["f"][0], C * KK) + times(cw["c"][0], KK) + times(cw["i"][0], K)
                                  + cw["j"][0]),
                     dw_addr_q.eq(times(dwf["o"][0], D) + times(dwf["f"][0], P) + times(dwf["y"][0], cfg.out_w)
                                  + dwf["x"][0])]
        # The pixel port's coordinates and data come straight from registers (only its enable
        # from the state), so the sample memory's address arithmetic starts at a flip-flop.
        m.d.comb += [samples.px_slot.eq(cfg.slots), samples.px_chan.eq(stage_c), samples.px_row.eq(stage_row),
                     samples.px_col.eq(stage_col), samples.px_data.eq(stage_data.word_select(stage_c, 8))]
        with m.FSM(name="host"):
            with m.State("IDLE"):
                with m.If(~(decoded & axi.req_valid)):
                    pass                      # wait for the registered decode
                with m.Elif(axi.req_write):
                    with m.If(axi.req_wstrb != 0xF):
                        m.d.comb += [done_resp.eq(1), error_resp.eq(1)]
                    with m.Elif(to_reg["COMMAND"]):
                        m.d.comb += done_resp.eq(1)
                        cmd = value[:4]
                        running_abortable = (command == Command.TRAIN) | (command == Command.TRAIN_KEEP) | \
                                            (command == Command.INFER)
                        with m.If(bad_command):
                            m.d.sync += error.eq(ErrorCode.BAD_COMMAND)
                        with m.Elif(cmd == Command.ABORT):
                            with m.If(busy & running_abortable):
                                m.d.sync += abort.eq(1)
                            m.d.sync += error.eq(ErrorCode.NONE)
                        with m.Elif(busy):
                            m.d.sync += error.eq(ErrorCode.BUSY)
                        with m.Elif(cmd == Command.CLEAR_COUNTERS):
                            m.d.comb += clear_counters.eq(1)
                            m.d.sync += error.eq(ErrorCode.NONE)
                        with m.Elif((cmd == Command.INSERT) & (label_reg >= NC)):
                            m.d.sync += error.eq(ErrorCode.BAD_LABEL)
                        with m.Elif(((cmd == Command.TRAIN) | (cmd == Command.TRAIN_KEEP)) & (epochs == 0)):
                            m.d.sync += error.eq(ErrorCode.BAD_EPOCHS)
                        with m.Else():
                            m.d.comb += [start.eq(1), start_cmd.eq(cmd)]
                            m.d.sync += [command.eq(cmd), error.eq(ErrorCode.NONE)]
                    with m.Elif(to_reg["LR_SHIFT"]):
                        m.d.comb += [done_resp.eq(1), error_resp.eq(busy | ~lr_ok)]
                        with m.If(~busy & lr_ok):
                            m.d.sync += lr_shift.eq(value)
                    with m.Elif(to_reg["EPOCHS"]):
                        m.d.comb += [done_resp.eq(1), error_resp.eq(busy | ~epochs_ok)]
                        with m.If(~busy & epochs_ok):
                            m.d.sync += epochs.eq(value)
                    with m.Elif(to_reg["SEED"]):
                        m.d.comb += [done_resp.eq(1), error_resp.eq(busy | value[31])]
                        with m.If(~busy & ~value[31]):
                            m.d.sync += seed.eq(value)
                            m.d.comb += [lfsr.load.eq(1), lfsr.seed_in.eq(value)]
                    with m.Elif(to_reg["LABEL"]):
                        m.d.comb += [done_resp.eq(1), error_resp.eq(busy)]
                        with m.If(~busy):
                            m.d.sync += label_reg.eq(value)
                    with m.Elif(to_stage & ~busy):
                        m.d.sync += [stage_c.eq(0), stage_row.eq(stage["row"][0]), stage_col.eq(stage["col"][0]),
                                     stage_data.eq(value)]
                        m.next = "STAGE"
                    with m.Else():
                        m.d.comb += [done_resp.eq(1), error_resp.eq(1)]
                with m.Else():
                    with m.If(is_counter):
                        m.next = "COUNTER_READ"
                    with m.Elif(is_param):
                        m.d.comb += [host_params.r_en.eq(1), host_params.r_addr.eq(param_addr_q)]
                        m.d.sync += mem_kind.eq(3)
                        m.next = "MEM_READ"
                    with m.Elif(is_reg):
                        m.d.comb += [done_resp.eq(1), rdata.eq(reg_value)]
                    with m.Elif(~busy & to_labels):
                        m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(lab["slot"][0])]
                        m.d.sync += mem_kind.eq(0)
                        m.next = "MEM_READ"
                    with m.Elif(~busy & to_cw):
                        m.d.comb += [conv_w.r_en.eq(1), conv_w.r_addr.eq(cw_addr_q)]
                        m.d.sync += mem_kind.eq(1)
                        m.next = "MEM_READ"
                    with m.Elif(~busy & to_dw):
                        m.d.comb += [dense_w.r_en.eq(1), dense_w.r_addr.eq(dw_addr_q)]
                        m.d.sync += mem_kind.eq(2)
                        m.next = "MEM_READ"
                    with m.Else():
                        m.d.comb += [done_resp.eq(1), error_resp.eq(1)]
            with m.State("STAGE"):
                m.d.comb += samples.px_en.eq(1)
                with m.If(stage_c == C - 1):
                    m.d.comb += done_resp.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += stage_c.eq(stage_c + 1)
            with m.State("MEM_READ"):
                # The word read is registered before it answers.
                with m.Switch(mem_kind):
                    with m.Case(0):
                        m.d.sync += mem_rdata.eq(labels.r_data)
                    with m.Case(1):
                        m.d.sync += mem_rdata.eq(conv_w.r_data.as_signed())
                    with m.Case(2):
                        m.d.sync += mem_rdata.eq(dense_w.r_data.as_signed())
                    with m.Case(3):
                        pw = len(host_params.r_data)
                        m.d.sync += mem_rdata.eq(Mux(param_signed_q, host_params.r_data[:dw].as_signed(),
                                                     host_params.r_data[:pw]))
                m.next = "MEM_RESPOND"
            with m.State("COUNTER_READ"):
                m.d.comb += [counters.rd_en.eq(1), counters.rd_index.eq(counter_q)]
                with m.If(counters.rd_ready):
                    m.next = "COUNTER_WAIT"
            with m.State("COUNTER_WAIT"):
                with m.If(counters.rd_valid):
                    m.d.comb += [done_resp.eq(1), rdata.eq(counters.rd_data)]
                    m.next = "IDLE"
            with m.State("MEM_RESPOND"):
                m.d.comb += [done_resp.eq(1), rdata.eq(mem_rdata)]
                m.next = "IDLE"
        return m
