"""The float64 reference: gradients by finite differences; golden error bounds."""

import dataclasses

import numpy as np
import pytest

from tinycl_hdl.model import golden

from tinycl_hdl.model import reference
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.lfsr import Lfsr


@pytest.fixture
def float_setup(small_cfg, rng):
    w = reference.FloatWeights.from_fixed(small_cfg, golden.init_weights(small_cfg, Lfsr(4)))
    w = reference.FloatWeights(*(a + rng.normal(0, 0.1, a.shape) for a in w.arrays().values()))
    x = reference.input_from_pixels(rng.integers(0, 256, (small_cfg.in_h, small_cfg.in_w, small_cfg.in_c)),
                                    small_cfg.pixel_offset)
    return small_cfg, w, x


def test_gradients_match_central_differences(float_setup, rng):
    cfg, w, x = float_setup
    label = 1
    grads, _ = reference.gradients(cfg, w, x, label)
    h = 1e-6
    for name, array in w.arrays().items():
        flat = array.reshape(-1)
        for index in rng.choice(flat.size, size=min(flat.size, 12), replace=False):
            saved = flat[index]
            flat[index] = saved + h
            up = reference.loss(cfg, w, x, label)
            flat[index] = saved - h
            down = reference.loss(cfg, w, x, label)
            flat[index] = saved
            numeric = (up - down) / (2 * h)
            analytic = grads.arrays()[name].reshape(-1)[index]
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (name, index)


def test_golden_forward_error_within_derived_bound(small_cfg, rng):
    """With identical weights, conv outputs differ by at most half an LSB (one
    rounding of an exact accumulator, ReLU is 1-Lipschitz) and logits by at most
    ``2**-(frac+1) * (1 + sum_k |W[o, k]|)`` (the rounded activations feed the
    dense layer, which rounds once more), unless saturated."""
    cfg = small_cfg
    lsb = 2.0 ** -cfg.frac_bits
    for trial in range(20):
        wq = golden.init_weights(cfg, Lfsr(trial + 1))
        wf = reference.FloatWeights.from_fixed(cfg, wq)
        pixels = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c))
        xq = golden.input_from_pixels(cfg, pixels)
        z = golden.conv_forward(cfg, xq, wq.conv_w, wq.conv_b)
        logits = golden.dense_forward(cfg, golden.relu(z), wq.dense_w, wq.dense_b)
        fwd = reference.forward(cfg, wf, reference.input_from_pixels(pixels, cfg.pixel_offset))
        assert np.abs(z * lsb - fwd["z"]).max() <= lsb / 2
        bound = lsb / 2 * (1 + np.abs(wf.dense_w.reshape(cfg.classes, -1)).sum(axis=1))
        assert np.all(np.abs(logits * lsb - fwd["logits"]) <= bound)


@pytest.mark.parametrize("rule, rounding", [("nearest", 0.5), ("stochastic", 1.0)])
def test_golden_step_tracks_float_step(rng, rule, rounding):
    """One training step from the same weights: every updated weight is within
    the update's rounding (half an LSB to nearest, below one LSB stochastically:
    the floor or the ceiling) plus the propagated forward and loss-gradient
    errors scaled by the learning rate."""
    cfg = dataclasses.replace(PRESETS["digits"], lr_shift=4, update_rounding=rule)
    lsb = 2.0 ** -cfg.frac_bits
    wq = golden.init_weights(cfg, Lfsr(11))
    wf = reference.FloatWeights.from_fixed(cfg, wq)
    pixels = rng.integers(0, 256, (8, 8, 1))
    new_q, _ = golden.train_step(cfg, wq, pixels, 3, seed=0x3C)
    new_f = reference.train_step(cfg, wf, pixels, 3)
    # Derived from the forward bound (logits within a few LSB), the softmax bound
    # (within 3 LSB), |a| <= 1 and lr = 1/16: each update differs by well under
    # one LSB before its rounding, so at most one LSB plus the rounding after it.
    for name, array in new_q.arrays().items():
        assert np.abs(array * lsb - new_f.arrays()[name]).max() <= (1 + rounding) * lsb, name
