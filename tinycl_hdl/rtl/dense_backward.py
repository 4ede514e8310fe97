"""The dense backward pass of the lane array: the input gradient and the dense updates.

Per chunk of the activations and per class ``o``, one read of every unit's dense weight
word feeds two operand sets: ``OUTER`` with ``delta[o]`` broadcast (the input gradient,
with the old weight), then ``UPDATE`` from the product ``a * delta[o]`` (the new weight,
and on the first chunk the class's bias from ``delta[o] * 1.0``).  After the last class of
a chunk the unit's lanes hold the chunk's input gradient, which the ``UPDATE`` carries to
the write-back (``last``) with the ReLU mask ``a > 0``.  The two operand sets alternate,
so the pass issues ``2 * classes * chunks`` operand sets plus the last update.
"""

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.update import DENSE, DITHER_BITS, Coordinates
from .arith import index
from .dither import coordinate_image
from .issue import Kind, issue_layout, layout, read_layout
from .mac import GradSource, Mode

__all__ = ["DenseBackward"]


class DenseBackward(wiring.Component):
    """The dense backward pass of one sample (see the module documentation).

    Parameters
    ----------
    cfg : TinyCLConfig

    Attributes
    ----------
    start : In(1)
        Begin; the gradient ``delta`` must be readable from the loss unit.
    cancel : In(1)
    busy, last_issue : Out(1)
        As the other engines: ``last_issue`` is the cycle of the last ``UPDATE``; its input
        gradient (the last chunk's) is written ``ProcessingUnit.latency`` cycles later.
    step_seed : In(DITHER_BITS)
        The training step's seed, for a stochastic update's dither.
    dense_w_rd, act_rd : Out(read_layout)
    dense_w, act : In(ArrayLayout(ArrayLayout(signed(data_width), kernel**2), n_pu))
    delta_rd_en, delta_rd_index : Out
        Read of ``delta[o]`` from the loss unit (its ``rd_en`` with ``rd_delta``, ``rd_index``).
    delta : In(signed(data_width))
        The word read (it holds while not reading).
    dense_b : In(ArrayLayout(signed(data_width), classes))
    issue : Out(issue_layout)
    """

    def __init__(self, cfg: TinyCLConfig):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg = cfg
        lay = layout(cfg)
        L, CH, NC, NPU, dw = lay["lanes"], lay["chunks"], cfg.classes, cfg.n_pu, cfg.data_width
        words = data.ArrayLayout(data.ArrayLayout(signed(dw), L), NPU)
        super().__init__({
            "start": In(1), "cancel": In(1), "busy": Out(1), "last_issue": Out(1), "step_seed": In(DITHER_BITS),
            "dense_w_rd": Out(read_layout(index(NC * CH).width)), "act_rd": Out(read_layout(index(CH).width)),
            "dense_w": In(words), "act": In(words),
            "delta_rd_en": Out(1), "delta_rd_index": Out(index(NC)), "delta": In(signed(dw)),
            "dense_b": In(data.ArrayLayout(signed(dw), NC)),
            "issue": Out(issue_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = layout(cfg)
        L, CH, NC, NPU, G, PW = lay["lanes"], lay["chunks"], cfg.classes, cfg.n_pu, lay["groups"], lay["plane_words"]
        issue = self.issue
        half = Signal()                   # 0: UPDATE of the pending pair and the next reads; 1: OUTER
        chunk = Signal(range(CH + 1))     # one past the last chunk once every pair is read
        o = Signal(index(NC))
        # The chunk's filter group and word within the group's planes, for the dither.
        group, word = Signal(index(G)), Signal(index(PW))
        # The pair whose weight was read: its UPDATE follows its OUTER.
        pending = Signal()
        pend = Signal(data.StructLayout({"o": index(NC), "addr": index(NC * CH), "chunk": index(CH), "first": 1,
                                         "last": 1, "group": index(G), "word": index(PW)}))
        # The reads of a cycle, decided the cycle before: ``reading`` is ``busy & ~half & chunk
        # != CH`` and ``read_addr`` is ``o * CH + chunk``, both as registers, because the
        # read enable and address reach every block RAM of the dense weights.
        reading, read_addr = Signal(), Signal(index(NC * CH))
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), half.eq(0), chunk.eq(0), o.eq(0), pending.eq(0),
                         group.eq(0), word.eq(0), reading.eq(1), read_addr.eq(0)]
        with m.If(reading):
            m.d.comb += [self.dense_w_rd.en.eq(1), self.dense_w_rd.addr.eq(read_addr),
                         self.delta_rd_en.eq(1), self.delta_rd_index.eq(o)]
            with m.If(o == 0):
                m.d.comb += [self.act_rd.en.eq(1), self.act_rd.addr.eq(chunk)]
        with m.If(self.busy):
            m.d.sync += half.eq(~half)
            with m.If(~half):
                self._update_half(m, pending, pend)
                m.d.sync += reading.eq(0)
                with m.If(chunk == CH):
                    m.d.sync += [pending.eq(0), self.busy.eq(0)]
                    m.d.comb += self.last_issue.eq(1)
                with m.Else():
                    m.d.sync += [pending.eq(1), pend.o.eq(o), pend.addr.eq(read_addr), pend.chunk.eq(chunk),
                                 pend.first.eq(chunk == 0), pend.last.eq(o == NC - 1), pend.group.eq(group),
                                 pend.word.eq(word)]
            with m.Else():
                # OUTER of the class just read: the old weight times delta[o].
                m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.OUTER), issue.first.eq(pend.o == 0)]
                for p in range(NPU):
                    m.d.comb += [issue.units[p].a.eq(self.dense_w[p])]
                    m.d.comb += [issue.units[p].b[i].eq(self.delta) for i in range(L)]
                with m.If(o == NC - 1):
                    m.d.sync += [o.eq(0), chunk.eq(chunk + 1),
                                 reading.eq(chunk != CH - 1), read_addr.eq(chunk + 1)]
                    with m.If(word == PW - 1):
                        m.d.sync += [word.eq(0), group.eq(group + 1)]
                    with m.Else():
                        m.d.sync += word.eq(word + 1)
                with m.Else():
                    m.d.sync += [o.eq(o + 1), reading.eq(1), read_addr.eq(read_addr + CH)]
        with m.If(self.cancel):
            m.d.sync += [self.busy.eq(0), pending.eq(0), reading.eq(0)]
        return m

    def _update_half(self, m, pending, pend):
        """The ``UPDATE`` of the pending pair: the weight read with it, the activation word of its
        chunk (read with its first class, held since), ``delta[o]`` (held since its read)."""
        cfg = self._cfg
        L, NPU = cfg.kernel ** 2, cfg.n_pu
        issue = self.issue
        with m.If(pending):
            m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.UPDATE), issue.source.eq(GradSource.PRODUCT),
                         issue.tag.kind.eq(Kind.DW), issue.tag.addr.eq(pend.addr), issue.tag.cls.eq(pend.o),
                         issue.tag.first.eq(pend.first), issue.tag.last.eq(pend.last), issue.tag.chunk.eq(pend.chunk)]
            coords = Coordinates.of(cfg)
            for p in range(NPU):
                unit = issue.units[p]
                m.d.comb += [unit.w.eq(self.dense_w[p]), unit.w_bias.eq(self.dense_b[pend.o]), unit.a.eq(self.act[p]),
                             unit.mask.eq(Cat(*[self.act[p][i] > 0 for i in range(L)]))]
                m.d.comb += [unit.b[i].eq(self.delta) for i in range(L)]
                if cfg.update_rounding == "stochastic":
                    f = Signal(index(cfg.filters), name=f"dither_f{p}")
                    m.d.comb += [f.eq(pend.group * NPU + p),
                                 unit.dither.eq(self.step_seed ^ coordinate_image(coords, kind=DENSE, o=pend.o, f=f,
                                                                                  word=pend.word))]
