"""What the lane array's phase engines hand its processing units, and how they share them.

The lane array (:class:`~tinycl_hdl.rtl.lane_array.LaneArray`) runs each phase of a
training step on an engine of its own (:mod:`~tinycl_hdl.rtl.conv_forward`,
:mod:`~tinycl_hdl.rtl.dense_forward`, :mod:`~tinycl_hdl.rtl.dense_backward`,
:mod:`~tinycl_hdl.rtl.conv_backward`).  An engine issues at most one *operand set* per
cycle (:func:`issue_layout`: the mode and tag every unit shares, and each unit's operands)
and requests the memory reads its next operand set needs (:func:`read_layout`).  Engines
drive zero when they do not issue or read, and the sequencer never lets two issue or read
the same memory in one cycle, so the array combines them with an OR (:func:`or_bus`): no
multiplexer, no priority.

The *tag* (:func:`tag_layout`) travels with an operand set through the processing unit and
tells the write-back where its result goes (:class:`Kind`).
"""

import operator
from functools import reduce

from amaranth.hdl import Value, signed
from amaranth.lib import data, enum

from ..spec.config import TinyCLConfig
from ..spec.update import DITHER_BITS
from .arith import index
from .mac import GradSource, Mode

__all__ = ["Kind", "layout", "tag_layout", "unit_layout", "issue_layout", "read_layout", "or_bus"]


class Kind(enum.Enum, shape=3):
    """Where a processing unit's result is written back."""
    NONE = 0
    ACT = 1         # an activation (conv forward, the last channel of a position)
    LOGIT = 2       # a logit (dense forward, the last chunk of a class)
    DW = 3          # a dense weight word, and with ``last`` a chunk's input gradient
    CW = 4          # a conv weight word, and with ``first`` the filter's bias


def layout(cfg: TinyCLConfig) -> dict:
    """Sizes of the per-unit memories.

    Unit ``p`` owns filters ``f = g*n_pu + p`` (``g`` the filter *group*); its activations,
    gradients and dense weights are indexed by the *chunk* ``k = g*PW + pos // L`` and the
    lane ``pos % L``, with ``pos = y*out_w + x``, ``L = kernel**2`` lanes and
    ``PW = ceil(out_h*out_w / L)`` words per filter plane; padding lanes hold zero activations.
    """
    lanes = cfg.kernel ** 2
    positions = cfg.out_h * cfg.out_w
    plane_words = -(-positions // lanes)
    groups = cfg.filters // cfg.n_pu
    return {"lanes": lanes, "positions": positions, "plane_words": plane_words, "groups": groups,
            "chunks": groups * plane_words}


def tag_layout(cfg: TinyCLConfig) -> data.StructLayout:
    """An operand set's tag: ``kind``; the word ``addr`` and ``lane`` it writes; the class
    ``cls``; ``first`` and ``last`` of a run; the dense ``chunk``; the ReLU ``mask`` (each unit
    its own); the filter ``group``."""
    lay = layout(cfg)
    L, NC, G, CH, C = lay["lanes"], cfg.classes, lay["groups"], lay["chunks"], cfg.in_c
    return data.StructLayout({
        "kind": Kind, "addr": max(1, (max(NC * CH, G * C, CH) - 1).bit_length()), "lane": index(L),
        "cls": index(NC), "first": 1, "last": 1, "chunk": index(CH), "mask": L, "group": index(G),
    })


def unit_layout(cfg: TinyCLConfig) -> data.StructLayout:
    """One processing unit's operands (see :class:`~tinycl_hdl.rtl.mac.ProcessingUnit`), its
    ReLU mask and its update's dither word."""
    L, dw = cfg.kernel ** 2, cfg.data_width
    vec = data.ArrayLayout(signed(dw), L)
    return data.StructLayout({"a": vec, "b": vec, "w": vec, "w_bias": signed(dw), "init_bias": signed(dw),
                              "mask": L, "dither": DITHER_BITS})


def issue_layout(cfg: TinyCLConfig) -> data.StructLayout:
    """One cycle's operand set for every unit: what they share, and ``units[p]``."""
    return data.StructLayout({"valid": 1, "mode": Mode, "first": 1, "bias": 1, "source": GradSource,
                              "tag": tag_layout(cfg), "units": data.ArrayLayout(unit_layout(cfg), cfg.n_pu)})


def read_layout(addr_width: int) -> data.StructLayout:
    """A read request of one memory: ``en`` and ``addr`` (zero when not reading)."""
    return data.StructLayout({"en": 1, "addr": addr_width})


def or_bus(sources) -> Value:
    """The bitwise OR of ``sources`` (views or values of one layout), which drive zero when idle."""
    return reduce(operator.or_, (Value.cast(s) for s in sources))
