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

from ..spec.config import TinyCLConfig
from ..spec.regmap import Command, Phase
from .arith import index, less_than, positive, round_shift, saturate, shift_saturate, update_apply
from .control import AcceleratorBase, ControlCommon, HostRequests, pixel_data, shared_blocks
from .counters import CounterBank
from .loss import loss_memory_shape
from .mac import Control, GradSource, Mode, _check_positive
from .memory import MemoryShape, Sram, sample_bank_shape

__all__ = ["SerialMac", "SerialTinyCL", "serial_mac", "serial_memory_shapes", "serial_dual_port_memories"]

#: The performance counters, in register-map order.
COUNTERS = ["CYCLES"] + [f"CYC_{ph.name}" for ph in Phase] + ["OPERAND_SETS", "SAMPLE_READS", "TRAIN_SAMPLES"]


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

    #: input registers, product, accumulate (or shift), narrow (or clamp and apply): the
    #: serial datapath runs at the UP5K's 30 MHz, so rounding and saturation share a stage
    latency = 4

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
        # v3: accumulate; the UPDATE gradient shifted by frac - 1 + lr_shift and clamped (as
        # _update_stages does; lr_shift registered first, so a new value applies two cycles on).
        dot = Signal(signed(self._aw))
        with m.If(ctl2.valid & (ctl2.mode == Mode.DOT)):
            m.d.sync += dot.eq(Mux(ctl2.first, wi2.shift_left(frac), dot) + product)
        with m.If(ctl2.valid & (ctl2.mode == Mode.OUTER)):
            m.d.comb += [lane_acc.w_en.eq(1), lane_acc.w_addr.eq(lane2),
                         lane_acc.w_data.eq(Mux(ctl2.first, 0, lane_value) + product)]
        grad = Signal(signed(max(self._law, 2 * dw)))
        m.d.comb += grad.eq(Mux(ctl2.source == GradSource.ACC, lane_value, product))
        lr = Signal.like(self.lr_shift, name="lr_shift_reg")
        clamped = Signal(signed(dw + 3))
        m.d.sync += [lr.eq(self.lr_shift), clamped.eq(shift_saturate(grad.shift_right(frac - 1), lr, dw + 3))]
        # v4: the UPDATE result and the dot accumulator narrowed.
        with m.If(ctl3.valid & (ctl3.mode == Mode.UPDATE)):
            m.d.sync += self.upd.eq(update_apply(wi3, clamped, dw))
        m.d.sync += [self.dot_narrow.eq(saturate(round_shift(dot, frac), dw)),
                     self.out_valid.eq(ctl3.valid), self.out_mode.eq(ctl3.mode), self.out_tag.eq(tags[2])]
        return m


def _tag_layout(cfg: TinyCLConfig) -> data.StructLayout:
    """What a pair carries to its write-back: a kind, a word address, the ReLU mask."""
    lay = serial_layout(cfg)
    words = max(lay["dense_words"], lay["conv_words"], cfg.dense_in, 4 << param_region_bits(cfg))
    return data.StructLayout({"kind": 3, "addr": index(words), "mask": 1})


def serial_mac(cfg: TinyCLConfig, *, blackbox: bool = False) -> "SerialMac":
    """The :class:`SerialMac` of the serial top for ``cfg``."""
    return SerialMac(cfg.data_width, cfg.frac_bits, cfg.acc_width, cfg.lane_acc_width, cfg.kernel ** 2 + 1,
                     _tag_layout(cfg).size, blackbox=blackbox)


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


def _memories(cfg: TinyCLConfig) -> dict:
    lay = serial_layout(cfg)
    dw = cfg.data_width
    return {"conv_w": MemoryShape(dw, lay["conv_words"]), "dense_w": MemoryShape(dw, lay["dense_words"]),
            "act": MemoryShape(dw, cfg.dense_in), "grad": MemoryShape(dw, cfg.dense_in),
            "labels": MemoryShape(8, cfg.slots), "order": MemoryShape(16, cfg.slots),
            # Conv biases, dense biases, logits and class counts, in two copies written together:
            # the datapath and the control unit read ``biases``, the host ``host_params``.
            "biases": MemoryShape(_param_width(cfg), 4 << param_region_bits(cfg)),
            "host_params": MemoryShape(_param_width(cfg), 4 << param_region_bits(cfg))}


def serial_memory_shapes(cfg: TinyCLConfig) -> list:
    """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory of the serial top."""
    return (list(_memories(cfg).values()) + [MemoryShape(cfg.lane_acc_width, cfg.kernel ** 2 + 1),
                                             MemoryShape(32, len(COUNTERS)), loss_memory_shape(cfg)]
            + [sample_bank_shape(cfg)] * cfg.kernel)


def serial_dual_port_memories(cfg: TinyCLConfig) -> list:
    """Instance paths, below :class:`~tinycl_hdl.rtl.top.TinyCL`, of the memories with a read
    and a write port."""
    return [f"serial.{name}" for name in _memories(cfg)] + ["serial.mac.lane_acc", "serial.counters.mem",
                                                                      "serial.loss.mem"]


def times(value, constant: int):
    """``value * constant`` as shifts and adds: a constant product needs no multiplier."""
    terms = [value.shift_left(b) for b in range(constant.bit_length()) if constant >> b & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0)


class SerialTinyCL(AcceleratorBase):
    """The accelerator around :class:`SerialMac` (``datapath="serial"``); ports and register
    map as :class:`~tinycl_hdl.rtl.top.TinyCL`."""

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
        ONE = Const(1 << frac, signed(dw))

        # -- submodules ------------------------------------------------------------------
        # Sized for the UP5K at 30 MHz: four LFSR steps per cycle (a draw in eight, about 110
        # LUT4s fewer than 32), and the window without its stages for a fast clock.
        axi, samples, window, loss, lfsr = shared_blocks(m, self, lfsr_steps_per_cycle=4, window_pipelined=False)
        mems = {}
        for name, shape in _memories(cfg).items():
            mems[name] = m.submodules[name] = Sram.of(shape, blackbox=bb)
        conv_w, dense_w, act, grad = mems["conv_w"], mems["dense_w"], mems["act"], mems["grad"]
        labels, order = mems["labels"], mems["order"]
        biases, host_params = mems["biases"], mems["host_params"]
        # Words of ``biases`` and ``host_params``: regions of conv biases, dense biases, logits, counts.
        RB = param_region_bits(cfg)
        PARAM_WORDS = 4 << RB
        CONV_B, DENSE_B, LOGIT, COUNT = range(4)

        def param(region, i):
            """The word of ``i`` in ``region``."""
            i = Value.cast(i)
            return Cat(i[:RB], Const(0, max(0, RB - len(i))), Const(region, 2))

        param_w_en, param_w_addr = Signal(), Signal(RB + 2)
        param_w_data = Signal(_param_width(cfg))
        m.d.comb += [host_params.w_en.eq(param_w_en), host_params.w_addr.eq(param_w_addr),
                     host_params.w_data.eq(param_w_data),
                     biases.w_en.eq(param_w_en), biases.w_addr.eq(param_w_addr),
                     biases.w_data.eq(param_w_data)]
        bias_value = biases.r_data[:dw].as_signed()

        KIND_NONE, KIND_ACT, KIND_LOGIT, KIND_GRAD, KIND_DW, KIND_CW, KIND_CB, KIND_DB = range(8)
        tag_layout = _tag_layout(cfg)
        m.submodules.mac = mac = serial_mac(cfg, blackbox=bb)
        latency = mac.latency

        # -- architectural state -----------------------------------------------------------
        # ``ctr`` also walks the parameter memories when they are cleared.
        def read_count(m, c):
            m.d.comb += [biases.r_en.eq(1), biases.r_addr.eq(param(COUNT, c))]

        common = ControlCommon(cfg, regmap, max(KK + 2, latency + 3, PARAM_WORDS), samples.addr_width,
                               count_memory=(read_count, biases.r_data))
        lr_shift, seed, label_reg = common.lr_shift, common.seed, common.label_reg
        busy, abort, phase, clear_counters = common.busy, common.abort, common.phase, common.clear_counters
        start, start_cmd, ctr, o = common.start, common.start_cmd, common.ctr, common.o
        slot, sample_label, idx = common.slot, common.sample_label, common.idx
        # The performance counters, in register-map order, in block RAM.
        counter_names = COUNTERS
        m.submodules.counters = counters = CounterBank(len(counter_names), K, blackbox=bb)
        # This cycle's events, registered before the bank: no path runs from the control
        # state through the counters' fold logic in one cycle.  A count lags its events by a
        # cycle, which a host read (at least three cycles after busy falls) never sees.
        events = Signal.like(counters.inc, name="counter_events")
        m.d.sync += counters.inc.eq(events)
        counter_inc = {name: events[i] for i, name in enumerate(counter_names)}
        m.d.comb += [self.busy.eq(busy), lfsr.seed_in.eq(seed), mac.lr_shift.eq(lr_shift)]

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
        iss_o = Signal.like(o)
        m.d.sync += iss_o.eq(o)
        f = Signal(index(F))
        px = Signal(8)                    # the window pixel of the prepared pair
        w_hold, act_hold, g_hold = Signal(signed(dw)), Signal(signed(dw)), Signal(signed(dw))
        delta = loss.rd_data              # delta[o], read by the prepare cycle
        act_value, dense_value = act.r_data.as_signed(), dense_w.r_data.as_signed()
        conv_value, grad_value = conv_w.r_data.as_signed(), grad.r_data.as_signed()
        tag = Signal(tag_layout)
        m.d.comb += [mac.valid.eq(iss.op != OP_NONE), mac.lane.eq(iss.lane), mac.tag.eq(tag),
                     tag.addr.eq(iss.addr)]
        m.d.comb += counter_inc["OPERAND_SETS"].eq(iss.op != OP_NONE)
        with m.Switch(iss.op):
            with m.Case(OP_CF):
                m.d.comb += [mac.mode.eq(Mode.DOT), mac.first.eq(iss.first), mac.a.eq(pixel_data(cfg, px)),
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
                             tag.mask.eq(positive(a_k))]
                m.d.sync += [w_hold.eq(dense_value), act_hold.eq(a_k)]
            with m.Case(OP_DB_UPD):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(act_hold),
                             mac.b.eq(delta), mac.w.eq(w_hold), tag.kind.eq(KIND_DW)]
            with m.Case(OP_DB_BIAS):
                m.d.comb += [mac.mode.eq(Mode.UPDATE), mac.source.eq(GradSource.PRODUCT), mac.a.eq(delta),
                             mac.b.eq(ONE), mac.w.eq(bias_value), tag.kind.eq(KIND_DB), tag.addr.eq(param(DENSE_B, iss_o))]
            with m.Case(OP_CB):
                # The position's gradient arrives with its first lane and is held for the rest.
                g = Mux(iss.lane == 0, grad_value, g_hold)
                m.d.comb += [mac.mode.eq(Mode.OUTER), mac.first.eq(iss.first), mac.a.eq(pixel_data(cfg, px)),
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
                                 act.w_data.eq(Mux(positive(mac.dot_narrow), mac.dot_narrow, 0))]
                with m.Case(KIND_LOGIT):
                    m.d.comb += [loss.z_en.eq(1), loss.z_index.eq(out_tag.addr), loss.z_data.eq(mac.dot_narrow)]
                    m.d.comb += [param_w_en.eq(1), param_w_addr.eq(param(LOGIT, out_tag.addr)),
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
            # The bias lane (KK) uses no pixel: whatever this yields for it goes unread.
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
        m.d.comb += window.slot.eq(slot)
        k = Signal(range(D + 1))
        run_addr = Signal(index(lay["dense_words"] + 1))
        half = Signal()
        from_scratch, is_infer = common.from_scratch, common.is_infer
        init_addr = Signal(index(max(lay["dense_words"], lay["conv_words"]) + 1))
        init_valid, init_dense, init_waddr = Signal(), Signal(), Signal.like(init_addr)
        init_wdense = Signal()            # the draw being written is a dense weight

        common.balance_test(m)
        drawn = common.initial_weight(m, lfsr, init_wdense)

        # Busy cycles of a command (the clearing after reset is none); pixels fetched.
        counting = Signal()
        m.d.comb += [counters.clear.eq(clear_counters), counter_inc["CYCLES"].eq(counting),
                     counter_inc["SAMPLE_READS"].eq(Mux(window.busy & window.advance, K, 0))]
        for ph in Phase:
            m.d.comb += counter_inc[f"CYC_{ph.name}"].eq(counting & (phase == ph))

        m.d.comb += loss.label.eq(sample_label)

        def drain(next_state):
            """Wait until the pairs issued so far are written back."""
            common.wait(m, latency + 2, next_state)

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
                # the two bias regions, one word per cycle.
                m.d.comb += [param_w_en.eq(1), param_w_addr.eq(ctr), param_w_data.eq(0)]
                with m.If(ctr == Mux(from_scratch, 2 * (PARAM_WORDS // 4) - 1, PARAM_WORDS - 1)):
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
            common.insert_states(m, samples, labels, lfsr, finish_next="INS_COUNT_LABEL")
            # The two counts that changed, one write each (to both copies).
            with m.State("INS_COUNT_LABEL"):
                m.d.comb += [param_w_en.eq(1), param_w_addr.eq(param(COUNT, label_reg[:8])),
                             param_w_data.eq(common.label_count + 1)]
                m.next = "INS_COUNT_EVICTED"
            with m.State("INS_COUNT_EVICTED"):
                with m.If(common.evict):
                    m.d.comb += [param_w_en.eq(1), param_w_addr.eq(param(COUNT, common.largest)),
                                 param_w_data.eq(common.largest_count - 1)]
                m.next = "DONE"
            # ---- TRAIN / INFER ---------------------------------------------------------------
            with m.State("INIT"):
                # One draw per weight in the golden model's order, which is the memories' order;
                # each is written when the LFSR is ready again, as the next draw starts.
                with m.If(lfsr.ready):
                    m.d.comb += lfsr.draw.eq(1)
                    m.d.sync += [init_valid.eq(1), init_waddr.eq(init_addr), init_wdense.eq(init_dense)]
                    with m.If(~init_dense & (init_addr == lay["conv_words"] - 1)):
                        m.d.sync += [init_dense.eq(1), init_addr.eq(0)]
                    with m.Elif(init_dense & (init_addr == lay["dense_words"] - 1)):
                        m.next = "INIT_LAST"
                    with m.Else():
                        m.d.sync += init_addr.eq(init_addr + 1)
            with m.State("INIT_LAST"):
                with m.If(lfsr.ready):
                    m.d.sync += [init_valid.eq(0), ctr.eq(0)]
                    m.next = "ORDER_INIT"
            common.epoch_states(m, order, labels, lfsr, check_abort, on_order=[init_dense.eq(0)])
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
                    m.d.comb += [biases.r_en.eq(1), biases.r_addr.eq(param(DENSE_B, o))]
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
                common.logits_ready(m, loss, latency + 3)
            common.argmax_state(m, loss)
            with m.State("LOSS_WAIT"):
                check_abort()
                with m.If(~abort & loss.done):
                    m.d.sync += [k.eq(0), o.eq(0), run_addr.eq(0), half.eq(0), phase.eq(Phase.DENSE_BWD)]
                    m.next = "DB_RUN"
            # ---- dense backward: per activation and class, a gradient pair and an update pair ---
            with m.State("DB_RUN"):
                m.d.sync += half.eq(~half)
                with m.If(~half):
                    # delta[o] stays on the loss unit's output for both pairs of (k, o).
                    m.d.comb += [dense_w.r_en.eq(1), dense_w.r_addr.eq(run_addr),
                                 loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o),
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
                m.d.comb += [prep.op.eq(OP_DB_BIAS), biases.r_en.eq(1), biases.r_addr.eq(param(DENSE_B, o)),
                             loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o)]
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

        # Weight initialisation writes (as each draw is ready).
        with m.If(init_valid & lfsr.ready):
            with m.If(init_wdense):
                m.d.comb += [dense_w.w_en.eq(1), dense_w.w_addr.eq(init_waddr), dense_w.w_data.eq(drawn)]
            with m.Else():
                m.d.comb += [conv_w.w_en.eq(1), conv_w.w_addr.eq(init_waddr), conv_w.w_data.eq(drawn)]

        # -- host requests ------------------------------------------------------------------------
        rm = regmap
        regs = rm.by_name
        host = HostRequests(m, common, axi, samples)
        addr = host.addr
        cw, dwf, mem_kind, mem_rdata = host.cw, host.dwf, host.mem_kind, host.mem_rdata
        readable = host.readable
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
            in_block = addr.shift_right(10) == b
            present = present | (in_block & sum(((~less_than(w_bits, lo) & less_than(w_bits, hi)) for lo, hi in runs),
                                                Const(0)).bool())
        m.d.sync += [blk.eq(addr.shift_right(10)), word.eq(addr[2:10]), is_reg.eq(present & (addr[:2] == 0))]
        # The counters are read from their bank.
        first_counter = regs[counter_names[0]].offset
        assert [regs[name].offset for name in counter_names] == [first_counter + 4 * i for i in range(len(counter_names))]
        # The counters sit at an aligned block: a block test and a word test, no subtractor.
        counter_bits = (4 * len(counter_names) - 1).bit_length()
        assert first_counter % (1 << counter_bits) == 0
        is_counter, counter_q = Signal(), Signal(range(len(counter_names)))
        m.d.sync += [is_counter.eq((addr.shift_right(counter_bits) == first_counter >> counter_bits)
                                   & less_than(addr[2:counter_bits], len(counter_names)) & (addr[:2] == 0)),
                     counter_q.eq(addr[2:counter_bits])]
        # CONV_B, DENSE_B, LOGIT and CLASS_COUNT are words of the host's parameter copy.
        param_blocks = {regs[name].offset >> 10: (region, count, signed_)
                        for name, region, count, signed_ in (("CONV_B0", CONV_B, F, True),
                                                             ("DENSE_B0", DENSE_B, NC, True),
                                                             ("LOGIT0", LOGIT, NC, True),
                                                             ("CLASS_COUNT0", COUNT, NC, False))}
        assert all(len(blocks[b]) == count for b, (_, count, _) in param_blocks.items())
        is_param, param_addr_q, param_signed_q = Signal(), Signal(RB + 2), Signal()
        m.d.sync += is_param.eq(0)
        for b, (region, _, signed_) in param_blocks.items():
            with m.If(addr.shift_right(10) == b):
                m.d.sync += [is_param.eq(present & (addr[:2] == 0)), param_addr_q.eq(param(region, addr[2:10])),
                             param_signed_q.eq(signed_)]
        # Cycle 2: the register's value, the weight windows' word addresses and lanes.

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
        # The golden model's index of a weight, which is its word: constant products as shifts and adds.
        cw_addr_q = Signal(index(lay["conv_words"]))
        dw_addr_q = Signal(index(lay["dense_words"]))
        m.d.sync += [cw_addr_q.eq(times(cw["f"][0], C * KK) + times(cw["c"][0], KK) + times(cw["i"][0], K)
                                  + cw["j"][0]),
                     dw_addr_q.eq(times(dwf["o"][0], D) + times(dwf["f"][0], P) + times(dwf["y"][0], cfg.out_w)
                                  + dwf["x"][0])]

        def read_request(m):
            with m.If(is_counter):
                m.next = "COUNTER_READ"
            with m.Elif(is_param):
                m.d.comb += [host_params.r_en.eq(1), host_params.r_addr.eq(param_addr_q)]
                m.d.sync += mem_kind.eq(3)
                m.next = "MEM_READ"
            with m.Elif(is_reg):
                # Every read answers from ``mem_rdata``: one source for the AXI read data.
                m.d.sync += mem_rdata.eq(block_value)
                m.next = "MEM_RESPOND"
            host.window_reads(m, labels, [(conv_w, cw_addr_q)], [(dense_w, dw_addr_q)])

        def memory_states(m):
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
                    m.d.sync += mem_rdata.eq(counters.rd_data)
                    m.next = "MEM_RESPOND"

        host.states(m, lfsr, read_request, memory_states)
        return m
