"""The hardware form of a stochastic update's dither (:mod:`tinycl_hdl.spec.update`).

A weight's dither is the step seed XORed with the image of its coordinates, which is
linear over GF(2): each coordinate bit lands on one dither bit.  So the image of several
fields is the XOR of their images, and :func:`coordinate_image` builds only the fields a
caller has: a processing unit's word from its class, filter and word, each lane's constant
from its lane number.
"""

from amaranth.hdl import Cat, Const, Value

from ..spec.update import DITHER_BITS, Coordinates

__all__ = ["coordinate_image"]

_FIELDS = {"lane": "lane", "word": "word", "f": "filter", "o": "klass"}


def coordinate_image(coords: Coordinates, **fields) -> Value:
    """The ``DITHER_BITS``-bit image of the given coordinate fields (``lane``, ``word``,
    ``f``, ``o``, ``kind``: Amaranth values or integers); fields not given count as zero.

    Only a field's own width of each value is used, as :meth:`Coordinates.pack` does for
    in-range values.
    """
    shifts = coords.shifts
    sources = [[] for _ in range(DITHER_BITS)]
    for name, value in fields.items():
        if name not in shifts:
            raise ValueError(f"field must be one of {', '.join(shifts)}, not {name!r}")
        width = 1 if name == "kind" else getattr(coords, _FIELDS[name])
        value = Value.cast(value)
        for bit in range(min(width, len(value))):
            sources[coords.target_bit(shifts[name] + bit)].append(value[bit])
    bits = []
    for terms in sources:
        bit = Const(0, 1)
        for term in terms:
            bit = bit ^ term
        bits.append(bit)
    return Cat(*bits)
