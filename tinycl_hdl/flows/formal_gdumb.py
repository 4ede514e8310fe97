"""A proof of GDumb's bookkeeping: the control unit's insertion
(:meth:`~tinycl_hdl.rtl.controller.Controller.insert_states`) never writes outside the
memories, and its class counts always equal the labels it holds, on both datapaths.

The harness runs the control unit's own insertion states (with its balance test and its
registered class counts, as the lane array builds them) between an ``IDLE`` and a
``DONE`` of its own.  Everything around them is free: when an ``INSERT`` starts and with
which label (below ``classes``, as the host port refuses others), the LFSR's state in
every cycle (so every victim a draw can pick is explored) and when a draw is ready, and
the staged pixels the copy reads.  The labels memory has the ports and timing of
:class:`~tinycl_hdl.rtl.memory.Sram` (whose own tests check it) but holds its words in
registers that the properties name.

The lane array keeps the class counts in registers.  The serial datapath keeps them as
words of its parameter memory, which the control unit reads one a cycle (the balance
test, the scan for the largest class) and which the datapath's own
``INS_COUNT_LABEL`` and ``INS_COUNT_EVICTED`` states write after ``INS_FINISH``; for it
the harness runs those states too, with :meth:`SerialDatapath.count_memory
<tinycl_hdl.rtl.serial.SerialDatapath.count_memory>`'s read and the count words held, as
the labels are, in registers with the memory's timing.  In every cycle it asserts:

* a label is written only below ``slots``, and only to the slot the insertion targets;
* a sample word is written only inside the target slot, never the staging slot or beyond;
* (serial) the parameter memory is read only at a count word, and written only at the
  label's count word or, in an eviction, the evicted class's;
* the fill level never exceeds ``slots``, every slot in use holds a class, and every class
  count equals the number of slots in use that hold that class (serial: in the two states
  after ``INS_FINISH``, less the change that each count write still owes).

k-induction proves them for every reachable state, with invariants that say what each
insertion state holds (the balance test written out, the largest class and its count,
the scan's matches so far, the target slot).  The covers reach a full memory, two
evictions and a refused sample.
"""

from __future__ import annotations

import dataclasses
import pathlib
from types import SimpleNamespace

from amaranth.hdl import Array, Assert, Assume, Const, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..rtl.arith import index
from ..rtl.controller import INS_LOOKUP_CYCLES, Controller
from ..rtl.memory import sample_layout
from ..rtl.serial import COUNT, SerialDatapath, _param_width
from ..rtl.top import DATAPATHS
from ..rtl.window import SnakeWindow
from ..spec.config import TinyCLConfig
from ..spec.regmap import RegisterMap
from .formal import _summary, run_sby

__all__ = ["COVER_DEPTH", "GDUMB_CONFIG", "GDUMB_SHAPES", "gdumb_harness", "prove_gdumb"]

#: Four slots, three classes, and two-word sample slots: evictions and refusals within a
#: few dozen cycles (the covers).
GDUMB_CONFIG = TinyCLConfig(in_h=2, in_w=2, kernel=2, filters=1, classes=3, slots=4, data_width=8, frac_bits=4)
#: Steps the covers need, by datapath: the second eviction ends at step 104 with registered
#: counts and registered sample-memory requests and data (four cycles a copied word), at
#: step 94 with counts in memory (a read a cycle, two writes after INS_FINISH).
COVER_DEPTH = {"array": 110, "serial": 110}
#: The memories ``make formal`` proves: slots a power of two or not, more or fewer classes.
GDUMB_SHAPES = [dataclasses.replace(GDUMB_CONFIG, slots=slots, classes=classes, datapath=datapath)
                for datapath in ("array", "serial") for slots, classes in ((4, 3), (5, 2), (6, 4), (10, 3))]


class _GDumbHarness(wiring.Component):
    def __init__(self, cfg: TinyCLConfig, broken: bool = False):
        self._cfg, self._broken = cfg, broken
        lay = sample_layout(cfg)
        self._aw = max(1, (lay["depth"] - 1).bit_length())
        # The sample memory's read latency of the datapath's build (``shared_blocks``): the
        # copy waits it out, the data itself is free.
        self._read_latency = SnakeWindow(cfg, pipelined=DATAPATHS[cfg.datapath].window_pipelined).read_latency
        super().__init__({"go": In(1), "label": In(index(cfg.classes)), "lfsr_state": In(32), "lfsr_ready": In(1),
                          "rd_data": In(8 * cfg.kernel)})

    def elaborate(self, platform):
        m = Module()
        cfg, k, slots, nc = self._cfg, self._cfg.kernel, self._cfg.slots, self._cfg.classes
        slot_words = sample_layout(cfg)["slot_words"]
        serial = cfg.datapath == "serial"
        dp = self._serial_datapath() if serial else None
        ctl = Controller(cfg, RegisterMap(cfg), None, None, ctr_limit=1, sample_addr_width=self._aw,
                         count_memory=dp.count_memory() if serial else None)
        labels, held = self._labels(m)
        counts = self._count_words(m, dp) if serial else ctl.counts
        samples = SimpleNamespace(read_latency=self._read_latency,
                                  rd_en=Signal(), rd_addr=[Signal(self._aw) for _ in range(k)],
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
            ctl.insert_states(m, samples, labels, lfsr, finish_next=dp.insert_next if serial else "DONE")
            if serial:
                dp.insert_finish_states(m, ctl)
            with m.State("DONE"):
                m.next = "IDLE"
        if self._broken:
            # The check that the proof can fail: an eviction that forgets the evicted class.
            if serial:
                with m.If(fsm.ongoing("INS_COUNT_EVICTED")):
                    m.d.comb += dp.param_w_en.eq(0)
            else:
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
        # A count the serial datapath has still to write after INS_FINISH: the label's one
        # more, the evicted class's one fewer.
        label_owed = fsm.ongoing("INS_COUNT_LABEL") if serial else Const(0)
        evicted_owed = (fsm.ongoing("INS_COUNT_LABEL") | fsm.ongoing("INS_COUNT_EVICTED")) & ctl.evict \
            if serial else Const(0)
        for c in range(nc):
            owed = Mux(label_owed & (ctl.label_reg == c), -1, 0) + Mux(evicted_owed & (ctl.largest == c), 1, 0)
            m.d.comb += Assert(counts[c] == count(c, below=ctl.size) + owed,
                               f"class {c}'s count is not the labels it holds")
        for i in range(slots):
            m.d.comb += Assert((ctl.size <= i) | (held[i] < nc), "a slot in use holds no class")
        if serial:
            self._count_word_properties(m, ctl, dp)

        # What makes it inductive: the insertion's registers as each state leaves them.
        self._invariants(m, ctl, fsm, labels, held, counts, count, slot_words)

        # Covers: a full memory, two evictions finished, a refusal.
        evictions = Signal(2, name="f_evictions")
        with m.If(fsm.ongoing("INS_FINISH") & ctl.evict & (evictions != 3)):
            m.d.sync += evictions.eq(evictions + 1)
        m.d.comb += [Cover(fsm.ongoing("IDLE") & (ctl.size == slots)),
                     Cover(fsm.ongoing("IDLE") & (evictions == 2)),
                     Cover(fsm.ongoing("DONE") & ~ctl.kept)]
        return m

    def _serial_datapath(self):
        """The serial datapath's count words: its own read and writes (``count_memory``,
        ``insert_finish_states``) on ports the harness holds."""
        cfg = self._cfg
        dp = SerialDatapath(cfg)
        aw, width = dp.region_bits + 2, _param_width(cfg)
        dp.biases = SimpleNamespace(r_en=Signal(), r_addr=Signal(aw), r_data=Signal(width))
        self._count_read_data = dp.biases.r_data
        dp.param_w_en, dp.param_w_addr, dp.param_w_data = Signal(), Signal(aw), Signal(width)
        return dp

    def _count_words(self, m, dp):
        """The parameter memory's count words, with :class:`~tinycl_hdl.rtl.memory.Sram`'s
        timing, as registers; the harness asserts that no other word is read or written."""
        cfg, rb = self._cfg, dp.region_bits
        words = Array(Signal(_param_width(cfg), name=f"f_count{c}") for c in range(cfg.classes))
        ports = dp.biases
        with m.If(ports.r_en):
            m.d.sync += ports.r_data.eq(words[ports.r_addr[:rb]])
        with m.If(dp.param_w_en):
            m.d.sync += words[dp.param_w_addr[:rb]].eq(dp.param_w_data)
        return words

    def _count_word_properties(self, m, ctl, dp):
        nc, ports = self._cfg.classes, dp.biases

        def is_count_word(addr, c):
            return addr == dp.param(COUNT, c)
        with m.If(ports.r_en):
            m.d.comb += Assert(sum((is_count_word(ports.r_addr, c) for c in range(nc)), start=0) == 1,
                               "a read of the parameter memory that is not a count")
        with m.If(dp.param_w_en):
            m.d.comb += Assert(is_count_word(dp.param_w_addr, ctl.label_reg[:8]) |
                               (ctl.evict & is_count_word(dp.param_w_addr, ctl.largest)),
                               "a count written that the insertion did not change")

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

    def _invariants(self, m, ctl, fsm, labels, held, counts, count, slot_words):
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
        label_count = counts[ctl.label_reg[:8]]
        seen = sum(((count_c != 0) for count_c in counts), start=0) + (label_count == 0)
        full = label_count >= Array(Const(slots // max(1, n), range(slots + 1)) for n in range(nc + 2))[seen]
        with m.If(ongoing("INS_CHECK")):
            m.d.comb += Assert(ctl.label_full == full)
        with m.If(evicting):
            m.d.comb += Assert(ctl.evict & (ctl.size == slots) & (ctl.largest < nc) & ~full)
        # The classes the scan for the largest has compared so far: below ``o`` (registered
        # counts) or below ``candidate_o`` (counts in memory, compared a cycle after the read).
        compared = ctl.o if ctl.counts is not None else Mux(ctl.candidate_valid, ctl.candidate_o, 0)
        with m.If(ongoing("INS_LARGEST")):
            m.d.comb += Assert((ctl.o < nc) & ((ctl.largest_count == 0) |
                                                ((counts[ctl.largest] == ctl.largest_count) &
                                                 (ctl.largest < compared))))
            for c in range(nc):
                m.d.comb += Assert((c >= compared) | (counts[c] <= ctl.largest_count))
        with m.If(evicting & ~ongoing("INS_LARGEST")):
            m.d.comb += Assert((counts[ctl.largest] == ctl.largest_count) & (ctl.largest_count != 0)
                               & (ctl.largest != ctl.label_reg))
            for c in range(nc):
                m.d.comb += Assert(counts[c] <= ctl.largest_count)
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
            m.d.comb += Assert(ctl.copy_phase <= self._read_latency)
            with m.If(ctl.copy_phase != 0):
                m.d.comb += Assert(ctl.copy_waddr == ctl.target * slot_words + ctl.copy_w)
        if ctl.counts is None:
            self._count_memory_invariants(m, ctl, fsm, counts, count, compared)

    def _count_memory_invariants(self, m, ctl, fsm, counts, count, compared):
        """The serial datapath's: the reads of the count words in flight, the label's count
        kept from the lookup, the classes seen, the counts owed after ``INS_FINISH``."""
        nc, ongoing = self._cfg.classes, fsm.ongoing
        r_data = self._count_read_data
        m.d.comb += Assert(ctl.seen_classes == sum(((count(c, below=ctl.size) != 0) for c in range(nc)), start=0),
                           "the classes seen are not the classes held")
        label_count = counts[ctl.label_reg[:8]]
        with m.If(ongoing("INS_LOOKUP") & (ctl.ctr != 0)):
            m.d.comb += Assert(r_data == label_count)
        with m.If(ongoing("INS_LOOKUP") & (ctl.ctr == INS_LOOKUP_CYCLES - 1)):
            m.d.comb += Assert((ctl.label_count == label_count) & (ctl.label_new == (label_count == 0)))
        inserting = ongoing("INS_CHECK") | ongoing("INS_LARGEST") | ongoing("INS_VICTIM") | \
            ongoing("INS_SCAN_READ") | ongoing("INS_SCAN_COMPARE") | ongoing("INS_SCAN_CHECK") | \
            ongoing("INS_COPY") | ongoing("INS_FINISH")
        with m.If(inserting):
            m.d.comb += Assert((ctl.label_count == label_count) & (ctl.label_new == (label_count == 0)))
        with m.If(ongoing("INS_LARGEST")):
            with m.If(ctl.candidate_valid):
                m.d.comb += Assert((ctl.candidate_o < nc) & (r_data == counts[ctl.candidate_o]) &
                                   ((ctl.o == ctl.candidate_o + 1) | ((ctl.o == nc - 1) & (ctl.candidate_o == nc - 1))))
            with m.Else():
                m.d.comb += Assert((ctl.o == 0) & (ctl.largest_count == 0) & (compared == 0))
        owing = ongoing("INS_COUNT_LABEL") | ongoing("INS_COUNT_EVICTED")
        with m.If(owing):
            m.d.comb += Assert((ctl.label_count + 1 == count(ctl.label_reg, below=ctl.size)) & (ctl.size != 0))
            with m.If(ctl.evict):
                m.d.comb += Assert((ctl.largest < nc) & (ctl.largest != ctl.label_reg) & (ctl.largest_count != 0) &
                                   (ctl.largest_count == count(ctl.largest, below=ctl.size) + 1))


def gdumb_harness(cfg: TinyCLConfig = GDUMB_CONFIG, broken: bool = False) -> wiring.Component:
    """The insertion states under the properties; ``broken`` makes an eviction leave the
    evicted class's count, which the check must reject."""
    return _GDumbHarness(cfg, broken)


def prove_gdumb(folder, cfg: TinyCLConfig = GDUMB_CONFIG, depth: int = 12, mode: str = "prove",
                broken: bool = False) -> tuple:
    """k-induction (``mode="prove"``), a bounded check (``mode="bmc"``) to ``depth`` cycles, or
    the covers (``mode="cover"``, which need :data:`COVER_DEPTH`); returns ``(passed, summary)``."""
    proc = run_sby(gdumb_harness(cfg, broken), pathlib.Path(folder), mode=mode, depth=depth,
                   name=f"gdumb_{mode}")
    return proc.returncode == 0, _summary(proc.stdout)
