"""The control unit that both datapaths share.

:class:`Controller` keeps the GDumb memory (the class-balance test and the
``INSERT`` states), orders each epoch with its shuffle, sequences the five phases
of a training step, handles ``ABORT``, and owns the register file: the host's
register writes and staging writes.  The datapath
(:class:`~tinycl_hdl.rtl.datapath.Datapath`) adds the states that compute.
"""

from typing import NamedTuple

from amaranth.hdl import Array, Cat, Const, Mux, Signal, signed

from ..spec.config import TinyCLConfig
from ..spec.initial import init_bits
from ..spec.regmap import Command, ErrorCode, Phase, RegisterMap
from ..spec.update import DITHER_BITS
from .arith import index, less_than
from .lfsr import Lfsr
from .loss import LossGradient
from .memory import SampleMemory, sample_layout
from .window import SnakeWindow

__all__ = ["Blocks", "Controller", "INS_LOOKUP_CYCLES", "shared_blocks"]

#: Cycles INSERT waits for the registered class-balance test.
INS_LOOKUP_CYCLES = 3


class Blocks(NamedTuple):
    """The blocks that the control unit and every datapath use."""
    samples: SampleMemory
    window: SnakeWindow
    loss: LossGradient
    lfsr: Lfsr


def shared_blocks(m, cfg: TinyCLConfig, datapath, *, blackbox: bool = False) -> Blocks:
    """The sample memory with the snake window reading it, the loss unit and the LFSR, as
    submodules of ``m``; the LFSR's speed, the window's stages and the loss unit's divider
    are the datapath's."""
    m.submodules.window = window = SnakeWindow(cfg, pipelined=datapath.window_pipelined,
                                               tag_width=datapath.window_tag_width)
    m.submodules.samples = samples = SampleMemory(cfg, blackbox=blackbox, read_latency=window.read_latency)
    m.submodules.loss = loss = LossGradient(cfg, pipelined=datapath.loss_pipelined, blackbox=blackbox)
    m.submodules.lfsr = lfsr = Lfsr(cfg.seed, datapath.lfsr_steps_per_cycle)
    # The window reads the sample memory unless the control unit copies a sample.
    m.d.comb += [samples.rd_en.eq(window.rd_en), samples.rd_addr.eq(window.rd_addr),
                 window.rd_data.eq(samples.rd_data)]
    return Blocks(samples, window, loss, lfsr)


class Controller:
    """The control unit: the GDumb memory, the epoch loop, phase sequencing, abort, the
    register file.  A :class:`~tinycl_hdl.rtl.datapath.Datapath` computes the phases; its
    states join this FSM (:meth:`fsm`).

    Parameters
    ----------
    cfg : TinyCLConfig
    regmap : RegisterMap
    blocks : Blocks
        The blocks both datapaths share.
    datapath : Datapath
    ctr_limit : int
        Largest count of the generic loop counter ``ctr`` (the caller's longest wait too).
    sample_addr_width : int
        Word address width of a sample bank.
    count_memory : (callable, Value) or None
        ``None``: the class counts are registers (:attr:`counts`).  Otherwise they are words
        of a memory, ``(read, data)``: ``read(m, index)`` drives a read of class ``index``'s
        count, which ``data`` (the memory's output) shows the next cycle; the caller writes the
        two counts that an INSERT changes (:attr:`label_count` ``+ 1``, and when
        :attr:`evict`, :attr:`largest_count` ``- 1``) in the states after ``INS_FINISH``.
    """

    def __init__(self, cfg: TinyCLConfig, regmap: RegisterMap, blocks, datapath, ctr_limit: int,
                 sample_addr_width: int, count_memory=None):
        self.cfg, self.regmap, self.blocks, self.datapath = cfg, regmap, blocks, datapath
        self._count_read, self._count_data = count_memory or (None, None)
        self._looking_up = Signal(name="looking_up")
        dw, nc, slots = cfg.data_width, cfg.classes, cfg.slots
        # Host-visible registers.
        self.lr_shift = Signal(range(dw + 1), init=cfg.lr_shift, name="lr_shift")
        self.epochs = Signal(16, init=cfg.epochs, name="epochs")
        self.seed = Signal(31, init=cfg.seed, name="seed")
        self.label_reg = Signal(32, name="label_reg")
        self.command = Signal(Command, name="command")
        self.error = Signal(ErrorCode, name="error")
        # RESULT: a slot or a class, or all ones (INSERT refused), kept as an index and a flag.
        self.result = Signal(range(max(slots, nc)), name="result")
        self.result_none = Signal(name="result_none")
        self.kept = Signal(name="kept")
        self.size = Signal(range(slots + 1), name="size")
        if count_memory is None:
            self.counts = Array(Signal(range(slots + 1), name=f"count{c}") for c in range(nc))
        else:
            self.counts = None
            # Classes with a nonzero count, kept as the counts change.
            self.seen_classes = Signal(range(nc + 1), name="seen_classes")
        self.busy, self.abort = Signal(name="busy"), Signal(name="abort")
        # The interrupt: IRQ_STATUS bit 0 is set as a command finishes (``DONE``) and cleared
        # by the host writing it a one; ``irq`` is it ANDed with IRQ_ENABLE bit 0.  A set and
        # a clear in one cycle leave it set, so no completion is lost.
        self.irq_enable, self.irq_status = Signal(name="irq_enable"), Signal(name="irq_status")
        self.irq_set, self.irq_clear = Signal(name="irq_set"), Signal(name="irq_clear")
        # ``busy`` as the host port sees it: registered, so that no path runs from the
        # control state through a request's checks into the bus response in one cycle.
        # A request is decided at least three cycles after the one before it answered,
        # so a command's start is always seen; high in the cycle after reset.
        self.host_busy = Signal(init=1, name="host_busy")
        self.phase = Signal(Phase, init=Phase.OTHER, name="phase")
        # ``start`` (with ``start_cmd``) pulses the cycle after a command is accepted: the host
        # port's checks and the control unit's first state get a cycle each.
        self.clear_counters, self.start, self.start_cmd = Signal(name="clear_counters"), Signal(name="start"), \
            Signal(Command, name="start_cmd")
        # The checks a command makes of LABEL and EPOCHS, registered as they are written.
        self.label_bad = Signal(name="label_bad")
        self.epochs_zero = Signal(init=cfg.epochs == 0, name="epochs_zero")
        # The sample loop and INSERT.
        self.ctr = Signal(range(max(slots, ctr_limit, INS_LOOKUP_CYCLES) + 1), name="ctr")
        self.o = Signal(index(nc), name="o")
        self.slot = Signal(index(slots + 1), name="slot")
        self.sample_label = Signal(8, name="sample_label")
        self.epoch = Signal(16, name="epoch")
        self.idx = Signal(index(slots + 1), name="idx")
        self.vi, self.sh_i, self.sh_j = (Signal(index(slots), name=n) for n in ("vi", "sh_i", "sh_j"))
        self.target = Signal(index(slots), name="target")
        self.largest = Signal(index(nc), name="largest")
        self.largest_count = Signal(range(slots + 1), name="largest_count")
        self.victim, self.matches = Signal(index(slots), name="victim"), Signal(index(slots), name="matches")
        self.evict, self.scan_hit, self.scan_victim = Signal(name="evict"), Signal(name="scan_hit"), \
            Signal(name="scan_victim")
        self.copy_w = Signal(index(sample_layout(cfg)["slot_words"]), name="copy_w")
        # INS_COPY's cycle of a word: 0 reads it from the staging slot, the sample memory's
        # read latency (:attr:`SampleMemory.READ_LATENCIES`) writes it into the target slot.
        self.copy_phase = Signal(range(max(SampleMemory.READ_LATENCIES) + 1), name="copy_phase")
        self.copy_waddr = Signal(sample_addr_width, name="copy_waddr")
        self.label_full = Signal(name="label_full")
        self.label_count, self.label_new = Signal(range(slots + 1), name="label_count"), Signal(name="label_new")
        # TRAIN and INFER.
        self.from_scratch, self.is_infer = Signal(name="from_scratch"), Signal(name="is_infer")
        # A stochastic update's step seed: the top bits of the draw each training step makes
        # as it fetches its sample, kept from the loss gradient to the step's last update.
        self.stochastic = cfg.update_rounding == "stochastic"
        # The lane array prefetches the next sample (:meth:`prefetch`) so that its forward pass
        # starts while the conv update drains; the serial datapath's one lane has no such
        # overlap to feed, and the UP5K it targets has no room for the fetcher.
        self.prefetching = cfg.datapath == "array"
        self.step_seed = Signal(DITHER_BITS, name="step_seed")
        # The next sample of the epoch, fetched while the present one trains (``prefetch``).
        self.next_slot, self.next_label = Signal.like(self.slot, name="next_slot"), Signal(8, name="next_label")
        self.prefetched = Signal(name="prefetched")
        self.best = Signal(signed(dw), name="best")
        # Scans for the first largest word of a memory (INS_LARGEST, ARGMAX): the index of
        # the word read the cycle before, and whether there is one.
        self.candidate_o, self.candidate_valid = Signal(index(nc), name="candidate_o"), Signal(name="candidate_valid")

    # -- GDumb ------------------------------------------------------------------------------

    def balance_test(self, m):
        """GDumb's class-balance test over three registered steps, which ``INS_LOOKUP`` waits
        out (:data:`INS_LOOKUP_CYCLES`).  With registered counts: the label's count and the
        classes seen so far; the classes seen with the label's; whether the label already
        holds its share.  With counts in memory: the read; the label's count; the share test
        against :attr:`seen_classes`."""
        nc, slots = self.cfg.classes, self.cfg.slots
        threshold = Array(Const(slots // max(1, s), range(slots + 1)) for s in range(nc + 2))
        if self.counts is None:
            # The memory shows the label's count from INS_LOOKUP's second cycle; it is kept
            # after, when the memory shows other counts.
            with m.If(self._looking_up):
                m.d.sync += [self.label_count.eq(self._count_data), self.label_new.eq(self._count_data == 0)]
            m.d.sync += self.label_full.eq(self.label_count >= threshold[self.seen_classes + self.label_new])
            return
        seen_before = Signal(range(nc + 1), name="seen_before")
        seen = Signal(range(nc + 2), name="seen")
        count_of_label = self.counts[self.label_reg[:8]]
        m.d.sync += [seen_before.eq(sum((c != 0 for c in self.counts), Const(0, range(nc + 1)))),
                     self.label_count.eq(count_of_label), self.label_new.eq(count_of_label == 0),
                     seen.eq(seen_before + self.label_new),
                     self.label_full.eq(self.label_count >= threshold[seen])]

    @staticmethod
    def below(lfsr, n):
        """``Lfsr.below(n)`` of the last draw."""
        return (lfsr.state.shift_right(16) * n).shift_right(16)

    def initial_weight(self, m, lfsr, dense):
        """``Lfsr.signed_bits`` of the last draw, for a dense (``dense``) or a conv weight."""
        cfg = self.cfg
        conv_bits, dense_bits = init_bits(cfg, cfg.conv_fan_in), init_bits(cfg, cfg.dense_in)
        drawn = Signal(signed(cfg.data_width), name="drawn")
        m.d.comb += drawn.eq(Mux(dense,
                                 lfsr.state[32 - dense_bits:] - (1 << (dense_bits - 1)),
                                 lfsr.state[32 - conv_bits:] - (1 << (conv_bits - 1))))
        return drawn

    def wait(self, m, cycles, next_state):
        """Stay ``cycles`` cycles in this state (counting with ``ctr``), then go on."""
        with m.If(self.ctr == cycles - 1):
            m.d.sync += self.ctr.eq(0)
            m.next = next_state
        with m.Else():
            m.d.sync += self.ctr.eq(self.ctr + 1)

    def insert_states(self, m, samples, labels, lfsr, finish_next="DONE"):
        """``INS_LOOKUP`` .. ``INS_FINISH``: GDumb's greedy class-balanced insertion of the
        staged sample (see ``docs/architecture.md``); ``INS_FINISH`` goes on to ``finish_next``."""
        s, cfg, k = self, self.cfg, self.cfg.kernel
        slay = sample_layout(cfg)
        with m.State("INS_LOOKUP"):
            if s.counts is None:
                s._count_read(m, s.label_reg[:8])
                m.d.comb += s._looking_up.eq(1)
            s.wait(m, INS_LOOKUP_CYCLES, "INS_CHECK")
        with m.State("INS_CHECK"):
            m.d.sync += [s.evict.eq(0), s.o.eq(0), s.largest.eq(0), s.largest_count.eq(0),
                         s.candidate_valid.eq(0)]
            with m.If(less_than(s.size, cfg.slots)):
                m.d.sync += [s.target.eq(s.size), s.copy_w.eq(0), s.copy_phase.eq(0)]
                m.next = "INS_COPY"
            with m.Elif(s.label_full):
                m.d.sync += [s.kept.eq(0), s.result_none.eq(1)]
                m.next = "DONE"
            with m.Else():
                m.d.sync += s.evict.eq(1)
                m.next = "INS_LARGEST"
        with m.State("INS_LARGEST"):
            if s.counts is None:
                # The counts are read one per cycle, each compared as the next is read.
                s._count_read(m, s.o)
                count, last = s._scan(m, s._count_data)
                with m.If(s.candidate_valid & (count > s.largest_count)):
                    m.d.sync += [s.largest.eq(s.candidate_o), s.largest_count.eq(count)]
            else:
                with m.If(s.counts[s.o] > s.largest_count):
                    m.d.sync += [s.largest.eq(s.o), s.largest_count.eq(s.counts[s.o])]
                last = s.o == cfg.classes - 1
                with m.If(~last):
                    m.d.sync += s.o.eq(s.o + 1)
            with m.If(last):
                m.d.comb += lfsr.draw.eq(1)
                m.next = "INS_VICTIM"
        with m.State("INS_VICTIM"):
            with m.If(lfsr.ready):
                m.d.sync += [s.victim.eq(s.below(lfsr, s.largest_count)), s.matches.eq(0), s.ctr.eq(0)]
                m.next = "INS_SCAN_READ"
        with m.State("INS_SCAN_READ"):
            m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(s.ctr)]
            m.next = "INS_SCAN_COMPARE"
        with m.State("INS_SCAN_COMPARE"):
            # Compare the label read into a register: the memory's output goes no further.
            m.d.sync += [s.scan_hit.eq(labels.r_data == s.largest), s.scan_victim.eq(s.matches == s.victim)]
            m.next = "INS_SCAN_CHECK"
        with m.State("INS_SCAN_CHECK"):
            with m.If(s.scan_hit):
                with m.If(s.scan_victim):
                    m.d.sync += [s.target.eq(s.ctr), s.copy_w.eq(0), s.copy_phase.eq(0)]
                    m.next = "INS_COPY"
                with m.Else():
                    m.d.sync += [s.matches.eq(s.matches + 1), s.ctr.eq(s.ctr + 1)]
                    m.next = "INS_SCAN_READ"
            with m.Else():
                m.d.sync += s.ctr.eq(s.ctr + 1)
                m.next = "INS_SCAN_READ"
        latency = samples.read_latency
        if latency not in SampleMemory.READ_LATENCIES:
            raise ValueError(f"the sample memory's read latency must be one of {SampleMemory.READ_LATENCIES}, "
                             f"not {latency!r}")
        with m.State("INS_COPY"):
            # The banks are single-port (SPRAM on an iCE40): read a staging word, then write
            # it into the slot when the memory shows it, never both in one cycle.
            with m.If(s.copy_phase == 0):
                m.d.comb += samples.rd_en.eq(1)
                for b in range(k):
                    m.d.comb += samples.rd_addr[b].eq(cfg.slots * slay["slot_words"] + s.copy_w)
                m.d.sync += [s.copy_phase.eq(1), s.copy_waddr.eq(s.target * slay["slot_words"] + s.copy_w)]
            with m.Elif(s.copy_phase != latency):
                m.d.sync += s.copy_phase.eq(s.copy_phase + 1)
            with m.Else():
                for b in range(k):
                    m.d.comb += [samples.wr_en[b].eq(1), samples.wr_addr[b].eq(s.copy_waddr),
                                 samples.wr_data[b].eq(samples.rd_data[b])]
                m.d.sync += [s.copy_phase.eq(0), s.copy_w.eq(s.copy_w + 1)]
                with m.If(s.copy_w == slay["slot_words"] - 1):
                    m.next = "INS_FINISH"
        with m.State("INS_FINISH"):
            m.d.comb += [labels.w_en.eq(1), labels.w_addr.eq(s.target), labels.w_data.eq(s.label_reg[:8])]
            with m.If(~s.evict):
                m.d.sync += s.size.eq(s.size + 1)
            if s.counts is None:
                # The caller writes the counts; the classes seen change with them.
                gone = s.evict & (s.largest_count == 1)
                m.d.sync += s.seen_classes.eq(s.seen_classes + s.label_new - gone)
            else:
                with m.If(s.evict):
                    m.d.sync += s.counts[s.largest].eq(s.counts[s.largest] - 1)
                m.d.sync += s.counts[s.label_reg[:8]].eq(s.counts[s.label_reg[:8]] + 1)
            m.d.sync += [s.kept.eq(1), s.result.eq(s.target), s.result_none.eq(0)]
            m.next = finish_next

    # -- the epoch loop ----------------------------------------------------------------------

    def epoch_states(self, m, order, labels, lfsr, check_abort, on_order=(), on_label=()):
        """``ORDER_INIT`` .. ``SAMPLE_LABEL``: the identity order, per epoch a Fisher-Yates
        shuffle from the LFSR, then per sample its slot and label; ``SAMPLE_LABEL`` also runs
        ``on_label`` and goes to ``CF_START``; ``ORDER_INIT`` runs ``on_order``.  ``SAMPLE_NEXT`` (the caller's) returns to
        ``SAMPLE_FETCH``; the last sample of the last epoch leads to ``DONE``."""
        s = self
        with m.State("ORDER_INIT"):
            m.d.sync += [s.epoch.eq(0), *on_order]
            with m.If(s.ctr == s.size):
                m.d.sync += s.ctr.eq(0)
                m.next = "EPOCH_START"
            with m.Else():
                m.d.comb += [order.w_en.eq(1), order.w_addr.eq(s.ctr), order.w_data.eq(s.ctr)]
                m.d.sync += s.ctr.eq(s.ctr + 1)
        with m.State("EPOCH_START"):
            check_abort()
            with m.If(~s.abort):
                with m.If(s.epoch == s.epochs):
                    m.d.sync += s.ctr.eq(0)
                    m.next = "TRAIN_DRAIN"
                with m.Else():
                    m.d.sync += [s.sh_i.eq(s.size - 1), s.epoch.eq(s.epoch + 1)]
                    m.next = "SH_DRAW"
        with m.State("SH_DRAW"):
            with m.If(less_than(s.size, 2) | (s.sh_i == 0)):
                m.d.sync += [s.idx.eq(0), s.phase.eq(Phase.CONV_FWD)]
                m.next = "SAMPLE_FETCH"
            with m.Else():
                m.d.comb += lfsr.draw.eq(1)
                m.next = "SH_J"
        with m.State("SH_J"):
            with m.If(lfsr.ready):
                m.d.comb += [order.r_en.eq(1), order.r_addr.eq(s.sh_i)]
                m.d.sync += s.sh_j.eq(s.below(lfsr, s.sh_i + 1))
                m.next = "SH_READ_J"
        with m.State("SH_READ_J"):
            m.d.comb += [order.r_en.eq(1), order.r_addr.eq(s.sh_j)]
            m.d.sync += s.vi.eq(order.r_data)
            m.next = "SH_WRITE_I"
        with m.State("SH_WRITE_I"):
            m.d.comb += [order.w_en.eq(1), order.w_addr.eq(s.sh_i), order.w_data.eq(order.r_data)]
            m.next = "SH_WRITE_J"
        with m.State("SH_WRITE_J"):
            m.d.comb += [order.w_en.eq(1), order.w_addr.eq(s.sh_j), order.w_data.eq(s.vi)]
            m.d.sync += s.sh_i.eq(s.sh_i - 1)
            m.next = "SH_DRAW"
        with m.State("SAMPLE_FETCH"):
            check_abort()
            with m.If(~s.abort):
                with m.If(s.idx == s.size):
                    m.d.sync += s.phase.eq(Phase.OTHER)
                    m.next = "EPOCH_START"
                with m.Else():
                    m.d.comb += [order.r_en.eq(1), order.r_addr.eq(s.idx)]
                    if s.stochastic:
                        # The LFSR is idle: the last draw (the shuffle's or the previous
                        # step's) ended many cycles ago.
                        m.d.comb += lfsr.draw.eq(1)
                    m.next = "SAMPLE_SLOT"
        with m.State("SAMPLE_SLOT"):
            m.d.sync += s.slot.eq(order.r_data)
            m.next = "SAMPLE_LABEL_READ"
        with m.State("SAMPLE_LABEL_READ"):
            # From the registered slot: one memory's output never drives another's address.
            m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(s.slot)]
            m.next = "SAMPLE_LABEL"
        with m.State("SAMPLE_LABEL"):
            m.d.sync += [s.sample_label.eq(labels.r_data), *on_label]
            m.next = "CF_START"

    def prefetch(self, m, order, labels, lfsr):
        """Fetch the next sample of the epoch (its slot, its label and, for stochastic updates,
        its step's draw) while the present one is in its backward passes, so that
        ``SAMPLE_NEXT`` goes straight on to it (:attr:`prefetched`).  The backward passes come
        after the loss gradient, where the present step took its seed from the LFSR, so the
        draws keep the golden model's order; the order and label memories are not used then."""
        s = self
        backward = ((s.phase == Phase.DENSE_BWD) | (s.phase == Phase.CONV_BWD)) & ~s.abort
        with m.FSM(name="prefetch"):
            with m.State("IDLE"):
                with m.If(backward & ~s.prefetched & (s.idx + 1 != s.size) & lfsr.ready):
                    m.d.comb += [order.r_en.eq(1), order.r_addr.eq(s.idx + 1)]
                    if s.stochastic:
                        m.d.comb += lfsr.draw.eq(1)
                    m.next = "SLOT"
            with m.State("SLOT"):
                m.d.sync += s.next_slot.eq(order.r_data)
                m.next = "LABEL_READ"
            with m.State("LABEL_READ"):
                m.d.comb += [labels.r_en.eq(1), labels.r_addr.eq(s.next_slot)]
                m.next = "LABEL"
            with m.State("LABEL"):
                m.d.sync += [s.next_label.eq(labels.r_data), s.prefetched.eq(~s.abort)]
                m.next = "IDLE"

    # -- after the logits -------------------------------------------------------------------

    def logits_ready(self, m, loss, cycles):
        """After ``cycles`` cycles (counted with ``ctr``) the logits are written: then
        :meth:`after_logits`."""
        s = self
        with m.If(s.ctr != cycles - 1):
            m.d.sync += s.ctr.eq(s.ctr + 1)
        with m.Else():
            s.after_logits(m, loss)

    def after_logits(self, m, loss):
        """In the cycle the last logit is written (or later): ``INFER`` goes on to ``ARGMAX``, a
        training step to ``LOSS_WAIT`` with the loss unit started."""
        s = self
        m.d.sync += [s.ctr.eq(0), s.o.eq(0)]
        with m.If(s.is_infer):
            m.d.sync += [s.result.eq(0), s.result_none.eq(0), s.candidate_valid.eq(0), s.phase.eq(Phase.OTHER)]
            m.next = "ARGMAX"
        with m.Else():
            m.d.comb += loss.start.eq(1)
            m.d.sync += s.phase.eq(Phase.LOSS)
            m.next = "LOSS_WAIT"

    def argmax_state(self, m, loss):
        """``ARGMAX``: the first largest logit's class into ``RESULT``.  The logits are read
        from the loss unit's memory one per cycle, each compared as the next is read."""
        s = self
        with m.State("ARGMAX"):
            m.d.comb += [loss.rd_en.eq(1), loss.rd_delta.eq(0), loss.rd_index.eq(s.o)]
            candidate, last = s._scan(m, loss.rd_data)
            with m.If(s.candidate_valid & ((s.candidate_o == 0) | (candidate > s.best))):
                m.d.sync += [s.best.eq(candidate), s.result.eq(s.candidate_o)]
            with m.If(last):
                m.next = "DONE"

    def _scan(self, m, word):
        """One step of a scan over the classes (``o`` from 0, ``candidate_valid`` clear at the
        start): ``word``, a memory output, is class ``candidate_o``'s word when
        ``candidate_valid``.  Returns it and whether it is the last class's."""
        s, nc = self, self.cfg.classes
        m.d.sync += [s.candidate_o.eq(s.o), s.candidate_valid.eq(1)]
        with m.If(s.o != nc - 1):
            m.d.sync += s.o.eq(s.o + 1)
        return word, s.candidate_valid & (s.candidate_o == nc - 1)


    # -- the FSM ------------------------------------------------------------------------------

    def check_abort(self, m):
        """In a state that an ABORT may end: cancel the window, the loss unit and the
        datapath's sweeps, then drain."""
        with m.If(self.abort):
            self.datapath.on_cancel(m)
            m.d.comb += [self.blocks.window.cancel.eq(1), self.blocks.loss.cancel.eq(1)]
            m.next = "ABORT_DRAIN"

    def drain(self, m, next_state):
        """Wait until the operations issued so far are written back, then go on."""
        self.wait(m, self.datapath.drain_cycles, next_state)

    def fsm(self, m):
        """The control FSM, with the datapath's states in it; returns the FSM."""
        s, dp, blocks = self, self.datapath, self.blocks
        s.balance_test(m)
        with m.FSM(name="control", init=dp.reset_state or "IDLE") as control:
            dp.reset_states(m, s)
            with m.State("IDLE"):
                with m.If(s.start):
                    m.d.sync += [s.ctr.eq(0), s.abort.eq(0)]
                    dp.on_start(m, s)
                    with m.Switch(s.start_cmd):
                        with m.Case(Command.INSERT):
                            m.next = "INS_LOOKUP"
                        with m.Case(Command.TRAIN, Command.TRAIN_KEEP):
                            m.d.sync += [s.from_scratch.eq(s.start_cmd == Command.TRAIN), s.is_infer.eq(0)]
                            dp.on_train(m, s)
                        with m.Case(Command.INFER):
                            m.d.sync += [s.is_infer.eq(1), s.slot.eq(s.cfg.slots)]
                            dp.on_infer(m, s)
            s.insert_states(m, blocks.samples, dp.labels, blocks.lfsr, finish_next=dp.insert_next)
            dp.insert_finish_states(m, s)
            dp.init_states(m, s)
            s.epoch_states(m, dp.order, dp.labels, blocks.lfsr, lambda: s.check_abort(m), on_order=dp.on_order(),
                           on_label=dp.on_label())
            dp.conv_forward(m, s)
            dp.dense_forward(m, s)
            s.argmax_state(m, blocks.loss)
            with m.State("LOSS_WAIT"):
                s.check_abort(m)
                # The dense backward pass reads delta[o] no sooner than o cycles after it starts.
                with m.If(~s.abort & blocks.loss.delta_ready):
                    m.d.sync += [s.phase.eq(Phase.DENSE_BWD), s.step_seed.eq(blocks.lfsr.state[32 - DITHER_BITS:])]
                    dp.on_loss_done(m, s)
                    m.next = "DB_RUN"
            dp.dense_backward(m, s)
            dp.conv_backward(m, s)
            with m.State("SAMPLE_NEXT"):
                # The next sample's fetch of its slot and label counts towards that sample.
                m.d.sync += [s.idx.eq(s.idx + 1), s.phase.eq(Phase.CONV_FWD)]
                dp.count_sample(m)
                if s.prefetching:
                    with m.If(s.prefetched):
                        m.d.sync += [s.slot.eq(s.next_slot), s.sample_label.eq(s.next_label), s.prefetched.eq(0),
                                     *dp.on_label()]
                        m.next = "CF_START"
                    with m.Else():
                        m.next = "SAMPLE_FETCH"
                else:
                    m.next = "SAMPLE_FETCH"
            with m.State("ABORT_DRAIN"):
                s.drain(m, "DONE")
            with m.State("TRAIN_DRAIN"):
                # The last step's updates may still be in the datapath's pipeline.
                s.drain(m, "DONE")
            with m.State("DONE"):
                m.d.comb += s.irq_set.eq(1)
                m.d.sync += [s.abort.eq(0), s.phase.eq(Phase.OTHER)]
                dp.on_done(m)
                m.next = "IDLE"
        if s.prefetching:
            with m.If(control.ongoing("DONE")):
                m.d.sync += s.prefetched.eq(0)
            s.prefetch(m, dp.order, dp.labels, blocks.lfsr)
        m.d.comb += s.busy.eq(~control.ongoing("IDLE"))
        m.d.sync += s.irq_status.eq(s.irq_status & ~s.irq_clear | s.irq_set)
        return control

    # -- the register file -----------------------------------------------------------------------

    def window_fields(self, addr, window):
        """``{field: (address bits, count)}`` of a register-map window."""
        out, shift = {}, 2
        for name, bits, count in window.fields:
            out[name] = (addr[shift:shift + bits], count)
            shift += bits
        return out

    def in_window(self, addr, window, flds):
        """``addr`` falls in ``window`` and every field is below its count."""
        size_bits = (self.regmap.window_size(window) - 1).bit_length()
        ok = addr.shift_right(size_bits) == (window.base >> size_bits)
        for sig, count in flds.values():
            if count != 1 << len(sig):
                ok = ok & less_than(sig, count)
        return ok

    def decode_writes(self, m, addr, value):
        """First decode cycle of a request: which writable register, and the value checks
        (32-bit comparisons).  Returns the registered flags."""
        regs, dw = self.regmap.by_name, self.cfg.data_width
        names = ("COMMAND", "LR_SHIFT", "EPOCHS", "SEED", "LABEL", "IRQ_ENABLE", "IRQ_STATUS") + \
            (("LFSR",) if self.regmap.restorable else ())
        flags = {name: Signal(name=f"to_{name.lower()}") for name in names}
        m.d.sync += [flag.eq(addr == regs[name].offset) for name, flag in flags.items()]
        m.d.sync += self.start.eq(0)              # a pulse (write_request sets it)
        for name in ("bad_command", "lr_ok", "epochs_ok", "data_ok", "nonzero"):
            flags[name] = Signal(name=name)
        # A weight or bias fits when the bits above its sign bit repeat it.
        top = value[dw - 1:]
        m.d.sync += [flags["bad_command"].eq(~less_than(value, max(Command) + 1) | (value == Command.NONE)),
                     flags["lr_ok"].eq(less_than(value, dw + 1)), flags["epochs_ok"].eq(less_than(value, 1 << 16)),
                     flags["data_ok"].eq((top == 0) | (top == (1 << len(top)) - 1)), flags["nonzero"].eq(value.any())]
        return flags

    def write_request(self, m, axi, lfsr, flags, to_stage, stage, stage_regs, done_resp, error_resp,
                      datapath_writes=None):
        """Inside the host port's ``IDLE`` state, for a decoded write: command, register and
        staging writes; a staging write goes on to ``STAGE``.  ``datapath_writes(m)``, if
        given, continues the ``If``/``Elif`` chain with the datapath's writable registers and
        windows (the weights of a restorable map)."""
        s = self
        busy, value = s.host_busy, axi.req_wdata
        stage_c, stage_row, stage_col, stage_data = stage_regs
        with m.If(axi.req_wstrb != 0xF):
            m.d.comb += [done_resp.eq(1), error_resp.eq(1)]
        with m.Elif(flags["COMMAND"]):
            m.d.comb += done_resp.eq(1)
            cmd = value[:4]
            running_abortable = (s.command == Command.TRAIN) | (s.command == Command.TRAIN_KEEP) | \
                                (s.command == Command.INFER)
            with m.If(flags["bad_command"]):
                m.d.sync += s.error.eq(ErrorCode.BAD_COMMAND)
            with m.Elif(cmd == Command.ABORT):
                with m.If(busy & running_abortable):
                    m.d.sync += s.abort.eq(1)
                m.d.sync += s.error.eq(ErrorCode.NONE)
            with m.Elif(busy):
                m.d.sync += s.error.eq(ErrorCode.BUSY)
            with m.Elif(cmd == Command.CLEAR_COUNTERS):
                m.d.comb += s.clear_counters.eq(1)
                m.d.sync += s.error.eq(ErrorCode.NONE)
            with m.Elif((cmd == Command.INSERT) & s.label_bad):
                m.d.sync += s.error.eq(ErrorCode.BAD_LABEL)
            with m.Elif(((cmd == Command.TRAIN) | (cmd == Command.TRAIN_KEEP)) & s.epochs_zero):
                m.d.sync += s.error.eq(ErrorCode.BAD_EPOCHS)
            with m.Else():
                m.d.sync += [s.start.eq(1), s.start_cmd.eq(cmd)]
                m.d.sync += [s.command.eq(cmd), s.error.eq(ErrorCode.NONE)]
        with m.Elif(flags["LR_SHIFT"]):
            m.d.comb += [done_resp.eq(1), error_resp.eq(busy | ~flags["lr_ok"])]
            with m.If(~busy & flags["lr_ok"]):
                m.d.sync += s.lr_shift.eq(value)
        with m.Elif(flags["EPOCHS"]):
            m.d.comb += [done_resp.eq(1), error_resp.eq(busy | ~flags["epochs_ok"])]
            with m.If(~busy & flags["epochs_ok"]):
                m.d.sync += [s.epochs.eq(value), s.epochs_zero.eq(value[:16] == 0)]
        with m.Elif(flags["SEED"]):
            m.d.comb += [done_resp.eq(1), error_resp.eq(busy | value[31])]
            with m.If(~busy & ~value[31]):
                m.d.sync += s.seed.eq(value)
                m.d.comb += [lfsr.load.eq(1), lfsr.seed_in.eq(value)]
        with m.Elif(flags["LABEL"]):
            m.d.comb += [done_resp.eq(1), error_resp.eq(busy)]
            with m.If(~busy):
                m.d.sync += [s.label_reg.eq(value), s.label_bad.eq(~less_than(value, s.cfg.classes))]
        with m.Elif(flags["IRQ_ENABLE"]):
            # The interrupt registers are the host's at any time, busy or not.
            m.d.comb += done_resp.eq(1)
            m.d.sync += s.irq_enable.eq(value[0])
        with m.Elif(flags["IRQ_STATUS"]):
            m.d.comb += [done_resp.eq(1), s.irq_clear.eq(value[0])]
        if "LFSR" in flags:
            with m.Elif(flags["LFSR"]):
                m.d.comb += [done_resp.eq(1), error_resp.eq(busy | ~flags["nonzero"])]
                with m.If(~busy & flags["nonzero"]):
                    m.d.comb += [lfsr.load_state.eq(1), lfsr.state_in.eq(value)]
        if datapath_writes is not None:
            datapath_writes(m)
        with m.Elif(to_stage & ~busy):
            m.d.sync += [stage_c.eq(0), stage_row.eq(stage["row"][0]), stage_col.eq(stage["col"][0]),
                         stage_data.eq(value)]
            m.next = "STAGE"
        with m.Else():
            m.d.comb += [done_resp.eq(1), error_resp.eq(1)]

    def stage_state(self, m, samples, stage_regs, done_resp):
        """``STAGE``: write the staged pixel's channels, one per cycle, then answer."""
        stage_c, stage_row, stage_col, stage_data = stage_regs
        # The pixel port's coordinates and data come straight from registers (only its enable
        # from the state), so the sample memory's address arithmetic starts at a flip-flop.
        m.d.comb += [samples.px_slot.eq(self.cfg.slots), samples.px_chan.eq(stage_c),
                     samples.px_row.eq(stage_row), samples.px_col.eq(stage_col),
                     samples.px_data.eq(stage_data.word_select(stage_c, 8))]
        with m.State("STAGE"):
            m.d.comb += samples.px_en.eq(1)
            with m.If(stage_c == self.cfg.in_c - 1):
                m.d.comb += done_resp.eq(1)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += stage_c.eq(stage_c + 1)
