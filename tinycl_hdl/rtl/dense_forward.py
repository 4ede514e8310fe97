"""The dense forward pass of the lane array: the logits, class by class.

For each class ``o`` and each chunk of the activations (one word of ``kernel**2``
positions of a filter group's planes), unit ``p`` ``DOT``s its activation word with its
dense weight word; the units' sums are added, from the class's bias, and narrowed to the
logit after the last chunk (:class:`~tinycl_hdl.rtl.issue.Kind` ``LOGIT``).  The reads of
one cycle feed the operand set of the next: one operand set per cycle, ``classes *
chunks`` of them.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from .arith import index
from .issue import Kind, issue_layout, layout, read_layout
from .mac import Mode

__all__ = ["DenseForward"]


class DenseForward(wiring.Component):
    """The dense forward pass of one sample (see the module documentation).

    Parameters
    ----------
    cfg : TinyCLConfig

    Attributes
    ----------
    start : In(1)
        Begin; the first reads are made in the next cycle.
    cancel : In(1)
        Stop; no further read or operand set.
    busy : Out(1)
        From ``start`` until the last operand set is issued.
    last_issue : Out(1)
        The cycle the last class's last operand set is issued.
    dense_w_rd, act_rd : Out(read_layout)
        Reads of every unit's dense weight word ``o*chunks + chunk`` and activation word ``chunk``.
    dense_w, act : In(ArrayLayout(ArrayLayout(signed(data_width), kernel**2), n_pu))
        The words read.
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
            "start": In(1), "cancel": In(1), "busy": Out(1), "last_issue": Out(1),
            "dense_w_rd": Out(read_layout(index(NC * CH).width)), "act_rd": Out(read_layout(index(CH).width)),
            "dense_w": In(words), "act": In(words), "dense_b": In(data.ArrayLayout(signed(dw), NC)),
            "issue": Out(issue_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = layout(cfg)
        CH, NC, NPU = lay["chunks"], cfg.classes, cfg.n_pu
        reading = Signal()
        o, chunk = Signal(index(NC)), Signal(index(CH))
        run_addr = Signal(index(NC * CH))
        # The operand set of the words read the cycle before.
        valid, first, last, cls = Signal(), Signal(), Signal(), Signal.like(o)
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), reading.eq(1), o.eq(0), chunk.eq(0), run_addr.eq(0)]
        m.d.sync += valid.eq(reading & ~self.cancel)
        with m.If(reading):
            m.d.comb += [self.dense_w_rd.en.eq(1), self.dense_w_rd.addr.eq(run_addr),
                         self.act_rd.en.eq(1), self.act_rd.addr.eq(chunk)]
            m.d.sync += [run_addr.eq(run_addr + 1), cls.eq(o), first.eq(chunk == 0), last.eq(chunk == CH - 1)]
            with m.If(chunk == CH - 1):
                m.d.sync += [chunk.eq(0), o.eq(o + 1)]
                with m.If(o == NC - 1):
                    m.d.sync += reading.eq(0)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)
        with m.If(valid):
            issue = self.issue
            m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.DOT), issue.first.eq(first),
                         issue.tag.kind.eq(Mux(last, Kind.LOGIT, Kind.NONE)), issue.tag.cls.eq(cls),
                         issue.units[0].init_bias.eq(self.dense_b[cls])]
            for p in range(NPU):
                m.d.comb += [issue.units[p].a.eq(self.act[p]), issue.units[p].b.eq(self.dense_w[p])]
            with m.If(last & (cls == NC - 1)):
                m.d.comb += self.last_issue.eq(1)
                m.d.sync += self.busy.eq(0)
        with m.If(self.cancel):
            m.d.sync += [self.busy.eq(0), reading.eq(0)]
        return m
