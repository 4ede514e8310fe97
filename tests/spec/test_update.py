"""The weight update's rounding (tinycl_hdl.spec.update), against independent derivations."""

import dataclasses

import numpy as np
import pytest

import reference_loops as loops
from tinycl_hdl.spec import update
from tinycl_hdl.spec.catalogue import PRESETS, SMALL
from tinycl_hdl.spec.config import ConfigError, TinyCLConfig
from tinycl_hdl.spec.fixedpoint import FixedFormat, round_shift

B = update.DITHER_BITS


def test_nearest_is_the_one_bit_dithered_shift():
    rng = np.random.default_rng(1)
    values = rng.integers(-(1 << 40), 1 << 40, 2000)
    for shift in range(1, 30):
        assert np.array_equal(update.dithered_shift(values, shift, 1, 1), round_shift(values, shift))


def test_a_stochastic_step_is_the_floor_or_the_ceiling():
    rng = np.random.default_rng(2)
    values = rng.integers(-(1 << 36), 1 << 36, 4000)
    dithers = rng.integers(0, 1 << B, values.size)
    for shift in (1, 5, B, B + 3, 26):
        got = update.dithered_shift(values, shift, dithers, B)
        exact = values / 2.0 ** shift
        assert np.all((got == np.floor(exact)) | (got == np.ceil(exact)))


@pytest.mark.parametrize("shift", [3, B, B + 1, 17, 26])
def test_over_every_dither_the_mean_step_is_exact_to_the_dither_resolution(shift):
    """The mean over all ``2**B`` dithers is ``floor(g * 2**(B - shift)) / 2**B``: unbiased but
    for the cut below the dither's resolution (derived by hand: each dither value once)."""
    rng = np.random.default_rng(shift)
    dithers = np.arange(1 << B)
    for g in rng.integers(-(1 << 30), 1 << 30, 50).tolist():
        steps = update.dithered_shift(g, shift, dithers, B)
        scaled = g * 2 ** (B - shift)
        assert steps.sum() == np.floor(scaled)
        assert abs(steps.mean() - g / 2 ** shift) < 2.0 ** -B


def test_one_weight_sees_every_dither_over_the_seeds():
    """For one weight the dither is the seed XORed with a constant: over the step seeds it takes
    every value once, so its rounding is unbiased over time."""
    cfg = PRESETS["cifar10"]
    seeds = np.arange(1 << B)
    for seed_free in (update.dense_dither(cfg, 0)[0][3, 5, 7, 11], update.conv_dither(cfg, 0)[1][2]):
        assert sorted((seeds ^ seed_free).tolist()) == seeds.tolist()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_dithers_equal_the_loops_derivation(name):
    cfg = SMALL[name]
    kk = cfg.kernel ** 2
    for seed in (0, 0x5A, (1 << B) - 1):
        dense_w, dense_b = update.dense_dither(cfg, seed)
        for o, f, y, x in np.ndindex(dense_w.shape):
            pos = y * cfg.out_w + x
            assert dense_w[o, f, y, x] == loops.dither(cfg, seed, 0, o, f, pos // kk, pos % kk)
        assert dense_b.tolist() == [loops.dither(cfg, seed, 0, o, 0, 0, kk) for o in range(cfg.classes)]
        conv_w, conv_b = update.conv_dither(cfg, seed)
        for f, c, i, j in np.ndindex(conv_w.shape):
            assert conv_w[f, c, i, j] == loops.dither(cfg, seed, 1, 0, f, c, i * cfg.kernel + j)
        assert conv_b.tolist() == [loops.dither(cfg, seed, 1, 0, f, 0, kk) for f in range(cfg.filters)]


def test_neighbouring_weights_get_different_dithers():
    cfg = PRESETS["digits"]
    dense_w, _ = update.dense_dither(cfg, 0x33)
    flat = dense_w.reshape(cfg.classes, -1)
    # the lane bits land on the dither's top bits: consecutive positions differ there
    assert np.all((flat[:, 1:] ^ flat[:, :-1]) >> (B - 4) != 0)


def test_the_step_seed_is_the_top_of_the_draw():
    assert update.step_seed(0xDEADBEEF) == 0xDEADBEEF >> (32 - B)


def test_fixed_format_update_takes_the_dither():
    fmt = FixedFormat(16, 10)
    g = (3 << 16) + 12345                       # lr_shift 6: a step of about 3.19 LSB
    steps = {int(w) for w in (fmt.update(100, g, 6, d) for d in range(1 << B))}
    assert steps == {97, 96}
    assert int(fmt.update(100, g, 6)) == 100 - round_shift(g, 16)


def test_the_rule_is_validated():
    with pytest.raises(ConfigError, match="update_rounding"):
        TinyCLConfig(update_rounding="up")
    assert update.rounding_bits(dataclasses.replace(PRESETS["digits"], update_rounding="nearest")) == 1
    assert update.rounding_bits(PRESETS["digits"]) == B
