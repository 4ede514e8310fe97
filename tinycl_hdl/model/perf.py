"""Compute bound (docs/architecture.md, "Performance model") and the read-count formulas.

Per training sample the bound is the sum over phases of
``ceil(MAC operations / lanes)`` with ``lanes = kernel**2 * n_pu``.  The lane array's own
cycles come from its schedule (:class:`tinycl_hdl.spec.schedule.ArraySchedule`), which the
RTL's counters equal; the serial datapath has no such model here.
"""

from __future__ import annotations

import math

from ..spec.config import TinyCLConfig
from ..spec.window import raster_reads, snake_reads

__all__ = ["bound_phases", "bound_cycles_per_sample", "cycles_per_sample", "epoch_cycles", "reads_per_pass"]


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


def cycles_per_sample(cfg: TinyCLConfig) -> int | None:
    """Cycles of a training step within an epoch on the lane array (the schedule's), or
    ``None`` for the serial datapath, which has no cycle model."""
    if cfg.datapath != "array":
        return None
    from ..spec.schedule import ArraySchedule
    return ArraySchedule(cfg).cycles_per_sample


def epoch_cycles(cfg: TinyCLConfig, samples: int) -> dict | None:
    """The phase counters (``CYC_<phase>``) of one epoch of ``samples`` training steps on the
    lane array, as the RTL counts them, or ``None`` for the serial datapath."""
    if cfg.datapath != "array":
        return None
    from ..spec.schedule import ArraySchedule
    return {f"CYC_{phase}": cycles for phase, cycles in ArraySchedule(cfg).epoch_phases(samples).items()}


def reads_per_pass(cfg: TinyCLConfig) -> int:
    """Pixel reads of one channel sweep in the configured window order."""
    return snake_reads(cfg) if cfg.window == "snake" else raster_reads(cfg)
