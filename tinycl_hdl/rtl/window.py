"""Snake-like sliding-window address generator and window registers.

Output positions are visited row 0 left to right, row 1 right to left, and so
on (``window="snake"``), or every row left to right (``"raster"``).  Each
input channel has its own ``K x K`` window registers.  A *fetch* reads the
``K`` pixels that enter one channel's window, one per bank of the
:class:`~tinycl_hdl.rtl.memory.SampleMemory`:

* a horizontal step reads the entering column and shifts the window left
  (moving right) or right (moving left);
* the downward step of the snake reads the entering row and shifts up;
* the first position of a sweep (and, in raster order, of every row) fills the
  window with ``K`` column fetches.

Within a position the channels ``chan_first .. chan_last`` are fetched one per
cycle, so the generator produces one output position per channel per cycle in
steady state.  Pixel reads per channel sweep are ``K*K + K*(Ho*Wo - 1)`` in
snake order and ``Ho*(K*K + K*(Wo - 1))`` in raster order; :attr:`reads`
counts them.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from ..spec.window import raster_reads, snake_reads, visit_order
from .arith import index
from .memory import SampleMemory, sample_layout

__all__ = ["SnakeWindow", "SampleWindow", "snake_reads", "raster_reads", "visit_order"]


# Fetch kinds
_COL_LEFT = 0    # entering column, shift left (fill, move right)
_COL_RIGHT = 1   # entering column, shift right (move left)
_ROW_UP = 2      # entering row, shift up (move down)


class SnakeWindow(wiring.Component):
    """Window generator for one sample; drives the sample memory's read ports.

    Parameters
    ----------
    cfg : TinyCLConfig
        Gives the input and kernel sizes and the order (``cfg.window``).
    pipelined : bool
        Stages for a fast clock (75 MHz on an ECP5): the banks' rows and columns get a
        stage of their own, and the pixels read come from a registered sample memory
        (:attr:`read_latency`) before they enter the window.  Without (30 MHz on an iCE40
        UP5K), :attr:`latency` is two cycles shorter.
    tag_width : int
        Width of :attr:`tag`.

    Attributes
    ----------
    start : In(1)
        Start a sweep (ignored while :attr:`busy`).  A sweep may start in the cycle after the
        last fetch of the one before, whose windows are still in the pipeline: the windows
        of consecutive sweeps follow each other with only the fill between them.
    tag : In(tag_width)
        A value of the caller's, taken at ``start`` and shown on :attr:`out_tag` with every
        window of the sweep (the group of filters a sweep serves, say).
    slot : In
        Sample slot to sweep (``slots`` is the staging buffer).
    chan_first, chan_last : In
        Channels fetched at every position (the conv forward pass uses all,
        a weight-gradient sweep one).
    cancel : In(1)
        Stop the sweep; no further output.
    advance : In(1)
        Make this cycle's fetch (default high: one fetch per cycle).  A consumer that
        takes several cycles per window holds it low between fetches, so that every
        window stays on :attr:`window` until it has been used.
    busy : Out(1)
        A sweep is fetching.
    rd_en, rd_addr : Out
        Bank reads (to :class:`SampleMemory`).
    rd_data : In
        Bank data, :attr:`read_latency` cycles after ``rd_en``.
    valid : Out(1)
        ``window`` holds the window of channel ``chan`` at position ``(y, x)``.
    pos : Out
        ``y * out_w + x``, registered here so that users index by it without a multiplier.
    first, first_chan, last_chan, last : Out(1)
        The output is the first of the sweep; the first / last channel of its position; the
        last of the sweep.
    out_tag : Out(tag_width)
        The ``tag`` of the sweep this window belongs to.
    window : Out(ArrayLayout(unsigned(8), K*K))
        Window pixels, row-major (``window[i*K + j]`` is row ``i``, column ``j``).
    reads : Out(32)
        Pixels read since reset or ``clear_reads``.
    """

    def __init__(self, cfg: TinyCLConfig, *, pipelined: bool = True, tag_width: int = 1):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        if not isinstance(tag_width, int) or isinstance(tag_width, bool) or tag_width < 1:
            raise TypeError(f"tag_width must be a positive integer, not {tag_width!r}")
        self._cfg = cfg
        self._pipelined = bool(pipelined)
        self._layout = sample_layout(cfg)
        k = cfg.kernel
        addr = max(1, (self._layout["depth"] - 1).bit_length())
        super().__init__({
            "start": In(1),
            "tag": In(tag_width),
            "slot": In(index(cfg.slots + 1)),
            "chan_first": In(index(cfg.in_c)),
            "chan_last": In(index(cfg.in_c)),
            "clear_reads": In(1),
            "cancel": In(1),
            "advance": In(1, init=1),
            "busy": Out(1),
            "rd_en": Out(1),
            "rd_addr": Out(data.ArrayLayout(addr, k)),
            "rd_data": In(data.ArrayLayout(8, k)),
            "valid": Out(1),
            "y": Out(index(cfg.out_h)),
            "x": Out(index(cfg.out_w)),
            "pos": Out(index(cfg.out_h * cfg.out_w)),
            "chan": Out(index(cfg.in_c)),
            "first": Out(1),
            "first_chan": Out(1),
            "last_chan": Out(1),
            "last": Out(1),
            "out_tag": Out(tag_width),
            "window": Out(data.ArrayLayout(8, k * k)),
            "reads": Out(32),
        })

    @property
    def latency(self) -> int:
        """Cycles from a fetch to the window it completes appearing on the outputs.

        Three address stages (entering line and bank skew; rows and columns; read
        addresses, registered by the sample memory as its requests), memory read, the
        memory's registered pixels, window update; without ``pipelined``, no
        rows-and-columns stage and no registered pixels.
        """
        return 6 if self._pipelined else 4

    @property
    def read_latency(self) -> int:
        """Cycles from ``rd_en`` to ``rd_data`` that the window expects of the sample memory
        (:attr:`SampleMemory.read_latency <tinycl_hdl.rtl.memory.SampleMemory.read_latency>`)."""
        return 3 if self._pipelined else 1

    @property
    def reads_per_sweep(self) -> int:
        """Pixel reads of one channel sweep (the formula of the configured order)."""
        return snake_reads(self._cfg) if self._cfg.window == "snake" else raster_reads(self._cfg)

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._cfg, self._layout
        k, ho, wo = cfg.kernel, cfg.out_h, cfg.out_w
        snake = cfg.window == "snake"

        # -- position sequencer (fetch stage) -------------------------------------------
        y = Signal(index(ho))
        x = Signal(index(wo))
        chan = Signal(index(cfg.in_c))
        fill = Signal(range(k))           # column being filled
        filling = Signal()                # at a (re)fill position
        kind = Signal(2)                  # kind of the current step's fetches
        leftward = Signal()               # snake direction on this row
        chan_first, chan_last = Signal.like(self.chan_first), Signal.like(self.chan_last)
        emit = Signal()                   # this fetch completes an output window
        done_pos = Signal()               # this fetch is the last of its position

        slot_base = Signal(len(self.rd_addr[0]))   # first word of the slot, fixed for a sweep
        tag = Signal.like(self.tag)
        with m.If(~self.busy):
            with m.If(self.start):
                m.d.sync += [self.busy.eq(1), y.eq(0), x.eq(0), chan.eq(self.chan_first), fill.eq(0), tag.eq(self.tag),
                             slot_base.eq(self.slot * lay["slot_words"]),
                             filling.eq(1), leftward.eq(0),
                             chan_first.eq(self.chan_first), chan_last.eq(self.chan_last)]

        m.d.comb += [
            emit.eq(~filling | (fill == k - 1)),
            done_pos.eq(emit & (chan == chan_last)),
        ]
        last_pos = Signal()
        if snake:
            # The last row runs leftward when there is an even number of rows.
            m.d.comb += last_pos.eq((y == ho - 1) & ((x == 0) if (ho - 1) % 2 else (x == wo - 1)))
        else:
            m.d.comb += last_pos.eq((y == ho - 1) & (x == wo - 1))

        fetching = self.busy & self.advance
        with m.If(fetching):
            with m.If(filling & (fill != k - 1)):
                m.d.sync += fill.eq(fill + 1)
            with m.Elif(chan != chan_last):
                m.d.sync += [chan.eq(chan + 1), fill.eq(0)]
            with m.Else():
                # Advance to the next position.
                m.d.sync += [chan.eq(chan_first), fill.eq(0), filling.eq(0)]
                with m.If(last_pos):
                    m.d.sync += self.busy.eq(0)
                if snake:
                    with m.Elif(~leftward & (x != wo - 1)):
                        m.d.sync += [x.eq(x + 1), kind.eq(_COL_LEFT)]
                    with m.Elif(leftward & (x != 0)):
                        m.d.sync += [x.eq(x - 1), kind.eq(_COL_RIGHT)]
                    with m.Else():
                        m.d.sync += [y.eq(y + 1), leftward.eq(~leftward), kind.eq(_ROW_UP)]
                else:
                    with m.Elif(x != wo - 1):
                        m.d.sync += [x.eq(x + 1), kind.eq(_COL_LEFT)]
                    with m.Else():
                        m.d.sync += [y.eq(y + 1), x.eq(0), filling.eq(1), kind.eq(_COL_LEFT)]

        # -- addresses of the entering pixels --------------------------------------------
        fetch_kind = Signal(2)
        line = Signal(range(max(cfg.in_h, cfg.in_w)))   # entering column (COL) or row (ROW)
        m.d.comb += fetch_kind.eq(Mux(filling, _COL_LEFT, kind))
        with m.Switch(fetch_kind):
            with m.Case(_COL_LEFT):
                m.d.comb += line.eq(Mux(filling, x + fill, x + k - 1))
            with m.Case(_COL_RIGHT):
                m.d.comb += line.eq(x)
            with m.Case(_ROW_UP):
                m.d.comb += line.eq(y + k - 1)
        is_row = fetch_kind == _ROW_UP
        # Bank of the first entering pixel; entering pixel i sits in bank (skew + i) % K.
        skew = Signal(range(k))
        residue = Array(Const(v % k, range(k)) for v in range(2 * max(cfg.in_h, cfg.in_w)))   # no divider
        m.d.comb += skew.eq(residue[Mux(is_row, line + x, y + line)])
        # What a fetch means for the window, carried with it through the address stages
        # (P, Q, A), the memory read (D) and the registered pixels (E) to the window.  Each
        # address stage holds one short piece of index arithmetic: P the entering line and
        # bank skew, Q every bank's row and column, A the word address from small constant
        # tables, registered before it reaches the memories.
        step = data.StructLayout({"valid": 1, "emit": 1, "kind": 2, "skew": range(k), "chan": len(chan),
                                  "y": len(y), "x": len(x), "pos": len(self.pos), "first": 1,
                                  "last_chan": 1, "last": 1, "line": len(line), "is_row": 1, "tag": len(tag),
                                  "sweep_first": 1})
        p_, q, a, d = (Signal(step, name=f"step_{n}") for n in "pqad")
        m.d.sync += [p_.valid.eq(fetching), p_.emit.eq(fetching & emit), p_.kind.eq(fetch_kind),
                     p_.skew.eq(skew), p_.chan.eq(chan), p_.y.eq(y), p_.x.eq(x), p_.first.eq(chan == chan_first),
                     p_.last_chan.eq(done_pos), p_.last.eq(done_pos & last_pos), p_.line.eq(line),
                     p_.is_row.eq(is_row), p_.tag.eq(tag),
                     p_.sweep_first.eq((y == 0) & (x == 0) & (chan == chan_first)),
                     d.eq(a)]
        # Without ``pipelined`` the rows and columns come straight from stage P.
        before_a = q if self._pipelined else p_
        m.d.sync += [q.eq(p_), a.eq(before_a), a.pos.eq(before_a.y * wo + before_a.x)]
        chan_words = Array(Const(c * lay["plane_words"], len(self.rd_addr[0])) for c in range(cfg.in_c))
        row_words = Array(Const(r * lay["row_words"], len(self.rd_addr[0])) for r in range(cfg.in_h))
        col_words = Array(Const(c // k, len(self.rd_addr[0])) for c in range(cfg.in_w))
        p_base, q_base = Signal(len(self.rd_addr[0])), Signal(len(self.rd_addr[0]))
        m.d.sync += [p_base.eq(slot_base + chan_words[chan]), q_base.eq(p_base)]
        a_addr = [Signal(len(self.rd_addr[0]), name=f"a_addr{b}") for b in range(k)]
        for b in range(k):
            offset = Signal(range(k))     # index of the entering pixel held by bank b
            m.d.comb += offset.eq(Mux(b >= p_.skew, b - p_.skew, b + k - p_.skew))
            q_row, q_col = Signal(range(cfg.in_h), name=f"q_row{b}"), Signal(range(cfg.in_w), name=f"q_col{b}")
            domain = m.d.sync if self._pipelined else m.d.comb
            domain += [q_row.eq(Mux(p_.is_row, p_.line, p_.y + offset)),
                       q_col.eq(Mux(p_.is_row, p_.x + offset, p_.line))]
            # A pipelined window's read addresses are registered by the sample memory
            # (its requests), whose banks then read in stage A.
            address = m.d.comb if self._pipelined else m.d.sync
            address += a_addr[b].eq((q_base if self._pipelined else p_base) + row_words[q_row] + col_words[q_col])
            m.d.comb += self.rd_addr[b].eq(a_addr[b])
        m.d.comb += self.rd_en.eq(q.valid if self._pipelined else a.valid)
        with m.If(self.clear_reads):
            m.d.sync += self.reads.eq(0)
        with m.Elif(fetching):
            m.d.sync += self.reads.eq(self.reads + k)

        e = self._data_stage(m, d, step)
        with m.If(self.cancel):
            # Every fetch in flight is dropped with the sweep.
            m.d.sync += [self.busy.eq(0), self.valid.eq(0)]
            for st in (p_, q, a, d, e):
                m.d.sync += [st.valid.eq(0), st.emit.eq(0)]
        return m

    def _data_stage(self, m, d, step):
        """Shift the fetched channel's window and insert the entering pixels; returns the
        step that reached the window (stage E)."""
        cfg, k = self._cfg, self._cfg.kernel
        # The pixels read arrive registered by the memory (stage E): a block RAM's
        # clock-to-output leaves no room for the window multiplexers in the same cycle at
        # 75 MHz (at the serial datapath's 30 MHz it does).
        if self._pipelined:
            e = Signal(step, name="step_e")
            m.d.sync += e.eq(d)
        else:
            e = d
        pixels = self.rd_data
        entering = [Signal(8, name=f"entering{i}") for i in range(k)]
        for i in range(k):
            with m.Switch(e.skew):
                for s in range(k):
                    with m.Case(s):
                        m.d.comb += entering[i].eq(pixels[(i + s) % k])

        windows = [[[Signal(8, name=f"win_c{c}_{i}_{j}") for j in range(k)] for i in range(k)]
                   for c in range(cfg.in_c)]
        current = [[Signal(8, name=f"cur_{i}_{j}") for j in range(k)] for i in range(k)]
        updated = [[Signal(8, name=f"new_{i}_{j}") for j in range(k)] for i in range(k)]
        with m.Switch(e.chan):
            for c in range(cfg.in_c):
                with m.Case(c):
                    m.d.comb += [current[i][j].eq(windows[c][i][j]) for i in range(k) for j in range(k)]
        with m.Switch(e.kind):
            with m.Case(_COL_LEFT):
                m.d.comb += [updated[i][j].eq(current[i][j + 1] if j < k - 1 else entering[i])
                             for i in range(k) for j in range(k)]
            with m.Case(_COL_RIGHT):
                m.d.comb += [updated[i][j].eq(current[i][j - 1] if j > 0 else entering[i])
                             for i in range(k) for j in range(k)]
            with m.Case(_ROW_UP):
                m.d.comb += [updated[i][j].eq(current[i + 1][j] if i < k - 1 else entering[j])
                             for i in range(k) for j in range(k)]
        with m.If(e.valid):
            with m.Switch(e.chan):
                for c in range(cfg.in_c):
                    with m.Case(c):
                        m.d.sync += [windows[c][i][j].eq(updated[i][j]) for i in range(k) for j in range(k)]
        m.d.sync += [self.valid.eq(e.emit), self.chan.eq(e.chan), self.y.eq(e.y), self.x.eq(e.x),
                     self.pos.eq(e.pos),
                     self.first_chan.eq(e.first), self.last_chan.eq(e.last_chan),
                     self.last.eq(e.last & e.emit), self.out_tag.eq(e.tag), self.first.eq(e.sweep_first)]
        with m.If(e.emit):
            m.d.sync += [self.window[i * k + j].eq(updated[i][j]) for i in range(k) for j in range(k)]
        return e


_PIXEL_PORTS = ("px_en", "px_slot", "px_chan", "px_row", "px_col", "px_data")
_INPUTS = ("start", "tag", "slot", "chan_first", "chan_last", "clear_reads", "cancel")
_OUTPUTS = ("busy", "valid", "y", "x", "pos", "chan", "first", "first_chan", "last_chan", "last", "out_tag",
            "window", "reads")


class SampleWindow(wiring.Component):
    """:class:`SampleMemory` with a :class:`SnakeWindow` reading it.

    The memory's pixel write port and the window's control and output ports
    are this component's ports (see the two classes for their meaning); the window's
    ``tag`` is ``tag_width`` bits wide.
    """

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False, tag_width: int = 4):
        self._window = SnakeWindow(cfg, tag_width=tag_width)
        self._memory = SampleMemory(cfg, blackbox=blackbox, read_latency=self._window.read_latency)
        members = {}
        for name in _PIXEL_PORTS:
            members[name] = self._memory.signature.members[name]
        for name in (*_INPUTS, *_OUTPUTS):
            members[name] = self._window.signature.members[name]
        super().__init__(members)

    @property
    def latency(self) -> int:
        return self._window.latency

    @property
    def reads_per_sweep(self) -> int:
        return self._window.reads_per_sweep

    @property
    def memory(self) -> SampleMemory:
        return self._memory

    def macros(self):
        return self._memory.macros()

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = self._memory
        m.submodules.window = win = self._window
        m.d.comb += [mem.rd_en.eq(win.rd_en), mem.rd_addr.eq(win.rd_addr), win.rd_data.eq(mem.rd_data)]
        for name in _PIXEL_PORTS:
            m.d.comb += getattr(mem, name).eq(getattr(self, name))
        for name in _INPUTS:
            m.d.comb += getattr(win, name).eq(getattr(self, name))
        for name in _OUTPUTS:
            m.d.comb += getattr(self, name).eq(getattr(win, name))
        return m
