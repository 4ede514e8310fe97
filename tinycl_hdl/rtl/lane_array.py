"""The lane array: ``n_pu`` processing units of ``kernel**2`` MAC lanes each.

Each phase of a training step runs on an engine of its own, a component that reads the
memories it needs and issues operand sets to the units (:mod:`~tinycl_hdl.rtl.issue`):

``CONV_FWD``
    :class:`~tinycl_hdl.rtl.conv_forward.ConvForward`: per group of ``n_pu`` filters, one
    window sweep over all channels; each unit's ``DOT`` sums window x kernel slice, then
    ReLU and the activation write.
``DENSE_FWD``
    :class:`~tinycl_hdl.rtl.dense_forward.DenseForward`: per class, the units ``DOT`` their
    activation chunks against the weight chunks; the partial sums are added and narrowed.
``LOSS``
    :class:`~tinycl_hdl.rtl.loss.LossGradient`, started by the last logit's write.
``DENSE_BWD``
    :class:`~tinycl_hdl.rtl.dense_backward.DenseBackward`: per activation chunk and class,
    one weight read feeds ``OUTER`` (input gradient, old weight) then ``UPDATE`` (new
    weight); after the last class the masked input gradient is written.
``CONV_BWD``
    :class:`~tinycl_hdl.rtl.conv_backward.ConvBackward`: per filter group and channel, a
    single-channel window sweep of ``OUTER`` with the broadcast conv-output gradient (and the
    bias gradient on channel 0), then one ``UPDATE`` from the accumulators.

The array sequences them (:meth:`LaneArray.conv_forward` and the following states): each
engine starts as soon as the one before has issued its last operand set and nothing it
reads first is still in the units' pipeline, so the phases follow each other without
draining the pipeline (docs/performance.md, "Where the cycles go").  The write-back
(:meth:`LaneArray._write_back`) routes every result by its tag, whatever engine issued it.

Memory layout (:func:`~tinycl_hdl.rtl.issue.layout`; unit ``p`` owns filters
``f = g*n_pu + p``): activations, gradients and dense weights of unit ``p`` are indexed
by ``k = g*PW*L + pos`` with ``pos = y*Wo + x`` and ``PW = ceil(Ho*Wo / L)`` words of
``L = kernel**2`` lanes per filter plane; padding lanes hold zero activations.  The host
sees weights in the golden model's order through the register map's windows.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed
from amaranth.lib import data

from ..spec.config import TinyCLConfig
from ..spec.regmap import Phase
from ..spec.schedule import ArraySchedule
from .arith import index, pairwise_sum, round_shift, saturate, times_constant
from .conv_backward import ConvBackward
from .conv_forward import ConvForward, sweep_tag_width
from .datapath import Datapath
from .dense_backward import DenseBackward
from .dense_forward import DenseForward
from .issue import Kind, issue_layout, layout, or_bus, tag_layout
from .loss import loss_memory_shape
from .mac import ProcessingUnit
from .state_port import StatePort
from .memory import MemoryShape, sample_bank_shape
from .window_stage import WindowStage

__all__ = ["LaneArray", "layout"]

class LaneArray(Datapath):
    """The lane array datapath (``datapath="array"``); see the module documentation."""

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        super().__init__(cfg, blackbox=blackbox)
        self.lay = layout(cfg)
        self.tag_layout = tag_layout(cfg)
        self.latency = ProcessingUnit.latency
        self.schedule = ArraySchedule(cfg)

    @property
    def window_tag_width(self) -> int:
        return sweep_tag_width(self.cfg)

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
        # chunks cleared, pipeline waits): a 32-bit one put its compare chains on the critical path.
        s = self.schedule
        return max(self.lay["chunks"], self.drain_cycles, s.cf_to_df, s.db_to_cb, s.cb_to_cf)

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

    # -- the engines, the units' inputs and the write-back ------------------------------------

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
        # pos -> (word, lane) within a filter plane (weight initialisation, the host's reads)
        self.pos_word = Array(Const(pos // L, index(PW)) for pos in range(P))
        self.pos_lane = Array(Const(pos % L, index(L)) for pos in range(P))
        self._engines(m, ctl)
        self._write_back(m)
        self._init_state(m, ctl)
        self.drawn = ctl.initial_weight(m, self.blocks.lfsr, self.init_dense)
        self._count(m, ctl)
        m.d.comb += [self.blocks.window.slot.eq(ctl.slot), self.blocks.loss.label.eq(ctl.sample_label)]

    def _engines(self, m, ctl):
        """The four phase engines, the window stage they share, and the OR of what they drive."""
        cfg, NPU, window, loss = self.cfg, self.cfg.n_pu, self.blocks.window, self.blocks.loss
        m.submodules.window_stage = stage = WindowStage(cfg, self.window_tag_width)
        m.d.comb += [stage.valid.eq(window.valid), stage.first.eq(window.first), stage.first_chan.eq(window.first_chan),
                     stage.last_chan.eq(window.last_chan), stage.last.eq(window.last), stage.chan.eq(window.chan),
                     stage.pos.eq(window.pos), stage.tag.eq(window.out_tag), stage.pixels.eq(window.window)]
        m.submodules.conv_forward = self.cf = cf = ConvForward(cfg)
        m.submodules.dense_forward = self.df = df = DenseForward(cfg)
        m.submodules.dense_backward = self.db = db = DenseBackward(cfg)
        m.submodules.conv_backward = self.cb = cb = ConvBackward(cfg)
        self.engines = engines = [cf, df, db, cb]
        conv_b, dense_b = Cat(*self.conv_b), Cat(*self.dense_b)
        for engine in (cf, cb):
            m.d.comb += [engine.win_busy.eq(window.busy), engine.now.eq(stage.now), engine.stage.eq(stage.stage),
                         engine.conv_w.eq(Cat(mem.r_data for mem in self.conv_w)), engine.conv_b.eq(conv_b)]
        for engine in (df, db):
            m.d.comb += [engine.dense_w.eq(Cat(mem.r_data for mem in self.dense_w)),
                         engine.act.eq(Cat(mem.r_data for mem in self.act)), engine.dense_b.eq(dense_b)]
        for engine in (db, cb):
            m.d.comb += engine.step_seed.eq(ctl.step_seed)
        m.d.comb += [cb.grad.eq(Cat(mem.r_data for mem in self.grad)), db.delta.eq(loss.rd_data)]
        # The window: the two sweeping engines take turns.
        with m.If(cf.win_start | cb.win_start):
            m.d.comb += [window.start.eq(1), window.tag.eq(or_bus([cf.win_tag, cb.win_tag])),
                         window.chan_first.eq(or_bus([cf.win_chan_first, cb.win_chan_first])),
                         window.chan_last.eq(or_bus([cf.win_chan_last, cb.win_chan_last]))]
        # The memories' read ports: every unit reads the same word.  The address goes to the
        # memory without the enable (a block RAM ignores it while not reading): one gate fewer
        # on a net that reaches every block of a weight memory.
        for mems, requests in ((self.conv_w, [cf.conv_w_rd, cb.conv_w_rd]), (self.dense_w, [df.dense_w_rd, db.dense_w_rd]),
                               (self.act, [df.act_rd, db.act_rd]), (self.grad, [cb.grad_rd])):
            request = Signal(requests[0].shape())
            m.d.comb += request.eq(or_bus(requests))
            for mem in mems:
                m.d.comb += [mem.r_en.eq(request.en), mem.r_addr.eq(request.addr)]
        with m.If(db.delta_rd_en):
            m.d.comb += [loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(db.delta_rd_index)]
        # The units' inputs: the one operand set issued this cycle.
        self.issue = issue = Signal(issue_layout(cfg))
        m.d.comb += issue.eq(or_bus([e.issue for e in engines]))
        for p, pu in enumerate(self.pus):
            unit = issue.units[p]
            tag = Signal(self.tag_layout, name=f"pu{p}_tag")
            m.d.comb += [tag.eq(issue.tag), tag.mask.eq(unit.mask)]
            m.d.comb += [pu.valid.eq(issue.valid), pu.mode.eq(issue.mode), pu.first.eq(issue.first),
                         pu.bias.eq(issue.bias), pu.source.eq(issue.source), pu.a.eq(unit.a), pu.b.eq(unit.b),
                         pu.w.eq(unit.w), pu.w_bias.eq(unit.w_bias), pu.init_bias.eq(unit.init_bias),
                         pu.dither.eq(unit.dither), pu.tag.eq(tag), pu.lr_shift.eq(ctl.lr_shift)]
        with m.If(issue.valid):
            m.d.sync += self.counters["OPERAND_SETS"].eq(self.counters["OPERAND_SETS"] + 1)

    def _write_back(self, m):
        """The processing units' results into the memories, the biases and the logits.
        ``last_logit`` marks the cycle the last class's logit is written."""
        cfg, NPU, L, dw, NC = self.cfg, self.cfg.n_pu, self.lay["lanes"], self.cfg.data_width, self.cfg.classes
        pus, loss = self.pus, self.blocks.loss
        out_tag = Signal(self.tag_layout)
        m.d.comb += out_tag.eq(pus[0].out_tag)
        out_valid = pus[0].out_valid
        with m.If(out_valid & (out_tag.kind == Kind.ACT)):
            for p, pu in enumerate(pus):
                relu = Mux(pu.dot_narrow > 0, pu.dot_narrow, 0)
                m.d.comb += [self.act[p].w_addr.eq(out_tag.addr), self.act[p].w_en.eq(Const(1, L) << out_tag.lane),
                             self.act[p].w_data.eq(Cat(*[relu.as_unsigned()[:dw]] * L))]
        # Logits: the units' dot accumulators summed (a balanced tree: a chain of n_pu - 1 adders
        # was the longest path of n_pu = 8) and rounded, then saturated in a cycle of its own,
        # and only then written (LOGIT_LATENCY): no carry chain feeds the saturation, and the
        # saturation does not feed the loss unit's running maximum, in one cycle (that chain
        # was the longest ECP5 path of n_pu = 2).
        total_rounded = round_shift(pairwise_sum(pu.dot for pu in pus)[0], cfg.frac_bits)
        rounded_valid, rounded_cls = Signal(), Signal.like(out_tag.cls)
        logit_rounded = Signal(total_rounded.shape())
        m.d.sync += [rounded_valid.eq(out_valid & (out_tag.kind == Kind.LOGIT)), rounded_cls.eq(out_tag.cls),
                     logit_rounded.eq(total_rounded)]
        logit_valid, logit_cls, logit = Signal(), Signal.like(out_tag.cls), Signal(signed(dw))
        m.d.sync += [logit_valid.eq(rounded_valid), logit_cls.eq(rounded_cls), logit.eq(saturate(logit_rounded, dw))]
        self.last_logit = Signal()
        m.d.comb += self.last_logit.eq(logit_valid & (logit_cls == NC - 1))
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

    def _init_state(self, m, ctl):
        """The counters of the weight initialisation."""
        cfg, lay = self.cfg, self.lay
        F, C, K, L, P = cfg.filters, cfg.in_c, cfg.kernel, lay["lanes"], lay["positions"]
        addr = self.tag_layout["addr"].shape
        self.init_group = Signal(index(lay["groups"]))
        self.init_f, self.init_c, self.init_i, self.init_j = \
            Signal(index(F)), Signal(index(C)), Signal(index(K)), Signal(index(K))
        self.init_y, self.init_x = Signal(index(cfg.out_h)), Signal(index(cfg.out_w))
        self.init_pos = Signal(index(P))
        self.init_valid, self.init_dense = Signal(), Signal()
        self.init_waddr = Signal(addr)
        self.init_lane = Signal(index(L))
        self.init_p = Signal(index(cfg.n_pu))
        self.o_base = Signal(addr)

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

    def on_train(self, m, ctl):
        m.next = "ACT_CLEAR"

    def on_infer(self, m, ctl):
        m.next = "ACT_CLEAR"

    def on_order(self):
        return [self.init_dense.eq(0)]

    def on_cancel(self, m):
        m.d.comb += [engine.cancel.eq(1) for engine in self.engines]

    def on_done(self, m):
        pass

    def count_sample(self, m):
        m.d.sync += self.counters["TRAIN_SAMPLES"].eq(self.counters["TRAIN_SAMPLES"] + 1)

    def on_loss_done(self, m, ctl):
        m.d.comb += self.db.start.eq(1)
        m.d.sync += ctl.ctr.eq(0)

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
                                 self.init_valid.eq(0), self.init_dense.eq(0), self.init_p.eq(0),
                                 self.init_group.eq(0)]
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
                m.d.sync += self.init_group.eq(self.init_group + 1)
        else:
            m.d.sync += self.init_group.eq(self.init_group + 1)

    def _init_conv(self, m, ctl):
        cfg, C, K, NPU = self.cfg, self.cfg.in_c, self.cfg.kernel, self.cfg.n_pu
        init_f, init_c, init_i, init_j = self.init_f, self.init_c, self.init_i, self.init_j
        # One draw per weight, in the golden model's order f, c, i, j; written a cycle later.
        m.d.comb += [self.blocks.lfsr.draw.eq(1)]
        m.d.sync += [self.init_valid.eq(1), self.init_waddr.eq(times_constant(self.init_group, C) + init_c),
                     self.init_lane.eq(times_constant(init_i, K) + init_j), self.init_p.eq(init_f % NPU if NPU > 1 else 0)]
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
                         self.init_group.eq(0), self.o_base.eq(0)]
            m.next = "INIT_DENSE"

    def _init_dense(self, m, ctl):
        cfg, NPU, PW, CH = self.cfg, self.cfg.n_pu, self.lay["plane_words"], self.lay["chunks"]
        init_f, init_x, init_y, init_pos, o = self.init_f, self.init_x, self.init_y, self.init_pos, ctl.o
        m.d.comb += [self.blocks.lfsr.draw.eq(1)]
        m.d.sync += [self.init_dense.eq(1), self.init_valid.eq(1),
                     self.init_waddr.eq(self.o_base + times_constant(self.init_group, PW) + self.pos_word[init_pos]),
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
                    m.d.sync += [init_f.eq(0), self.init_group.eq(0), o.eq(o + 1), self.o_base.eq(self.o_base + CH)]
        with m.If(last_w):
            m.next = "INIT_LAST"

    # -- the phases ---------------------------------------------------------------------------

    def conv_forward(self, m, ctl):
        """``CF_START`` starts the conv forward engine; ``cf_to_df`` cycles after its last
        operand set (:class:`~tinycl_hdl.spec.schedule.ArraySchedule`) the dense forward
        engine starts: its first read of an activation word comes after its write."""
        gap = self.schedule.cf_to_df
        with m.State("CF_START"):
            m.d.comb += self.cf.start.eq(1)
            m.d.sync += ctl.phase.eq(Phase.CONV_FWD)
            m.next = "CF_RUN"
        with m.State("CF_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.cf.last_issue):
                if gap == 0:
                    self._start_dense_forward(m, ctl)
                else:
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "CF_GAP"
        if gap:
            # Only where the schedule needs a gap: a state never entered is dead logic.
            with m.State("CF_GAP"):
                ctl.check_abort(m)
                with m.If(~ctl.abort):
                    with m.If(ctl.ctr == gap - 1):
                        self._start_dense_forward(m, ctl)
                    with m.Else():
                        m.d.sync += ctl.ctr.eq(ctl.ctr + 1)

    def _start_dense_forward(self, m, ctl):
        m.d.comb += self.df.start.eq(1)
        m.d.sync += [ctl.phase.eq(Phase.DENSE_FWD), ctl.ctr.eq(0)]
        m.next = "DF_RUN"

    def dense_forward(self, m, ctl):
        """``DF_RUN`` until the dense forward engine's last operand set, then ``DF_LOGITS``
        until the last logit is written: in that cycle the loss unit starts (or, for
        ``INFER``, the arg-max follows)."""
        with m.State("DF_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.df.last_issue):
                m.next = "DF_LOGITS"
        with m.State("DF_LOGITS"):
            ctl.check_abort(m)
            with m.If(~ctl.abort & self.last_logit):
                ctl.after_logits(m, self.blocks.loss)

    def dense_backward(self, m, ctl):
        """``DB_RUN`` from the dense backward engine's start (as the loss gradient is ready):
        ``db_to_cb`` cycles after it the conv backward engine starts, its window filling while
        the dense backward pass issues its last operand sets; its first operand set follows the
        last of them, and each gradient word is read after its write."""
        with m.State("DB_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort):
                with m.If(ctl.ctr == self.schedule.db_to_cb - 1):
                    m.d.comb += self.cb.start.eq(1)
                    m.d.sync += [ctl.phase.eq(Phase.CONV_BWD), ctl.ctr.eq(0)]
                    m.next = "CB_RUN"
                with m.Else():
                    m.d.sync += ctl.ctr.eq(ctl.ctr + 1)

    def conv_backward(self, m, ctl):
        """``CB_RUN`` from the conv backward engine's start.  When the next sample of the epoch
        is fetched (:attr:`~tinycl_hdl.rtl.controller.Controller.prefetched`), the next step
        starts ``cb_to_cf`` cycles after the conv backward start (``SAMPLE_NEXT``, then
        ``CF_START``), while the last updates are issued: its first read of a conv weight or
        bias comes after their writes.  The last sample of an epoch waits for the last update."""
        target = self.schedule.cb_to_cf - self.schedule.CB_TO_CF_STATES
        with m.State("CB_RUN"):
            ctl.check_abort(m)
            with m.If(~ctl.abort):
                with m.If(ctl.ctr != target):
                    m.d.sync += ctl.ctr.eq(ctl.ctr + 1)
                early = ctl.prefetched & (ctl.ctr == target)
                with m.If(early | ((ctl.idx + 1 == ctl.size) & self.cb.last_issue)):
                    m.d.sync += ctl.ctr.eq(0)
                    m.next = "SAMPLE_NEXT"

    # -- after the FSM ------------------------------------------------------------------------

    def after_fsm(self, m, ctl, control):
        NPU, L, dw = self.cfg.n_pu, self.lay["lanes"], self.cfg.data_width
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
        if rm.restorable:
            readable["LFSR"] = self.blocks.lfsr.state
        reg_value, is_reg = self._register_read(m, host, list(rm.registers), readable)
        self.word_addrs = word_addrs = self._weight_addresses(m, host)
        self.state_port = StatePort(cfg, self.conv_w, self.dense_w, self.conv_b, self.dense_b, lay["lanes"]) \
            if rm.restorable else None
        sample_branch, sample_states = (self.state_port.sample_reads(m, ctl, host, self.blocks.samples)
                                        if rm.restorable else (None, None))
        return (self._read_request(host, reg_value, is_reg, word_addrs, sample_branch),
                self._memory_states(host, sample_states))

    def host_writes(self, m, ctl, host):
        if self.state_port is None:
            return None
        return self.state_port.writes(m, ctl, host, self.word_addrs)

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
        # Products by constants as shifted sums (times_constant): synthesis puts a product on
        # a DSP block, and on the ECP5 the path from the request address through one is
        # longer than the 75 MHz clock allows.
        dw_pos = Signal(index(lay["positions"]))
        m.d.sync += dw_pos.eq(times_constant(dwf["y"][0], cfg.out_w) + dwf["x"][0])
        cw_addr_q = Signal(range(max(2, G * C)))
        dw_addr_q = Signal(range(max(2, NC * CH)))
        cw_lane_q, dw_lane_q = Signal(index(L)), Signal(index(L))
        m.d.sync += [cw_addr_q.eq(times_constant(cw_f // NPU, C) + cw["c"][0]),
                     cw_lane_q.eq(times_constant(cw["i"][0], K) + cw["j"][0]),
                     dw_addr_q.eq(times_constant(dwf["o"][0], CH) + times_constant(dw_f // NPU, PW)
                                  + self.pos_word[dw_pos]),
                     dw_lane_q.eq(self.pos_lane[dw_pos])]
        cw_p = cw_f % NPU if NPU > 1 else Const(0)
        dw_p = dw_f % NPU if NPU > 1 else Const(0)
        return cw_addr_q, cw_lane_q, cw_p, dw_addr_q, dw_lane_q, dw_p

    def _read_request(self, host, reg_value, is_reg, word_addrs, sample_branch=None):
        cw_addr_q, cw_lane_q, cw_p, dw_addr_q, dw_lane_q, dw_p = word_addrs
        self.mem_word = Signal(self.lay["lanes"] * self.cfg.data_width)
        self.mem_lane = Signal(index(self.lay["lanes"]))
        self.mem_p = Signal(index(self.cfg.n_pu))

        def read_request(m):
            with m.If(is_reg):
                m.d.comb += [host.done_resp.eq(1), host.rdata.eq(reg_value)]
            if sample_branch is not None:
                sample_branch(m)
            host.window_reads(m, self.labels, [(mem, cw_addr_q) for mem in self.conv_w],
                              [(mem, dw_addr_q) for mem in self.dense_w],
                              conv_extra=[self.mem_p.eq(cw_p), self.mem_lane.eq(cw_lane_q)],
                              dense_extra=[self.mem_p.eq(dw_p), self.mem_lane.eq(dw_lane_q)])
        return read_request

    def _memory_states(self, host, sample_states=None):
        mem_kind, mem_rdata, mem_word = host.mem_kind, host.mem_rdata, self.mem_word

        def memory_states(m):
            if sample_states is not None:
                sample_states(m)
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
