"""The fixed-point loss gradient against exact softmax, within a derived bound."""

import math

import numpy as np
import pytest

from bounds import softmax_error_bound

from tinycl_hdl.spec.softmax import EXP_FRAC, LOG2E_FRAC, LOG2E_Q, exp2_tables, exp_fixed, loss_gradient


def test_log2e_constant():
    assert abs(LOG2E_Q / 2 ** LOG2E_FRAC - math.log2(math.e)) <= 2.0 ** -(LOG2E_FRAC + 1)


@pytest.mark.parametrize("frac", [1, 7, 10, 12])
def test_tables_are_powers_of_two(frac):
    hi, lo, lo_bits = exp2_tables(frac)
    assert len(hi) * len(lo) == 1 << frac
    for i, v in enumerate(hi):
        assert abs(v - 2 ** ((i << lo_bits) / 2 ** frac) * 2 ** EXP_FRAC) <= 0.5
    for j, v in enumerate(lo):
        assert abs(v - 2 ** (j / 2 ** frac) * 2 ** EXP_FRAC) <= 0.5


def test_exp_of_zero_is_exactly_one_and_far_values_vanish():
    assert exp_fixed(np.array([0]), 10).tolist() == [1 << EXP_FRAC]
    assert exp_fixed(np.array([-(1 << 15)]), 10).tolist() == [0]


@pytest.mark.parametrize("frac", [8, 10, 12])
def test_exp_matches_math_exp(frac):
    d = -np.arange(0, 12 << frac, 7, dtype=np.int64)
    got = exp_fixed(d, frac) / 2 ** EXP_FRAC
    want = np.exp(d / 2 ** frac)
    t_err = 2.0 ** -(frac + 1) + 2.0 ** -16 * 12
    assert np.all(np.abs(got - want) <= want * (2 ** t_err - 1 + 3 * 2.0 ** -(EXP_FRAC + 1)) + 2.0 ** -(EXP_FRAC + 1))


@pytest.mark.parametrize("width, frac, classes", [(16, 10, 10), (16, 12, 10), (12, 6, 4), (20, 10, 37)])
def test_loss_gradient_within_derived_bound(width, frac, classes, rng):
    bound = softmax_error_bound(width, frac, classes)
    worst = 0.0
    for trial in range(300):
        spread = [1 << frac, 4 << frac, 1 << (width - 1)][trial % 3]
        z = np.clip(rng.integers(-spread, spread, classes), -(1 << (width - 1)), (1 << (width - 1)) - 1)
        label = int(rng.integers(classes))
        got = loss_gradient(z, label, width, frac) / 2 ** frac
        zf = z / 2 ** frac
        p = np.exp(zf - zf.max())
        p /= p.sum()
        p[label] -= 1
        assert got.min() >= -1.0 and got.max() <= 1.0
        worst = max(worst, float(np.abs(got - p).max()))
    assert worst <= bound
    # The bound is meaningful: a few LSBs, not a loose constant.
    assert bound < 8 * 2.0 ** -frac
