"""cocotb tests of SampleWindow (banked sample memory + snake-window generator).

Samples are written through the pixel port in natural coordinates; every
sweep is checked for visit order (an independent Python walk), window contents
(the golden model's ``conv_patches``), pixel reads (the formulas of
docs/architecture.md, "Snake-like sliding window") and one output per cycle once the window is full.
"""

import cocotb
import numpy as np

from tbutil import ClockedTB, config_from_env, params_from_env, unpack
from tinycl_hdl.model import golden


def expected_order(cfg, channels):
    """Snake: even rows left to right, odd rows right to left; raster: all left to right."""
    for y in range(cfg.out_h):
        xs = list(range(cfg.out_w))
        if cfg.window == "snake" and y % 2 == 1:
            xs.reverse()
        for x in xs:
            for c in channels:
                yield y, x, c


class SampleWindowTB(ClockedTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config_from_env()
        self.params = params_from_env()
        dut.px_en.value = 0
        dut.start.value = 0
        dut.clear_reads.value = 0
        dut.cancel.value = 0

    async def write_sample(self, slot, pixels):
        """Write ``[H, W, C]`` pixels, one per cycle."""
        dut = self.dut
        for r in range(self.cfg.in_h):
            for col in range(self.cfg.in_w):
                for c in range(self.cfg.in_c):
                    dut.px_en.value = 1
                    dut.px_slot.value = slot
                    dut.px_chan.value = c
                    dut.px_row.value = r
                    dut.px_col.value = col
                    dut.px_data.value = int(pixels[r, col, c])
                    await self.tick()
        dut.px_en.value = 0

    async def start_sweep(self, slot, chan_first, chan_last):
        """Pulse ``start`` for one sweep of ``slot``."""
        dut = self.dut
        dut.slot.value = slot
        dut.chan_first.value = chan_first
        dut.chan_last.value = chan_last
        dut.start.value = 1
        await self.tick()
        dut.start.value = 0

    async def sweep(self, slot, chan_first, chan_last):
        """Run one sweep; returns ``(outputs, cycle of each output, reads, cycles)``."""
        dut, cfg = self.dut, self.cfg
        k = cfg.kernel
        reads_before = int(dut.reads.value)
        await self.start_sweep(slot, chan_first, chan_last)
        start = self.cycle
        outputs, cycles = [], []
        limit = 4 * (cfg.in_c * (k * k + cfg.out_h * cfg.out_w * k) + 20)
        while True:
            if int(dut.valid.value):
                window = unpack(int(dut.window.value), 8, k * k, signed=False)
                assert int(dut.pos.value) == int(dut.y.value) * cfg.out_w + int(dut.x.value), "pos"
                outputs.append({"y": int(dut.y.value), "x": int(dut.x.value), "c": int(dut.chan.value),
                                "first": int(dut.first_chan.value), "last_chan": int(dut.last_chan.value),
                                "last": int(dut.last.value), "window": window})
                cycles.append(self.cycle)
                if outputs[-1]["last"]:
                    break
            assert self.cycle - start < limit, "sweep did not finish"
            await self.tick()
        await self.tick()
        assert int(dut.busy.value) == 0
        return outputs, cycles, int(dut.reads.value) - reads_before, self.cycle - start


async def check_sweep(tb, pixels, slot, channels):
    cfg = tb.cfg
    outputs, cycles, reads, _ = await tb.sweep(slot, channels[0], channels[-1])
    got_order = [(o["y"], o["x"], o["c"]) for o in outputs]
    assert got_order == list(expected_order(cfg, channels)), "visit order"
    patches = golden.conv_patches(cfg, pixels.transpose(2, 0, 1).astype(np.int64))
    for o in outputs:
        want = patches[o["y"], o["x"], o["c"]].reshape(-1).tolist()
        assert o["window"] == want, f"window at {(o['y'], o['x'], o['c'])}"
        assert o["first"] == (o["c"] == channels[0]) and o["last_chan"] == (o["c"] == channels[-1])
    assert sum(o["last"] for o in outputs) == 1 and outputs[-1]["last"]
    per_channel = tb.params["reads_per_sweep"]
    assert reads == per_channel * len(channels), f"reads {reads} != {per_channel} x {len(channels)}"
    # Steady state: after the first window is complete, one output per cycle
    # (snake), or per cycle within each row (raster).
    gaps = [b - a for a, b in zip(cycles, cycles[1:])]
    if cfg.window == "snake":
        assert all(g == 1 for g in gaps[len(channels) - 1:]), f"gaps {gaps}"
    else:
        per_row = cfg.out_w * len(channels)
        inner = [g for i, g in enumerate(gaps) if (i + 1) % per_row >= len(channels)]
        assert all(g == 1 for g in inner)
    tb.dut._log.info("%s sweep of %d channel(s): %d outputs, %d pixel reads (formula %d per channel), "
                     "steady state %.2f outputs/cycle", cfg.window, len(channels), len(outputs), reads,
                     per_channel, 1.0 if not gaps else 1.0 / min(gaps))
    return outputs


@cocotb.test()
async def sweeps_match_golden_patches(dut):
    tb = SampleWindowTB(dut)
    await tb.reset()
    cfg = tb.cfg
    rng = np.random.default_rng(tb.params.get("seed", 1))
    slots = [0, cfg.slots, cfg.slots - 1]            # first slot, staging buffer, last slot
    samples = {}
    for slot in slots:
        samples[slot] = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        await tb.write_sample(slot, samples[slot])
    all_channels = list(range(cfg.in_c))
    for slot in slots:
        await check_sweep(tb, samples[slot], slot, all_channels)
    # Single-channel sweeps, as the weight-gradient phase runs them.
    for c in range(cfg.in_c):
        await check_sweep(tb, samples[slots[0]], slots[0], [c])


@cocotb.test()
async def extreme_pixels_and_back_to_back_sweeps(dut):
    tb = SampleWindowTB(dut)
    await tb.reset()
    cfg = tb.cfg
    pixels = np.full((cfg.in_h, cfg.in_w, cfg.in_c), 255, np.uint8)
    pixels[::2, 1::2] = 0
    await tb.write_sample(1, pixels)
    for _ in range(2):
        await check_sweep(tb, pixels, 1, list(range(cfg.in_c)))


@cocotb.test()
async def read_counter_clears(dut):
    tb = SampleWindowTB(dut)
    await tb.reset()
    await tb.sweep(0, 0, 0)
    assert int(dut.reads.value) > 0
    dut.clear_reads.value = 1
    await tb.tick()
    dut.clear_reads.value = 0
    await tb.tick()
    assert int(dut.reads.value) == 0


@cocotb.test()
async def cancel_drops_every_fetch_in_flight(dut):
    """A cancel mid-sweep ends it at once: nothing already fetched comes out afterwards, and
    the next sweep is complete and correct."""
    tb = SampleWindowTB(dut)
    await tb.reset()
    cfg = tb.cfg
    latency = tb.params["latency"]
    pixels = np.random.default_rng(5).integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
    await tb.write_sample(0, pixels)
    await tb.start_sweep(0, 0, cfg.in_c - 1)
    # Run until the first window comes out, so that every stage holds a fetch, then cancel.
    for _ in range(4 * latency + cfg.in_c * cfg.kernel):
        if int(dut.valid.value):
            break
        await tb.tick()
    assert int(dut.valid.value), "no window before the cancel"
    dut.cancel.value = 1
    await tb.tick()
    dut.cancel.value = 0
    for _ in range(2 * latency + 2):
        assert not int(dut.valid.value), "a window came out after the cancel"
        assert not int(dut.busy.value)
        await tb.tick()
    await check_sweep(tb, pixels, 0, list(range(cfg.in_c)))


@cocotb.test()
async def chained_sweeps_keep_their_tags(dut):
    """Each sweep starts in the first cycle ``busy`` is low, while the one before still has
    windows in the pipeline: every window comes out in order with its sweep's tag and
    contents, and a chained sweep adds only its fill (one window per cycle otherwise)."""
    tb = SampleWindowTB(dut)
    await tb.reset()
    cfg = tb.cfg
    pixels = np.random.default_rng(9).integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
    await tb.write_sample(2, pixels)
    patches = golden.conv_patches(cfg, pixels.transpose(2, 0, 1).astype(np.int64))
    # (tag, first channel, last channel): every channel, as the conv forward pass sweeps, then
    # one at a time, as the weight gradient does.
    sweeps = [(t, 0, cfg.in_c - 1) for t in range(2)] + [(2 + c, c, c) for c in range(cfg.in_c)]
    tag_limit = (1 << len(dut.tag)) - 1
    outputs, starts = [], 0
    dut.slot.value = 2
    for cycle in range(20 * len(sweeps) * (cfg.out_h * cfg.out_w + cfg.kernel + 10)):
        if int(dut.valid.value):
            outputs.append((int(dut.out_tag.value), int(dut.chan.value), int(dut.y.value), int(dut.x.value),
                            unpack(int(dut.window.value), 8, cfg.kernel ** 2, signed=False), tb.cycle))
        ready = not int(dut.busy.value) and not int(dut.start.value)
        if ready and starts < len(sweeps):
            tag, first, last = sweeps[starts]
            dut.tag.value, dut.chan_first.value, dut.chan_last.value = min(tag, tag_limit), first, last
            dut.start.value = 1
            starts += 1
        else:
            dut.start.value = 0
        want = [(min(t, tag_limit), c, y, x) for t, first, last in sweeps
                for y, x, c in expected_order(cfg, range(first, last + 1))]
        if starts == len(sweeps) and len(outputs) == len(want):
            break
        await tb.tick()
    assert [o[:4] for o in outputs] == want, "order and tags"
    for tag, c, y, x, window, _ in outputs:
        assert window == patches[y, x, c].reshape(-1).tolist(), f"window of tag {tag} at {(y, x, c)}"
    # Between sweeps the gap is the fill of the next's first channel (kernel column fetches, one
    # cycle after the start).
    cycles = [o[-1] for o in outputs]
    at = 0
    for n, (_, first, last) in enumerate(sweeps):
        channels = last - first + 1
        if n:
            gap = cycles[at] - cycles[at - 1]
            assert gap == cfg.kernel + 1, f"gap of {gap} cycles before sweep {n}"
        at += cfg.out_h * cfg.out_w * channels
