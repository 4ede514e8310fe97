"""The TinyCL accelerator: control unit, processing units, memories, AXI4-Lite port.

Per training sample the control unit runs five phases (ARCHITECTURE 4.4):

``CONV_FWD``  for each group of ``n_pu`` filters, one window sweep over all
              channels; each unit's ``DOT`` sums window x kernel slice, then
              ReLU and the activation write.
``DENSE_FWD`` per class, the units ``DOT`` their activation chunks against the
              weight chunks; the partial sums are added and narrowed.
``LOSS``      :class:`~tinycl_hdl.rtl.loss.LossGradient`.
``DENSE_BWD`` per activation chunk and class: one weight read feeds ``OUTER``
              (input gradient, old weight) then ``UPDATE`` (new weight); after
              the last class the masked input gradient is written.
``CONV_BWD``  per filter group and channel, a single-channel window sweep of
              ``OUTER`` with the broadcast conv-output gradient (and the bias
              gradient on channel 0), then one ``UPDATE`` from the accumulators.

Memory layout (unit ``p`` owns filters ``f = g*n_pu + p``): activations,
gradients and dense weights of unit ``p`` are indexed by ``k = g*PW*L + pos``
with ``pos = y*Wo + x`` and ``PW = ceil(Ho*Wo / L)`` words of ``L = kernel**2``
lanes per filter plane; padding lanes hold zero activations.  The host sees
weights in the golden model's order through the register map's windows.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import Out

from ..spec.config import TinyCLConfig
from ..spec.regmap import Command, Phase
from .arith import index, round_shift, saturate
from .control import AcceleratorBase, ControlCommon, HostRequests, pixel_data, shared_blocks
from .loss import loss_memory_shape
from .mac import GradSource, Mode, ProcessingUnit
from .memory import MemoryShape, Sram, sample_bank_shape
from .serial import SerialTinyCL, serial_dual_port_memories, serial_memory_shapes

__all__ = ["TinyCL", "layout", "memory_shapes", "dual_port_memories"]

#: Cycles from the processing units' dot outputs to the logit registers (round, then saturate).
LOGIT_LATENCY = 2


def layout(cfg: TinyCLConfig) -> dict:
    """Sizes of the per-unit memories."""
    lanes = cfg.kernel ** 2
    positions = cfg.out_h * cfg.out_w
    plane_words = -(-positions // lanes)
    groups = cfg.filters // cfg.n_pu
    return {"lanes": lanes, "positions": positions, "plane_words": plane_words, "groups": groups,
            "chunks": groups * plane_words}


def _unit_memories(cfg: TinyCLConfig) -> list:
    """Per unit: conv weights, dense weights, activations, gradients; then labels and order."""
    lay = layout(cfg)
    dw, lanes = cfg.data_width, lay["lanes"]
    lane_writes = dw if lanes > 1 else None       # one write enable per lane
    shapes = []
    for _ in range(cfg.n_pu):
        shapes += [MemoryShape(lanes * dw, lay["groups"] * cfg.in_c, lane_writes),
                   MemoryShape(lanes * dw, cfg.classes * lay["chunks"], lane_writes),
                   MemoryShape(lanes * dw, lay["chunks"], lane_writes), MemoryShape(lanes * dw, lay["chunks"])]
    return shapes + [MemoryShape(8, cfg.slots), MemoryShape(16, cfg.slots)]


def memory_shapes(cfg: TinyCLConfig) -> list:
    """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory instance of the top."""
    if cfg.datapath == "serial":
        return serial_memory_shapes(cfg)
    return _unit_memories(cfg) + [loss_memory_shape(cfg)] + [sample_bank_shape(cfg)] * cfg.kernel


def dual_port_memories(cfg: TinyCLConfig) -> list:
    """Instance paths (below the top) of the memories with a read and a write port."""
    if cfg.datapath == "serial":
        return serial_dual_port_memories(cfg)
    return [f"{name}{p}" for p in range(cfg.n_pu) for name in ("conv_w", "dense_w", "act", "grad")] + \
        ["labels", "order", "loss.mem"]


class TinyCL(AcceleratorBase):
    """The accelerator top level (module ``tinycl``); ports as :class:`~tinycl_hdl.rtl.control.AcceleratorBase`.

    With ``datapath="serial"`` it holds a :class:`~tinycl_hdl.rtl.serial.SerialTinyCL`;
    otherwise the lane array described in this module.
    """

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False):
        super().__init__(cfg, blackbox=blackbox)
        self._layout = layout(cfg)

    def macros(self):
        """:class:`~tinycl_hdl.rtl.memory.MemoryShape` of every memory."""
        return memory_shapes(self._cfg)

    def _elaborate_serial(self):
        """``datapath="serial"``: :class:`~tinycl_hdl.rtl.serial.SerialTinyCL` behind the same ports."""
        m = Module()
        m.submodules.serial = core = SerialTinyCL(self._cfg, blackbox=self._blackbox)
        for name, member in self.signature.members.items():
            if member.flow == Out:
                m.d.comb += getattr(self, name).eq(getattr(core, name))
            else:
                m.d.comb += getattr(core, name).eq(getattr(self, name))
        return m

    def elaborate(self, platform):
        if self._cfg.datapath == "serial":
            return self._elaborate_serial()
        m = Module()
        cfg, lay, regmap = self._cfg, self._layout, self._regmap
        dw, frac, K = cfg.data_width, cfg.frac_bits, cfg.kernel
        L, P, PW, G, CH = lay["lanes"], lay["positions"], lay["plane_words"], lay["groups"], lay["chunks"]
        C, NC, NPU, F = cfg.in_c, cfg.classes, cfg.n_pu, cfg.filters
        bb = self._blackbox

        # -- submodules ------------------------------------------------------------------
        axi, samples, window, loss, lfsr = shared_blocks(m, self)

        tag_layout = data.StructLayout({
            "kind": 3, "addr": max(1, (max(NC * CH, G * C, CH) - 1).bit_length()), "lane": index(L),
            "cls": index(NC), "first": 1, "last": 1, "chunk": index(CH), "mask": L, "group": index(G),
        })
        KIND_NONE, KIND_ACT, KIND_LOGIT, KIND_DW, KIND_CW = range(5)
        pus, conv_w, dense_w, act, grad = [], [], [], [], []
        shapes = _unit_memories(cfg)
        for p in range(NPU):
            pu = ProcessingUnit(cfg, tag_width=tag_layout.size)
            m.submodules[f"pu{p}"] = pu
            pus.append(pu)
            for store, name, shape in zip((conv_w, dense_w, act, grad), ("conv_w", "dense_w", "act", "grad"),
                                          shapes[4 * p:4 * p + 4]):
                mem = Sram.of(shape, blackbox=bb)
                m.submodules[f"{name}{p}"] = mem
                store.append(mem)
        m.submodules.labels = labels = Sram.of(shapes[-2], blackbox=bb)
        m.submodules.order = order = Sram.of(shapes[-1], blackbox=bb)
        latency = pus[0].latency

        def lanes_of(word):
            return [word[i * dw:(i + 1) * dw].as_signed() for i in range(L)]

        # -- architectural state -----------------------------------------------------------
        # Generic loop counter ``ctr``, as wide as its longest count (slots scanned or ordered,
        # chunks cleared, pipeline drains): a 32-bit one put its compare chains on the critical path.
        common = ControlCommon(cfg, regmap, max(CH, latency + 2 + LOGIT_LATENCY), samples.addr_width)
        lr_shift, seed, counts = common.lr_shift, common.seed, common.counts
        # The logits as the host reads them; the loss unit keeps its own copy.
        logits = Array(Signal(signed(dw), name=f"logit{o}") for o in range(NC))
        busy, abort, phase, clear_counters = common.busy, common.abort, common.phase, common.clear_counters
        start, start_cmd, ctr, o = common.start, common.start_cmd, common.ctr, common.o
        slot, sample_label, idx = common.slot, common.sample_label, common.idx
        conv_b = Array(Signal(signed(dw), name=f"conv_b{f}") for f in range(F))
        dense_b = Array(Signal(signed(dw), name=f"dense_b{o}") for o in range(NC))
        counters = {name: Signal(32, name=f"ctr_{name.lower()}") for name in
                    ["CYCLES"] + [f"CYC_{ph.name}" for ph in Phase] + ["OPERAND_SETS", "TRAIN_SAMPLES"]}
        m.d.comb += [self.busy.eq(busy), lfsr.seed_in.eq(seed)]

        # pos -> (word, lane) within a filter plane
        pos_word = Array(Const(pos // L, index(PW)) for pos in range(P))
        pos_lane = Array(Const(pos % L, index(L)) for pos in range(P))

        # -- issue pipeline from the window to the processing units --------------------------
        # Window output (stage W) -> register + memory reads -> issue (stage I).
        sweep_fwd = Signal()          # sweeps feed the conv forward pass (else the weight gradient)
        group = Signal(index(G))
        chan_sweep = Signal(index(C))
        w_valid, w_first, w_last_chan, w_last, w_first_out = (Signal(name=f"w_{n}") for n in
                                                               ("valid", "first", "last_chan", "last", "first_out"))
        w_pixels = Signal(data.ArrayLayout(8, L))
        w_word, w_lane = Signal(index(CH)), Signal(index(L))
        w_group = Signal(index(G))
        seen_output = Signal()
        pos = Signal(index(P))
        m.d.comb += pos.eq(window.pos)
        plane_base = Signal(index(CH))
        m.d.comb += plane_base.eq(group * PW)
        m.d.sync += [w_valid.eq(window.valid & busy), w_first.eq(window.first_chan),
                     w_last_chan.eq(window.last_chan), w_last.eq(window.last), w_pixels.eq(window.window),
                     w_word.eq(plane_base + pos_word[pos]), w_lane.eq(pos_lane[pos]),
                     w_first_out.eq(~seen_output), w_group.eq(group)]
        with m.If(window.valid):
            m.d.sync += seen_output.eq(1)
        with m.If(window.start):
            m.d.sync += seen_output.eq(0)
        # Memory reads for stage I, issued at stage W.
        with m.If(window.valid & busy):
            for p in range(NPU):
                with m.If(sweep_fwd):
                    m.d.comb += [conv_w[p].r_en.eq(1), conv_w[p].r_addr.eq(group * C + window.chan)]
                with m.Else():
                    m.d.comb += [grad[p].r_en.eq(1), grad[p].r_addr.eq(plane_base + pos_word[pos])]
        # A weight-gradient sweep ends with an UPDATE from the accumulators.
        cw_update = Signal()
        m.d.sync += cw_update.eq(w_valid & ~sweep_fwd & w_last)
        with m.If(w_valid & ~sweep_fwd & w_last):
            for p in range(NPU):
                m.d.comb += [conv_w[p].r_en.eq(1), conv_w[p].r_addr.eq(group * C + chan_sweep)]

        # Default PU control: driven by the phase that is issuing.
        issue = Signal()
        for p, pu in enumerate(pus):
            m.d.comb += pu.lr_shift.eq(lr_shift)
        tag = Signal(tag_layout)
        pu_mode, pu_first, pu_bias, pu_source = Signal(2), Signal(), Signal(), Signal()
        pu_a = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_a") for p in range(NPU)]
        pu_b = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_b") for p in range(NPU)]
        pu_w = [Signal(data.ArrayLayout(signed(dw), L), name=f"pu{p}_w") for p in range(NPU)]
        pu_wb = [Signal(signed(dw), name=f"pu{p}_wb") for p in range(NPU)]
        pu_init_bias = [Signal(signed(dw), name=f"pu{p}_init_bias") for p in range(NPU)]
        pu_mask = [Signal(L, name=f"pu{p}_mask") for p in range(NPU)]
        m.d.comb += tag.mask.eq(pu_mask[0])      # each unit's own mask replaces it below
        for p, pu in enumerate(pus):
            pu_tag = Signal(tag_layout, name=f"pu{p}_tag")
            m.d.comb += [pu_tag.eq(tag), pu_tag.mask.eq(pu_mask[p])]
            m.d.comb += [pu.valid.eq(issue), pu.mode.eq(pu_mode), pu.first.eq(pu_first), pu.bias.eq(pu_bias),
                         pu.source.eq(pu_source), pu.a.eq(pu_a[p]), pu.b.eq(pu_b[p]), pu.w.eq(pu_w[p]),
                         pu.w_bias.eq(pu_wb[p]), pu.init_bias.eq(pu_init_bias[p]), pu.tag.eq(pu_tag)]
        with m.If(issue):
            m.d.sync += counters["OPERAND_SETS"].eq(counters["OPERAND_SETS"] + 1)

        with m.If(w_valid):
            m.d.comb += issue.eq(1)
            for p in range(NPU):
                m.d.comb += pu_a[p].eq(Const(0))
                for i in range(L):
                    m.d.comb += pu_a[p][i].eq(pixel_data(cfg, w_pixels[i]))
            with m.If(sweep_fwd):
                m.d.comb += [pu_mode.eq(Mode.DOT), pu_first.eq(w_first),
                             tag.kind.eq(Mux(w_last_chan, KIND_ACT, KIND_NONE)), tag.addr.eq(w_word),
                             tag.lane.eq(w_lane)]
                for p in range(NPU):
                    m.d.comb += [pu_b[p].eq(conv_w[p].r_data), pu_init_bias[p].eq(conv_b[w_group * NPU + p])]
            with m.Else():
                m.d.comb += [pu_mode.eq(Mode.OUTER), pu_first.eq(w_first_out), pu_bias.eq(chan_sweep == 0)]
                for p in range(NPU):
                    grad_lanes = Array(lanes_of(grad[p].r_data))
                    for i in range(L):
                        m.d.comb += pu_b[p][i].eq(grad_lanes[w_lane])
        with m.If(cw_update):
            m.d.comb += [issue.eq(1), pu_mode.eq(Mode.UPDATE), pu_source.eq(GradSource.ACC),
                         tag.kind.eq(KIND_CW), tag.addr.eq(group * C + chan_sweep),
                         tag.first.eq(chan_sweep == 0), tag.group.eq(group)]
            for p in range(NPU):
                m.d.comb += [pu_w[p].eq(conv_w[p].r_data), pu_wb[p].eq(conv_b[group * NPU + p])]

        # -- write-back of processing-unit results ---------------------------------------------
        out_tag = Signal(tag_layout)
        m.d.comb += out_tag.eq(pus[0].out_tag)
        out_valid = pus[0].out_valid
        with m.If(out_valid & (out_tag.kind == KIND_ACT)):
            for p, pu in enumerate(pus):
                relu = Mux(pu.dot_narrow > 0, pu.dot_narrow, 0)
                m.d.comb += [act[p].w_addr.eq(out_tag.addr), act[p].w_en.eq(Const(1, L) << out_tag.lane),
                             act[p].w_data.eq(Cat(*[relu.as_unsigned()[:dw]] * L))]
        # Logits: the units' dot accumulators summed and rounded, then saturated a cycle later
        # (LOGIT_LATENCY), so that no carry chain feeds the saturation in the same cycle.
        total_rounded = round_shift(sum(pu.dot for pu in pus), frac)
        logit_valid, logit_cls = Signal(), Signal.like(out_tag.cls)
        logit_rounded = Signal(total_rounded.shape())
        m.d.sync += [logit_valid.eq(out_valid & (out_tag.kind == KIND_LOGIT)), logit_cls.eq(out_tag.cls),
                     logit_rounded.eq(total_rounded)]
        logit = saturate(logit_rounded, dw)
        with m.If(logit_valid):
            m.d.sync += logits[logit_cls].eq(logit)
            m.d.comb += [loss.z_en.eq(1), loss.z_index.eq(logit_cls), loss.z_data.eq(logit)]
        with m.If(out_valid & (out_tag.kind == KIND_DW)):
            for p, pu in enumerate(pus):
                m.d.comb += [dense_w[p].w_addr.eq(out_tag.addr), dense_w[p].w_data.eq(pu.upd),
                             dense_w[p].w_en.eq((1 << L) - 1)]
                own_tag = data.View(tag_layout, pu.out_tag)
                with m.If(out_tag.last):
                    masked = [Mux(own_tag.mask[i], pu.lane_narrow[i], 0) for i in range(L)]
                    m.d.comb += [grad[p].w_addr.eq(out_tag.chunk), grad[p].w_en.eq(1),
                                 grad[p].w_data.eq(Cat(*(v.as_unsigned()[:dw] for v in masked)))]
            with m.If(out_tag.first):
                m.d.sync += dense_b[out_tag.cls].eq(pus[0].upd_bias)
        with m.If(out_valid & (out_tag.kind == KIND_CW)):
            for p, pu in enumerate(pus):
                m.d.comb += [conv_w[p].w_addr.eq(out_tag.addr), conv_w[p].w_data.eq(pu.upd),
                             conv_w[p].w_en.eq((1 << L) - 1)]
                with m.If(out_tag.first):
                    m.d.sync += conv_b[out_tag.group * NPU + p].eq(pu.upd_bias)

        # -- control unit -----------------------------------------------------------------------
        chunk = Signal(range(CH + 1))     # DENSE_BWD counts one past the last chunk
        run_addr = Signal(len(tag.addr))
        half = Signal()
        pending = Signal()            # dense backward: an UPDATE is due this cycle
        pend_o, pend_addr, pend_chunk = Signal.like(o), Signal.like(run_addr), Signal.like(chunk)
        pend_first, pend_last = Signal(), Signal()
        from_scratch, is_infer = common.from_scratch, common.is_infer
        df_valid, df_first, df_last = Signal(), Signal(), Signal()
        df_o = Signal.like(o)
        init_f, init_c, init_i, init_j = Signal(index(F)), Signal(index(C)), Signal(index(K)), Signal(index(K))
        init_y, init_x, init_pos = Signal(index(cfg.out_h)), Signal(index(cfg.out_w)), Signal(index(P))
        init_valid = Signal()
        init_dense = Signal()
        init_waddr = Signal(len(run_addr))
        init_lane = Signal(index(L))
        init_p = Signal(index(NPU))
        o_base = Signal(len(run_addr))

        common.balance_test(m)
        drawn = common.initial_weight(m, lfsr, init_dense)     # Lfsr.signed_bits of the last draw

        with m.If(clear_counters):
            for ctr_sig in counters.values():
                m.d.sync += ctr_sig.eq(0)
            m.d.comb += window.clear_reads.eq(1)
        with m.Elif(busy):
            m.d.sync += counters["CYCLES"].eq(counters["CYCLES"] + 1)
            with m.Switch(phase):
                for ph in Phase:
                    with m.Case(ph):
                        key = f"CYC_{ph.name}"
                        m.d.sync += counters[key].eq(counters[key] + 1)

        m.d.comb += [window.slot.eq(slot), loss.label.eq(sample_label)]

        def drain(next_state):
            """Wait until results issued so far are written back."""
            common.wait(m, latency + 2, next_state)

        def check_abort():
            with m.If(abort):
                m.d.sync += sweep_fwd.eq(0)
                m.d.comb += [window.cancel.eq(1), loss.cancel.eq(1)]
                m.next = "ABORT_DRAIN"

        with m.FSM(name="control") as control:
            with m.State("IDLE"):
                with m.If(start):
                    m.d.sync += [ctr.eq(0), abort.eq(0), group.eq(0)]
                    with m.Switch(start_cmd):
                        with m.Case(Command.INSERT):
                            m.next = "INS_LOOKUP"
                        with m.Case(Command.TRAIN, Command.TRAIN_KEEP):
                            m.d.sync += [from_scratch.eq(start_cmd == Command.TRAIN), is_infer.eq(0)]
                            m.next = "ACT_CLEAR"
                        with m.Case(Command.INFER):
                            m.d.sync += [is_infer.eq(1), slot.eq(cfg.slots)]
                            m.next = "ACT_CLEAR"
            # ---- INSERT -------------------------------------------------------------------
            common.insert_states(m, samples, labels, lfsr)
            # ---- TRAIN / INFER ---------------------------------------------------------------
            with m.State("ACT_CLEAR"):
                for p in range(NPU):
                    m.d.comb += [act[p].w_en.eq((1 << L) - 1), act[p].w_addr.eq(ctr), act[p].w_data.eq(0)]
                with m.If(ctr == CH - 1):
                    m.d.sync += ctr.eq(0)
                    with m.If(is_infer):
                        m.next = "CF_START"
                    with m.Elif(from_scratch):
                        m.d.sync += [init_f.eq(0), init_c.eq(0), init_i.eq(0), init_j.eq(0), init_valid.eq(0),
                                     init_dense.eq(0), init_p.eq(0), group.eq(0)]
                        for f in range(F):
                            m.d.sync += conv_b[f].eq(0)
                        for c in range(NC):
                            m.d.sync += dense_b[c].eq(0)
                        m.next = "INIT_CONV"
                    with m.Else():
                        m.next = "ORDER_INIT"
                with m.Else():
                    m.d.sync += ctr.eq(ctr + 1)
            with m.State("INIT_CONV"):
                # One draw per weight, in the golden model's order f, c, i, j; written a cycle later.
                m.d.comb += [lfsr.draw.eq(1)]
                m.d.sync += [init_valid.eq(1), init_waddr.eq(group * C + init_c), init_lane.eq(init_i * K + init_j),
                             init_p.eq(init_f % NPU if NPU > 1 else 0)]
                last_w = (init_j == K - 1) & (init_i == K - 1) & (init_c == C - 1) & (init_f == F - 1)
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
                            if NPU > 1:
                                with m.If(init_f % NPU == NPU - 1):
                                    m.d.sync += group.eq(group + 1)
                            else:
                                m.d.sync += group.eq(group + 1)
                with m.If(last_w):
                    m.d.sync += [init_f.eq(0), init_y.eq(0), init_x.eq(0), init_pos.eq(0), o.eq(0), group.eq(0),
                                 o_base.eq(0)]
                    m.next = "INIT_DENSE"
            with m.State("INIT_DENSE"):
                m.d.comb += [lfsr.draw.eq(1)]
                m.d.sync += [init_dense.eq(1), init_valid.eq(1),
                             init_waddr.eq(o_base + group * PW + pos_word[init_pos]), init_lane.eq(pos_lane[init_pos]),
                             init_p.eq(init_f % NPU if NPU > 1 else 0)]
                last_w = (init_x == cfg.out_w - 1) & (init_y == cfg.out_h - 1) & (init_f == F - 1) & (o == NC - 1)
                with m.If(init_x != cfg.out_w - 1):
                    m.d.sync += [init_x.eq(init_x + 1), init_pos.eq(init_pos + 1)]
                with m.Else():
                    m.d.sync += init_x.eq(0)
                    with m.If(init_y != cfg.out_h - 1):
                        m.d.sync += [init_y.eq(init_y + 1), init_pos.eq(init_pos + 1)]
                    with m.Else():
                        m.d.sync += [init_y.eq(0), init_pos.eq(0)]
                        with m.If(init_f != F - 1):
                            m.d.sync += init_f.eq(init_f + 1)
                            if NPU > 1:
                                with m.If(init_f % NPU == NPU - 1):
                                    m.d.sync += group.eq(group + 1)
                            else:
                                m.d.sync += group.eq(group + 1)
                        with m.Else():
                            m.d.sync += [init_f.eq(0), group.eq(0), o.eq(o + 1), o_base.eq(o_base + CH)]
                with m.If(last_w):
                    m.next = "INIT_LAST"
            with m.State("INIT_LAST"):
                m.d.sync += [init_valid.eq(0), ctr.eq(0)]
                m.next = "ORDER_INIT"
            common.epoch_states(m, order, labels, lfsr, check_abort, on_order=[init_dense.eq(0)],
                                on_label=[group.eq(0)])
            with m.State("CF_START"):
                m.d.comb += [window.start.eq(1), window.chan_first.eq(0), window.chan_last.eq(C - 1)]
                m.d.sync += [sweep_fwd.eq(1), phase.eq(Phase.CONV_FWD)]
                m.next = "CF_RUN"
            with m.State("CF_RUN"):
                check_abort()
                with m.If(~abort & window.valid & window.last):
                    with m.If(group == G - 1):
                        m.d.sync += ctr.eq(0)
                        m.next = "CF_DRAIN"
                    with m.Else():
                        m.d.sync += group.eq(group + 1)
                        m.next = "CF_START"
            with m.State("CF_DRAIN"):
                drain("DF_START")
                with m.If(ctr == latency + 1):
                    m.d.sync += [o.eq(0), chunk.eq(0), run_addr.eq(0), phase.eq(Phase.DENSE_FWD)]
            with m.State("DF_START"):
                m.next = "DF_RUN"
            with m.State("DF_RUN"):
                for p in range(NPU):
                    m.d.comb += [dense_w[p].r_en.eq(1), dense_w[p].r_addr.eq(run_addr),
                                 act[p].r_en.eq(1), act[p].r_addr.eq(chunk)]
                m.d.sync += [run_addr.eq(run_addr + 1), df_o.eq(o), df_first.eq(chunk == 0),
                             df_last.eq(chunk == CH - 1), df_valid.eq(1)]
                with m.If(chunk == CH - 1):
                    m.d.sync += [chunk.eq(0), o.eq(o + 1)]
                    with m.If(o == NC - 1):
                        m.d.sync += ctr.eq(0)
                        m.next = "DF_DRAIN"
                with m.Else():
                    m.d.sync += chunk.eq(chunk + 1)
            with m.State("DF_DRAIN"):
                m.d.sync += df_valid.eq(0)
                common.logits_ready(m, loss, latency + 2 + LOGIT_LATENCY)
            common.argmax_state(m, loss)
            with m.State("LOSS_WAIT"):
                check_abort()
                with m.If(~abort & loss.done):
                    m.d.sync += [chunk.eq(0), o.eq(0), run_addr.eq(0), half.eq(0), pending.eq(0),
                                 phase.eq(Phase.DENSE_BWD)]
                    m.next = "DB_RUN"
            with m.State("DB_RUN"):
                # half 0: UPDATE of the pending (chunk, class) + weight read of the next;
                # half 1: OUTER of the class just read.
                m.d.sync += half.eq(~half)
                with m.If(~half):
                    with m.If(pending):
                        m.d.comb += [issue.eq(1), pu_mode.eq(Mode.UPDATE), pu_source.eq(GradSource.PRODUCT),
                                     tag.kind.eq(KIND_DW), tag.addr.eq(pend_addr), tag.cls.eq(pend_o),
                                     tag.first.eq(pend_first), tag.last.eq(pend_last), tag.chunk.eq(pend_chunk)]
                        for p in range(NPU):
                            a_lanes = lanes_of(act[p].r_data)
                            m.d.comb += [pu_w[p].eq(dense_w[p].r_data), pu_wb[p].eq(dense_b[pend_o])]
                            for i in range(L):
                                m.d.comb += [pu_a[p][i].eq(a_lanes[i]), pu_b[p][i].eq(loss.rd_data)]
                            m.d.comb += pu_mask[p].eq(Cat(*[a > 0 for a in a_lanes]))
                    with m.If(chunk == CH):
                        m.d.sync += [pending.eq(0), ctr.eq(0)]
                        m.next = "DB_DRAIN"
                    with m.Else():
                        for p in range(NPU):
                            m.d.comb += [dense_w[p].r_en.eq(1), dense_w[p].r_addr.eq(run_addr + chunk)]
                            with m.If(o == 0):
                                m.d.comb += [act[p].r_en.eq(1), act[p].r_addr.eq(chunk)]
                        # delta[o] stays on the loss unit's output for both operations of the pair.
                        m.d.comb += [loss.rd_en.eq(1), loss.rd_delta.eq(1), loss.rd_index.eq(o)]
                        m.d.sync += [pend_o.eq(o), pend_addr.eq(run_addr + chunk), pend_chunk.eq(chunk),
                                     pend_first.eq(chunk == 0), pend_last.eq(o == NC - 1), pending.eq(1)]
                with m.Else():
                    m.d.comb += [issue.eq(1), pu_mode.eq(Mode.OUTER), pu_first.eq(pend_o == 0)]
                    for p in range(NPU):
                        w_lanes = lanes_of(dense_w[p].r_data)
                        for i in range(L):
                            m.d.comb += [pu_a[p][i].eq(w_lanes[i]), pu_b[p][i].eq(loss.rd_data)]
                    with m.If(o == NC - 1):
                        m.d.sync += [o.eq(0), run_addr.eq(0), chunk.eq(chunk + 1)]
                    with m.Else():
                        m.d.sync += [o.eq(o + 1), run_addr.eq(run_addr + CH)]
            with m.State("DB_DRAIN"):
                drain("CB_START")
                with m.If(ctr == latency + 1):
                    m.d.sync += [group.eq(0), chan_sweep.eq(0), phase.eq(Phase.CONV_BWD)]
            with m.State("CB_START"):
                m.d.comb += [window.start.eq(1), window.chan_first.eq(chan_sweep),
                             window.chan_last.eq(chan_sweep)]
                m.d.sync += sweep_fwd.eq(0)
                m.next = "CB_RUN"
            with m.State("CB_RUN"):
                check_abort()
                with m.If(~abort & cw_update):
                    with m.If(chan_sweep != C - 1):
                        m.d.sync += chan_sweep.eq(chan_sweep + 1)
                        m.next = "CB_START"
                    with m.Elif(group != G - 1):
                        m.d.sync += [chan_sweep.eq(0), group.eq(group + 1)]
                        m.next = "CB_START"
                    with m.Else():
                        m.d.sync += ctr.eq(0)
                        m.next = "CB_DRAIN"
            with m.State("CB_DRAIN"):
                drain("SAMPLE_NEXT")
            with m.State("SAMPLE_NEXT"):
                # The next sample's fetch of its slot and label counts towards that sample.
                m.d.sync += [idx.eq(idx + 1), phase.eq(Phase.CONV_FWD),
                             counters["TRAIN_SAMPLES"].eq(counters["TRAIN_SAMPLES"] + 1)]
                m.next = "SAMPLE_FETCH"
            with m.State("ABORT_DRAIN"):
                drain("DONE")
            with m.State("DONE"):
                m.d.sync += [abort.eq(0), phase.eq(Phase.OTHER), sweep_fwd.eq(0)]
                m.next = "IDLE"

        m.d.comb += busy.eq(~control.ongoing("IDLE"))

        # Dense forward issue (one cycle after the reads).
        with m.If(df_valid):
            m.d.comb += [issue.eq(1), pu_mode.eq(Mode.DOT), pu_first.eq(df_first),
                         tag.kind.eq(Mux(df_last, KIND_LOGIT, KIND_NONE)), tag.cls.eq(df_o)]
            for p in range(NPU):
                m.d.comb += [pu_a[p].eq(act[p].r_data), pu_b[p].eq(dense_w[p].r_data)]
                if p == 0:
                    m.d.comb += pu_init_bias[p].eq(dense_b[df_o])

        # Weight initialisation writes (one cycle after each draw).
        with m.If(init_valid):
            for p in range(NPU):
                with m.If(init_p == p):
                    lanes_value = Cat(*[drawn.as_unsigned()[:dw]] * L)
                    with m.If(init_dense):
                        m.d.comb += [dense_w[p].w_en.eq(Const(1, L) << init_lane),
                                     dense_w[p].w_addr.eq(init_waddr), dense_w[p].w_data.eq(lanes_value)]
                    with m.Else():
                        m.d.comb += [conv_w[p].w_en.eq(Const(1, L) << init_lane),
                                     conv_w[p].w_addr.eq(init_waddr), conv_w[p].w_data.eq(lanes_value)]

        # -- host requests ------------------------------------------------------------------------
        rm = regmap
        host = HostRequests(m, common, axi, samples)
        addr, rdata, done_resp = host.addr, host.rdata, host.done_resp
        cw, dwf, mem_kind, mem_rdata = host.cw, host.dwf, host.mem_kind, host.mem_rdata
        readable = host.readable
        readable["SAMPLE_READS"] = window.reads
        readable.update(counters)
        for c in range(NC):
            readable[f"CLASS_COUNT{c}"] = counts[c]
            readable[f"LOGIT{c}"] = logits[c]
            readable[f"DENSE_B{c}"] = dense_b[c]
        for f in range(F):
            readable[f"CONV_B{f}"] = conv_b[f]
        mem_word = Signal(L * dw)
        mem_lane = Signal(index(L))
        mem_p = Signal(index(NPU))
        cw_f, dw_f = cw["f"][0], dwf["f"][0]
        cw_p = cw_f % NPU if NPU > 1 else Const(0)
        dw_p = dw_f % NPU if NPU > 1 else Const(0)
        # Cycle 1: which register, the dense position.
        registers = list(rm.registers)
        reg_sel = Signal(range(len(registers)))
        is_reg = Signal()
        with m.Switch(addr):
            for i, reg in enumerate(registers):
                with m.Case(reg.offset):
                    m.d.sync += [reg_sel.eq(i), is_reg.eq(1)]
            with m.Default():
                m.d.sync += [reg_sel.eq(0), is_reg.eq(0)]
        dw_pos = Signal(index(P))
        m.d.sync += dw_pos.eq(dwf["y"][0] * cfg.out_w + dwf["x"][0])
        # Cycle 2: the register's value, the weight windows' word addresses and lanes.
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
        cw_addr_q = Signal(range(max(2, G * C)))
        dw_addr_q = Signal(range(max(2, NC * CH)))
        cw_lane_q, dw_lane_q = Signal(index(L)), Signal(index(L))
        m.d.sync += [cw_addr_q.eq((cw_f // NPU) * C + cw["c"][0]), cw_lane_q.eq(cw["i"][0] * K + cw["j"][0]),
                     dw_addr_q.eq(dwf["o"][0] * CH + (dw_f // NPU) * PW + pos_word[dw_pos]),
                     dw_lane_q.eq(pos_lane[dw_pos])]

        def read_request(m):
            with m.If(is_reg):
                m.d.comb += [done_resp.eq(1), rdata.eq(reg_value)]
            host.window_reads(m, labels, [(mem, cw_addr_q) for mem in conv_w], [(mem, dw_addr_q) for mem in dense_w],
                              conv_extra=[mem_p.eq(cw_p), mem_lane.eq(cw_lane_q)],
                              dense_extra=[mem_p.eq(dw_p), mem_lane.eq(dw_lane_q)])

        def memory_states(m):
            with m.State("MEM_READ"):
                # The word read is registered, then its lane, before it answers: a block RAM's
                # output, the unit multiplexer and the lane multiplexer take two cycles.
                with m.Switch(mem_kind):
                    with m.Case(0):
                        m.d.sync += mem_word.eq(labels.r_data)
                    with m.Case(1):
                        for p in range(NPU):
                            with m.If(mem_p == p):
                                m.d.sync += mem_word.eq(conv_w[p].r_data)
                    with m.Case(2):
                        for p in range(NPU):
                            with m.If(mem_p == p):
                                m.d.sync += mem_word.eq(dense_w[p].r_data)
                m.next = "MEM_LANE"
            with m.State("MEM_LANE"):
                with m.If(mem_kind == 0):
                    m.d.sync += mem_rdata.eq(mem_word[:8])
                with m.Else():
                    m.d.sync += mem_rdata.eq(Array(lanes_of(mem_word))[mem_lane])
                m.next = "MEM_RESPOND"

        host.states(m, lfsr, read_request, memory_states)
        return m
