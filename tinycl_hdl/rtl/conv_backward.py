"""The conv backward pass of the lane array: the conv weight gradients and updates.

Per filter group ``g`` and channel ``c``, one single-channel window sweep: every window is
an ``OUTER`` operand set, unit ``p`` multiplying the window by the gradient of its filter
``g*n_pu + p`` at the window's position (read from its gradient memory, broadcast to the
lanes), so lane ``i*kernel + j`` sums the gradient of weight ``[f, c, i, j]``; on channel 0
the unit's dot accumulator sums the bias gradient alongside.  After the sweep's last window,
one ``UPDATE`` from the accumulators writes the kernel slice (and on channel 0 the bias).
The sweeps follow each other on the window with the fill between them, and each update
takes a cycle of that fill.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.update import CONV, DITHER_BITS, Coordinates
from .arith import index, times_constant
from .conv_forward import sweep_tag_width
from .datapath import pixel_data
from .dither import coordinate_image
from .issue import Kind, issue_layout, layout, read_layout
from .mac import GradSource, Mode
from .window_stage import now_layout, stage_layout

__all__ = ["ConvBackward"]


class ConvBackward(wiring.Component):
    """The conv backward pass of one sample (see the module documentation).

    Parameters
    ----------
    cfg : TinyCLConfig

    Attributes
    ----------
    start : In(1)
        Begin the sweeps; every gradient word the first windows read must be written.
    cancel : In(1)
    busy, last_issue : Out(1)
        As the other engines; ``last_issue`` is the cycle of the last ``UPDATE``.
    step_seed : In(DITHER_BITS)
    win_start, win_tag, win_chan_first, win_chan_last, win_busy, now, stage
        The window, as :class:`~tinycl_hdl.rtl.conv_forward.ConvForward` drives it; the tag is
        ``Cat(channel, group, 1)`` (:func:`~tinycl_hdl.rtl.conv_forward.sweep_tag_width`).
    grad_rd : Out(read_layout)
        Read of every unit's gradient word of the window's position.
    grad : In(ArrayLayout(ArrayLayout(signed(data_width), kernel**2), n_pu))
    conv_w_rd : Out(read_layout)
        Read of every unit's kernel slice ``g*in_c + c`` for its update.
    conv_w : In(ArrayLayout(ArrayLayout(signed(data_width), kernel**2), n_pu))
    conv_b : In(ArrayLayout(signed(data_width), filters))
    issue : Out(issue_layout)
    """

    def __init__(self, cfg: TinyCLConfig):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg = cfg
        lay = layout(cfg)
        L, G, C, CH, NPU, dw = lay["lanes"], lay["groups"], cfg.in_c, lay["chunks"], cfg.n_pu, cfg.data_width
        words = data.ArrayLayout(data.ArrayLayout(signed(dw), L), NPU)
        tw = sweep_tag_width(cfg)
        super().__init__({
            "start": In(1), "cancel": In(1), "busy": Out(1), "last_issue": Out(1), "step_seed": In(DITHER_BITS),
            "win_start": Out(1), "win_tag": Out(tw), "win_chan_first": Out(index(C)), "win_chan_last": Out(index(C)),
            "win_busy": In(1), "now": In(now_layout(cfg, tw)), "stage": In(stage_layout(cfg, tw)),
            "grad_rd": Out(read_layout(index(CH).width)), "grad": In(words),
            "conv_w_rd": Out(read_layout(index(G * C).width)), "conv_w": In(words),
            "conv_b": In(data.ArrayLayout(signed(dw), cfg.filters)),
            "issue": Out(issue_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = layout(cfg)
        L, G, C, NPU, PW = lay["lanes"], lay["groups"], cfg.in_c, cfg.n_pu, lay["plane_words"]
        cw = index(C).width
        gw = len(self.win_tag) - cw - 1
        now, stage, issue = self.now, self.stage, self.issue

        # The sweeps in order (g, c), c fastest: the first at start, each next as the window
        # stops fetching.
        next_g, next_c = Signal(range(G + 1)), Signal(index(C))
        sweep_g, sweep_c = Signal.like(next_g), Signal.like(next_c)
        m.d.comb += [sweep_g.eq(Mux(self.start, 0, next_g)), sweep_c.eq(Mux(self.start, 0, next_c))]
        with m.If(self.start | (self.busy & ~self.win_busy & (next_g != G))):
            m.d.comb += [self.win_start.eq(1), self.win_chan_first.eq(sweep_c), self.win_chan_last.eq(sweep_c),
                         self.win_tag.eq(Cat(sweep_c, sweep_g[:gw], Const(1, 1)))]
            with m.If(sweep_c == C - 1):
                m.d.sync += [next_c.eq(0), next_g.eq(sweep_g + 1)]
            with m.Else():
                m.d.sync += [next_c.eq(sweep_c + 1), next_g.eq(sweep_g)]
        with m.If(self.start):
            m.d.sync += self.busy.eq(1)

        # A window of ours comes out: read every unit's gradient word of its position.
        with m.If(self.busy & now.valid & now.tag[-1]):
            m.d.comb += [self.grad_rd.en.eq(1), self.grad_rd.addr.eq(times_constant(now.tag[cw:cw + gw], PW) + now.word)]

        # A cycle later: the OUTER operand set, the gradient's lane broadcast.
        chan, group = stage.tag[:cw], stage.tag[cw:cw + gw]
        ours = self.busy & stage.valid & stage.tag[-1]
        pixels = [pixel_data(cfg, stage.pixels[i]) for i in range(L)]
        with m.If(ours):
            m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.OUTER), issue.first.eq(stage.first),
                         issue.bias.eq(chan == 0)]
            for p in range(NPU):
                unit = issue.units[p]
                m.d.comb += [unit.a[i].eq(pixels[i]) for i in range(L)]
                m.d.comb += [unit.b[i].eq(self.grad[p][stage.lane]) for i in range(L)]
            with m.If(stage.last):
                m.d.comb += [self.conv_w_rd.en.eq(1), self.conv_w_rd.addr.eq(times_constant(group, C) + chan)]

        # The cycle after a sweep's last window: its UPDATE from the accumulators.
        update = Signal(data.StructLayout({"valid": 1, "group": index(G), "chan": index(C)}))
        m.d.sync += [update.valid.eq(ours & stage.last & ~self.cancel),
                     update.group.eq(group), update.chan.eq(chan)]
        with m.If(update.valid):
            m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.UPDATE), issue.source.eq(GradSource.ACC),
                         issue.tag.kind.eq(Kind.CW), issue.tag.addr.eq(times_constant(update.group, C) + update.chan),
                         issue.tag.first.eq(update.chan == 0), issue.tag.group.eq(update.group)]
            coords = Coordinates.of(cfg)
            for p in range(NPU):
                unit = issue.units[p]
                m.d.comb += [unit.w.eq(self.conv_w[p]), unit.w_bias.eq(self.conv_b[update.group * NPU + p])]
                if cfg.update_rounding == "stochastic":
                    f = Signal(index(cfg.filters), name=f"dither_f{p}")
                    m.d.comb += [f.eq(update.group * NPU + p),
                                 unit.dither.eq(self.step_seed ^ coordinate_image(coords, kind=CONV, f=f,
                                                                                  word=update.chan))]
            with m.If((update.group == G - 1) & (update.chan == C - 1)):
                m.d.comb += self.last_issue.eq(1)
                m.d.sync += self.busy.eq(0)
        with m.If(self.cancel):
            m.d.sync += self.busy.eq(0)
        return m
