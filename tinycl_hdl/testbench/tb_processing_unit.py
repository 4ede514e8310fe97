"""cocotb tests of ProcessingUnit against the golden model's stage functions.

Each golden test plays the control unit's part: it turns one network stage
into the operand sets the accelerator feeds the unit (one per cycle, back to
back), checks every output against the transaction model, then checks the
collected results against the golden stage function.
"""

import random

import cocotb
import numpy as np

from pu_model import Operation, ProcessingUnitModel
from tbutil import ClockedTB, config_from_env, pack, params_from_env, unpack
from tinycl_hdl.model import golden
from tinycl_hdl.spec.fixedpoint import FixedFormat
from tinycl_hdl.spec.update import CONV, DENSE, DITHER_BITS, dither
from tinycl_hdl.rtl.mac import GradSource, Mode

#: The step seed of the golden tests' stochastic updates.
STEP_SEED = 0x96


class ProcessingUnitTB(ClockedTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config_from_env()
        self.params = params_from_env()
        self.latency = self.params["latency"]
        self.lanes = self.cfg.kernel ** 2
        self.fmt = FixedFormat.of(self.cfg)
        self.lr_shift = self.cfg.lr_shift
        self.model = ProcessingUnitModel(self.cfg)
        self.idle()
        dut.lr_shift.value = self.lr_shift

    def idle(self):
        self.dut.valid.value = 0

    def drive(self, op: Operation):
        dut, dw = self.dut, self.cfg.data_width
        dut.valid.value = 1
        dut.mode.value = int(op.mode)
        dut.first.value = int(op.first)
        dut.bias.value = int(op.bias)
        dut.source.value = int(op.source)
        dut.a.value = pack(op.a, dw)
        dut.b.value = pack(op.b, dw)
        dut.w.value = pack(op.w if op.w is not None else [0] * self.lanes, dw)
        dut.w_bias.value = op.w_bias & ((1 << dw) - 1)
        dut.init_bias.value = op.init_bias & ((1 << dw) - 1)
        dut.tag.value = op.tag
        dut.dither.value = op.dither

    def outputs(self) -> dict:
        dut, dw = self.dut, self.cfg.data_width
        return {
            "valid": int(dut.out_valid.value),
            "tag": int(dut.out_tag.value),
            "mode": int(dut.out_mode.value),
            "dot": dut.dot.value.to_signed(),
            "dot_narrow": dut.dot_narrow.value.to_signed(),
            "lane_narrow": unpack(int(dut.lane_narrow.value), dw, self.lanes),
            "upd": unpack(int(dut.upd.value), dw, self.lanes),
            "upd_bias": dut.upd_bias.value.to_signed(),
        }

    def expected(self) -> dict:
        m = self.model
        return {"dot": m.dot, "dot_narrow": m.dot_narrow, "lane_narrow": m.lane_narrow,
                "upd": m.upd, "upd_bias": m.upd_bias}

    async def run(self, ops):
        """Issue ``ops`` back to back (``None`` is an idle cycle); check every result.

        Returns the outputs seen for each operation, in issue order.
        """
        results = []
        pending = list(ops) + [None] * self.latency
        issued = []
        for cycle, op in enumerate(pending):
            if cycle >= self.latency:
                done = issued[cycle - self.latency]
                out = self.outputs()
                if done is None:
                    assert out["valid"] == 0, f"cycle {cycle}: out_valid without an operation"
                else:
                    self.model.apply(done)
                    assert out["valid"] == 1, f"cycle {cycle}: out_valid low for {done.mode.name}"
                    assert out["tag"] == done.tag and out["mode"] == int(done.mode)
                    want = self.expected()
                    for key, value in want.items():
                        assert out[key] == value, f"{done.mode.name} tag {done.tag}: {key} {out[key]} != {value}"
                    results.append(out)
            if op is None:
                self.idle()
            else:
                self.drive(op)
            issued.append(op)
            await self.tick()
        self.idle()
        return results


def lanes_of(array, lanes):
    flat = list(np.asarray(array).reshape(-1))
    return flat + [0] * (lanes - len(flat))


async def start(dut):
    tb = ProcessingUnitTB(dut)
    await tb.reset()
    return tb


@cocotb.test()
async def random_modes_against_model(dut):
    """Random mode sequences, flags and operands (a third of them at the limits)."""
    tb = await start(dut)
    rng = random.Random(tb.params.get("seed", 1))
    f = tb.fmt
    extremes = [f.min, f.min + 1, -1, 0, 1, f.max]

    def operand():
        return rng.choice(extremes) if rng.random() < 0.35 else rng.randint(f.min, f.max)

    ops = []
    run = 0       # products in the current OUTER run: a run restarts before the lanes' limit
    for tag in range(600):
        mode = rng.choice([Mode.DOT, Mode.DOT, Mode.OUTER, Mode.OUTER, Mode.UPDATE, Mode.CLEAR])
        first = rng.random() < 0.3
        if mode == Mode.OUTER:
            first = first or run == tb.cfg.longest_lane_sum
            run = 1 if first else run + 1
        elif mode == Mode.CLEAR:
            run = 0
        ops.append(Operation(
            mode=mode, a=[operand() for _ in range(tb.lanes)], b=[operand() for _ in range(tb.lanes)],
            w=[operand() for _ in range(tb.lanes)], w_bias=operand(),
            init_bias=operand(), first=first, bias=rng.random() < 0.5,
            source=rng.choice(list(GradSource)), tag=tag & 0xFF, dither=rng.randrange(1 << DITHER_BITS)))
        if rng.random() < 0.05:
            ops.append(None)
    await tb.run(ops)


@cocotb.test()
async def lane_sums_at_their_limit(dut):
    """OUTER runs of ``longest_lane_sum`` products at the extremes of the format: the
    largest positive and the most negative sums the lanes must hold, each read narrowed
    and as an UPDATE gradient.  ``lane_acc_width`` is the least that holds them: one bit
    fewer wraps the first run and fails."""
    tb = await start(dut)
    f, n, lanes = tb.fmt, tb.cfg.longest_lane_sum, tb.lanes
    small = [f.min + 1, f.min + 2, -1, 0, 1, f.max - 1]

    update = Operation(mode=Mode.UPDATE, source=GradSource.ACC, a=[0] * lanes, b=[0] * lanes,
                       w=[small[i % len(small)] for i in range(lanes)])
    for a, b in ((f.min, f.min), (f.min, f.max), (f.max, f.max)):
        outer_run = [Operation(mode=Mode.OUTER, a=[a] * lanes, b=[b] * lanes, first=(i == 0)) for i in range(n)]
        await tb.run(outer_run + [update])


@cocotb.test()
async def back_to_back_throughput(dut):
    """One full operand set per cycle in every mode: N sets give N results in N cycles."""
    tb = await start(dut)
    rng = random.Random(2)
    f = tb.fmt
    n = 64
    for mode in (Mode.DOT, Mode.OUTER, Mode.UPDATE, Mode.CLEAR):
        ops = [Operation(mode=mode, a=[rng.randint(f.min, f.max) for _ in range(tb.lanes)],
                         b=[rng.randint(f.min, f.max) for _ in range(tb.lanes)],
                         w=[rng.randint(f.min, f.max) for _ in range(tb.lanes)], tag=i & 0xFF,
                         first=(i % tb.cfg.longest_lane_sum == 0))
               for i in range(n)]
        start_cycle = tb.cycle
        results = await tb.run(ops)
        cycles = tb.cycle - start_cycle - tb.latency
        assert len(results) == n and cycles == n
        dut._log.info("%s: %d operand sets in %d cycles (%.2f per cycle, %d lanes busy)",
                      mode.name, n, cycles, n / cycles, tb.lanes)


def random_weights(tb, rng, scale):
    shapes = golden.Weights.zeros(tb.cfg).arrays()
    return golden.Weights(**{name: rng.integers(-scale, scale + 1, a.shape) for name, a in shapes.items()})


@cocotb.test()
async def conv_forward_matches_golden(dut):
    """DOT over each window and channel slice; bias as the accumulator's start value."""
    tb = await start(dut)
    cfg, f = tb.cfg, tb.fmt
    rng = np.random.default_rng(3)
    w = random_weights(tb, rng, f.one)
    w.conv_w.reshape(-1)[:4] = [f.max, f.min, f.max, f.min]     # saturation limits
    x = golden.input_from_pixels(cfg, rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c)))
    patches = golden.conv_patches(cfg, x)
    ops, where = [], []
    for filt in range(cfg.filters):
        for y in range(cfg.out_h):
            for xx in range(cfg.out_w):
                for c in range(cfg.in_c):
                    ops.append(Operation(Mode.DOT, a=lanes_of(patches[y, xx, c], tb.lanes),
                                         b=lanes_of(w.conv_w[filt, c], tb.lanes), first=(c == 0),
                                         init_bias=int(w.conv_b[filt]), tag=len(ops) & 0xFF))
                    where.append((filt, y, xx) if c == cfg.in_c - 1 else None)
    results = await tb.run(ops)
    z = np.zeros((cfg.filters, cfg.out_h, cfg.out_w), dtype=np.int64)
    for out, pos in zip(results, where):
        if pos is not None:
            z[pos] = out["dot_narrow"]
    assert np.array_equal(z, golden.conv_forward(cfg, x, w.conv_w, w.conv_b))


@cocotb.test()
async def dense_forward_matches_golden(dut):
    tb = await start(dut)
    cfg, f = tb.cfg, tb.fmt
    rng = np.random.default_rng(4)
    w = random_weights(tb, rng, f.one)
    a = rng.integers(0, 4 * f.one, (cfg.filters, cfg.out_h, cfg.out_w))
    flat_a, flat_w = a.reshape(-1), w.dense_w.reshape(cfg.classes, -1)
    chunks = range(0, flat_a.size, tb.lanes)
    ops, last = [], []
    for o in range(cfg.classes):
        for i, k in enumerate(chunks):
            ops.append(Operation(Mode.DOT, a=lanes_of(flat_a[k:k + tb.lanes], tb.lanes),
                                 b=lanes_of(flat_w[o, k:k + tb.lanes], tb.lanes), first=(i == 0),
                                 init_bias=int(w.dense_b[o]), tag=o))
            last.append(i == len(chunks) - 1)
    results = await tb.run(ops)
    logits = [out["dot_narrow"] for out, is_last in zip(results, last) if is_last]
    assert logits == golden.dense_forward(cfg, a, w.dense_w, w.dense_b).tolist()


@cocotb.test()
async def dense_backward_matches_golden(dut):
    """Per chunk and class: OUTER (old weight x delta) then UPDATE (delta x activation)
    on the same weight read; the bias from ``delta * 1.0`` on the first chunk.  A chunk is a
    word of ``kernel**2`` positions of one filter's plane, as the lane array stores them, and
    an UPDATE's dither word names its class, filter and word."""
    tb = await start(dut)
    cfg, f = tb.cfg, tb.fmt
    rng = np.random.default_rng(5)
    w = random_weights(tb, rng, f.one)
    a = np.maximum(rng.integers(-f.one, 4 * f.one, (cfg.filters, cfg.out_h, cfg.out_w)), 0)
    delta = rng.integers(-f.one, f.one + 1, cfg.classes)
    positions = cfg.out_h * cfg.out_w
    flat_a, flat_w = a.reshape(cfg.filters, -1), w.dense_w.reshape(cfg.classes, cfg.filters, -1)
    ops, meaning = [], []
    L = tb.lanes
    for filt in range(cfg.filters):
        for word, k in enumerate(range(0, positions, L)):
            for o in range(cfg.classes):
                d = int(delta[o])
                wchunk = lanes_of(flat_w[o, filt, k:k + L], L)
                ops.append(Operation(Mode.OUTER, a=wchunk, b=[d] * L, first=(o == 0), tag=o))
                meaning.append(("grad", filt, k) if o == cfg.classes - 1 else None)
                ops.append(Operation(Mode.UPDATE, a=lanes_of(flat_a[filt, k:k + L], L), b=[d] * L, w=wchunk,
                                     w_bias=int(w.dense_b[o]), source=GradSource.PRODUCT, tag=o,
                                     dither=int(dither(cfg, STEP_SEED, DENSE, o, filt, word, 0))))
                meaning.append(("update", filt, k, o, filt == 0 and word == 0))
    results = await tb.run(ops)
    grad_a = np.zeros_like(flat_a)
    new_w = np.zeros_like(flat_w)
    new_b = np.zeros(cfg.classes, dtype=np.int64)
    for out, what in zip(results, meaning):
        if what is None:
            continue
        if what[0] == "grad":
            _, filt, k = what
            grad_a[filt, k:k + L] = out["lane_narrow"][:positions - k]
        else:
            _, filt, k, o, first_chunk = what
            new_w[o, filt, k:k + L] = out["upd"][:positions - k]
            if first_chunk:
                new_b[o] = out["upd_bias"]
    want_grad, want_w, want_b = golden.dense_backward(cfg, a, delta, w.dense_w, w.dense_b, STEP_SEED)
    assert np.array_equal(grad_a, want_grad.reshape(cfg.filters, -1))
    assert np.array_equal(new_w, want_w.reshape(cfg.classes, cfg.filters, -1))
    assert np.array_equal(new_b, want_b)


@cocotb.test()
async def conv_backward_matches_golden(dut):
    """Per filter and channel: OUTER over every window with the broadcast gradient
    (bias gradient alongside on channel 0), then UPDATE from the accumulators."""
    tb = await start(dut)
    cfg, f = tb.cfg, tb.fmt
    rng = np.random.default_rng(6)
    w = random_weights(tb, rng, f.one)
    x = golden.input_from_pixels(cfg, rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c)))
    grad_z = rng.integers(-f.one // 2, f.one // 2, (cfg.filters, cfg.out_h, cfg.out_w))
    grad_z.reshape(-1)[:2] = [f.max, f.min]
    patches = golden.conv_patches(cfg, x)
    ops, meaning = [], []
    L = tb.lanes
    for filt in range(cfg.filters):
        for c in range(cfg.in_c):
            for p, (y, xx) in enumerate(np.ndindex(cfg.out_h, cfg.out_w)):
                ops.append(Operation(Mode.OUTER, a=lanes_of(patches[y, xx, c], L), b=[int(grad_z[filt, y, xx])] * L,
                                     first=(p == 0), bias=(c == 0), tag=filt))
                meaning.append(None)
            ops.append(Operation(Mode.UPDATE, a=[0] * L, b=[0] * L, w=lanes_of(w.conv_w[filt, c], L),
                                 w_bias=int(w.conv_b[filt]), source=GradSource.ACC, tag=filt,
                                 dither=int(dither(cfg, STEP_SEED, CONV, 0, filt, c, 0))))
            meaning.append((filt, c))
    results = await tb.run(ops)
    new_w = np.zeros_like(w.conv_w)
    new_b = np.zeros_like(w.conv_b)
    k2 = cfg.kernel ** 2
    for out, what in zip(results, meaning):
        if what is not None:
            filt, c = what
            new_w[filt, c] = np.array(out["upd"][:k2]).reshape(cfg.kernel, cfg.kernel)
            if c == 0:
                new_b[filt] = out["upd_bias"]
    want_w, want_b = golden.conv_backward(cfg, x, grad_z, w.conv_w, w.conv_b, STEP_SEED)
    assert np.array_equal(new_w, want_w) and np.array_equal(new_b, want_b)
