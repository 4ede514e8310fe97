"""Fixed-point rules against exact rational arithmetic (an independent derivation)."""

import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tinycl_hdl.spec.fixedpoint import FixedFormat, round_shift, saturate

formats = st.integers(4, 31).flatmap(lambda w: st.tuples(st.just(w), st.integers(1, w - 1)))


def exact_round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def clamp(value, width):
    return max(-(1 << (width - 1)), min((1 << (width - 1)) - 1, value))


@given(st.integers(-(1 << 62), 1 << 62), st.integers(0, 40))
def test_round_shift_is_round_half_up(value, shift):
    assert round_shift(value, shift) == exact_round_half_up(Fraction(value, 1 << shift))


@given(formats, st.integers(-(1 << 63), (1 << 63) - 1))
def test_narrow_never_wraps(fmt, acc):
    width, frac = fmt
    f = FixedFormat(width, frac)
    # int64 arrays near the extremes: round_shift's addition must not wrap
    # either, so the accumulator is at most 63 bits in the RTL (acc_width <= 64).
    acc = acc >> 1
    got = int(f.narrow(np.array([acc], dtype=np.int64))[0])
    assert got == clamp(exact_round_half_up(Fraction(acc, 1 << frac)), width)
    assert f.min <= got <= f.max
    if acc > 0:
        assert got >= 0
    if acc < 0:
        assert got <= 0


@given(formats, st.data())
def test_update_is_exact_scaled_step(fmt, data):
    width, frac = fmt
    f = FixedFormat(width, frac)
    w = data.draw(st.integers(f.min, f.max))
    g = data.draw(st.integers(-(1 << min(2 * width + 12, 61)), 1 << min(2 * width + 12, 61)))
    lr = data.draw(st.integers(0, width))  # the configuration allows lr_shift <= data_width
    expected = clamp(w - exact_round_half_up(Fraction(g, 1 << (frac + lr))), width)
    assert int(f.update(np.int64(w), np.int64(g), lr)) == expected


@given(formats)
def test_products_of_extremes_are_exact_and_narrow_saturates(fmt):
    width, frac = fmt
    f = FixedFormat(width, frac)
    extremes = np.array([f.min, f.min + 1, -1, 0, 1, f.max], dtype=np.int64)
    products = np.multiply.outer(extremes, extremes)
    exact = [[a * b for b in extremes.tolist()] for a in extremes.tolist()]
    assert products.tolist() == exact
    narrowed = f.narrow(products)
    assert narrowed.max() <= f.max and narrowed.min() >= f.min
    # min*min is the largest positive product: it must saturate high, not wrap negative.
    assert narrowed[0, 0] == clamp(exact_round_half_up(Fraction(f.min * f.min, 1 << frac)), width)


@given(formats, st.lists(st.integers(0, 255), min_size=1, max_size=16))
def test_pixels_are_p_over_256(fmt, pixels):
    width, frac = fmt
    f = FixedFormat(width, frac)
    got = f.from_pixels(np.array(pixels, dtype=np.uint8)).tolist()
    assert got == [clamp(exact_round_half_up(Fraction(p * (1 << frac), 256)), width) for p in pixels]
    assert all(f.min <= v <= f.max for v in got)


def test_saturate_scalar_and_array():
    assert saturate(1 << 20, 16) == 32767
    assert saturate(-(1 << 20), 16) == -32768
    assert saturate(np.array([40000, -40000, 5]), 16).tolist() == [32767, -32768, 5]


@given(formats, st.floats(-1e6, 1e6, allow_nan=False))
def test_from_float_round_trip(fmt, value):
    width, frac = fmt
    f = FixedFormat(width, frac)
    raw = int(f.from_float(value))
    assert f.min <= raw <= f.max
    if f.min <= value * (1 << frac) <= f.max:
        assert abs(f.to_float(raw) - value) <= 0.5 / (1 << frac)
