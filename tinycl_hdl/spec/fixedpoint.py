"""The one definition of TinyCL's fixed-point arithmetic.

Every rounding and saturation point of the accelerator is a function here.
The golden model calls these functions on int64 numpy arrays; the Amaranth RTL
implements the same arithmetic and is checked bit-exactly against them.

Formats (docs/fixed-point.md):

* data: signed ``width`` bits, ``frac`` fractional bits;
* product: exact, ``2*width`` bits, ``2*frac`` fractional bits;
* accumulator: sum of products, never rounded while accumulating;
* narrowing: round half up (add ``1 << (frac-1)``, arithmetic shift right
  by ``frac``), then saturate to the data range; never wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .update import DITHER_BITS, dithered_shift

__all__ = ["round_shift", "saturate", "FixedFormat"]


def round_shift(value, shift: int):
    """Arithmetic shift right by ``shift`` with round half up (towards +inf on ties).

    Works on Python integers and on integer numpy arrays.  ``shift == 0``
    returns the value unchanged.
    """
    if shift < 0:
        raise ValueError(f"shift must be a non-negative integer, not {shift!r}")
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def saturate(value, width: int):
    """Clamp ``value`` to the signed ``width``-bit range."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if isinstance(value, np.ndarray):
        return np.clip(value, lo, hi)
    return min(max(int(value), lo), hi)


@dataclass(frozen=True)
class FixedFormat:
    """A signed fixed-point data format and the operations on it.

    Parameters
    ----------
    width : int
        Total bits, sign included.
    frac : int
        Fractional bits, ``1 <= frac < width``.
    """

    width: int
    frac: int

    def __post_init__(self):
        if not 1 <= self.frac < self.width:
            raise ValueError(f"frac must satisfy 1 <= frac < width, not {self.frac!r}")

    @classmethod
    def of(cls, config) -> "FixedFormat":
        """The data format of a :class:`~tinycl_hdl.spec.config.TinyCLConfig`."""
        return cls(config.data_width, config.frac_bits)

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def one(self) -> int:
        """The raw value of 1.0 (may exceed :attr:`max` when ``frac == width - 1``)."""
        return 1 << self.frac

    def saturate(self, value):
        return saturate(value, self.width)

    def narrow(self, acc):
        """Accumulator (``2*frac`` fractional bits) to data: round half up, saturate."""
        return saturate(round_shift(acc, self.frac), self.width)

    def bias_term(self, bias):
        """A data-format value aligned to the accumulator (a product with 1.0)."""
        return bias << self.frac

    def update(self, weight, grad_acc, lr_shift: int, dither=None):
        """SGD step ``sat(w - R(g_acc >> (frac + lr_shift)))``.

        ``grad_acc`` is the un-narrowed gradient accumulator (``2*frac``
        fractional bits), so small gradients survive until they are scaled.  ``R`` rounds
        half up without a ``dither``, else stochastically with it
        (:func:`tinycl_hdl.spec.update.dithered_shift`, ``DITHER_BITS`` bits).
        """
        shift = self.frac + lr_shift
        step = round_shift(grad_acc, shift) if dither is None else dithered_shift(grad_acc, shift, dither, DITHER_BITS)
        return saturate(weight - step, self.width)

    def from_pixels(self, pixels, offset: int = 0):
        """8-bit unsigned pixels ``p`` to the data value ``(p - offset) * 2**-8`` (rounded,
        saturated).

        With ``frac >= 8`` this is an exact shift; with fewer fractional bits,
        round half up can reach 1.0, which saturates when it does not fit.
        """
        p = np.asarray(pixels, dtype=np.int64) - offset
        if self.frac >= 8:
            return p << (self.frac - 8)
        return self.saturate(round_shift(p, 8 - self.frac))

    def from_float(self, value):
        """Nearest representable value (round half up), saturated."""
        scaled = np.floor(np.asarray(value, dtype=np.float64) * (1 << self.frac) + 0.5)
        return np.clip(scaled, self.min, self.max).astype(np.int64)

    def to_float(self, raw):
        return np.asarray(raw, dtype=np.float64) / (1 << self.frac)
