"""Compute bound (docs/architecture.md, "Performance model") and the read-count formulas.

Per training sample the bound is the sum over phases of
``ceil(MAC operations / lanes)`` with ``lanes = kernel**2 * n_pu``.
"""

from __future__ import annotations

import math

from ..spec.config import TinyCLConfig
from ..spec.window import raster_reads, snake_reads

__all__ = ["bound_phases", "bound_cycles_per_sample", "reads_per_pass"]


def bound_phases(cfg: TinyCLConfig) -> dict:
    """MAC-bound cycles of each phase of one training sample."""
    lanes = cfg.lanes
    positions = cfg.out_h * cfg.out_w
    conv = cfg.filters * positions * cfg.conv_fan_in
    dense = cfg.classes * cfg.dense_in
    return {
        "conv_forward": math.ceil(conv / lanes),
        "dense_forward": math.ceil(dense / lanes),
        "dense_input_gradient": math.ceil(dense / lanes),
        "dense_update": math.ceil(dense / lanes),
        "conv_weight_gradient": math.ceil(conv / lanes),
        "conv_update": math.ceil(cfg.filters * cfg.conv_fan_in / lanes),
    }


def bound_cycles_per_sample(cfg: TinyCLConfig) -> int:
    return sum(bound_phases(cfg).values())


def reads_per_pass(cfg: TinyCLConfig) -> int:
    """Pixel reads of one channel sweep in the configured window order."""
    return snake_reads(cfg) if cfg.window == "snake" else raster_reads(cfg)
