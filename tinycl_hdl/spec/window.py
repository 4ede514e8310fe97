"""The order in which the sliding window visits the output positions, and what it reads.

Output positions are visited row 0 left to right, row 1 right to left, and so on
(``window="snake"``), or every row left to right (``"raster"``).  The RTL's
:class:`~tinycl_hdl.rtl.window.SnakeWindow` and the performance model both count
pixel reads with these functions.
"""

from .config import TinyCLConfig

__all__ = ["snake_reads", "raster_reads", "visit_order"]


def snake_reads(cfg: TinyCLConfig) -> int:
    """Pixel reads of one channel sweep in snake order."""
    k = cfg.kernel
    return k * k + k * (cfg.out_h * cfg.out_w - 1)


def raster_reads(cfg: TinyCLConfig) -> int:
    """Pixel reads of one channel sweep in raster order with horizontal reuse."""
    k = cfg.kernel
    return cfg.out_h * (k * k + k * (cfg.out_w - 1))


def visit_order(cfg: TinyCLConfig):
    """Output positions ``(y, x)`` in the configured order."""
    for y in range(cfg.out_h):
        xs = range(cfg.out_w)
        if cfg.window == "snake" and y % 2:
            xs = reversed(xs)
        for x in xs:
            yield y, x
