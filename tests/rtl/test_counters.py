"""CounterBank (performance counters in block RAM) against a running sum, in Amaranth's simulator."""

import random

import pytest
from amaranth.sim import Simulator

from tinycl_hdl.rtl.counters import CounterBank


def run_bank(count, max_increment, cycles, seed, read_gap=(2, 9), clear_every=700):
    """Drive random increments, reads and clears; return the reads as (index, got, want)."""
    dut = CounterBank(count, max_increment)
    rng = random.Random(seed)
    reads = []

    async def bench(ctx):
        totals = [0] * count
        while ctx.get(dut.busy):                 # reset clears the memory first
            await ctx.tick()
        pending_read, gap, want = None, rng.randint(*read_gap), None
        for cycle in range(cycles):
            clearing = ctx.get(dut.busy)
            clear = not clearing and cycle % clear_every == clear_every - 1 and pending_read is None
            incs = [0] * count if clearing or clear else \
                [rng.randint(0, max_increment) if rng.random() < 0.7 else 0 for _ in range(count)]
            for i, v in enumerate(incs):
                ctx.set(dut.inc[i], v)
            ctx.set(dut.clear, clear)
            if pending_read is None and not clearing and not clear:
                gap -= 1
                if gap == 0:
                    pending_read = rng.randrange(count)
            ctx.set(dut.rd_en, pending_read is not None and want is None)
            ctx.set(dut.rd_index, pending_read or 0)
            if ctx.get(dut.rd_valid):
                reads.append((pending_read, ctx.get(dut.rd_data), want))
                pending_read, gap, want = None, rng.randint(*read_gap), None
            granted = ctx.get(dut.rd_ready) and pending_read is not None and want is None
            for i, v in enumerate(incs):
                totals[i] += v
            if granted:
                # Documented: the value holds every increment up to the cycle of rd_ready.
                want = totals[pending_read]
            if clear:
                totals = [0] * count
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return reads


@pytest.mark.parametrize("count, max_increment, seed", [(10, 3, 1), (3, 1, 2), (11, 5, 3)])
def test_reads_equal_the_running_sums(count, max_increment, seed):
    reads = run_bank(count, max_increment, cycles=3000, seed=seed)
    assert len(reads) > 200
    assert all(got == want for _, got, want in reads), [r for r in reads if r[1] != r[2]][:5]
    # Reads after a clear start again from zero, and some reads come from far along.
    assert max(want for _, _, want in reads) > 100


def test_back_to_back_reads_keep_every_increment():
    # Reads as close as the handshake allows still leave each pending count within its width.
    reads = run_bank(10, 3, cycles=2000, seed=4, read_gap=(1, 1), clear_every=10_000)
    assert all(got == want for _, got, want in reads), [r for r in reads if r[1] != r[2]][:5]
