"""Test vectors: consecutive training steps from a fresh initialisation, as raw integers.

The ``.npz`` file written by :func:`write_vectors` (``tinycl vectors``) holds:

================= ==================== ===============================================================================================
key               shape                meaning
================= ==================== ===============================================================================================
config_json       scalar str           the resolved configuration
data_width        scalar int           bits of every data word (weights, activations, gradients)
frac_bits         scalar int           their fractional bits
pixel_offset      scalar int           a pixel ``p`` enters as ``(p - pixel_offset) * 2**-8``
lr_shift          scalar int           learning rate ``2**-lr_shift``
update_rounding   scalar str           ``nearest`` or ``stochastic`` (docs/fixed-point.md)
dither_bits       scalar int           bits of a stochastic update's dither (1: nearest)
x                 [N, H, W, C] uint8   input pixels
y                 [N] int64            labels
conv_w0           [F, C, K, K]         initial conv weights (LFSR, seed ``seed``)
conv_b0           [F]                  initial conv biases (zero)
dense_w0          [classes, F, Ho, Wo] initial dense weights
dense_b0          [classes]            initial dense biases (zero)
logits            [N, classes]         logits of step n (weights before step n)
delta             [N, classes]         loss gradient of step n
conv_w ...        [N, ...]             the four weight arrays after step n
step_seed         [N]                  stochastic: step n's seed (LFSR draws after the initial weights)
conv_w_dither ... [N, ...]             stochastic: every weight's dither at step n (and ``conv_b_``, ``dense_w_``, ``dense_b_dither``)
================= ==================== ===============================================================================================

All weights, logits and deltas are raw data-format integers (int64).  A weight moves by
``(floor(g * 2**(dither_bits - frac_bits - lr_shift)) + dither) >> dither_bits`` with ``g``
its exact gradient (``2*frac_bits`` fractional bits); rounding to nearest is the same with one
dither bit and a dither of 1.
"""

from __future__ import annotations

import numpy as np

from . import golden
from ..spec.config import TinyCLConfig
from ..spec.lfsr import Lfsr
from ..spec.update import conv_dither, dense_dither, rounding_bits, step_seed

__all__ = ["make_vectors", "write_vectors", "read_vectors"]


def make_vectors(cfg: TinyCLConfig, steps: int, seed: int) -> dict:
    """Random pixels and labels (numpy, ``seed``), weights from ``Lfsr(seed)``, ``steps`` steps."""
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(steps, cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
    y = rng.integers(0, cfg.classes, size=steps).astype(np.int64)
    lfsr = Lfsr(seed)
    weights = golden.init_weights(cfg, lfsr)
    out = {"config_json": np.array(cfg.to_json()), "data_width": np.array(cfg.data_width),
           "frac_bits": np.array(cfg.frac_bits), "pixel_offset": np.array(cfg.pixel_offset),
           "lr_shift": np.array(cfg.lr_shift), "update_rounding": np.array(cfg.update_rounding),
           "dither_bits": np.array(rounding_bits(cfg)), "x": x, "y": y}
    out.update({f"{name}0": array for name, array in weights.arrays().items()})
    history = {name: [] for name in weights.arrays()}
    logits, delta, seeds, dithers = [], [], [], {name: [] for name in weights.arrays()}
    stochastic = cfg.update_rounding == "stochastic"
    for n in range(steps):
        seed_n = step_seed(lfsr.draw()) if stochastic else None
        weights, trace = golden.train_step(cfg, weights, x[n], int(y[n]), seed_n)
        logits.append(trace.logits)
        delta.append(trace.delta)
        for name, array in weights.arrays().items():
            history[name].append(array)
        if stochastic:
            seeds.append(seed_n)
            layer = dict(zip(("conv_w", "conv_b"), conv_dither(cfg, seed_n)), **dict(zip(("dense_w", "dense_b"),
                                                                                        dense_dither(cfg, seed_n))))
            for name in dithers:
                dithers[name].append(layer[name])
    out["logits"] = np.stack(logits)
    out["delta"] = np.stack(delta)
    out.update({name: np.stack(arrays) for name, arrays in history.items()})
    if stochastic:
        out["step_seed"] = np.array(seeds, dtype=np.int64)
        out.update({f"{name}_dither": np.stack(arrays) for name, arrays in dithers.items()})
    return out


def write_vectors(path, vectors: dict) -> None:
    np.savez_compressed(path, **vectors)


def read_vectors(path):
    """``(config, arrays)`` from a vectors file."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    return TinyCLConfig.from_json(str(arrays["config_json"])), arrays
