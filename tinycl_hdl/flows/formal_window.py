"""A bounded proof of the sliding-window generator (:class:`~tinycl_hdl.rtl.window.SnakeWindow`).

The harness runs one sweep of every channel over a symbolic slot, with ``advance`` free
(the consumer may stall it in any cycle), and a sample memory whose every word holds
its own coordinates: pixel ``(c, row, col)`` reads as ``c << 6 | row << 3 | col``, decoded
from the bank and word address by the memory's layout (bank ``(row + col) % K``, word
``c * plane + row * row_words + col // K`` of the slot).
It asserts, from the spec and not from the generator's code:

- every window it reports holds the pixels of its position and channel: ``window[i*K + j]``
  is pixel ``(chan, y + i, x + j)``, and ``pos`` is ``y * out_w + x``;
- no (channel, position) is reported twice, nothing is reported after ``last``, and at
  ``last`` every one has been;
- the fetches read exactly the formula's pixels (:func:`~tinycl_hdl.spec.window.snake_reads`
  or ``raster_reads`` per channel), counted here from ``rd_en``;
- without a stall the sweep ends within its fetches plus the pipeline's latency.

The check is bounded: it covers every behaviour of the first ``depth`` cycles, stalls
anywhere included, and with the depth past the bound every unstalled sweep to its end.
"""

from __future__ import annotations

import pathlib

from amaranth.hdl import Assert, Assume, Cover, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..rtl.memory import sample_layout
from ..rtl.window import SnakeWindow
from ..spec.config import TinyCLConfig
from ..spec.window import raster_reads, snake_reads
from .formal import _summary, run_sby

__all__ = ["window_harness", "sweep_cycles", "prove_window", "SHAPES"]

#: Shapes ``make formal`` proves (``make test`` the first): kernels 2 and 3, one to three
#: channels, both orders.
SHAPES = (
    TinyCLConfig(in_h=4, in_w=5, in_c=2, kernel=2, filters=2, classes=2, slots=2),
    TinyCLConfig(in_h=4, in_w=5, in_c=2, kernel=2, filters=2, classes=2, slots=2, window="raster"),
    TinyCLConfig(in_h=5, in_w=4, in_c=1, kernel=3, filters=2, classes=2, slots=2),
    TinyCLConfig(in_h=4, in_w=4, in_c=3, kernel=3, filters=2, classes=2, slots=2, window="raster"),
)


def _reads(cfg: TinyCLConfig) -> int:
    """The formula's pixel reads of one sweep over every channel."""
    return cfg.in_c * (snake_reads(cfg) if cfg.window == "snake" else raster_reads(cfg))


def sweep_cycles(cfg: TinyCLConfig, latency: int) -> int:
    """A bound on the cycles of an unstalled sweep: one fetch of ``K`` pixels a cycle, the
    pipeline's latency, and a margin for the start."""
    return _reads(cfg) // cfg.kernel + latency + 4


class _WindowHarness(wiring.Component):
    def __init__(self, cfg: TinyCLConfig, generator=None):
        if cfg.in_h > 8 or cfg.in_w > 8 or cfg.in_c > 4:
            raise ValueError("the harness encodes rows and columns in 3 bits and channels in 2")
        self._cfg = cfg
        self._generator = generator or SnakeWindow(cfg)
        super().__init__({"advance": In(1)})

    @property
    def latency(self) -> int:
        return self._generator.latency

    def elaborate(self, platform):
        cfg, k = self._cfg, self._cfg.kernel
        lay = sample_layout(cfg)
        m = Module()
        m.submodules.win = win = self._generator
        m.d.comb += Assume(~ResetSignal())
        # One sweep of every channel of a symbolic slot, started in the first cycle.
        slot = Signal.like(win.slot, name="f_slot")
        m.d.comb += Assume(slot <= cfg.slots)
        m.d.comb += [win.slot.eq(slot), win.chan_first.eq(0), win.chan_last.eq(cfg.in_c - 1),
                     win.advance.eq(self.advance)]
        cycle = Signal(range(1 << 10), name="f_cycle")
        m.d.sync += cycle.eq(cycle + (cycle != (1 << 10) - 1))
        m.d.comb += win.start.eq(cycle == 0)
        # The memory: each word holds its pixel's coordinates, ``win.read_latency`` cycles
        # after the read.  Pixel (c, row, col) is in bank (row + col) % K at word
        # c * plane + row * row_words + col // K of its slot.
        # The request reaches the word read_latency - 1 cycles after it is made.
        rd_en, rd_addr = win.rd_en, list(win.rd_addr)
        for stage in range(win.read_latency - 1):
            en_q = Signal(name=f"f_rd_en{stage}")
            addr_q = [Signal.like(rd_addr[b], name=f"f_rd_addr{stage}_{b}") for b in range(k)]
            m.d.sync += [en_q.eq(rd_en), *(addr_q[b].eq(rd_addr[b]) for b in range(k))]
            rd_en, rd_addr = en_q, addr_q
        for b in range(k):
            local = Signal(32, name=f"f_local{b}")
            m.d.comb += local.eq(rd_addr[b] - slot * lay["slot_words"])
            chan, rem = local // lay["plane_words"], local % lay["plane_words"]
            row = rem // lay["row_words"]
            col = (rem % lay["row_words"]) * k + (b + 8 * k - row[:3]) % k
            word = Signal(8, name=f"f_word{b}")
            with m.If(rd_en):
                m.d.sync += word.eq((chan[:2] << 6) | (row[:3] << 3) | col[:3])
            m.d.comb += win.rd_data[b].eq(word)
        # Fetches counted here, not by the generator's own counter.
        fetches = Signal(16, name="f_fetches")
        m.d.sync += fetches.eq(fetches + win.rd_en)
        # Every (channel, position) reported once, with its own pixels.
        positions = cfg.out_h * cfg.out_w
        seen = Signal(cfg.in_c * positions, name="f_seen")
        done = Signal(name="f_done")
        bit = Signal.like(seen, name="f_bit")
        m.d.comb += bit.eq(1 << (win.chan * positions + win.pos))
        stalled = Signal(name="f_stalled")
        with m.If(~self.advance):
            m.d.sync += stalled.eq(1)
        with m.If(win.valid):
            m.d.comb += [Assert(~done, "a window after the last"),
                         Assert((seen & bit) == 0, "a (channel, position) reported twice"),
                         Assert(win.pos == win.y * cfg.out_w + win.x, "pos is not y * out_w + x"),
                         Assert(win.y < cfg.out_h), Assert(win.x < cfg.out_w), Assert(win.chan < cfg.in_c)]
            for i in range(k):
                for j in range(k):
                    want = (win.chan << 6) | ((win.y + i) << 3) | (win.x + j)
                    m.d.comb += Assert(win.window[i * k + j] == want[:8], f"window pixel ({i}, {j})")
            m.d.sync += seen.eq(seen | bit)
            with m.If(win.last):
                m.d.sync += done.eq(1)
                m.d.comb += [Assert((seen | bit) == (1 << (cfg.in_c * positions)) - 1, "a position never reported"),
                             Assert(fetches * k == _reads(cfg), "pixel reads other than the formula's")]
        with m.If(~stalled & (cycle >= sweep_cycles(cfg, win.latency))):
            m.d.comb += Assert(done, "an unstalled sweep did not end within its bound")
        m.d.comb += Cover(done & stalled)
        return m


def window_harness(cfg: TinyCLConfig, generator=None) -> wiring.Component:
    """:class:`SnakeWindow` of ``cfg`` (or ``generator``, a window generator of the same
    ports) under the properties that ``cfg`` implies."""
    return _WindowHarness(cfg, generator)


def prove_window(cfg: TinyCLConfig, folder, extra: int = 4, generator=None, mode: str = "bmc") -> tuple:
    """Bounded check (``mode="bmc"``) of the window generator of ``cfg`` past the sweep's
    bound, or the reachability of its cover (``"cover"``: a stalled sweep that ends); returns
    ``(passed, summary)``."""
    harness = window_harness(cfg, generator)
    depth = sweep_cycles(cfg, harness.latency) + extra
    proc = run_sby(harness, pathlib.Path(folder), mode=mode, depth=depth, name=f"window_{mode}")
    return proc.returncode == 0, _summary(proc.stdout)
