"""The on-chip pseudo-random source, shared in definition by RTL and golden model.

A 32-bit Galois LFSR with the maximal-length polynomial
``x^32 + x^22 + x^2 + x + 1`` (feedback mask ``0x80200003``).  One *draw*
advances it 32 steps (the RTL unrolls the 32 steps into one XOR network, so a
draw takes one cycle) and returns the new state.  Stepping 32 times makes the
bits of consecutive draws independent shifts of the sequence instead of one
shifted copy of the previous draw.

Every pseudo-random choice of the accelerator comes from draws:

* :meth:`Lfsr.below` maps a draw to ``0 <= r < n`` with one multiply
  (``(draw >> 16) * n >> 16``), which the RTL builds without a divider;
* :meth:`Lfsr.signed_bits` maps a draw to a uniform signed ``bits``-bit value
  (the top bits, minus half the range), used for weight initialisation.
"""

from __future__ import annotations

__all__ = ["POLY_MASK", "DRAW_STEPS", "seed_state", "step", "Lfsr"]

POLY_MASK = 0x80200003
DRAW_STEPS = 32
_MASK32 = 0xFFFF_FFFF


def seed_state(seed: int) -> int:
    """LFSR state loaded from the 31-bit ``seed`` register: never zero."""
    return ((seed << 1) | 1) & _MASK32


def step(state: int) -> int:
    """One Galois LFSR step (shift right, XOR the mask when a one falls out)."""
    return (state >> 1) ^ (POLY_MASK if state & 1 else 0)


def _draw_tables():
    # A draw is linear over GF(2): the new state is the XOR of the images of
    # the set bits of the old state.  Tabulate the image of every byte value
    # in each byte position so that a draw costs four look-ups in Python.
    def image(state):
        for _ in range(DRAW_STEPS):
            state = step(state)
        return state
    basis = [image(1 << bit) for bit in range(32)]
    tables = []
    for position in range(4):
        table = [0] * 256
        for value in range(1, 256):
            low = value & -value
            table[value] = table[value ^ low] ^ basis[8 * position + low.bit_length() - 1]
        tables.append(table)
    return tables


_T0, _T1, _T2, _T3 = _draw_tables()


class Lfsr:
    """A stream of draws; the state survives across commands, as on chip.

    Parameters
    ----------
    seed : int
        31-bit seed; the state starts at :func:`seed_state` of it.
    """

    def __init__(self, seed: int):
        self.state = seed_state(seed)

    def draw(self) -> int:
        """Advance 32 steps and return the new 32-bit state."""
        s = self.state
        self.state = _T0[s & 0xFF] ^ _T1[(s >> 8) & 0xFF] ^ _T2[(s >> 16) & 0xFF] ^ _T3[s >> 24]
        return self.state

    def below(self, n: int) -> int:
        """A draw mapped to ``0 <= r < n`` (``n <= 65536``) by a 16x16 multiply."""
        return ((self.draw() >> 16) * n) >> 16

    def signed_bits(self, bits: int) -> int:
        """A draw mapped to a uniform value in ``[-2**(bits-1), 2**(bits-1))``."""
        return (self.draw() >> (32 - bits)) - (1 << (bits - 1))
