"""The lane array: ``n_pu`` processing units of ``kernel**2`` MAC lanes each.

Per training sample:

``CONV_FWD``
    for each group of ``n_pu`` filters, one window sweep over all
    channels; each unit's ``DOT`` sums window x kernel slice, then
    ReLU and the activation write.
``DENSE_FWD``
    per class, the units ``DOT`` their activation chunks against the
    weight chunks; the partial sums are added and narrowed.
``DENSE_BWD``
    per activation chunk and class: one weight read feeds ``OUTER``
    (input gradient, old weight) then ``UPDATE`` (new weight); after
    the last class the masked input gradient is written.
``CONV_BWD``
    per filter group and channel, a single-channel window sweep of
    ``OUTER`` with the broadcast conv-output gradient (and the bias
    gradient on channel 0), then one ``UPDATE`` from the accumulators.

Memory layout (unit ``p`` owns filters ``f = g*n_pu + p``): activations,
gradients and dense weights of unit ``p`` are indexed by ``k = g*PW*L + pos``
with ``pos = y*Wo + x`` and ``PW = ceil(Ho*Wo / L)`` words of ``L = kernel**2``
lanes per filter plane; padding lanes hold zero activations.  The host sees
weights in the golden model's order through the register map's windows.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed
from amaranth.lib import data, enum

from ..spec.config import TinyCLConfig
from ..spec.regmap import Phase
from ..spec.update import CONV, DENSE, DITHER_BITS, Coordinates
from .arith import index, round_shift, saturate
from .datapath import Datapath, pixel_data
from .dither import coordinate_image
from .loss import loss_memory_shape
from .mac import GradSource, Mode, ProcessingUnit
from .memory import MemoryShape, sample_bank_shape

__all__ = ["LaneArray", "layout"]

#: Cycles from the processing units' dot outputs to the logit registers (round, then saturate).
LOGIT_LATENCY = 2


class Kind(enum.Enum, shape=3):
    """Where a processing unit's result is written back (carried in its tag)."""
    NONE = 0
    ACT = 1
    LOGIT = 2
    DW = 3
    CW = 4


def layout(cfg: TinyCLConfig) -> dict:
    """Sizes of the per-unit memories."""
    lanes = cfg.kernel ** 2
    positions = cfg.out_h * cfg.out_w
    plane_words = -(-positions // lanes)
    groups = cfg.filters // cfg.n_pu
    return {"lanes": lanes, "positions": positions, "plane_words": plane_words, "groups": groups,
            "chunks": groups * plane_words}


class LaneArray(Datapath):
    """The lane array datapath (``datapath="array"``); see the module documentation."""

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        super().__init__(cfg, blackbox=blackbox)
        self.lay = layout(cfg)
        lay = self.lay
        L, NC, G, CH, C = lay["lanes"], cfg.classes, lay["groups"], lay["chunks"], cfg.in_c
        self.tag_layout = data.StructLayout({
            "kind": Kind, "addr": max(1, (max(NC * CH, G * C, CH) - 1).bit_length()), "lane": index(L),
            "cls": index(NC), "first": 1, "last": 1, "chunk": index(CH), "mask": L, "group": index(G),
        })
        self.latency = ProcessingUnit.latency

    # -- memories ---------------------------------------------------------------------------

    def own_memories(self) -> dict:
        """Per unit: conv weights, dense weights, activations, gradients; then labels and order."""
        cfg, lay = self.cfg, self.lay
        dw, lanes = cfg.data_width, lay["lanes"]
        lane_writes = dw if lanes > 1 else None       # one write enable per lane
        shapes = {}
        for p in range(cfg.n_pu):
            shapes[f"conv_w{p}"] = MemoryShape(lanes * dw, lay["groups"] * cfg.in_c, lane_writes)
            shapes[f"dense_w{p}"] = MemoryShape(lanes * dw, cfg.classes * lay["chunks"], lane_writes)
            shapes[f"act{p}"] = MemoryShape(lanes * dw, lay["chunks"], lane_writes)
            shapes[f"grad{p}"] = MemoryShape(lanes * dw, lay["chunks"])
        shapes["labels"], shapes["order"] = MemoryShape(8, cfg.slots), MemoryShape(16, cfg.slots)
        return shapes

    def memories(self) -> dict:
        cfg = self.cfg
        return {**self.own_memories(), "loss.mem": loss_memory_shape(cfg),
                **{f"samples.bank{b}": sample_bank_shape(cfg) for b in range(cfg.kernel)}}

    @property
    def ctr_limit(self) -> int:
        # Generic loop counter ``ctr``, as wide as its longest count (slots scanned or ordered,
        # chunks cleared, pipeline drains): a 32-bit one put its compare chains on the critical path.
        return max(self.lay["chunks"], self.latency + 2 + LOGIT_LATENCY)

    @property
    def drain_cycles(self) -> int:
        return self.latency + 2

    def build_memories(self, m, blocks):
        self.blocks = blocks
        mems = self.make_memories(m)
        NPU = self.cfg.n_pu
        self.conv_w = [mems[f"conv_w{p}"] for p in range(NPU)]
        self.dense_w = [mems[f"dense_w{p}"] for p in range(NPU)]
        self.act = [mems[f"act{p}"] for p in range(NPU)]
        self.grad = [mems[f"grad{p}"] for p in range(NPU)]
        self.pus = []
        for p in range(NPU):
            m.submodules[f"pu{p}"] = pu = ProcessingUnit(self.cfg, tag_width=self.tag_layout.size)
            self.pus.append(pu)

    def lanes_of(self, word):
        dw = self.cfg.data_width
        return [word[i * dw:(i + 1) * dw].as_signed() for i in range(self.lay["lanes"])]

    # -- operand issue and write-back -------------------------------------------------------

    def build(self, m, ctl):
        cfg, lay = self.cfg, self.lay
        dw, F, NC = cfg.data_width, cfg.filters, cfg.classes
        L, P, PW = lay["lanes"], lay["positions"], lay["plane_words"]
        # The logits as the host reads them; the loss unit keeps its own copy.
        self.logits = Array(Signal(signed(dw), name=f"logit{o}") for o in range(NC))
        self.conv_b = Array(Signal(signed(dw), name=f"conv_b{f}") for f in range(F))
        self.dense_b = Array(Signal(signed(dw), name=f"dense_b{o}") for o in range(NC))
        self.counters = {name: Signal(32, name=f"ctr_{name.lower()}") for name in
                         ["CYCLES"] + [f"CYC_{ph.name}" for ph in Phase] + ["OPERAND_SETS", "TRAIN_SAMPLES"]}
        # pos -> (word, lane) within a filter plane
        self.pos_word = Array(Const(pos // L, index(PW)) for pos in range(P))
        self.pos_lane = Array(Const(pos % L, index(L)) for pos in range(P))
        self._window_stage(m, ctl)
        self._unit_inputs(m, ctl)
        self._sweep_operands(m, ctl)
        self._write_back(m)
        self._loop_state(m, ctl)
        self.drawn = ctl.initial_weight(m, self.blocks.lfsr, self.init_dense)
        self._count(m, ctl)
        m.d.comb += [self.blocks.window.slot.eq(ctl.slot), self.blocks.loss.label.eq(ctl.sample_label)]

    def _window_stage(self, m, ctl):
        """Window output (stage W) -> register + memory reads -> issue (stage I)."""
        cfg, lay, window = self.cfg, self.lay, self.blocks.window
        C, G, CH, L = cfg.in_c, lay["groups"], lay["chunks"], lay["lanes"]
        busy = ctl.busy
        self.sweep_fwd = sweep_fwd = Signal()  # sweeps feed the conv forward pass (else the weight gradient)
        self.group = group = Signal(index(G))
        self.chan_sweep = Signal(index(C))
        self.w_valid, self.w_first, self.w_last_chan, self.w_last, self.w_first_out = \
            (Signal(name=f"w_{n}") for n in ("valid", "first", "last_chan", "last", "first_out"))
        self.w_pixels = Signal(data.ArrayLayout(8, L))
        self.w_word, self.w_lane = Signal(index(CH)), Signal(index(L))
        self.w_group = Signal(index(G))
        seen_output = Signal()
        pos = Signal(index(lay["positions"]))
        m.d.comb += pos.eq(window.pos)
        plane_base = Signal(index(CH))
        m.d.comb += plane_base.eq(group * lay["plane_words"])
        m.d.sync += [self.w_valid.eq(window.valid & busy), self.w_first.eq(window.first_chan),
                     self.w_last_chan.eq(window.last_chan), self.w_last.eq(window.last),
                     self.w_pixels.eq(window.window), self.w_word.eq(plane_base + self.pos_word[pos]),
                     self.w_lane.eq(self.pos_lane[pos]), self.w_first_out.eq(~seen_output), self.w_group.eq(group)]
        with m.If(window.valid):
            m.d.sync += seen_output.eq(1)
        with m.If(window.start):
            m.d.sync += seen_output.eq(0)
        # Memory reads for stage I, issued at stage W.
        with m.If(window.valid & busy):
            for p in range(cfg.n_pu):
                with m.If(sweep_fwd):
                    m.d.comb += [self.conv_w[p].r_en.eq(1), self.conv_w[p].r_addr.eq(group * C + window.chan)]
                with m.Else():
                    m.d.comb += [self.grad[p].r_en.eq(1), self.grad[p].r_addr.eq(plane_base + self.pos_word[pos])]
        # A weight-gradient sweep ends with an UPDATE from the accumulators.
        self.cw_update = Signal()
        m.d.sync += self.cw_update.eq(self.w_valid & ~sweep_fwd & self.w_last)
        with m.If(self.w_valid & ~sweep_fwd & self.w_last):
            for p in range(cfg.n_pu):
                m.d.comb += [self.conv_w[p].r_en.eq(1), self.conv_w[p].r_addr.eq(group * C + self.chan_sweep)]

    def _unit_inputs(self, m, ctl):
        """The processing units' inputs, driven by the phase that is issuing."""
        cfg, NPU, L, dw = self.cfg, self.cfg.n_pu, self.lay["lanes"], self.cfg.data_width
        self.issue = Signal()
        self.tag = tag = Signal(self.tag_layout)
        self.pu_mode, self.pu_first, self.pu_bias = Signal(Mode), Signal(), Signal()
        self.pu_source = Signal(GradSource)
        self.pu_a = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_a") for p in range(NPU)]
        self.pu_b = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_b") for p in range(NPU)]
        self.pu_w = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_w") for p in range(NPU)]
        self.pu_wb = [Signal(signed(dw), name=f"pu{p}_wb") for p in range(NPU)]
        self.pu_init_bias = [Signal(signed(dw), name=f"pu{p}_init_bias") for p in range(NPU)]
        self.pu_mask = [Signal(L, name=f"pu{p}_mask") for p in range(NPU)]
        self.pu_dither = [Signal(DITHER_BITS, name=f"pu{p}_dither") for p in range(NPU)]
        for pu, dither in zip(self.pus, self.pu_dither):
            m.d.comb += [pu.lr_shift.eq(ctl.lr_shift), pu.dither.eq(dither)]
        m.d.comb += tag.mask.eq(self.pu_mask[0])      # each unit's own mask replaces it below
        for p, pu in enumerate(self.pus):
            pu_tag = Signal(self.tag_layout, name=f"pu{p}_tag")
            m.d.comb += [pu_tag.eq(tag), pu_tag.mask.eq(self.pu_mask[p])]
            m.d.comb += [pu.valid.eq(self.issue), pu.mode.eq(self.pu_mode), pu.first.eq(self.pu_first),
                         pu.bias.eq(self.pu_bias), pu.source.eq(self.pu_source), pu.a.eq(self.pu_a[p]),
                         pu.b.eq(self.pu_b[p]), pu.w.eq(self.pu_w[p]), pu.w_bias.eq(self.pu_wb[p]),
                         pu.init_bias.eq(self.pu_init_bias[p]), pu.tag.eq(pu_tag)]
        with m.If(self.issue):
            m.d.sync += self.counters["OPERAND_SETS"].eq(self.counters["OPERAND_SETS"] + 1)

    def _sweep_operands(self, m, ctl):
        """The operands of a window sweep: conv forward ``DOT``, weight-gradient ``OUTER`` and
        the ``UPDATE`` that ends a weight-gradient sweep."""
        cfg, NPU, L, C = self.cfg, self.cfg.n_pu, self.lay["lanes"], self.cfg.in_c
        tag, group, chan_sweep = self.tag, self.group, self.chan_sweep
        with m.If(self.w_valid):
            m.d.comb += self.issue.eq(1)
            for p in range(NPU):
                m.d.comb += self.pu_a[p].eq(Const(0))
                for i in range(L):
                    m.d.comb += self.pu_a[p][i].eq(pixel_data(cfg, self.w_pixels[i]))
            with m.If(self.sweep_fwd):
                m.d.comb += [self.pu_mode.eq(Mode.DOT), self.pu_first.eq(self.w_first),
                             tag.kind.eq(Mux(self.w_last_chan, Kind.ACT, Kind.NONE)), tag.addr.eq(self.w_word),
                             tag.lane.eq(self.w_lane)]
                for p in range(NPU):
                    m.d.comb += [self.pu_b[p].eq(self.conv_w[p].r_data),
                                 self.pu_init_bias[p].eq(self.conv_b[self.w_group * NPU + p])]
            with m.Else():
                m.d.comb += [self.pu_mode.eq(Mode.OUTER), self.pu_first.eq(self.w_first_out),
                             self.pu_bias.eq(chan_sweep == 0)]
                for p in range(NPU):
                    grad_lanes = Array(self.lanes_of(self.grad[p].r_data))
                    for i in range(L):
                        m.d.comb += self.pu_b[p][i].eq(grad_lanes[self.w_lane])
        with m.If(self.cw_update):
            m.d.comb += [self.issue.eq(1), self.pu_mode.eq(Mode.UPDATE), self.pu_source.eq(GradSource.ACC),
                         tag.kind.eq(Kind.CW), tag.addr.eq(group * C + chan_sweep),
                         tag.first.eq(chan_sweep == 0), tag.group.eq(group)]
            for p in range(NPU):
                m.d.comb += [self.pu_w[p].eq(self.conv_w[p].r_data), self.pu_wb[p].eq(self.conv_b[group * NPU + p])]
            self._unit_dithers(m, ctl, CONV, o=0, group=group, word=chan_sweep)

    def _unit_dithers(self, m, ctl, kind, o, group, word):
        """Each unit's dither word for an ``UPDATE`` of filter ``group * n_pu + p``: the step
        seed XORed with the image of the coordinates its lanes share
        (:mod:`tinycl_hdl.spec.update`).  Nothing when the update rounds to nearest."""
        if not ctl.stochastic:
            return
        coords, NPU = Coordinates.of(self.cfg), self.cfg.n_pu
        for p in range(NPU):
            f = Signal(index(self.cfg.filters), name=f"dither_f{p}")
            m.d.comb += f.eq(group * NPU + p)
            m.d.comb += self.pu_dither[p].eq(ctl.step_seed ^ coordinate_image(coords, kind=kind, o=o, f=f, word=word))

    def _write_back(self, m):
        """The processing units' results into the memories, the biases and the logits."""
        cfg, NPU, L, dw = self.cfg, self.cfg.n_pu, self.lay["lanes"], self.cfg.data_width
        pus, loss = self.pus, self.blocks.loss
        out_tag = Signal(self.tag_layout)
        m.d.comb += out_tag.eq(pus[0].out_tag)
        out_valid = pus[0].out_valid
        with m.If(out_valid & (out_tag.kind == Kind.ACT)):
            for p, pu in enumerate(pus):
                relu = Mux(pu.dot_narrow > 0, pu.dot_narrow, 0)
                m.d.comb += [self.act[p].w_addr.eq(out_tag.addr), self.act[p].w_en.eq(Const(1, L) << out_tag.lane),
                             self.act[p].w_data.eq(Cat(*[relu.as_unsigned()[:dw]] * L))]
        # Logits: the units' dot accumulators summed and rounded, then saturated a cycle later
        # (LOGIT_LATENCY), so that no carry chain feeds the saturation in the same cycle.
        total_rounded = round_shift(sum(pu.dot for pu in pus), cfg.frac_bits)
        logit_valid, logit_cls = Signal(), Signal.like(out_tag.cls)
        logit_rounded = Signal(total_rounded.shape())
        m.d.sync += [logit_valid.eq(out_valid & (out_tag.kind == Kind.LOGIT)), logit_cls.eq(out_tag.cls),
                     logit_rounded.eq(total_rounded)]
        logit = saturate(logit_rounded, dw)
        with m.If(logit_valid):
            m.d.sync += self.logits[logit_cls].eq(logit)
            m.d.comb += [loss.z_en.eq(1), loss.z_index.eq(logit_cls), loss.z_data.eq(logit)]
        with m.If(out_valid & (out_tag.kind == Kind.DW)):
            for p, pu in enumerate(pus):
                m.d.comb += [self.dense_w[p].w_addr.eq(out_tag.addr), self.dense_w[p].w_data.eq(pu.upd),
                             self.dense_w[p].w_en.eq((1 << L) - 1)]
                own_tag = data.View(self.tag_layout, pu.out_tag)
                with m.If(out_tag.last):
                    masked = [Mux(own_tag.mask[i], pu.lane_narrow[i], 0) for i in range(L)]
                    m.d.comb += [self.grad[p].w_addr.eq(out_tag.chunk), self.grad[p].w_en.eq(1),
                                 self.grad[p].w_data.eq(Cat(*(v.as_unsigned()[:dw] for v in masked)))]
            with m.If(out_tag.first):
                m.d.sync += self.dense_b[out_tag.cls].eq(pus[0].upd_bias)
        with m.If(out_valid & (out_tag.kind == Kind.CW)):
            for p, pu in enumerate(pus):
                m.d.comb += [self.conv_w[p].w_addr.eq(out_tag.addr), self.conv_w[p].w_data.eq(pu.upd),
                             self.conv_w[p].w_en.eq((1 << L) - 1)]
                with m.If(out_tag.first):
                    m.d.sync += self.conv_b[out_tag.group * NPU + p].eq(pu.upd_bias)

    def _loop_state(self, m, ctl):
        """The counters of the dense loops and of the weight initialisation."""
        cfg, lay = self.cfg, self.lay
        F, C, K, L, P, CH = cfg.filters, cfg.in_c, cfg.kernel, lay["lanes"], lay["positions"], lay["chunks"]
        self.chunk = Signal(range(CH + 1))     # DENSE_BWD counts one past the last chunk
        self.run_addr = Signal(len(self.tag.addr))
        self.half = Signal()
        self.pending = Signal()            # dense backward: an UPDATE is due this cycle
        self.pend_o, self.pend_addr, self.pend_chunk = Signal.like(ctl.o), Signal.like(self.run_addr), \
            Signal.like(self.chunk)
        self.pend_first, self.pend_last = Signal(), Signal()
        # Dense backward: the filter group and plane word of the chunk read, and of the pending one.
        self.db_group, self.db_word = Signal(index(lay["groups"])), Signal(index(lay["plane_words"]))
        self.pend_group, self.pend_word = Signal.like(self.db_group), Signal.like(self.db_word)
        self.df_valid, self.df_first, self.df_last = Signal(), Signal(), Signal()
        self.df_o = Signal.like(ctl.o)
        self.init_f, self.init_c, self.init_i, self.init_j = \
            Signal(index(F)), Signal(index(C)), Signal(index(K)), Signal(index(K))
        self.init_y, self.init_x = Signal(index(cfg.out_h)), Signal(index(cfg.out_w))
        self.init_pos = Signal(index(P))
        self.init_valid, self.init_dense = Signal(), Signal()
        self.init_waddr = Signal(len(self.run_addr))
        self.init_lane = Signal(index(L))
        self.init_p = Signal(index(cfg.n_pu))
        self.o_base = Signal(len(self.run_addr))

    def _count(self, m, ctl):
        counters, window = self.counters, self.blocks.window
        with m.If(ctl.clear_counters):
            for ctr_sig in counters.values():
                m.d.sync += ctr_sig.eq(0)
            m.d.comb += window.clear_reads.eq(1)
        with m.Elif(ctl.busy):
            m.d.sync += counters["CYCLES"].eq(counters["CYCLES"] + 1)
            with m.Switch(ctl.phase):
                for ph in Phase:
                    with m.Case(ph):
                        key = f"CYC_{ph.name}"
                        m.d.sync += counters[key].eq(counters[key] + 1)

    # -- the control unit's hooks -----------------------------------------------------------

    def on_start(self, m, ctl):
        m.d.sync += self.group.eq(0)

    def on_train(self, m, ctl):
        m.next = "ACT_CLEAR"

    def on_infer(self, m, ctl):
        m.next = "ACT_CLEAR"

    def on_order(self):
        return [self.init_dense.eq(0)]

    def on_label(self):
        return [self.group.eq(0)]

    def on_cancel(self, m):
        m.d.sync += self.sweep_fwd.eq(0)

    def on_done(self, m):
        m.d.sync += self.sweep_fwd.eq(0)

    def count_sample(self, m):
        m.d.sync += self.counters["TRAIN_SAMPLES"].eq(self.counters["TRAIN_SAMPLES"] + 1)

    def on_loss_done(self, m, ctl):
        m.d.sync += [self.chunk.eq(0), ctl.o.eq(0), self.run_addr.eq(0), self.half.eq(0), self.pending.eq(0),
                     self.db_group.eq(0), self.db_word.eq(0)]

    # -- weight initialisation ----------------------------------------------------------------

    def init_states(self, m, ctl):
        """``ACT_CLEAR`` (TRAIN, TRAIN_KEEP, INFER), then for TRAIN ``INIT_CONV``, ``INIT_DENSE``:
        one draw per weight in the golden model's order, written a cycle later."""
        cfg, CH, NPU = self.cfg, self.lay["chunks"], self.cfg.n_pu
        ctr = ctl.ctr
        with m.State("ACT_CLEAR"):
            for p in range(NPU):
                m.d.comb += [self.act[p].w_en.eq((1 << self.lay["lanes"]) - 1), self.act[p].w_addr.eq(ctr),
                             self.act[p].w_data.eq(0)]
            with m.If(ctr == CH - 1):
                m.d.sync += ctr.eq(0)
                with m.If(ctl.is_infer):
                    m.next = "CF_START"
                with m.Elif(ctl.from_scratch):
                    m.d.sync += [self.init_f.eq(0), self.init_c.eq(0), self.init_i.eq(0), self.init_j.eq(0),
                                 self.init_valid.eq(0), self.init_dense.eq(0), self.init_p.eq(0), self.group.eq(0)]
                    for f in range(cfg.filters):
                        m.d.sync += self.conv_b[f].eq(0)
                    for c in range(cfg.classes):
                        m.d.sync += self.dense_b[c].eq(0)
                    m.next = "INIT_CONV"
                with m.Else():
                    m.next = "ORDER_INIT"
            with m.Else():
                m.d.sync += ctr.eq(ctr + 1)
        with m.State("INIT_CONV"):
            self._init_conv(m, ctl)
        with m.State("INIT_DENSE"):
            self._init_dense(m, ctl)
        with m.State("INIT_LAST"):
            m.d.sync += [self.init_valid.eq(0), ctr.eq(0)]
            m.next = "ORDER_INIT"

    def _next_filter(self, m):
        """The filter counter ``init_f`` moves on: its group follows every ``n_pu`` filters."""
        NPU = self.cfg.n_pu
        if NPU > 1:
            with m.If(self.init_f % NPU == NPU - 1):
                m.d.sync += self.group.eq(self.group + 1)
        else:
            m.d.sync += self.group.eq(self.group + 1)

    def _init_conv(self, m, ctl):
        cfg, C, K, NPU = self.cfg, self.cfg.in_c, self.cfg.kernel, self.cfg.n_pu
        init_f, init_c, init_i, init_j = self.init_f, self.init_c, self.init_i, self.init_j
        # One draw per weight, in the golden model's order f, c, i, j; written a cycle later.
        m.d.comb += [self.blocks.lfsr.draw.eq(1)]
        m.d.sync += [self.init_valid.eq(1), self.init_waddr.eq(self.group * C + init_c),
                     self.init_lane.eq(init_i * K + init_j), self.init_p.eq(init_f % NPU if NPU > 1 else 0)]
        last_w = (init_j == K - 1) & (init_i == K - 1) & (init_c == C - 1) & (init_f == cfg.filters - 1)
        with m.If(init_j != K - 1):
            m.d.sync += init_j.eq(init_j + 1)
        with m.Else():
            m.d.sync += init_j.eq(0)
            with m.If(init_i != K - 1):
                m.d.sync += init_i.eq(init_i + 1)
            with m.Else():
                m.d.sync += init_i.eq(0)
                with m.If(init_c != C - 1):
                    m.d.sync += init_c.eq(init_c + 1)
                with m.Else():
                    m.d.sync += [init_c.eq(0), init_f.eq(init_f + 1)]
                    self._next_filter(m)
        with m.If(last_w):
            m.d.sync += [init_f.eq(0), self.init_y.eq(0), self.init_x.eq(0), self.init_pos.eq(0), ctl.o.eq(0),
                         self.group.eq(0), self.o_base.eq(0)]
            m.next = "INIT_DENSE"

    def _init_dense(self, m, ctl):
        cfg, NPU, PW, CH = self.cfg, self.cfg.n_pu, self.lay["plane_words"], self.lay["chunks"]
        init_f, init_x, init_y, init_pos, o = self.init_f, self.init_x, self.init_y, self.init_pos, ctl.o
        m.d.comb += [self.blocks.lfsr.draw.eq(1)]
        m.d.sync += [self.init_dense.eq(1), self.init_valid.eq(1),
                     self.init_waddr.eq(self.o_base + self.group * PW + self.pos_word[init_pos]),
                     self.init_lane.eq(self.pos_lane[init_pos]), self.init_p.eq(init_f % NPU if NPU > 1 else 0)]
        last_w = (init_x == cfg.out_w - 1) & (init_y == cfg.out_h - 1) & (init_f == cfg.filters - 1) & \
            (o == cfg.classes - 1)
        with m.If(init_x != cfg.out_w - 1):
            m.d.sync += [init_x.eq(init_x + 1), init_pos.eq(init_pos + 1)]
        with m.Else():
            m.d.sync += init_x.eq(0)
            with m.If(init_y != cfg.out_h - 1):
                m.d.sync += [init_y.eq(init_y + 1), init_pos.eq(init_pos + 1)]
            with m.Else():
                m.d.sync += [init_y.eq(0), init_pos.eq(0)]
                with m.If(init_f != cfg.filters - 1):
                    m.d.sync += init_f.eq(init_f + 1)
                    self._next_filter(m)
                with m.Else():
                    m.d.sync += [init_f.eq(0), self.group.eq(0), o.eq(o + 1), self.o_base.eq(self.o_base + CH)]
        with m.If(last_w):
            m.next = "INIT_LAST"

    # -- the phases ---------------------------------------------------------------------------

    def conv_forward(self, m, ctl):
        window, G = self.blocks.window, self.lay["groups"]
        with m.State("CF_START"):
            m.d.comb += [window.start.eq(1), window.chan_first.eq(0), window.chan_last.eq(self.cfg.in_c - 1)]
            m.d.sync += [self.sweep_fwd.eq(1), ctl.phase.eq(Phase.CONV_FWD)]
            m.next = "CF_RUN"
        with m.State("CF_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & window.valid & window.last):
                with m.If(self.group == G - 1):
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "CF_DRAIN"
                with m.Else():
                    m.d.sync += self.group.eq(self.group + 1)
                    m.next = "CF_START"
        with m.State("CF_DRAIN"):
            ctl.drain(m, "DF_START")
            with m.If(ctl.ctr == self.latency + 1):
                m.d.sync += [ctl.o.eq(0), self.chunk.eq(0), self.run_addr.eq(0), ctl.phase.eq(Phase.DENSE_FWD)]

    def dense_forward(self, m, ctl):
        CH, NC, o = self.lay["chunks"], self.cfg.classes, ctl.o
        with m.State("DF_START"):
            m.next = "DF_RUN"
        with m.State("DF_RUN"):
            for p in range(self.cfg.n_pu):
                m.d.comb += [self.dense_w[p].r_en.eq(1), self.dense_w[p].r_addr.eq(self.run_addr),
                             self.act[p].r_en.eq(1), self.act[p].r_addr.eq(self.chunk)]
            m.d.sync += [self.run_addr.eq(self.run_addr + 1), self.df_o.eq(o), self.df_first.eq(self.chunk == 0),
                         self.df_last.eq(self.chunk == CH - 1), self.df_valid.eq(1)]
            with m.If(self.chunk == CH - 1):
                m.d.sync += [self.chunk.eq(0), o.eq(o + 1)]
                with m.If(o == NC - 1):
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "DF_DRAIN"
            with m.Else():
                m.d.sync += self.chunk.eq(self.chunk + 1)
        with m.State("DF_DRAIN"):
            m.d.sync += self.df_valid.eq(0)
            ctl.logits_ready(m, self.blocks.loss, self.latency + 2 + LOGIT_LATENCY)

    def dense_backward(self, m, ctl):
        """``DB_RUN``: half 0 issues the ``UPDATE`` of the pending (chunk, class) and reads the
        next weight; half 1 the ``OUTER`` of the class just read."""
        with m.State("DB_RUN"):
            m.d.sync += self.half.eq(~self.half)
            with m.If(~self.half):
                self._dense_update_half(m, ctl)
            with m.Else():
                self._dense_outer_half(m, ctl)
        with m.State("DB_DRAIN"):
            ctl.drain(m, "CB_START")
            with m.If(ctl.ctr == self.latency + 1):
                m.d.sync += [self.group.eq(0), self.chan_sweep.eq(0), ctl.phase.eq(Phase.CONV_BWD)]

    def _dense_update_half(self, m, ctl):
        CH, NC, L, o, loss, tag = self.lay["chunks"], self.cfg.classes, self.lay["lanes"], ctl.o, \
            self.blocks.loss, self.tag
        chunk, run_addr = self.chunk, self.run_addr
        with m.If(self.pending):
            m.d.comb += [self.issue.eq(1), self.pu_mode.eq(Mode.UPDATE), self.pu_source.eq(GradSource.PRODUCT),
                         tag.kind.eq(Kind.DW), tag.addr.eq(self.pend_addr), tag.cls.eq(self.pend_o),
                         tag.first.eq(self.pend_first), tag.last.eq(self.pend_last), tag.chunk.eq(self.pend_chunk)]
            for p in range(self.cfg.n_pu):
                a_lanes = self.lanes_of(self.act[p].r_data)
                m.d.comb += [self.pu_w[p].eq(self.dense_w[p].r_data), self.pu_wb[p].eq(self.dense_b[self.pend_o])]
                for i in range(L):
                    m.d.comb += [self.pu_a[p][i].eq(a_lanes[i]), self.pu_b[p][i].eq(loss.rd_data)]
                m.d.comb += self.pu_mask[p].eq(Cat(*[a > 0 for a in a_lanes]))
            self._unit_dithers(m, ctl, DENSE, o=self.pend_o, group=self.pend_group, word=self.pend_word)
        with m.If(chunk == CH):
            m.d.sync += [self.pending.eq(0), ctl.ctr.eq(0)]
            m.next = "DB_DRAIN"
        with m.Else():
            for p in range(self.cfg.n_pu):
                m.d.comb += [self.dense_w[p].r_en.eq(1), self.dense_w[p].r_addr.eq(run_addr + chunk)]
                with m.If(o == 0):
                    m.d.comb += [self.act[p].r_en.eq(1), self.act[p].r_addr.eq(chunk)]
            # delta[o] stays on the loss unit's output for both operations of the pair.
            m.d.comb += [loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o)]
            m.d.sync += [self.pend_o.eq(o), self.pend_addr.eq(run_addr + chunk), self.pend_chunk.eq(chunk),
                         self.pend_first.eq(chunk == 0), self.pend_last.eq(o == NC - 1), self.pending.eq(1),
                         self.pend_group.eq(self.db_group), self.pend_word.eq(self.db_word)]

    def _dense_outer_half(self, m, ctl):
        CH, NC, L, o, loss = self.lay["chunks"], self.cfg.classes, self.lay["lanes"], ctl.o, self.blocks.loss
        m.d.comb += [self.issue.eq(1), self.pu_mode.eq(Mode.OUTER), self.pu_first.eq(self.pend_o == 0)]
        for p in range(self.cfg.n_pu):
            w_lanes = self.lanes_of(self.dense_w[p].r_data)
            for i in range(L):
                m.d.comb += [self.pu_a[p][i].eq(w_lanes[i]), self.pu_b[p][i].eq(loss.rd_data)]
        with m.If(o == NC - 1):
            m.d.sync += [o.eq(0), self.run_addr.eq(0), self.chunk.eq(self.chunk + 1)]
            # The chunk's filter group and word within the group's planes, for the dither.
            with m.If(self.db_word == self.lay["plane_words"] - 1):
                m.d.sync += [self.db_word.eq(0), self.db_group.eq(self.db_group + 1)]
            with m.Else():
                m.d.sync += self.db_word.eq(self.db_word + 1)
        with m.Else():
            m.d.sync += [o.eq(o + 1), self.run_addr.eq(self.run_addr + CH)]

    def conv_backward(self, m, ctl):
        window, C, G = self.blocks.window, self.cfg.in_c, self.lay["groups"]
        chan_sweep, group = self.chan_sweep, self.group
        with m.State("CB_START"):
            m.d.comb += [window.start.eq(1), window.chan_first.eq(chan_sweep), window.chan_last.eq(chan_sweep)]
            m.d.sync += self.sweep_fwd.eq(0)
            m.next = "CB_RUN"
        with m.State("CB_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.cw_update):
                with m.If(chan_sweep != C - 1):
                    m.d.sync += chan_sweep.eq(chan_sweep + 1)
                    m.next = "CB_START"
                with m.Elif(group != G - 1):
                    m.d.sync += [chan_sweep.eq(0), group.eq(group + 1)]
                    m.next = "CB_START"
                with m.Else():
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "CB_DRAIN"
        with m.State("CB_DRAIN"):
            ctl.drain(m, "SAMPLE_NEXT")

    # -- after the FSM ------------------------------------------------------------------------

    def after_fsm(self, m, ctl, control):
        NPU, L, dw = self.cfg.n_pu, self.lay["lanes"], self.cfg.data_width
        # Dense forward issue (one cycle after the reads).
        with m.If(self.df_valid):
            m.d.comb += [self.issue.eq(1), self.pu_mode.eq(Mode.DOT), self.pu_first.eq(self.df_first),
                         self.tag.kind.eq(Mux(self.df_last, Kind.LOGIT, Kind.NONE)), self.tag.cls.eq(self.df_o)]
            for p in range(NPU):
                m.d.comb += [self.pu_a[p].eq(self.act[p].r_data), self.pu_b[p].eq(self.dense_w[p].r_data)]
                if p == 0:
                    m.d.comb += self.pu_init_bias[p].eq(self.dense_b[self.df_o])
        # Weight initialisation writes (one cycle after each draw).
        with m.If(self.init_valid):
            for p in range(NPU):
                with m.If(self.init_p == p):
                    lanes_value = Cat(*[self.drawn.as_unsigned()[:dw]] * L)
                    with m.If(self.init_dense):
                        m.d.comb += [self.dense_w[p].w_en.eq(Const(1, L) << self.init_lane),
                                     self.dense_w[p].w_addr.eq(self.init_waddr), self.dense_w[p].w_data.eq(lanes_value)]
                    with m.Else():
                        m.d.comb += [self.conv_w[p].w_en.eq(Const(1, L) << self.init_lane),
                                     self.conv_w[p].w_addr.eq(self.init_waddr), self.conv_w[p].w_data.eq(lanes_value)]

    # -- the host's reads ---------------------------------------------------------------------

    def host_port(self, m, ctl, host):
        cfg, lay, rm = self.cfg, self.lay, ctl.regmap
        readable = host.readable
        readable["SAMPLE_READS"] = self.blocks.window.reads
        readable.update(self.counters)
        for c in range(cfg.classes):
            readable[f"CLASS_COUNT{c}"] = ctl.counts[c]
            readable[f"LOGIT{c}"] = self.logits[c]
            readable[f"DENSE_B{c}"] = self.dense_b[c]
        for f in range(cfg.filters):
            readable[f"CONV_B{f}"] = self.conv_b[f]
        reg_value, is_reg = self._register_read(m, host, list(rm.registers), readable)
        word_addrs = self._weight_addresses(m, host)
        return self._read_request(host, reg_value, is_reg, word_addrs), self._memory_states(host)

    def _register_read(self, m, host, registers, readable):
        """Cycle 1: which register; cycle 2: its value."""
        reg_sel, is_reg = Signal(range(len(registers))), Signal()
        with m.Switch(host.addr):
            for i, reg in enumerate(registers):
                with m.Case(reg.offset):
                    m.d.sync += [reg_sel.eq(i), is_reg.eq(1)]
            with m.Default():
                m.d.sync += [reg_sel.eq(0), is_reg.eq(0)]
        reg_value = Signal(32)
        with m.Switch(reg_sel):
            for i, reg in enumerate(registers):
                with m.Case(i):
                    source = readable.get(reg.name)
                    if source is None:
                        m.d.sync += reg_value.eq(reg.reset)
                    elif isinstance(source, Signal) and source.shape().signed:
                        m.d.sync += reg_value.eq(source.as_signed())
                    else:
                        m.d.sync += reg_value.eq(source)
        return reg_value, is_reg

    def _weight_addresses(self, m, host):
        """Cycle 1: the dense position; cycle 2: the weight windows' word addresses and lanes,
        and the unit that holds the weight."""
        cfg, lay, NPU = self.cfg, self.lay, self.cfg.n_pu
        C, K, L, G, NC, CH, PW = cfg.in_c, cfg.kernel, lay["lanes"], lay["groups"], cfg.classes, lay["chunks"], \
            lay["plane_words"]
        cw, dwf = host.cw, host.dwf
        cw_f, dw_f = cw["f"][0], dwf["f"][0]
        dw_pos = Signal(index(lay["positions"]))
        m.d.sync += dw_pos.eq(dwf["y"][0] * cfg.out_w + dwf["x"][0])
        cw_addr_q = Signal(range(max(2, G * C)))
        dw_addr_q = Signal(range(max(2, NC * CH)))
        cw_lane_q, dw_lane_q = Signal(index(L)), Signal(index(L))
        m.d.sync += [cw_addr_q.eq((cw_f // NPU) * C + cw["c"][0]), cw_lane_q.eq(cw["i"][0] * K + cw["j"][0]),
                     dw_addr_q.eq(dwf["o"][0] * CH + (dw_f // NPU) * PW + self.pos_word[dw_pos]),
                     dw_lane_q.eq(self.pos_lane[dw_pos])]
        cw_p = cw_f % NPU if NPU > 1 else Const(0)
        dw_p = dw_f % NPU if NPU > 1 else Const(0)
        return cw_addr_q, cw_lane_q, cw_p, dw_addr_q, dw_lane_q, dw_p

    def _read_request(self, host, reg_value, is_reg, word_addrs):
        cw_addr_q, cw_lane_q, cw_p, dw_addr_q, dw_lane_q, dw_p = word_addrs
        self.mem_word = Signal(self.lay["lanes"] * self.cfg.data_width)
        self.mem_lane = Signal(index(self.lay["lanes"]))
        self.mem_p = Signal(index(self.cfg.n_pu))

        def read_request(m):
            with m.If(is_reg):
                m.d.comb += [host.done_resp.eq(1), host.rdata.eq(reg_value)]
            host.window_reads(m, self.labels, [(mem, cw_addr_q) for mem in self.conv_w],
                              [(mem, dw_addr_q) for mem in self.dense_w],
                              conv_extra=[self.mem_p.eq(cw_p), self.mem_lane.eq(cw_lane_q)],
                              dense_extra=[self.mem_p.eq(dw_p), self.mem_lane.eq(dw_lane_q)])
        return read_request

    def _memory_states(self, host):
        mem_kind, mem_rdata, mem_word = host.mem_kind, host.mem_rdata, self.mem_word

        def memory_states(m):
            with m.State("MEM_READ"):
                # The word read is registered, then its lane, before it answers: a block RAM's
                # output, the unit multiplexer and the lane multiplexer take two cycles.
                with m.Switch(mem_kind):
                    with m.Case(0):
                        m.d.sync += mem_word.eq(self.labels.r_data)
                    with m.Case(1):
                        for p in range(self.cfg.n_pu):
                            with m.If(self.mem_p == p):
                                m.d.sync += mem_word.eq(self.conv_w[p].r_data)
                    with m.Case(2):
                        for p in range(self.cfg.n_pu):
                            with m.If(self.mem_p == p):
                                m.d.sync += mem_word.eq(self.dense_w[p].r_data)
                m.next = "MEM_LANE"
            with m.State("MEM_LANE"):
                with m.If(mem_kind == 0):
                    m.d.sync += mem_rdata.eq(mem_word[:8])
                with m.Else():
                    m.d.sync += mem_rdata.eq(Array(self.lanes_of(mem_word))[self.mem_lane])
                m.next = "MEM_RESPOND"
        return memory_states
