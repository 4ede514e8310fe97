"""cocotb tests of LossGradient against tinycl_hdl.spec.softmax.loss_gradient (the golden definition)."""

import cocotb
import numpy as np

from tbutil import ClockedTB, config_from_env, pack, params_from_env, unpack
from tinycl_hdl.rtl.loss import LossGradient
from tinycl_hdl.spec.softmax import loss_gradient


async def read_words(tb, delta):
    """Every class's gradient (``delta``) or logit, through the read port, one per cycle."""
    dut, cfg = tb.dut, tb.cfg
    words = []
    # Inputs change at a falling edge: a read issued before tick k shows after tick k + latency - 1.
    for c in range(cfg.classes + tb.read_latency - 1):
        dut.rd_en.value = int(c < cfg.classes)
        dut.rd_delta.value = int(delta)
        dut.rd_index.value = min(c, cfg.classes - 1)
        await tb.tick()
        if c >= tb.read_latency - 1:
            words.append(unpack(int(dut.rd_data.value), cfg.data_width, 1)[0])
    dut.rd_en.value = 0
    return words


async def compute(tb, logits, label):
    """Write the logits, run the unit, read the gradient; also checks the logits read back."""
    dut, cfg = tb.dut, tb.cfg
    for c, z in enumerate(logits):
        dut.z_en.value, dut.z_index.value, dut.z_data.value = 1, c, pack([z], cfg.data_width)
        await tb.tick()
    dut.z_en.value = 0
    dut.label.value = label
    dut.start.value = 1
    await tb.tick()
    dut.start.value = 0
    start = tb.cycle
    while not int(dut.done.value):
        await tb.tick()
        assert tb.cycle - start < 100 * cfg.classes * cfg.data_width
    cycles = tb.cycle - start
    await tb.tick()
    assert await read_words(tb, False) == [int(z) for z in logits], "logits changed by the unit"
    return await read_words(tb, True), cycles


@cocotb.test()
async def random_and_extreme_logits(dut):
    tb = ClockedTB(dut)
    tb.cfg = cfg = config_from_env()
    tb.read_latency = LossGradient.read_latency
    for name in ("start", "cancel", "z_en", "rd_en", "rd_delta"):
        getattr(dut, name).value = 0
    await tb.reset()
    rng = np.random.default_rng(8)
    lo, hi = -(1 << (cfg.data_width - 1)), (1 << (cfg.data_width - 1)) - 1
    cases = [np.zeros(cfg.classes, dtype=np.int64), np.full(cfg.classes, hi), np.full(cfg.classes, lo)]
    spread = np.array([lo, hi] * cfg.classes)[:cfg.classes]
    cases.append(spread)
    for scale in (1 << cfg.frac_bits, 8 << cfg.frac_bits, hi):
        for _ in range(8):
            cases.append(np.clip(rng.integers(-scale, scale + 1, cfg.classes), lo, hi))
    # Logits a few LSBs below the maximum: the fraction r of d*log2(e) lies just below
    # 2**frac, where the two rounded table entries can multiply to 2.0 or more.
    for d in range(1, 48):
        cases.append(np.array([0] + [-d] * (cfg.classes - 1)))
    want_cycles = params_from_env()["cycles"]
    for n, logits in enumerate(cases):
        label = n % cfg.classes
        got, cycles = await compute(tb, logits.tolist(), label)
        want = loss_gradient(logits, label, cfg.data_width, cfg.frac_bits).tolist()
        assert got == want, f"logits {logits.tolist()} label {label}: {got} != {want}"
        # The unit's documented duration (LossGradient.cycles), the same for every input.
        assert cycles == want_cycles, f"done after {cycles} cycles, not {want_cycles}"
    dut._log.info("loss gradient of %d classes in %d cycles", cfg.classes, cycles)


@cocotb.test()
async def gradient_read_from_delta_ready(dut):
    """Reading ``delta[i]`` ``i + 1`` cycles after ``delta_ready`` (as the dense backward pass
    starts on it) gives the golden model's gradient, on both dividers."""
    tb = ClockedTB(dut)
    tb.cfg = cfg = config_from_env()
    for name in ("start", "cancel", "z_en", "rd_en", "rd_delta"):
        getattr(dut, name).value = 0
    await tb.reset()
    rng = np.random.default_rng(11)
    lo, hi = -(1 << (cfg.data_width - 1)), (1 << (cfg.data_width - 1)) - 1
    for n in range(12):
        logits = np.clip(rng.integers(-8 << cfg.frac_bits, 8 << cfg.frac_bits, cfg.classes), lo, hi)
        label = int(rng.integers(cfg.classes))
        for c, z in enumerate(logits.tolist()):
            dut.z_en.value, dut.z_index.value, dut.z_data.value = 1, c, pack([z], cfg.data_width)
            await tb.tick()
        dut.z_en.value, dut.label.value, dut.start.value = 0, label, 1
        await tb.tick()
        dut.start.value = 0
        waited = 1                          # cycles from the start's cycle
        while not int(dut.delta_ready.value):
            await tb.tick()
            waited += 1
            assert waited < 100 * cfg.classes * cfg.data_width, "no delta_ready"
        assert waited == params_from_env()["ready_cycles"], f"delta_ready after {waited} cycles"
        got = []
        for c in range(cfg.classes + LossGradient.read_latency):
            await tb.tick()
            if c < cfg.classes:
                dut.rd_en.value, dut.rd_delta.value, dut.rd_index.value = 1, 1, c
            else:
                dut.rd_en.value = 0
            if c >= LossGradient.read_latency:
                got.append(unpack(int(dut.rd_data.value), cfg.data_width, 1)[0])
        dut.rd_en.value = 0
        while int(dut.busy.value):
            await tb.tick()
        await tb.tick()
        assert got == loss_gradient(logits, label, cfg.data_width, cfg.frac_bits).tolist(), f"case {n}"
