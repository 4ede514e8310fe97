"""The conv forward pass of the lane array: window sweeps, ``DOT`` per unit, activations.

For each filter group ``g`` one window sweep over all channels of the sample; every window
is one operand set: unit ``p`` ``DOT``s the window with the kernel slice of filter
``g*n_pu + p`` and channel ``c`` (from ``bias * 1.0`` on the first channel), and the last
channel's result is written, through ReLU, as the activation of the window's position.
The sweeps follow each other on the window without a gap but its fill: the next group's
sweep starts as soon as the window has fetched the last window of the one before.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from .arith import index, times_constant
from .datapath import pixel_data
from .issue import Kind, issue_layout, layout, read_layout
from .mac import Mode
from .window_stage import now_layout, stage_layout

__all__ = ["ConvForward", "sweep_tag_width"]


def sweep_tag_width(cfg: TinyCLConfig) -> int:
    """The window's sweep tag: ``Cat(channel, group, owner)``, the owner 0 for the conv forward
    sweeps (which leave the channel 0) and 1 for the conv backward ones.  The next sample's
    conv forward sweeps start while the last windows of the conv backward pass are still in
    the window's pipeline: each engine takes only its own windows."""
    return index(cfg.in_c).width + index(layout(cfg)["groups"]).width + 1


class ConvForward(wiring.Component):
    """The conv forward pass of one sample (see the module documentation).

    Parameters
    ----------
    cfg : TinyCLConfig

    Attributes
    ----------
    start : In(1)
        Begin the sweeps of the sample the window is given (its ``slot``).
    cancel : In(1)
        Stop; no further sweep or operand set.
    busy : Out(1)
        From ``start`` until the last operand set is issued.
    last_issue : Out(1)
        The cycle the last operand set is issued; its activation is written
        ``ProcessingUnit.latency`` cycles later.
    win_start, win_tag, win_chan_first, win_chan_last : Out
        Start a window sweep (all channels, the group in the tag).
    win_busy : In(1)
        The window is fetching a sweep.
    now, stage : In
        The window through :class:`~tinycl_hdl.rtl.window_stage.WindowStage`.
    conv_w_rd : Out(read_layout)
        Read of every unit's conv weight word ``g*in_c + c``, as a window comes out.
    conv_w : In(ArrayLayout(ArrayLayout(signed(data_width), kernel**2), n_pu))
        The words read.
    conv_b : In(ArrayLayout(signed(data_width), filters))
        The conv biases.
    issue : Out(issue_layout)
        The operand set of this cycle (zero when none).
    """

    def __init__(self, cfg: TinyCLConfig):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg = cfg
        lay = layout(cfg)
        L, G, C, NPU, dw = lay["lanes"], lay["groups"], cfg.in_c, cfg.n_pu, cfg.data_width
        tw = sweep_tag_width(cfg)
        super().__init__({
            "start": In(1), "cancel": In(1), "busy": Out(1), "last_issue": Out(1),
            "win_start": Out(1), "win_tag": Out(tw), "win_chan_first": Out(index(C)), "win_chan_last": Out(index(C)),
            "win_busy": In(1), "now": In(now_layout(cfg, tw)), "stage": In(stage_layout(cfg, tw)),
            "conv_w_rd": Out(read_layout(index(G * C).width)),
            "conv_w": In(data.ArrayLayout(data.ArrayLayout(signed(dw), L), NPU)),
            "conv_b": In(data.ArrayLayout(signed(dw), cfg.filters)),
            "issue": Out(issue_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lay = layout(cfg)
        L, G, C, NPU, PW = lay["lanes"], lay["groups"], cfg.in_c, cfg.n_pu, lay["plane_words"]
        cw = index(C).width
        now, stage, issue = self.now, self.stage, self.issue

        # The sweeps: group 0 at start, each next one as the window stops fetching (its busy
        # rises the cycle after a start, so a start is never seen twice).
        next_group = Signal(range(G + 1))
        gw = len(self.win_tag) - cw - 1
        with m.If(self.start):
            m.d.comb += [self.win_start.eq(1), self.win_tag.eq(0), self.win_chan_last.eq(C - 1)]
            m.d.sync += [self.busy.eq(1), next_group.eq(1)]
        with m.Elif(self.busy & ~self.win_busy & (next_group != G)):
            m.d.comb += [self.win_start.eq(1), self.win_tag.eq(Cat(Const(0, cw), next_group[:gw], Const(0, 1))),
                         self.win_chan_last.eq(C - 1)]
            m.d.sync += next_group.eq(next_group + 1)

        # A window of ours comes out: read every unit's kernel slice of its group and channel.
        with m.If(self.busy & now.valid & ~now.tag[-1]):
            m.d.comb += [self.conv_w_rd.en.eq(1), self.conv_w_rd.addr.eq(times_constant(now.tag[cw:cw + gw], C) + now.chan)]

        # A cycle later: the operand set.
        group = stage.tag[cw:cw + gw]
        with m.If(self.busy & stage.valid & ~stage.tag[-1]):
            m.d.comb += [issue.valid.eq(1), issue.mode.eq(Mode.DOT), issue.first.eq(stage.first_chan),
                         issue.tag.kind.eq(Mux(stage.last_chan, Kind.ACT, Kind.NONE)),
                         issue.tag.addr.eq(times_constant(group, PW) + stage.word), issue.tag.lane.eq(stage.lane)]
            pixels = [pixel_data(cfg, stage.pixels[i]) for i in range(L)]
            for p in range(NPU):
                unit = issue.units[p]
                m.d.comb += [unit.b.eq(self.conv_w[p]), unit.init_bias.eq(self.conv_b[group * NPU + p])]
                m.d.comb += [unit.a[i].eq(pixels[i]) for i in range(L)]
            with m.If(stage.last & (group == G - 1)):
                m.d.comb += self.last_issue.eq(1)
                m.d.sync += self.busy.eq(0)
        with m.If(self.cancel):
            m.d.sync += self.busy.eq(0)
        return m
