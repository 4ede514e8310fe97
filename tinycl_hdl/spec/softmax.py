"""Softmax cross-entropy gradient ``delta = softmax(z) - onehot(y)`` in fixed point.

Defined once here and used by both the golden model and the RTL (which builds
its tables from :func:`exp2_tables` and reproduces every step below):

1. ``d_i = z_i - max(z)`` (data format, ``d_i <= 0``).
2. ``t_i = round(d_i * LOG2E_Q >> LOG2E_FRAC)``: ``d_i * log2(e)`` in data
   format, so that ``exp(d_i) = 2**t_i``.
3. Split ``t_i = n_i + r_i / 2**frac`` with integer ``n_i <= 0`` (an arithmetic
   shift) and ``0 <= r_i < 2**frac``.
4. ``2**(r_i / 2**frac)`` from two small tables indexed by the high and low
   halves of ``r_i`` (``EXP_FRAC`` fractional bits each), multiplied and
   rounded back to ``EXP_FRAC`` bits: ``m_i`` in ``[2**EXP_FRAC, 2**(EXP_FRAC+1) + 1]``
   (the rounded tables reach 2.0, and one step past it, for ``r_i`` just below
   ``2**frac`` at some ``frac``: ``EXP_FRAC + 2`` bits).
5. ``e_i = round(m_i >> -n_i)``; shifts beyond ``EXP_FRAC + 2`` give 0.
6. ``S = sum(e_i)`` (at least ``2**EXP_FRAC``: the maximum has ``e = 1.0``).
7. ``p_i = floor((e_i * 2**frac + S // 2) / S)`` (rounded division).
8. ``delta_i = sat(p_i - 2**frac * [i == y])``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .fixedpoint import round_shift, saturate

__all__ = ["LOG2E_FRAC", "LOG2E_Q", "EXP_FRAC", "MAX_EXP_SHIFT", "exp2_tables", "exp_fixed",
           "loss_gradient"]

LOG2E_FRAC = 15
LOG2E_Q = round(math.log2(math.e) * (1 << LOG2E_FRAC))
EXP_FRAC = 16
#: ``m < 2**(EXP_FRAC+1)``, so any right shift of at least ``EXP_FRAC + 2`` rounds to 0.
MAX_EXP_SHIFT = EXP_FRAC + 2


@lru_cache(maxsize=None)
def exp2_tables(frac: int):
    """Tables ``(hi, lo, lo_bits)`` of ``2**(r / 2**frac)`` split by the bits of ``r``.

    ``hi[i] = round(2**((i << lo_bits) / 2**frac) * 2**EXP_FRAC)`` and
    ``lo[j] = round(2**(j / 2**frac) * 2**EXP_FRAC)``; ``hi`` covers the upper
    ``ceil(frac/2)`` bits of ``r``, ``lo`` the lower ``floor(frac/2)``.
    """
    hi_bits = (frac + 1) // 2
    lo_bits = frac - hi_bits
    scale = 1 << EXP_FRAC
    hi = tuple(math.floor(2.0 ** ((i << lo_bits) / (1 << frac)) * scale + 0.5) for i in range(1 << hi_bits))
    lo = tuple(math.floor(2.0 ** (j / (1 << frac)) * scale + 0.5) for j in range(1 << lo_bits))
    return hi, lo, lo_bits


def exp_fixed(d, frac: int):
    """``exp(d)`` for data-format ``d <= 0``, as an ``EXP_FRAC``-bit fraction (steps 2-5)."""
    d = np.asarray(d, dtype=np.int64)
    hi, lo, lo_bits = exp2_tables(frac)
    t = round_shift(d * LOG2E_Q, LOG2E_FRAC)
    n = t >> frac                         # floor: integer part, <= 0
    r = t & ((1 << frac) - 1)             # fractional part, >= 0
    m = round_shift(np.asarray(hi, dtype=np.int64)[r >> lo_bits]
                    * np.asarray(lo, dtype=np.int64)[r & ((1 << lo_bits) - 1)], EXP_FRAC)
    shift = np.minimum(-n, MAX_EXP_SHIFT)
    # round_shift with a per-element shift: shift 0 leaves m unchanged.
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    return (m + half) >> shift


def loss_gradient(logits, label: int, width: int, frac: int):
    """``softmax(logits) - onehot(label)`` in data format (steps 1-8)."""
    z = np.asarray(logits, dtype=np.int64)
    e = exp_fixed(z - z.max(), frac)
    total = int(e.sum())
    p = ((e << frac) + (total >> 1)) // total
    p[label] -= 1 << frac
    return saturate(p, width)
