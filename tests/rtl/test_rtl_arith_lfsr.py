"""RTL arithmetic helpers (tinycl_hdl.rtl.arith) and the LFSR in the Amaranth simulator,
against tinycl_hdl.spec.fixedpoint's and tinycl_hdl.spec.lfsr's definitions."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from tinycl_hdl.spec import lfsr as golden_lfsr
from tinycl_hdl.spec.fixedpoint import saturate
from tinycl_hdl.rtl.arith import less_than, positive, shift_saturate
from tinycl_hdl.rtl.arith import saturate as saturate_rtl
from tinycl_hdl.rtl.lfsr import Lfsr


def test_shift_saturate_is_saturate_of_the_shift():
    """Every shift, values at and around each saturation boundary and random ones, for the
    serial MAC's shape (a 39-bit gradient, a 5-bit shift, 19 bits out)."""
    n, shift_bits, width = 39, 5, 19
    value, shift = Signal(signed(n)), Signal(unsigned(shift_bits))
    out = Signal(signed(width))
    m = Module()
    m.d.comb += out.eq(shift_saturate(value, shift, width))
    rng = np.random.default_rng(5)
    cases = []
    for s in range(1 << shift_bits):
        for edge in (1 << (s + width - 1), -(1 << (s + width - 1))):
            cases += [(edge + d, s) for d in (-(1 << s) - 1, -(1 << s), -1, 0, 1, 1 << s)]
        cases += [((1 << (n - 1)) - 1, s), (-(1 << (n - 1)), s), (0, s), (-1, s)]
        cases += [(int(v), s) for v in rng.integers(-(1 << (n - 1)), 1 << (n - 1), 40)]
        cases += [(int(v), s) for v in rng.integers(-(1 << (s + width + 1)), 1 << (s + width + 1), 40)]
    cases = [(max(-(1 << (n - 1)), min((1 << (n - 1)) - 1, v)), s) for v, s in cases]
    mismatches = []

    async def bench(ctx):
        for v, s in cases:
            ctx.set(value, v)
            ctx.set(shift, s)
            want = int(saturate(v >> s, width))
            if ctx.get(out) != want:
                mismatches.append((v, s, ctx.get(out), want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(cases) > 3000
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("steps", [32, 4, 1])
def test_lfsr_draws_match_the_golden_stream(steps):
    """The RTL LFSR at any steps per cycle gives the golden model's draws, each ready
    ``draw_cycles`` after its ``draw``, with draws back to back and spaced, and a seed load."""
    dut = Lfsr(seed=12345, steps_per_cycle=steps)
    assert dut.draw_cycles == 32 // steps
    golden = golden_lfsr.Lfsr(12345)
    got, want = [], []

    async def bench(ctx):
        for n in range(12):
            assert ctx.get(dut.ready)
            ctx.set(dut.draw, 1)
            await ctx.tick()
            ctx.set(dut.draw, 0)
            waited = 1
            while not ctx.get(dut.ready):
                await ctx.tick()
                waited += 1
            assert waited == dut.draw_cycles
            got.append(ctx.get(dut.state))
            want.append(golden.draw())
            for _ in range(n % 3):          # idle cycles leave the state alone
                await ctx.tick()
                assert ctx.get(dut.state) == got[-1]
            if n == 6:
                ctx.set(dut.load, 1)
                ctx.set(dut.seed_in, 777)
                await ctx.tick()
                ctx.set(dut.load, 0)
                golden.state = golden_lfsr.seed_state(777)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == want


def test_lfsr_rejects_steps_that_do_not_divide_a_draw():
    with pytest.raises(TypeError, match="steps_per_cycle must be a positive integer dividing 32"):
        Lfsr(seed=1, steps_per_cycle=5)


def _comb_values(expr_of, inputs):
    """Evaluate a combinational expression of one signal for every input value."""
    sig = Signal(inputs[0])
    out = Signal(expr_of(sig).shape())
    m = Module()
    m.d.comb += out.eq(expr_of(sig))
    got = []

    async def bench(ctx):
        for v in inputs[1]:
            ctx.set(sig, v)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("width, bound", [(8, 0), (8, 1), (8, 10), (8, 16), (8, 200), (8, 256), (8, 300), (3, 5)])
def test_less_than_a_constant(width, bound):
    values = list(range(1 << width))
    assert _comb_values(lambda v: less_than(v, bound), (unsigned(width), values)) == [int(v < bound) for v in values]


@pytest.mark.parametrize("width", [1, 2, 5])
def test_positive_and_narrow_saturate(width):
    values = list(range(-(1 << (width - 1)), 1 << (width - 1)))
    assert _comb_values(positive, (signed(width), values)) == [int(v > 0) for v in values]
    # A value narrower than the target (or as wide and signed) always fits; an unsigned one as
    # wide as the target saturates at its top.
    for target in (width, width + 2):
        assert _comb_values(lambda v: saturate_rtl(v, target), (signed(width), values)) == values
    unsigned_values = list(range(1 << width))
    assert _comb_values(lambda v: saturate_rtl(v, width), (unsigned(width), unsigned_values)) == \
        [int(saturate(v, width)) for v in unsigned_values]


@pytest.mark.parametrize("offset", [0, 128, 1, 255, 77])
@pytest.mark.parametrize("data_width, frac_bits", [(16, f) for f in range(1, 16)] + [(12, 11), (24, 23), (4, 3)])
def test_pixel_data_is_the_fixed_point_pixel(data_width, frac_bits, offset):
    """``control.pixel_data`` of every 8-bit pixel equals ``FixedFormat.from_pixels`` for every
    ``frac_bits`` (9, 11 and 15 once read a pixel bit as the sign) and pixel offset; with no
    offset it is non-negative."""
    from tinycl_hdl.spec.config import TinyCLConfig
    from tinycl_hdl.spec.fixedpoint import FixedFormat
    from tinycl_hdl.rtl.datapath import pixel_data

    cfg = TinyCLConfig(data_width=data_width, frac_bits=frac_bits, acc_width=64, pixel_offset=offset)
    pixel, out = Signal(8), Signal(signed(data_width))
    m = Module()
    m.d.comb += out.eq(pixel_data(cfg, pixel))
    want = FixedFormat(data_width, frac_bits).from_pixels(np.arange(256), offset)
    # Derived by hand: (p - offset) / 256 rounded half up to frac_bits, saturated.
    lsb = 2.0 ** -frac_bits
    by_hand = np.clip(np.floor((np.arange(256) - offset) / 256 / lsb + 0.5), -(1 << (data_width - 1)),
                      (1 << (data_width - 1)) - 1)
    assert want.tolist() == by_hand.astype(int).tolist()
    got = []

    async def bench(ctx):
        for p in range(256):
            ctx.set(pixel, p)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == want.tolist()
    assert min(got) >= 0 or offset


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_the_coordinate_image_is_the_specs(name):
    """``rtl.dither.coordinate_image`` of random coordinates equals the spec's dither with a
    zero seed, field by field and all together."""
    from tinycl_hdl.spec.catalogue import PRESETS
    from tinycl_hdl.spec.update import DITHER_BITS, Coordinates, dither
    from tinycl_hdl.rtl.dither import coordinate_image

    cfg = PRESETS[name]
    coords = Coordinates.of(cfg)
    fields = {"kind": Signal(1), "o": Signal(coords.klass), "f": Signal(coords.filter), "word": Signal(coords.word),
              "lane": Signal(coords.lane)}
    out, lane_only = Signal(DITHER_BITS), Signal(DITHER_BITS)
    m = Module()
    m.d.comb += [out.eq(coordinate_image(coords, **fields)), lane_only.eq(coordinate_image(coords, lane=fields["lane"]))]
    rng = np.random.default_rng(9)
    mismatches = []

    async def bench(ctx):
        for _ in range(300):
            values = {k: int(rng.integers(1 << len(s))) for k, s in fields.items()}
            for key, sig in fields.items():
                ctx.set(sig, values[key])
            want = int(dither(cfg, 0, values["kind"], values["o"], values["f"], values["word"], values["lane"]))
            if ctx.get(out) != want or ctx.get(lane_only) != int(dither(cfg, 0, 0, 0, 0, 0, values["lane"])):
                mismatches.append(values)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:3]
