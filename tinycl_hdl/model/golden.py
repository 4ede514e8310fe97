"""Bit-exact integer golden model of the TinyCL accelerator.

Every function works on int64 numpy arrays holding raw fixed-point values
(see :mod:`tinycl_hdl.spec.fixedpoint`) and reproduces each rounding point of the
RTL.  The stage functions are small and importable so that the cocotb
testbenches can check the hardware stage by stage:

``input_from_pixels`` -> ``conv_forward`` -> ``relu`` -> ``dense_forward`` ->
``loss_gradient`` -> ``dense_backward`` -> ``relu_backward`` -> ``conv_backward``.

Layouts: input ``[C, H, W]``, conv weights ``[F, C, K, K]``, conv output and
activations ``[F, Ho, Wo]``, dense weights ``[classes, F, Ho, Wo]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..spec.config import TinyCLConfig
from ..spec.fixedpoint import FixedFormat
from ..spec.initial import init_bits, init_shift
from ..spec.lfsr import Lfsr
from ..spec.softmax import loss_gradient as _loss_gradient
from ..spec.update import conv_dither, dense_dither

__all__ = [
    "Weights", "StepTrace", "input_from_pixels", "conv_patches", "conv_forward", "relu",
    "dense_forward", "loss_gradient", "dense_backward", "relu_backward", "conv_backward",
    "train_step", "infer", "infer_batch", "init_shift", "init_bits", "init_weights", "shuffle_order",
    "GDumbSampler", "quantise_weights",
]


@dataclass(frozen=True)
class Weights:
    """The trainable parameters, as raw data-format integers."""

    conv_w: np.ndarray   # [F, C, K, K]
    conv_b: np.ndarray   # [F]
    dense_w: np.ndarray  # [classes, F, Ho, Wo]
    dense_b: np.ndarray  # [classes]

    @classmethod
    def zeros(cls, cfg: TinyCLConfig) -> "Weights":
        return cls(
            conv_w=np.zeros((cfg.filters, cfg.in_c, cfg.kernel, cfg.kernel), dtype=np.int64),
            conv_b=np.zeros(cfg.filters, dtype=np.int64),
            dense_w=np.zeros((cfg.classes, cfg.filters, cfg.out_h, cfg.out_w), dtype=np.int64),
            dense_b=np.zeros(cfg.classes, dtype=np.int64),
        )

    def arrays(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def equals(self, other: "Weights") -> bool:
        return all(np.array_equal(a, b) for a, b in zip(self.arrays().values(), other.arrays().values()))


@dataclass(frozen=True)
class StepTrace:
    """Intermediate values of one training step, for stage-by-stage checks."""

    x: np.ndarray        # [C, H, W] input in data format
    z: np.ndarray        # [F, Ho, Wo] conv output before ReLU
    a: np.ndarray        # [F, Ho, Wo] activations after ReLU
    logits: np.ndarray   # [classes]
    delta: np.ndarray    # [classes] loss gradient
    grad_a: np.ndarray   # [F, Ho, Wo] gradient w.r.t. the activations (old dense weights)
    grad_z: np.ndarray   # [F, Ho, Wo] after ReLU backward


# -- stages ----------------------------------------------------------------------------


def input_from_pixels(cfg: TinyCLConfig, pixels) -> np.ndarray:
    """``[H, W, C]`` uint8 pixels to the ``[C, H, W]`` data-format input ``(p - pixel_offset) * 2**-8``."""
    pixels = np.asarray(pixels)
    if pixels.shape != (cfg.in_h, cfg.in_w, cfg.in_c):
        raise ValueError(f"sample must have shape {(cfg.in_h, cfg.in_w, cfg.in_c)}, not {pixels.shape}")
    return FixedFormat.of(cfg).from_pixels(pixels, cfg.pixel_offset).transpose(2, 0, 1).copy()


def conv_patches(cfg: TinyCLConfig, x: np.ndarray) -> np.ndarray:
    """Window contents ``[Ho, Wo, C, K, K]`` at every output position of ``x [C, H, W]``."""
    k = cfg.kernel
    return sliding_window_view(x, (k, k), axis=(1, 2)).transpose(1, 2, 0, 3, 4)


def conv_forward(cfg: TinyCLConfig, x: np.ndarray, conv_w: np.ndarray, conv_b: np.ndarray) -> np.ndarray:
    """Conv output ``[F, Ho, Wo]`` before ReLU: bias plus window dot kernel, narrowed."""
    fmt = FixedFormat.of(cfg)
    patches = conv_patches(cfg, x).reshape(cfg.out_h * cfg.out_w, cfg.conv_fan_in)
    acc = conv_w.reshape(cfg.filters, cfg.conv_fan_in) @ patches.T + fmt.bias_term(conv_b)[:, None]
    return fmt.narrow(acc).reshape(cfg.filters, cfg.out_h, cfg.out_w)


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


def dense_forward(cfg: TinyCLConfig, a: np.ndarray, dense_w: np.ndarray, dense_b: np.ndarray) -> np.ndarray:
    """Logits ``[classes]``: bias plus weights dot flattened activations, narrowed."""
    fmt = FixedFormat.of(cfg)
    acc = dense_w.reshape(cfg.classes, -1) @ a.reshape(-1) + fmt.bias_term(dense_b)
    return fmt.narrow(acc)


def loss_gradient(cfg: TinyCLConfig, logits: np.ndarray, label: int) -> np.ndarray:
    """``softmax(logits) - onehot(label)`` in data format (see :mod:`tinycl_hdl.spec.softmax`)."""
    return _loss_gradient(logits, label, cfg.data_width, cfg.frac_bits)


def _dithers(cfg: TinyCLConfig, seed, layer):
    """``(weights, biases)`` dithers of ``layer`` (:func:`~tinycl_hdl.spec.update.dense_dither`
    or ``conv_dither``) for the step seed ``seed``; ``(None, None)`` when the update rounds to
    nearest."""
    if cfg.update_rounding == "nearest":
        return None, None
    if seed is None:
        raise ValueError("update_rounding 'stochastic' needs the training step's seed")
    return layer(cfg, seed)


def dense_backward(cfg: TinyCLConfig, a: np.ndarray, delta: np.ndarray,
                   dense_w: np.ndarray, dense_b: np.ndarray, seed: int | None = None):
    """Activation gradient (with the old weights) and the updated dense layer.

    Returns ``(grad_a [F, Ho, Wo], dense_w, dense_b)``.  ``grad_a[k]`` narrows
    ``sum_o w[o, k] * delta[o]``; the weight gradient of one sample is the
    single product ``delta[o] * a[k]``, the bias gradient ``delta[o]`` (a
    product with 1.0).  ``seed`` is the step seed of a stochastic update.
    """
    fmt = FixedFormat.of(cfg)
    w = dense_w.reshape(cfg.classes, -1)
    grad_a = fmt.narrow(delta @ w).reshape(a.shape)
    w_dither, b_dither = _dithers(cfg, seed, dense_dither)
    new_w = fmt.update(w, np.outer(delta, a.reshape(-1)), cfg.lr_shift,
                       None if w_dither is None else w_dither.reshape(w.shape)).reshape(dense_w.shape)
    new_b = fmt.update(dense_b, fmt.bias_term(delta), cfg.lr_shift, b_dither)
    return grad_a, new_w, new_b


def relu_backward(grad_a: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Pass the gradient where the activation was positive (mask ``a > 0``)."""
    return np.where(a > 0, grad_a, 0)


def conv_backward(cfg: TinyCLConfig, x: np.ndarray, grad_z: np.ndarray,
                  conv_w: np.ndarray, conv_b: np.ndarray, seed: int | None = None):
    """Updated ``(conv_w, conv_b)`` from the un-narrowed weight and bias gradients; ``seed`` is
    the step seed of a stochastic update."""
    fmt = FixedFormat.of(cfg)
    patches = conv_patches(cfg, x).reshape(cfg.out_h * cfg.out_w, cfg.conv_fan_in)
    gz = grad_z.reshape(cfg.filters, -1)
    grad_w = (gz @ patches).reshape(conv_w.shape)
    grad_b = fmt.bias_term(gz.sum(axis=1))
    w_dither, b_dither = _dithers(cfg, seed, conv_dither)
    return fmt.update(conv_w, grad_w, cfg.lr_shift, w_dither), fmt.update(conv_b, grad_b, cfg.lr_shift, b_dither)


def train_step(cfg: TinyCLConfig, weights: Weights, pixels, label: int, seed: int | None = None):
    """One online SGD step on one sample; returns ``(new_weights, trace)``.  ``seed`` is the
    step seed (:func:`~tinycl_hdl.spec.update.step_seed`) when the update rounds stochastically."""
    x = input_from_pixels(cfg, pixels)
    z = conv_forward(cfg, x, weights.conv_w, weights.conv_b)
    a = relu(z)
    logits = dense_forward(cfg, a, weights.dense_w, weights.dense_b)
    delta = loss_gradient(cfg, logits, label)
    grad_a, dense_w, dense_b = dense_backward(cfg, a, delta, weights.dense_w, weights.dense_b, seed)
    grad_z = relu_backward(grad_a, a)
    conv_w, conv_b = conv_backward(cfg, x, grad_z, weights.conv_w, weights.conv_b, seed)
    trace = StepTrace(x=x, z=z, a=a, logits=logits, delta=delta, grad_a=grad_a, grad_z=grad_z)
    return Weights(conv_w, conv_b, dense_w, dense_b), trace


def infer(cfg: TinyCLConfig, weights: Weights, pixels):
    """``(class, logits)``; ties go to the lowest class index."""
    x = input_from_pixels(cfg, pixels)
    a = relu(conv_forward(cfg, x, weights.conv_w, weights.conv_b))
    logits = dense_forward(cfg, a, weights.dense_w, weights.dense_b)
    return int(np.argmax(logits)), logits


def infer_batch(cfg: TinyCLConfig, weights: Weights, pixels) -> np.ndarray:
    """Classes of a batch ``[N, H, W, C]``; the same arithmetic as :func:`infer`."""
    fmt = FixedFormat.of(cfg)
    k = cfg.kernel
    x = fmt.from_pixels(pixels, cfg.pixel_offset).transpose(0, 3, 1, 2)                  # [N, C, H, W]
    patches = sliding_window_view(x, (k, k), axis=(2, 3))                # [N, C, Ho, Wo, K, K]
    patches = patches.transpose(0, 2, 3, 1, 4, 5).reshape(len(x), -1, cfg.conv_fan_in)
    acc = patches @ weights.conv_w.reshape(cfg.filters, -1).T + fmt.bias_term(weights.conv_b)
    a = relu(fmt.narrow(acc)).transpose(0, 2, 1).reshape(len(x), -1)    # [N, F*Ho*Wo]
    logits = fmt.narrow(a @ weights.dense_w.reshape(cfg.classes, -1).T + fmt.bias_term(weights.dense_b))
    return np.argmax(logits, axis=1)


# -- pseudo-random choices ---------------------------------------------------------------


def quantise_weights(cfg: TinyCLConfig, weights) -> Weights:
    """Raw fixed-point weights from real ones (any object with ``arrays()`` of float arrays
    named as :class:`Weights`', such as the float reference's): each value rounded to the
    nearest step of the data format, half up, and saturated (``FixedFormat.from_float``)."""
    fmt, arrays = FixedFormat.of(cfg), weights.arrays()
    return Weights(**{name: fmt.from_float(arrays[name]) for name in ("conv_w", "conv_b", "dense_w", "dense_b")})


def init_weights(cfg: TinyCLConfig, lfsr: Lfsr) -> Weights:
    """Fresh weights drawn from ``lfsr``: conv weights then dense weights, in C order.

    Each weight is a uniform signed value of ``frac_bits + 1 - init_shift(fan_in)``
    bits; biases start at zero.
    """
    weights = Weights.zeros(cfg)
    for array, fan_in in ((weights.conv_w, cfg.conv_fan_in), (weights.dense_w, cfg.dense_in)):
        bits = init_bits(cfg, fan_in)
        flat = array.reshape(-1)
        for i in range(flat.size):
            flat[i] = lfsr.signed_bits(bits)
    return weights


def shuffle_order(order: np.ndarray, lfsr: Lfsr) -> np.ndarray:
    """Fisher-Yates shuffle in place, ``j = below(i + 1)`` for ``i`` from the top down."""
    for i in range(len(order) - 1, 0, -1):
        j = lfsr.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class GDumbSampler:
    """GDumb's greedy class-balanced sample memory, as the control unit keeps it.

    Parameters
    ----------
    cfg : TinyCLConfig
        Gives ``slots``, ``classes`` and the sample shape.

    Attributes
    ----------
    pixels : ndarray ``[slots, H, W, C]`` uint8
    labels : ndarray ``[slots]``, ``-1`` for an empty slot
    counts : ndarray ``[classes]``, samples held per class
    size : int, slots in use (filled from slot 0 upwards)
    """

    def __init__(self, cfg: TinyCLConfig):
        self.cfg = cfg
        self.pixels = np.zeros((cfg.slots, cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        self.labels = np.full(cfg.slots, -1, dtype=np.int64)
        self.counts = np.zeros(cfg.classes, dtype=np.int64)
        self.size = 0

    def insert(self, pixels, label: int, lfsr: Lfsr):
        """Offer one sample; returns the slot written, or ``None`` if it was not kept.

        While there is room the sample is appended.  When full, it is kept only
        if its class holds fewer than ``slots // classes_seen`` samples (the
        incoming class counts as seen); it then replaces the ``below(n)``-th
        slot, in slot order, of the largest class (lowest index on ties).
        """
        cfg = self.cfg
        if not 0 <= label < cfg.classes:
            raise ValueError(f"label must satisfy 0 <= label < {cfg.classes}, not {label!r}")
        if self.size < cfg.slots:
            slot = self.size
            self.size += 1
        else:
            seen = int(np.count_nonzero(self.counts)) + (self.counts[label] == 0)
            if self.counts[label] >= cfg.slots // seen:
                return None
            largest = int(np.argmax(self.counts))
            victim = lfsr.below(int(self.counts[largest]))
            slot = int(np.flatnonzero(self.labels == largest)[victim])
            self.counts[largest] -= 1
        self.pixels[slot] = pixels
        self.labels[slot] = label
        self.counts[label] += 1
        return slot
