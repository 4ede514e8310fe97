"""Float64 reference of the TinyCL network, for error bounds and accuracy baselines.

The same Conv + ReLU + Dense + softmax cross-entropy network as the golden
model, in float64 with exact softmax and no rounding.  Its analytic gradients
are checked against central finite differences in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..spec.config import TinyCLConfig
from .golden import Weights

__all__ = ["FloatWeights", "input_from_pixels", "forward", "loss", "gradients", "train_step",
           "infer_batch"]


@dataclass(frozen=True)
class FloatWeights:
    conv_w: np.ndarray   # [F, C, K, K]
    conv_b: np.ndarray   # [F]
    dense_w: np.ndarray  # [classes, F, Ho, Wo]
    dense_b: np.ndarray  # [classes]

    @classmethod
    def from_fixed(cls, cfg: TinyCLConfig, weights: Weights) -> "FloatWeights":
        """The exact real values of fixed-point weights."""
        scale = float(1 << cfg.frac_bits)
        return cls(*(array.astype(np.float64) / scale for array in weights.arrays().values()))

    def arrays(self) -> dict:
        return {"conv_w": self.conv_w, "conv_b": self.conv_b,
                "dense_w": self.dense_w, "dense_b": self.dense_b}


def input_from_pixels(pixels, offset: int = 0) -> np.ndarray:
    """``[H, W, C]`` uint8 pixels to the ``[C, H, W]`` input ``(p - offset) / 256``."""
    return (np.asarray(pixels, dtype=np.float64).transpose(2, 0, 1) - offset) / 256.0


def _patches(cfg, x):
    k = cfg.kernel
    return sliding_window_view(x, (k, k), axis=(1, 2)).transpose(1, 2, 0, 3, 4).reshape(
        cfg.out_h * cfg.out_w, cfg.conv_fan_in)


def forward(cfg: TinyCLConfig, w: FloatWeights, x: np.ndarray) -> dict:
    """All activations of one input ``x [C, H, W]``: ``z``, ``a``, ``logits``."""
    patches = _patches(cfg, x)
    z = (w.conv_w.reshape(cfg.filters, -1) @ patches.T + w.conv_b[:, None]).reshape(
        cfg.filters, cfg.out_h, cfg.out_w)
    a = np.maximum(z, 0.0)
    logits = w.dense_w.reshape(cfg.classes, -1) @ a.reshape(-1) + w.dense_b
    return {"patches": patches, "z": z, "a": a, "logits": logits}


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def loss(cfg: TinyCLConfig, w: FloatWeights, x: np.ndarray, label: int) -> float:
    """Softmax cross-entropy of one sample."""
    logits = forward(cfg, w, x)["logits"]
    shifted = logits - logits.max()
    return float(np.log(np.exp(shifted).sum()) - shifted[label])


def gradients(cfg: TinyCLConfig, w: FloatWeights, x: np.ndarray, label: int):
    """``(grads, trace)``: loss gradients for every parameter, and the forward values."""
    fwd = forward(cfg, w, x)
    delta = softmax(fwd["logits"])
    delta[label] -= 1.0
    a = fwd["a"]
    grad_a = (delta @ w.dense_w.reshape(cfg.classes, -1)).reshape(a.shape)
    grad_z = np.where(fwd["z"] > 0, grad_a, 0.0).reshape(cfg.filters, -1)
    grads = FloatWeights(
        conv_w=(grad_z @ fwd["patches"]).reshape(w.conv_w.shape),
        conv_b=grad_z.sum(axis=1),
        dense_w=np.outer(delta, a.reshape(-1)).reshape(w.dense_w.shape),
        dense_b=delta,
    )
    return grads, dict(fwd, delta=delta, grad_a=grad_a)


def train_step(cfg: TinyCLConfig, w: FloatWeights, pixels, label: int) -> FloatWeights:
    """One SGD step with learning rate ``2**-lr_shift``."""
    lr = 2.0 ** -cfg.lr_shift
    grads, _ = gradients(cfg, w, input_from_pixels(pixels, cfg.pixel_offset), label)
    return FloatWeights(*(p - lr * g for p, g in zip(w.arrays().values(), grads.arrays().values())))


def infer_batch(cfg: TinyCLConfig, w: FloatWeights, pixels) -> np.ndarray:
    k = cfg.kernel
    x = (np.asarray(pixels, dtype=np.float64).transpose(0, 3, 1, 2) - cfg.pixel_offset) / 256.0
    patches = sliding_window_view(x, (k, k), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5).reshape(
        len(x), -1, cfg.conv_fan_in)
    z = patches @ w.conv_w.reshape(cfg.filters, -1).T + w.conv_b
    a = np.maximum(z, 0.0).transpose(0, 2, 1).reshape(len(x), -1)
    logits = a @ w.dense_w.reshape(cfg.classes, -1).T + w.dense_b
    return np.argmax(logits, axis=1)
