"""The width of the initial weights that TRAIN draws from the LFSR.

The golden model (:func:`~tinycl_hdl.model.golden.init_weights`) and both control
units draw each weight as ``Lfsr.signed_bits(init_bits(cfg, fan_in))``.
"""

import math

from .config import TinyCLConfig

__all__ = ["init_shift", "init_bits"]


def init_shift(fan_in: int) -> int:
    """Initial weights are uniform in ``+-2**-init_shift``, about ``1/sqrt(fan_in)``."""
    return math.ceil(math.log2(fan_in) / 2)


def init_bits(cfg: TinyCLConfig, fan_in: int) -> int:
    """Bits of an initial weight: uniform in ``+-2**(bits-1)`` raw, i.e. ``+-2**-init_shift``."""
    return max(1, cfg.frac_bits + 1 - init_shift(fan_in))
