import numpy as np

from tinycl_hdl.spec.lfsr import DRAW_STEPS, POLY_MASK, Lfsr, seed_state, step

PERIOD = (1 << 32) - 1
PERIOD_PRIME_FACTORS = (3, 5, 17, 257, 65537)  # 2**32 - 1 = 3 * 5 * 17 * 257 * 65537


def _matrix_of(fn):
    """Columns of the GF(2) matrix of a linear map on 32-bit states."""
    return [fn(1 << bit) for bit in range(32)]


def _apply(matrix, state):
    out = 0
    for bit in range(32):
        if state >> bit & 1:
            out ^= matrix[bit]
    return out


def _compose(a, b):
    return [_apply(a, column) for column in b]


def _power(matrix, exponent):
    result = [1 << bit for bit in range(32)]
    while exponent:
        if exponent & 1:
            result = _compose(matrix, result)
        matrix = _compose(matrix, matrix)
        exponent >>= 1
    return result


def test_step_has_maximal_period():
    # The step map A has period 2**32 - 1 on non-zero states exactly when
    # A**(2**32-1) == I and A**((2**32-1)/q) != I for every prime q dividing it.
    a = _matrix_of(step)
    identity = [1 << bit for bit in range(32)]
    assert _power(a, PERIOD) == identity
    for q in PERIOD_PRIME_FACTORS:
        assert _power(a, PERIOD // q) != identity


def test_draw_is_32_single_steps():
    lfsr = Lfsr(123)
    state = seed_state(123)
    for _ in range(200):
        for _ in range(DRAW_STEPS):
            state = step(state)
        assert lfsr.draw() == state


def test_step_definition():
    assert step(0b10) == 0b1
    assert step(0b1) == POLY_MASK
    assert seed_state(0) == 1 and seed_state(5) == 11


def test_below_is_in_range_and_roughly_uniform():
    lfsr = Lfsr(7)
    draws = np.array([lfsr.below(10) for _ in range(20000)])
    assert draws.min() == 0 and draws.max() == 9
    counts = np.bincount(draws, minlength=10)
    # 2000 expected per bin; 4 standard deviations is about 170.
    assert np.all(np.abs(counts - 2000) < 200)


def test_signed_bits_range():
    lfsr = Lfsr(9)
    values = [lfsr.signed_bits(9) for _ in range(5000)]
    assert min(values) == -256 and max(values) == 255
