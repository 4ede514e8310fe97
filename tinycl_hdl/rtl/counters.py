"""Performance counters kept in block RAM.

Thirty-two-bit counters in flip-flops cost an incrementer, 32 flip-flops and a
32-bit input of the register read multiplexer each: about a hundred iCE40
logic cells apiece.  :class:`CounterBank` keeps the counts in one memory and
each counter's recent events in a small *pending* count; every cycle it folds
one counter's pending count into memory, round robin.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .memory import Sram

__all__ = ["CounterBank"]


class CounterBank(wiring.Component):
    """``count`` event counters of ``width`` bits in one memory.

    Parameters
    ----------
    count : int
        Number of counters.
    max_increment : int
        Largest increment of one counter in one cycle.
    width : int
        Bits of a counter (it wraps).
    blackbox : bool
        The memory as an SRAM macro.

    Attributes
    ----------
    inc : In(ArrayLayout(range(max_increment + 1), count))
        This cycle's increment of every counter.
    clear : In(1)
        Zero every counter; takes ``count + 1`` cycles, during which :attr:`busy` is high
        and no increment may arrive.  Reset does the same.
    busy : Out(1)
    rd_en, rd_index : In
        Read counter ``rd_index``; hold both until :attr:`rd_ready`.
    rd_ready : Out(1)
        The read is taken (at the earliest the cycle after ``rd_en`` rises: the request is
        registered first).
    rd_valid, rd_data : Out
        Two cycles after ``rd_ready``: the counter, with every increment up to and including
        the cycle of ``rd_ready`` (``tests/rtl/test_counters.py``).

    A counter is folded into memory at least once every ``2 * count`` cycles as long as
    reads are at least two cycles apart (the host port's are), so its pending count never
    exceeds :attr:`pending_width` bits.
    """

    def __init__(self, count: int, max_increment: int, width: int = 32, *, blackbox: bool = False):
        for name, value in (("count", count), ("max_increment", max_increment), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self._count, self._max_increment, self._width, self._blackbox = count, max_increment, width, blackbox
        super().__init__({
            "inc": In(data.ArrayLayout(range(max_increment + 1), count)),
            "clear": In(1), "busy": Out(1),
            "rd_en": In(1), "rd_index": In(range(count)), "rd_ready": Out(1),
            "rd_valid": Out(1), "rd_data": Out(width),
        })

    @property
    def count(self) -> int:
        return self._count

    @property
    def pending_width(self) -> int:
        """Bits of a pending count: the increments of two service rounds, and a margin."""
        return ((2 * self._count + 2) * self._max_increment).bit_length()

    def elaborate(self, platform):
        m = Module()
        n, width = self._count, self._width
        m.submodules.mem = mem = Sram(width, n, blackbox=self._blackbox)
        pending = Array(Signal(self.pending_width, name=f"pending{i}") for i in range(n))
        service = Signal(range(n))            # the counter folded next
        # Reset clears the memory too (after power-up as after a reset in the middle of a run).
        clearing, clear_drain, clear_index = Signal(init=1), Signal(init=1), Signal(range(n))
        # Stage B: the word read in the previous cycle, for a fold or for a read.
        b_fold, b_read, b_index = Signal(), Signal(), Signal(range(n))
        taken = Signal(self.pending_width)
        in_flight = Signal()
        # A read request is registered first, so that the grant (and with it whether this cycle
        # folds) comes from flip-flops.  A read may not take the address written this cycle
        # (the RAM leaves that read open).
        req, req_index = Signal(), Signal(range(n))
        with m.If(self.rd_en & ~req & ~in_flight):
            m.d.sync += [req.eq(1), req_index.eq(self.rd_index)]
        grant = Signal()
        m.d.comb += [grant.eq(req & ~clearing & ~(b_fold & (b_index == req_index))),
                     self.rd_ready.eq(grant), self.busy.eq(clearing)]
        fold = Signal()
        m.d.comb += fold.eq(~clearing & ~grant)
        with m.If(grant):
            # The pending count as it is after this cycle (a read folds nothing), registered:
            # stage B then adds a register to the word read, as a fold does.
            m.d.comb += [mem.r_en.eq(1), mem.r_addr.eq(req_index)]
            m.d.sync += [req.eq(0), b_fold.eq(0), b_read.eq(1), b_index.eq(req_index), in_flight.eq(1),
                         taken.eq(pending[req_index] + self.inc[req_index])]
        with m.Elif(fold):
            m.d.comb += [mem.r_en.eq(1), mem.r_addr.eq(service)]
            m.d.sync += [b_fold.eq(1), b_read.eq(0), b_index.eq(service), taken.eq(pending[service]),
                         service.eq(Mux(service == n - 1, 0, service + 1))]
        with m.Else():
            m.d.sync += [b_fold.eq(0), b_read.eq(0)]
        for i in range(n):
            with m.If(clearing):
                m.d.sync += pending[i].eq(0)
            with m.Else():
                m.d.sync += pending[i].eq(Mux(fold & (service == i), 0, pending[i]) + self.inc[i])
        total = Signal(width)
        m.d.comb += total.eq(mem.r_data + taken)
        with m.If(b_fold):
            m.d.comb += [mem.w_en.eq(1), mem.w_addr.eq(b_index), mem.w_data.eq(total)]
        m.d.sync += self.rd_valid.eq(b_read)
        with m.If(b_read):
            m.d.sync += [self.rd_data.eq(total), in_flight.eq(0)]
        # Clearing: one cycle for a fold in flight to land, then a zero per counter.
        with m.If(self.clear & ~clearing):
            m.d.sync += [clearing.eq(1), clear_drain.eq(1), clear_index.eq(0)]
        with m.If(clearing):
            with m.If(clear_drain):
                m.d.sync += clear_drain.eq(0)
            with m.Else():
                m.d.comb += [mem.w_en.eq(1), mem.w_addr.eq(clear_index), mem.w_data.eq(0)]
                with m.If(clear_index == n - 1):
                    m.d.sync += clearing.eq(0)
                with m.Else():
                    m.d.sync += clear_index.eq(clear_index + 1)
        return m
