"""cocotb tests of LossGradient against tinycl_hdl.softmax.loss_gradient (the golden definition)."""

import cocotb
import numpy as np

from tbutil import ClockedTB, config_from_env, pack, unpack
from tinycl_hdl.softmax import loss_gradient


async def compute(tb, logits, label):
    dut, cfg = tb.dut, tb.cfg
    dut.logits.value = pack(logits, cfg.data_width)
    dut.label.value = label
    dut.start.value = 1
    await tb.tick()
    dut.start.value = 0
    start = tb.cycle
    while not int(dut.done.value):
        await tb.tick()
        assert tb.cycle - start < 100 * cfg.classes * cfg.data_width
    await tb.tick()
    return unpack(int(dut.delta.value), cfg.data_width, cfg.classes), tb.cycle - start


@cocotb.test()
async def random_and_extreme_logits(dut):
    tb = ClockedTB(dut)
    tb.cfg = cfg = config_from_env()
    dut.start.value = 0
    dut.cancel.value = 0
    await tb.reset()
    rng = np.random.default_rng(8)
    lo, hi = -(1 << (cfg.data_width - 1)), (1 << (cfg.data_width - 1)) - 1
    cases = [np.zeros(cfg.classes, dtype=np.int64), np.full(cfg.classes, hi), np.full(cfg.classes, lo)]
    spread = np.array([lo, hi] * cfg.classes)[:cfg.classes]
    cases.append(spread)
    for scale in (1 << cfg.frac_bits, 8 << cfg.frac_bits, hi):
        for _ in range(8):
            cases.append(np.clip(rng.integers(-scale, scale + 1, cfg.classes), lo, hi))
    for n, logits in enumerate(cases):
        label = n % cfg.classes
        got, cycles = await compute(tb, logits.tolist(), label)
        want = loss_gradient(logits, label, cfg.data_width, cfg.frac_bits).tolist()
        assert got == want, f"logits {logits.tolist()} label {label}: {got} != {want}"
    dut._log.info("loss gradient of %d classes in %d cycles", cfg.classes, cycles)
