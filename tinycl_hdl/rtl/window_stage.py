"""The snake window's output as the lane array's sweeping engines take it.

A window sweep feeds the conv forward pass (:class:`~tinycl_hdl.rtl.conv_forward.ConvForward`)
or the conv weight gradient (:class:`~tinycl_hdl.rtl.conv_backward.ConvBackward`).  Both
read a memory as a window comes out (the conv weights of its channel, or the gradient word
of its position) and issue the window's operand set in the next cycle, with the memory's
data.  :class:`WindowStage` is that one register stage, shared by the two engines (they
never sweep at once): :attr:`now` is the window as it comes out, for the reads; :attr:`stage`
the same window a cycle later, for the issue, with its position turned into the lane array's
word and lane.
"""

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from .arith import index
from .issue import layout

__all__ = ["WindowStage", "now_layout", "stage_layout"]


def now_layout(cfg: TinyCLConfig, tag_width: int) -> data.StructLayout:
    """The window as it comes out: ``valid``, its channel, sweep tag, and its position's word
    within the filter plane (``pos // kernel**2``)."""
    return data.StructLayout({"valid": 1, "chan": index(cfg.in_c), "tag": tag_width,
                              "word": index(layout(cfg)["plane_words"])})


def stage_layout(cfg: TinyCLConfig, tag_width: int) -> data.StructLayout:
    """The window a cycle later: its flags, tag and pixels, and its position's word within the
    filter plane (``pos // kernel**2``) and lane (``pos % kernel**2``)."""
    lay = layout(cfg)
    return data.StructLayout({
        "valid": 1, "first": 1, "first_chan": 1, "last_chan": 1, "last": 1, "chan": index(cfg.in_c),
        "tag": tag_width, "word": index(lay["plane_words"]), "lane": index(lay["lanes"]),
        "pixels": data.ArrayLayout(8, lay["lanes"]),
    })


class WindowStage(wiring.Component):
    """Registers the :class:`~tinycl_hdl.rtl.window.SnakeWindow`'s output for the engines.

    Parameters
    ----------
    cfg : TinyCLConfig
    tag_width : int
        Width of the window's sweep tag.

    Attributes
    ----------
    valid, first, first_chan, last_chan, last, chan, pos, tag, pixels : In
        The window's outputs (``tag`` its ``out_tag``, ``pixels`` its ``window``).
    now : Out(now_layout)
        The window this cycle.
    stage : Out(stage_layout)
        The window of the cycle before.
    """

    def __init__(self, cfg: TinyCLConfig, tag_width: int):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        self._cfg, self._tag_width = cfg, tag_width
        lay = layout(cfg)
        super().__init__({
            "valid": In(1), "first": In(1), "first_chan": In(1), "last_chan": In(1), "last": In(1),
            "chan": In(index(cfg.in_c)), "pos": In(index(lay["positions"])), "tag": In(tag_width),
            "pixels": In(data.ArrayLayout(8, lay["lanes"])),
            "now": Out(now_layout(cfg, tag_width)), "stage": Out(stage_layout(cfg, tag_width)),
        })

    def elaborate(self, platform):
        m = Module()
        lay = layout(self._cfg)
        L, P, PW = lay["lanes"], lay["positions"], lay["plane_words"]
        # pos -> (word, lane) from constant tables: a ``//`` of a signal would be a divider.
        pos_word = Array(Const(pos // L, index(PW)) for pos in range(P))
        pos_lane = Array(Const(pos % L, index(L)) for pos in range(P))
        now, stage = self.now, self.stage
        m.d.comb += [now.valid.eq(self.valid), now.chan.eq(self.chan), now.tag.eq(self.tag),
                     now.word.eq(pos_word[self.pos])]
        m.d.sync += [stage.valid.eq(self.valid), stage.first.eq(self.first), stage.first_chan.eq(self.first_chan),
                     stage.last_chan.eq(self.last_chan), stage.last.eq(self.last), stage.chan.eq(self.chan),
                     stage.tag.eq(self.tag), stage.word.eq(pos_word[self.pos]), stage.lane.eq(pos_lane[self.pos]),
                     stage.pixels.eq(self.pixels)]
        return m
