"""Test vectors: consecutive training steps from a fresh initialisation, as raw integers.

The ``.npz`` file written by :func:`write_vectors` (``tinycl vectors``) holds:

============== ======================== =========================================
key            shape                    meaning
============== ======================== =========================================
config_json    scalar str               the resolved configuration
lr_shift       scalar int               learning rate ``2**-lr_shift``
x              [N, H, W, C] uint8       input pixels
y              [N] int64                labels
conv_w0        [F, C, K, K]             initial conv weights (LFSR, seed ``seed``)
conv_b0        [F]                      initial conv biases (zero)
dense_w0       [classes, F, Ho, Wo]     initial dense weights
dense_b0       [classes]                initial dense biases (zero)
logits         [N, classes]             logits of step n (weights before step n)
delta          [N, classes]             loss gradient of step n
conv_w ...     [N, ...]                 the four weight arrays after step n
============== ======================== =========================================

All weights, logits and deltas are raw data-format integers (int64).
"""

from __future__ import annotations

import numpy as np

from . import golden
from ..spec.config import TinyCLConfig
from ..spec.lfsr import Lfsr

__all__ = ["make_vectors", "write_vectors", "read_vectors"]


def make_vectors(cfg: TinyCLConfig, steps: int, seed: int) -> dict:
    """Random pixels and labels (numpy, ``seed``), weights from ``Lfsr(seed)``, ``steps`` steps."""
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(steps, cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
    y = rng.integers(0, cfg.classes, size=steps).astype(np.int64)
    weights = golden.init_weights(cfg, Lfsr(seed))
    out = {"config_json": np.array(cfg.to_json()), "lr_shift": np.array(cfg.lr_shift), "x": x, "y": y}
    out.update({f"{name}0": array for name, array in weights.arrays().items()})
    history = {name: [] for name in weights.arrays()}
    logits, delta = [], []
    for n in range(steps):
        weights, trace = golden.train_step(cfg, weights, x[n], int(y[n]))
        logits.append(trace.logits)
        delta.append(trace.delta)
        for name, array in weights.arrays().items():
            history[name].append(array)
    out["logits"] = np.stack(logits)
    out["delta"] = np.stack(delta)
    out.update({name: np.stack(arrays) for name, arrays in history.items()})
    return out


def write_vectors(path, vectors: dict) -> None:
    np.savez_compressed(path, **vectors)


def read_vectors(path):
    """``(config, arrays)`` from a vectors file."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    return TinyCLConfig.from_json(str(arrays["config_json"])), arrays
