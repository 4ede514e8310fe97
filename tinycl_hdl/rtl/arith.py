"""Hardware forms of the rounding and saturation rules of :mod:`tinycl_hdl.spec.fixedpoint`.

Round half up of ``x >> s`` is built as ``((x >> (s - 1)) + 1) >> 1``, which
equals ``(x + 2**(s-1)) >> s`` for every integer ``x`` and ``s >= 1`` (the
dropped low bits can never carry into the kept ones), so a run-time shift
needs one shifter and no wide constant adder.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Value, signed, unsigned

__all__ = ["pairwise_sum", "round_shift", "saturate", "shift_saturate", "index", "update_clamp", "update_apply", "less_than",
           "positive", "times_constant"]


def round_shift(value: Value, shift) -> Value:
    """``value`` (signed) shifted right by ``shift >= 1`` with round half up.

    ``shift`` is a Python integer or an unsigned :class:`Value` (at least 1).
    """
    if isinstance(shift, int):
        if shift < 1:
            raise ValueError(f"shift must be a positive integer, not {shift!r}")
        return (value.shift_right(shift - 1) + 1).shift_right(1)
    shift_less_one = (shift - 1)[:len(shift)]
    return ((value >> shift_less_one) + 1).shift_right(1)


def pairwise_sum(terms, levels: int | None = None) -> list:
    """The terms summed in pairs, ``levels`` times (by default until one is left): a balanced
    adder tree, ``ceil(log2(n))`` adders deep where Python's ``sum`` chains ``n - 1``."""
    terms = list(terms)
    while len(terms) > 1 and (levels is None or levels > 0):
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
        levels = None if levels is None else levels - 1
    return terms


def saturate(value: Value, width: int) -> Value:
    """Clamp ``value`` to ``signed(width)``; never wraps.

    Built from bit tests rather than comparators: a signed value fits when its
    bits from ``width - 1`` up are all equal (an unsigned one when they are all
    zero), which needs no carry chain.
    """
    value = Value.cast(value)
    hi = Const((1 << (width - 1)) - 1, signed(width))
    lo = Const(-(1 << (width - 1)), signed(width))
    if len(value) < width or (len(value) == width and value.shape().signed):
        # always fits
        return value if value.shape().signed else Cat(value, Const(0, width - len(value))).as_signed()
    top = value[width - 1:]
    if value.shape().signed:
        return Mux(top.all() | ~top.any(), value[:width].as_signed(), Mux(value[-1], lo, hi))
    return Mux(~top.any(), value[:width].as_signed(), hi)


def index(count: int):
    """Unsigned shape for an index below ``count``, at least one bit wide.

    Ports keep one bit even when only index 0 exists (a single channel, say),
    so that every generated design has the same port list.
    """
    return unsigned(max(1, (count - 1).bit_length()))


def update_clamp(shifted: Value, width: int, bits: int = 1) -> Value:
    """First half of ``saturate(w - dithered_shift(grad, shift, dither, bits), width)``
    (:func:`tinycl_hdl.spec.update.dithered_shift`): ``shifted``, which is
    ``floor(grad * 2**(bits - shift))``, clamped to ``width + 2 + bits`` bits.

    The clamp changes nothing after :func:`update_apply`: a value outside ``width + 2 +
    bits`` bits gives ``|(shifted + dither) >> bits| >= 2**(width+1) - 1`` for any dither
    below ``2**bits``, and so does its clamped form, with the same sign; either way
    ``w - step`` lies beyond ``signed(width)`` and saturates to the same limit.  The narrow
    result keeps the second half's carry chains short.
    """
    return saturate(shifted, width + 2 + bits)


def update_apply(w: Value, shifted: Value, width: int, dither=1, bits: int = 1) -> Value:
    """Second half: ``saturate(w - ((shifted + dither) >> bits), width)`` (``bits = 1`` and
    ``dither = 1``: round half up)."""
    return saturate(w - (shifted + dither).shift_right(bits), width)


def shift_saturate(value: Value, shift: Value, width: int) -> Value:
    """``saturate(value >> shift, width)`` for a signed ``value`` and an unsigned run-time
    ``shift``, without shifting the bits that saturation discards.

    ``value >> shift`` fits ``width`` bits when ``value``'s bits from ``shift + width - 1`` up
    all equal its sign: a suffix test of ``value`` selected by ``shift``.  Only ``width``
    bits go through the shifter, instead of all of ``value``'s.
    """
    value = Value.cast(value).as_signed()
    n = len(value)
    sign = value[n - 1]
    # differs[j]: some bit of value from j up differs from the sign (built as a chain).
    differs = [Const(0, 1)] * (n + 1)
    for j in range(n - 2, -1, -1):
        differs[j] = differs[j + 1] | (value[j] ^ sign)
    max_shift = (1 << len(shift)) - 1
    fits = Array(~differs[min(s + width - 1, n - 1)] for s in range(max_shift + 1))[shift]
    low = (value >> shift)[:width].as_signed()
    hi = Const((1 << (width - 1)) - 1, signed(width))
    lo = Const(-(1 << (width - 1)), signed(width))
    return Mux(fits, low, Mux(sign, lo, hi))


def times_constant(value: Value, constant: int) -> Value:
    """``value * constant`` as a sum of shifted copies of ``value``, one per set bit: a
    multiplier by a constant that synthesis does not put on a DSP block (on the ECP5 the
    block's delay made a sample address the longest path)."""
    if constant < 0:
        raise ValueError(f"constant must be non-negative, not {constant!r}")
    terms = [value.shift_left(bit) for bit in range(constant.bit_length()) if constant >> bit & 1]
    return pairwise_sum(terms)[0] if terms else Const(0, 1)


def less_than(value: Value, bound: int) -> Value:
    """``value < bound`` for an unsigned ``value`` and a constant ``bound``, as bit tests.

    A comparator maps to a carry chain, one logic cell per bit whatever the constant;
    here the bits above the constant's are tested for zero (LUT logic) and only the
    constant's own bits are compared.
    """
    value = Value.cast(value)
    if value.shape().signed:
        raise TypeError(f"value must be unsigned, not {value.shape()!r}")
    if bound <= 0:
        return Const(0, 1)
    bits = (bound - 1).bit_length()
    if bits >= len(value):
        return Const(1, 1) if bound >= 1 << len(value) else value < bound
    high_zero = ~value[bits:].any()
    return high_zero if bound == 1 << bits else high_zero & (value[:bits] < bound)


def positive(value: Value) -> Value:
    """``value > 0`` for a signed ``value``: sign clear and some bit set (no carry chain)."""
    value = Value.cast(value)
    return ~value[-1] & value.any()
