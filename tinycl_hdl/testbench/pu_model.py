"""Transaction-level model of the processing unit, built on the golden arithmetic.

Each call to :meth:`ProcessingUnitModel.apply` performs one operand set's
effect using :mod:`tinycl_hdl.spec.fixedpoint` (the one definition of rounding and
saturation); the testbench compares the RTL's outputs ``latency`` cycles after
issue with the model's state after the same operand set.
"""

from dataclasses import dataclass, field

from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.spec.fixedpoint import FixedFormat
from tinycl_hdl.spec.update import dither as coordinate_dither
from tinycl_hdl.rtl.mac import GradSource, Mode


@dataclass
class Operation:
    mode: Mode
    a: list
    b: list
    w: list = None
    w_bias: int = 0
    init_bias: int = 0      # DOT with first starts from init_bias * 1.0
    first: bool = False
    bias: bool = False
    source: GradSource = GradSource.PRODUCT
    tag: int = 0
    dither: int = 0         # UPDATE with stochastic rounding: the unit's dither word


@dataclass
class ProcessingUnitModel:
    cfg: TinyCLConfig
    run: int = 0
    acc: list = field(default=None)
    dot: int = 0
    upd: list = field(default=None)
    upd_bias: int = 0

    def __post_init__(self):
        self.lanes = self.cfg.kernel ** 2
        self.fmt = FixedFormat.of(self.cfg)
        self.lr_shift = self.cfg.lr_shift
        #: OUTER runs sum at most this many products per lane (the unit's lane accumulators are
        #: sized for it); a longer run is a testbench error, not a hardware one
        self.longest_lane_sum = self.cfg.longest_lane_sum
        self.acc = [0] * self.lanes
        self.upd = [0] * self.lanes

    def lane_dither(self, op: Operation, lane: int):
        """Lane ``lane``'s dither (the bias update's is lane ``kernel**2``'s), or ``None`` when
        the update rounds to nearest."""
        if self.cfg.update_rounding == "nearest":
            return None
        return int(coordinate_dither(self.cfg, op.dither, 0, 0, 0, 0, lane))

    def apply(self, op: Operation):
        f = self.fmt
        products = [int(a) * int(b) for a, b in zip(op.a, op.b)]
        if op.mode == Mode.CLEAR:
            self.acc = [0] * self.lanes
            self.run = 0
            self.dot = 0
        elif op.mode == Mode.DOT:
            self.dot = (f.bias_term(op.init_bias) if op.first else self.dot) + sum(products)
        elif op.mode == Mode.OUTER:
            self.acc = [p if op.first else acc + p for acc, p in zip(self.acc, products)]
            self.run = 1 if op.first else self.run + 1
            assert self.longest_lane_sum is None or self.run <= self.longest_lane_sum, \
                f"an OUTER run of {self.run} products, more than the lanes are built for"
            if op.bias:
                self.dot = (0 if op.first else self.dot) + f.bias_term(int(op.b[0]))
        elif op.mode == Mode.UPDATE:
            grads = self.acc if op.source == GradSource.ACC else products
            self.upd = [int(f.update(int(w), g, self.lr_shift, self.lane_dither(op, i)))
                        for i, (w, g) in enumerate(zip(op.w, grads))]
            bias_grad = self.dot if op.source == GradSource.ACC else f.bias_term(int(op.b[0]))
            self.upd_bias = int(f.update(int(op.w_bias), bias_grad, self.lr_shift, self.lane_dither(op, self.lanes)))

    @property
    def dot_narrow(self) -> int:
        return int(self.fmt.narrow(self.dot))

    @property
    def lane_narrow(self) -> list:
        return [int(self.fmt.narrow(a)) for a in self.acc]
