"""A proof of GDumb's bookkeeping: the control unit's insertion
(:meth:`~tinycl_hdl.rtl.controller.Controller.insert_states`) never writes outside the
memories, and its class counts always equal the labels it holds.

The harness runs the control unit's own insertion states (with its balance test and its
registered class counts, as the lane array builds them) between an ``IDLE`` and a
``DONE`` of its own.  Everything around them is free: when an ``INSERT`` starts and with
which label (below ``classes``, as the host port refuses others), the LFSR's state in
every cycle (so every victim a draw can pick is explored) and when a draw is ready, and
the staged pixels the copy reads.  The labels memory has the ports and timing of
:class:`~tinycl_hdl.rtl.memory.Sram` (whose own tests check it) but holds its words in
registers that the properties name.  In every cycle it asserts:

* a label is written only below ``slots``, and only to the slot the insertion targets;
* a sample word is written only inside the target slot, never the staging slot or beyond;
* the fill level never exceeds ``slots``, every slot in use holds a class, and every class
  count equals the number of slots in use that hold that class.

k-induction proves them for every reachable state, with invariants that say what each
insertion state holds (the balance test written out, the largest class and its count,
the scan's matches so far, the target slot).  The covers reach a full memory, two
evictions and a refused sample.
"""

from __future__ import annotations

import dataclasses
import pathlib
from types import SimpleNamespace

from amaranth.hdl import Array, Assert, Assume, Const, Cover, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..rtl.arith import index
from ..rtl.controller import INS_LOOKUP_CYCLES, Controller
from ..rtl.memory import sample_layout
from ..spec.config import TinyCLConfig
from ..spec.regmap import RegisterMap
from .formal import _summary, run_sby

__all__ = ["GDUMB_CONFIG", "GDUMB_SHAPES", "gdumb_harness", "prove_gdumb"]

#: Four slots, three classes, and two-word sample slots: evictions and refusals within a
#: few dozen cycles (the covers).
GDUMB_CONFIG = TinyCLConfig(in_h=2, in_w=2, kernel=2, filters=1, classes=3, slots=4, data_width=8, frac_bits=4)
#: The memories ``make formal`` proves: slots a power of two or not, more or fewer classes.
GDUMB_SHAPES = [dataclasses.replace(GDUMB_CONFIG, slots=slots, classes=classes)
                for slots, classes in ((4, 3), (5, 2), (6, 4), (10, 3))]


class _GDumbHarness(wiring.Component):
    def __init__(self, cfg: TinyCLConfig, broken: bool = False):
        self._cfg, self._broken = cfg, broken
        lay = sample_layout(cfg)
        self._aw = max(1, (lay["depth"] - 1).bit_length())
        super().__init__({"go": In(1), "label": In(index(cfg.classes)), "lfsr_state": In(32), "lfsr_ready": In(1),
                          "rd_data": In(8 * cfg.kernel)})

    def elaborate(self, platform):
        m = Module()
        cfg, k, slots, nc = self._cfg, self._cfg.kernel, self._cfg.slots, self._cfg.classes
        slot_words = sample_layout(cfg)["slot_words"]
        ctl = Controller(cfg, RegisterMap(cfg), None, None, ctr_limit=1, sample_addr_width=self._aw)
        labels, held = self._labels(m)
        samples = SimpleNamespace(rd_en=Signal(), rd_addr=[Signal(self._aw) for _ in range(k)],
                                  rd_data=[self.rd_data.word_select(b, 8) for b in range(k)],
                                  wr_en=[Signal() for _ in range(k)], wr_addr=[Signal(self._aw) for _ in range(k)],
                                  wr_data=[Signal(8) for _ in range(k)])
        lfsr = SimpleNamespace(draw=Signal(), ready=self.lfsr_ready, state=self.lfsr_state)
        m.d.comb += [Assume(~ResetSignal()), Assume(self.label < nc)]

        ctl.balance_test(m)
        with m.FSM(name="gdumb") as fsm:
            with m.State("IDLE"):
                with m.If(self.go):
                    m.d.sync += [ctl.label_reg.eq(self.label), ctl.ctr.eq(0)]
                    m.next = "INS_LOOKUP"
            ctl.insert_states(m, samples, labels, lfsr, finish_next="DONE")
            with m.State("DONE"):
                m.next = "IDLE"
        if self._broken:
            # The check that the proof can fail: an eviction that forgets the evicted class.
            with m.If(fsm.ongoing("INS_FINISH") & ctl.evict):
                m.d.sync += ctl.counts[ctl.largest].eq(ctl.counts[ctl.largest])

        # What the issue asks.
        def count(label, below=slots):
            return sum(((i < below) & (held[i] == label) for i in range(slots)), start=0)
        with m.If(labels.w_en):
            m.d.comb += Assert(labels.w_addr < slots, "a label written outside the memory")
            m.d.comb += Assert(labels.w_addr == ctl.target, "a label written to a slot not targeted")
        for b in range(k):
            with m.If(samples.wr_en[b]):
                addr = samples.wr_addr[b]
                m.d.comb += Assert((addr >= ctl.target * slot_words) & (addr < (ctl.target + 1) * slot_words)
                                   & (addr < slots * slot_words), "a sample word written outside its slot")
        m.d.comb += Assert(ctl.size <= slots, "the fill level exceeds the memory")
        for c in range(nc):
            m.d.comb += Assert(ctl.counts[c] == count(c, below=ctl.size), f"class {c}'s count is not the labels it holds")
        for i in range(slots):
            m.d.comb += Assert((ctl.size <= i) | (held[i] < nc), "a slot in use holds no class")

        # What makes it inductive: the insertion's registers as each state leaves them.
        self._invariants(m, ctl, fsm, labels, held, count, slot_words)

        # Covers: a full memory, two evictions finished, a refusal.
        evictions = Signal(2, name="f_evictions")
        with m.If(fsm.ongoing("INS_FINISH") & ctl.evict & (evictions != 3)):
            m.d.sync += evictions.eq(evictions + 1)
        m.d.comb += [Cover(fsm.ongoing("IDLE") & (ctl.size == slots)),
                     Cover(fsm.ongoing("IDLE") & (evictions == 2)),
                     Cover(fsm.ongoing("DONE") & ~ctl.kept)]
        return m

    def _labels(self, m):
        """The labels memory with :class:`~tinycl_hdl.rtl.memory.Sram`'s ports and timing (the
        word one cycle after ``r_en``, held while ``r_en`` is low; the old word when written
        in the same cycle), as registers the properties can name."""
        slots = self._cfg.slots
        aw = max(1, (slots - 1).bit_length())
        labels = SimpleNamespace(r_en=Signal(), r_addr=Signal(aw), r_data=Signal(8),
                                 w_en=Signal(), w_addr=Signal(aw), w_data=Signal(8))
        held = Array(Signal(8, name=f"f_label{i}") for i in range(slots))
        with m.If(labels.r_en):
            m.d.sync += labels.r_data.eq(held[labels.r_addr])
        with m.If(labels.w_en):
            m.d.sync += held[labels.w_addr].eq(labels.w_data)
        return labels, held

    def _invariants(self, m, ctl, fsm, labels, held, count, slot_words):
        slots, nc = self._cfg.slots, self._cfg.classes
        ongoing = fsm.ongoing
        evicting = ongoing("INS_LARGEST") | ongoing("INS_VICTIM") | ongoing("INS_SCAN_READ") | \
            ongoing("INS_SCAN_COMPARE") | ongoing("INS_SCAN_CHECK") | \
            ((ongoing("INS_COPY") | ongoing("INS_FINISH")) & ctl.evict)
        with m.If(~ongoing("IDLE")):
            m.d.comb += Assert(ctl.label_reg < nc)
        with m.If(ongoing("INS_LOOKUP")):
            m.d.comb += Assert(ctl.ctr < INS_LOOKUP_CYCLES)
        # GDumb's balance test, written out: the label's class already holds its share.
        label_count = ctl.counts[ctl.label_reg[:8]]
        seen = sum(((count_c != 0) for count_c in ctl.counts), start=0) + (label_count == 0)
        full = label_count >= Array(Const(slots // max(1, n), range(slots + 1)) for n in range(nc + 2))[seen]
        with m.If(ongoing("INS_CHECK")):
            m.d.comb += Assert(ctl.label_full == full)
        with m.If(evicting):
            m.d.comb += Assert(ctl.evict & (ctl.size == slots) & (ctl.largest < nc) & ~full)
        with m.If(ongoing("INS_LARGEST")):
            m.d.comb += Assert((ctl.o < nc) & ((ctl.largest_count == 0) |
                                                ((ctl.counts[ctl.largest] == ctl.largest_count) &
                                                 (ctl.largest < ctl.o))))
            for c in range(nc):
                m.d.comb += Assert((c >= ctl.o) | (ctl.counts[c] <= ctl.largest_count))
        with m.If(evicting & ~ongoing("INS_LARGEST")):
            m.d.comb += Assert((ctl.counts[ctl.largest] == ctl.largest_count) & (ctl.largest_count != 0))
            for c in range(nc):
                m.d.comb += Assert(ctl.counts[c] <= ctl.largest_count)
        scanning = ongoing("INS_SCAN_READ") | ongoing("INS_SCAN_COMPARE") | ongoing("INS_SCAN_CHECK")
        with m.If(scanning):
            m.d.comb += Assert((ctl.ctr < slots) & (ctl.victim < ctl.largest_count) & (ctl.matches <= ctl.victim)
                               & (ctl.matches == count(ctl.largest, below=ctl.ctr)), "the scan leaves the memory")
        with m.If(ongoing("INS_SCAN_COMPARE")):
            m.d.comb += Assert(labels.r_data == held[ctl.ctr])
        with m.If(ongoing("INS_SCAN_CHECK")):
            m.d.comb += Assert((ctl.scan_hit == (held[ctl.ctr] == ctl.largest)) &
                               (ctl.scan_victim == (ctl.matches == ctl.victim)))
        with m.If(ongoing("INS_COPY") | ongoing("INS_FINISH")):
            m.d.comb += Assert(ctl.target < slots)
            with m.If(ctl.evict):
                m.d.comb += Assert(held[ctl.target] == ctl.largest)
            with m.Else():
                m.d.comb += Assert(ctl.target == ctl.size)
        with m.If(ongoing("INS_COPY")):
            m.d.comb += Assert(ctl.copy_w < slot_words)
            with m.If(ctl.copy_write):
                m.d.comb += Assert(ctl.copy_waddr == ctl.target * slot_words + ctl.copy_w)


def gdumb_harness(cfg: TinyCLConfig = GDUMB_CONFIG, broken: bool = False) -> wiring.Component:
    """The insertion states under the properties; ``broken`` makes an eviction leave the
    evicted class's count, which the check must reject."""
    return _GDumbHarness(cfg, broken)


def prove_gdumb(folder, cfg: TinyCLConfig = GDUMB_CONFIG, depth: int = 12, mode: str = "prove",
                broken: bool = False) -> tuple:
    """k-induction (``mode="prove"``), a bounded check (``mode="bmc"``) to ``depth`` cycles, or
    the covers (``mode="cover"``, which need a depth of about 80); returns ``(passed, summary)``."""
    proc = run_sby(gdumb_harness(cfg, broken), pathlib.Path(folder), mode=mode, depth=depth,
                   name=f"gdumb_{mode}")
    return proc.returncode == 0, _summary(proc.stdout)
