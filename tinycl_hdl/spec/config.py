"""The one configuration object of TinyCL-HDL.

:class:`TinyCLConfig` is the single source for the RTL generator, the golden
model, the float reference, the register map and the documentation.  It is a
frozen dataclass; every instance is validated on construction, so an invalid
configuration fails before any work is done, with a message naming the field
and the rule it breaks.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields

__all__ = ["ConfigError", "TinyCLConfig", "UPDATE_ROUNDINGS"]


class ConfigError(ValueError):
    """An invalid configuration.  The message names the offending field."""


_INT_FIELDS = (
    "in_h", "in_w", "in_c", "kernel", "filters", "classes", "slots",
    "data_width", "frac_bits", "acc_width", "n_pu", "pixel_offset", "lr_shift", "epochs", "seed",
)
_WINDOW_ORDERS = ("snake", "raster")
_DATAPATHS = ("array", "serial")
#: How a weight update rounds (:mod:`tinycl_hdl.spec.update`).
UPDATE_ROUNDINGS = ("nearest", "stochastic")
#: Seeds are 31 bits: the LFSR state is ``(seed << 1) | 1``, never zero.
SEED_LIMIT = 1 << 31


@dataclass(frozen=True)
class TinyCLConfig:
    """Parameters of one TinyCL accelerator and of its workload.

    Parameters
    ----------
    in_h, in_w, in_c : int
        Input height, width and channels (8-bit unsigned pixels).
    kernel : int
        Side of the square convolution kernel (stride 1, valid padding).
    filters : int
        Number of convolution filters.
    classes : int
        Number of output classes of the dense layer.
    slots : int
        Capacity of the GDumb sample memory.
    data_width, frac_bits : int
        Signed fixed-point format of activations, weights and gradients.
    pixel_offset : int
        The pixel value that enters as 0.0: an 8-bit pixel ``p`` is the input
        ``(p - pixel_offset) * 2**-8``.  128 centres the inputs on zero, which keeps a
        filter's weights from all moving one way in a step (they then die as ReLUs).
    acc_width : int
        Width of the MAC accumulators; must hold the longest dot product.
    n_pu : int
        Number of processing units (filters computed at once).
    window : str
        Sliding-window order, ``"snake"`` or ``"raster"``.
    datapath : str
        ``"array"``: ``n_pu`` processing units of ``kernel**2`` MAC lanes (docs/architecture.md, "Processing unit").
        ``"serial"``: one MAC lane that takes the same operations one product per cycle,
        for devices too small for the array (the iCE40 UP5K); same results, more cycles.
    update_rounding : str
        How a weight update rounds (:mod:`tinycl_hdl.spec.update`): ``"stochastic"``, with a
        dither from the on-chip LFSR, keeps the updates smaller than half a weight LSB on
        average; ``"nearest"`` (round half up) loses them.
    lr_shift : int
        Learning rate is ``2**-lr_shift``.
    epochs : int
        Passes over the GDumb memory per ``TRAIN``.
    seed : int
        Seed of the on-chip LFSR, ``0 <= seed < 2**31``.
    """

    in_h: int = 8
    in_w: int = 8
    in_c: int = 1
    kernel: int = 3
    filters: int = 8
    classes: int = 10
    slots: int = 500
    data_width: int = 16
    frac_bits: int = 10
    acc_width: int = 48
    n_pu: int = 1
    pixel_offset: int = 128
    window: str = "snake"
    datapath: str = "array"
    update_rounding: str = "stochastic"
    lr_shift: int = 4
    epochs: int = 10
    seed: int = 1

    def __post_init__(self):
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer, not {value!r}")
        for name in ("in_h", "in_w", "in_c", "kernel", "filters", "n_pu", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if self.kernel > self.in_h or self.kernel > self.in_w:
            raise ConfigError(
                f"kernel ({self.kernel}) is larger than the input ({self.in_h} x {self.in_w}): "
                f"a valid convolution needs kernel <= in_h and kernel <= in_w")
        if self.classes < 2:
            raise ConfigError(f"classes must be at least 2, not {self.classes!r}")
        if self.classes > 256:
            raise ConfigError(f"classes must be at most 256 (8-bit labels), not {self.classes!r}")
        if self.slots < self.classes:
            raise ConfigError(
                f"slots ({self.slots}) must be at least classes ({self.classes}): "
                f"GDumb keeps at least one sample of every class")
        if self.slots > 65536:
            raise ConfigError(f"slots must be at most 65536, not {self.slots!r}")
        if not 4 <= self.data_width <= 31:
            raise ConfigError(f"data_width must be between 4 and 31, not {self.data_width!r}")
        if not 1 <= self.frac_bits < self.data_width:
            raise ConfigError(
                f"frac_bits ({self.frac_bits}) must be at least 1 and less than "
                f"data_width ({self.data_width})")
        if self.acc_width > 64:
            raise ConfigError(f"acc_width must be at most 64, not {self.acc_width!r}")
        if self.acc_width < self.required_acc_width:
            raise ConfigError(
                f"acc_width ({self.acc_width}) is too narrow: the longest dot product "
                f"({self.longest_dot_product} terms of {2 * self.data_width}-bit products) "
                f"needs {self.required_acc_width} bits")
        if self.filters % self.n_pu:
            raise ConfigError(f"n_pu ({self.n_pu}) must divide filters ({self.filters}): each processing "
                              f"unit owns the same number of filters")
        if self.in_c > 4:
            raise ConfigError(f"in_c must be at most 4, not {self.in_c!r}: the host port packs the "
                              f"channels of one pixel into one 32-bit word")
        if self.window not in _WINDOW_ORDERS:
            raise ConfigError(f"window must be one of {', '.join(_WINDOW_ORDERS)}, not {self.window!r}")
        if self.datapath not in _DATAPATHS:
            raise ConfigError(f"datapath must be one of {', '.join(_DATAPATHS)}, not {self.datapath!r}")
        if self.update_rounding not in UPDATE_ROUNDINGS:
            raise ConfigError(f"update_rounding must be one of {', '.join(UPDATE_ROUNDINGS)}, "
                              f"not {self.update_rounding!r}")
        if self.datapath == "serial" and self.n_pu != 1:
            raise ConfigError(f"n_pu must be 1 with datapath 'serial' (one MAC lane), not {self.n_pu!r}")
        if self.datapath == "serial" and self.frac_bits > self.data_width - 2:
            raise ConfigError(
                f"frac_bits ({self.frac_bits}) must be at most data_width - 2 ({self.data_width - 2}) with "
                f"datapath 'serial': biases enter its multiplier as products with 1.0, a data word")
        if not 0 <= self.pixel_offset <= 255:
            raise ConfigError(f"pixel_offset must be between 0 and 255 (a pixel value), not {self.pixel_offset!r}")
        if not 0 <= self.lr_shift <= self.data_width:
            raise ConfigError(
                f"lr_shift must be between 0 and data_width ({self.data_width}), not {self.lr_shift!r}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"seed must satisfy 0 <= seed < 2**31, not {self.seed!r}")

    # -- derived sizes -------------------------------------------------------------------

    @property
    def out_h(self) -> int:
        """Height of the convolution output (``in_h - kernel + 1``)."""
        return self.in_h - self.kernel + 1

    @property
    def out_w(self) -> int:
        """Width of the convolution output (``in_w - kernel + 1``)."""
        return self.in_w - self.kernel + 1

    @property
    def conv_fan_in(self) -> int:
        """Terms of one convolution dot product (``in_c * kernel**2``)."""
        return self.in_c * self.kernel * self.kernel

    @property
    def dense_in(self) -> int:
        """Inputs of the dense layer (``filters * out_h * out_w``)."""
        return self.filters * self.out_h * self.out_w

    @property
    def lanes(self) -> int:
        """MAC lanes in all processing units (``kernel**2 * n_pu``; one with the serial datapath)."""
        return 1 if self.datapath == "serial" else self.kernel * self.kernel * self.n_pu

    @property
    def longest_dot_product(self) -> int:
        """Most terms any accumulator sums, counting a bias as one term."""
        return 1 + max(
            self.conv_fan_in,                 # conv forward
            self.dense_in,                    # dense forward
            self.classes,                     # dense input gradient
            self.out_h * self.out_w,          # conv weight and bias gradients
        )

    @property
    def required_acc_width(self) -> int:
        """Accumulator bits that no sum of ``longest_dot_product`` products can overflow."""
        return 2 * self.data_width + math.ceil(math.log2(self.longest_dot_product))

    @property
    def longest_lane_sum(self) -> int:
        """Most products a MAC lane accumulates in ``OUTER`` mode: the dense input gradient
        sums one per class, the conv weight gradient one per output position."""
        return max(self.classes, self.out_h * self.out_w)

    @property
    def lane_acc_width(self) -> int:
        """Bits of a lane accumulator: the fewest that hold every sum of ``longest_lane_sum``
        products exactly.

        The largest product is ``(-2**(dw-1))**2 = 2**(2*dw-2)``; ``n`` of them need
        ``2*dw - 1 + floor(log2 n)`` magnitude bits and a sign bit.  The lanes never sum as
        many terms as the dot accumulator (``acc_width``), so they are narrower: the same
        exact sums in fewer flip-flops and shorter carry chains.
        """
        return min(self.acc_width, 2 * self.data_width + self.longest_lane_sum.bit_length() - 1)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, base: "TinyCLConfig | None" = None) -> "TinyCLConfig":
        """Build a configuration from ``data``, starting from ``base`` (default values)."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(f"unknown configuration key {key!r}; known keys: {', '.join(sorted(known))}")
        return dataclasses.replace(base or cls(), **data)

    @classmethod
    def from_json(cls, text: str) -> "TinyCLConfig":
        return cls.from_dict(json.loads(text))

    def with_overrides(self, assignments) -> "TinyCLConfig":
        """Apply ``key=value`` strings (as given to ``--set``)."""
        types = {f.name: f.type for f in fields(self)}
        changes = {}
        for assignment in assignments:
            key, sep, value = assignment.partition("=")
            key = key.strip()
            if not sep:
                raise ConfigError(f"override {assignment!r} must have the form key=value")
            if key not in types:
                raise ConfigError(f"unknown configuration key {key!r}; known keys: {', '.join(sorted(types))}")
            if key in _INT_FIELDS:
                try:
                    changes[key] = int(value, 0)
                except ValueError:
                    raise ConfigError(f"{key} must be an integer, not {value!r}") from None
            else:
                changes[key] = value.strip()
        return dataclasses.replace(self, **changes)
