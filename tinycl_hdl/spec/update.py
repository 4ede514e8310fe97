"""How a weight update rounds: the one definition of the SGD step's rounding.

A weight update is ``w <- sat(w - R(g >> s))`` with ``g`` the un-narrowed gradient
accumulator (``2*frac_bits`` fractional bits) and ``s = frac_bits + lr_shift``.  The
rounding ``R`` is :func:`dithered_shift`: ``g`` is first cut to ``bits`` fractional bits
below the weight's LSB (a floor), then a *dither* of ``bits`` bits is added and the sum
shifted down::

    dithered_shift(g, s, dither, bits) = (floor(g * 2**(bits - s)) + dither) >> bits

Two rules use it (``TinyCLConfig.update_rounding``):

``"nearest"``
    ``bits = 1``, ``dither = 1``: round half up, ``round_shift(g, s)``.  An update smaller
    than half a weight LSB is lost, so a layer with many inputs and a small learning rate
    stops learning (most of the 72,000 dense weights of ``cifar10`` never change).
``"stochastic"``
    ``bits = DITHER_BITS``, ``dither`` uniform: the update rounds up with the probability of
    its fraction, so small updates survive on average (Gupta et al., ICML 2015).  The
    expected rounding error is below ``2**-DITHER_BITS`` LSB.

The dither is a pseudo-random function of the training step and of the weight, so that
the golden model and both datapaths, which update the weights in different orders, give
the same bits.  At each training step the control unit draws once from the on-chip LFSR
(:class:`~tinycl_hdl.spec.lfsr.Lfsr`) and keeps the draw's top ``DITHER_BITS`` bits, the
*step seed*; the weight's dither is the step seed XORed with its coordinates, packed into
one word and folded into ``DITHER_BITS`` bits in reverse bit order (:func:`dither`).  For
one weight the dither then runs through the LFSR's sequence from step to step (so its
rounding is unbiased over time); within a step neighbouring weights get dithers that
differ in their top bits.

Coordinates (:class:`Coordinates`): the layer (``kind``: 0 dense, 1 conv), the class
``o`` (dense), the filter ``f``, a ``word`` and a ``lane``.  A dense weight
``w[o, f, y, x]`` at position ``pos = y*out_w + x`` has ``word = pos // kernel**2`` and
``lane = pos % kernel**2``; a conv weight ``w[f, c, i, j]`` has ``word = c`` and
``lane = i*kernel + j``; a bias has ``lane = kernel**2`` and ``word = 0`` (and ``f = 0``
for a dense bias, ``o = 0`` for a conv bias).  These are the lane array's own lanes and
words, so each lane's dither is one word shared by a processing unit XORed with a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import UPDATE_ROUNDINGS, TinyCLConfig

__all__ = ["UPDATE_ROUNDINGS", "DITHER_BITS", "DENSE", "CONV", "dithered_shift", "rounding_bits",
           "step_seed", "Coordinates", "dither", "dense_dither", "conv_dither"]

#: Bits of a stochastic rounding's dither.
DITHER_BITS = 8
#: ``kind`` of a coordinate: the layer.
DENSE, CONV = 0, 1


def dithered_shift(value, shift: int, dither, bits: int):
    """``(floor(value * 2**(bits - shift)) + dither) >> bits`` on Python or numpy integers."""
    if shift < 0 or bits < 1:
        raise ValueError(f"shift must be non-negative and bits positive, not {shift!r}, {bits!r}")
    pre = value >> (shift - bits) if shift >= bits else value << (bits - shift)
    return (pre + dither) >> bits


def rounding_bits(cfg: TinyCLConfig) -> int:
    """The ``bits`` of :func:`dithered_shift` for ``cfg``'s rule: 1 (nearest) or :data:`DITHER_BITS`."""
    return DITHER_BITS if cfg.update_rounding == "stochastic" else 1


def step_seed(draw: int) -> int:
    """The step seed from an LFSR draw: its top :data:`DITHER_BITS` bits."""
    return draw >> (32 - DITHER_BITS)


@dataclass(frozen=True)
class Coordinates:
    """Widths of the coordinate fields of ``cfg``, packed low to high: lane, word, f, o, kind."""
    lane: int
    word: int
    filter: int
    klass: int

    @classmethod
    def of(cls, cfg: TinyCLConfig) -> "Coordinates":
        kk = cfg.kernel ** 2
        words = max(-(-cfg.out_h * cfg.out_w // kk), cfg.in_c)
        return cls(lane=kk.bit_length(), word=max(1, (words - 1).bit_length()),
                   filter=max(1, (cfg.filters - 1).bit_length()), klass=max(1, (cfg.classes - 1).bit_length()))

    @property
    def shifts(self) -> dict:
        """``{field: bit position in the packed word}``."""
        out, at = {}, 0
        for name, width in (("lane", self.lane), ("word", self.word), ("f", self.filter), ("o", self.klass),
                            ("kind", 1)):
            out[name] = at
            at += width
        return out

    @property
    def total(self) -> int:
        return self.lane + self.word + self.filter + self.klass + 1

    def pack(self, kind, o, f, word, lane):
        s = self.shifts
        return (lane << s["lane"]) | (word << s["word"]) | (f << s["f"]) | (o << s["o"]) | (kind << s["kind"])

    def target_bit(self, bit: int) -> int:
        """The dither bit that packed bit ``bit`` lands on (reverse order, folded)."""
        return DITHER_BITS - 1 - bit % DITHER_BITS


def _fold(packed, coords: Coordinates):
    """Packed coordinates to their ``DITHER_BITS``-bit image (linear over GF(2))."""
    out = np.zeros_like(packed) if isinstance(packed, np.ndarray) else 0
    for bit in range(coords.total):
        out = out ^ (((packed >> bit) & 1) << coords.target_bit(bit))
    return out


def dither(cfg: TinyCLConfig, seed: int, kind, o, f, word, lane):
    """The dither of the weight at these coordinates in the step with seed ``seed``."""
    coords = Coordinates.of(cfg)
    return seed ^ _fold(coords.pack(kind, o, f, word, lane), coords)


def dense_dither(cfg: TinyCLConfig, seed: int):
    """``(weights [classes, F, Ho, Wo], biases [classes])``: the dense layer's dithers."""
    weights, biases = _dense_images(cfg)
    return seed ^ weights, seed ^ biases


def conv_dither(cfg: TinyCLConfig, seed: int):
    """``(weights [F, C, K, K], biases [F])``: the conv layer's dithers."""
    weights, biases = _conv_images(cfg)
    return seed ^ weights, seed ^ biases


@lru_cache(maxsize=16)
def _dense_images(cfg: TinyCLConfig):
    kk = cfg.kernel ** 2
    o, f, pos = np.meshgrid(np.arange(cfg.classes), np.arange(cfg.filters), np.arange(cfg.out_h * cfg.out_w),
                            indexing="ij")
    weights = dither(cfg, 0, DENSE, o, f, pos // kk, pos % kk).reshape(cfg.classes, cfg.filters, cfg.out_h,
                                                                       cfg.out_w)
    return weights, dither(cfg, 0, DENSE, np.arange(cfg.classes), 0, 0, kk)


@lru_cache(maxsize=16)
def _conv_images(cfg: TinyCLConfig):
    k = cfg.kernel
    f, c, i, j = np.meshgrid(np.arange(cfg.filters), np.arange(cfg.in_c), np.arange(k), np.arange(k), indexing="ij")
    return dither(cfg, 0, CONV, 0, f, c, i * k + j), dither(cfg, 0, CONV, 0, np.arange(cfg.filters), 0, k * k)
