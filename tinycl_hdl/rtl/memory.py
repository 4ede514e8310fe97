"""Memories of the accelerator, all behind one wrapper.

:class:`Sram` is a simple dual-port RAM (one synchronous read port, one write
port with optional lane write enables), or a single-port one behind the same
ports.  By default it is an :class:`amaranth.lib.memory.Memory`; with
``blackbox=True`` it instantiates a module named by :func:`macro_name`
instead, so that an ASIC flow can bind an SRAM macro, and
:func:`behavioural_model` writes a Verilog model of that module with the same
timing for simulation.

:class:`SampleMemory` holds the GDumb slots plus one staging slot (index
``slots``), banked for the sliding window: pixel ``(row, col)`` of a channel
plane lives in bank ``(row + col) % K`` at word ``row * ceil(W/K) + col // K``
of the plane, so any ``K`` consecutive pixels of a row or of a column fall in
``K`` different banks and a window step reads them in one cycle.
"""

from typing import NamedTuple

from amaranth.hdl import Array, ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from .arith import index, times_constant

__all__ = ["Sram", "MemoryShape", "macro_name", "macro_ports", "behavioural_model", "SampleMemory", "sample_layout",
           "sample_bank_shape"]

#: Shape of an iCE40 UltraPlus single-port RAM (SB_SPRAM256KA): 16k words of 16 bits.
SPRAM_ADDRESS_BITS, SPRAM_WIDTH = 14, 16


def _check_positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")


def macro_name(width: int, depth: int, granularity: int | None = None, single_port: bool = False) -> str:
    """Module name of the SRAM macro for a memory shape (``_sp``: one read/write port)."""
    suffix = f"_g{granularity}" if granularity and granularity != width else ""
    return f"tinycl_sram_{depth}x{width}{suffix}{'_sp' if single_port else ''}"


class MemoryShape(NamedTuple):
    """What a memory compiler needs to know of one :class:`Sram`: its macro."""
    width: int
    depth: int
    granularity: int | None = None      # None: one write enable per word
    single_port: bool = False

    @property
    def name(self) -> str:
        return macro_name(*self)


class Sram(wiring.Component):
    """Simple dual-port RAM: synchronous read with enable, write with lane enables.

    Parameters
    ----------
    width : int
        Bits per word.
    depth : int
        Words.
    granularity : int or None
        Bits per write-enable lane (must divide ``width``); ``None`` for one
        enable per word.
    blackbox : bool
        Instantiate :func:`macro_name` instead of an Amaranth memory.
    single_port : bool
        Both ports use one address: in a cycle with a write, ``w_addr`` is the
        address and the read is dropped.  The memory then fits a single-port RAM:
        as a black box, a macro with one address (``en``, ``addr``, ``w_en``,
        ``w_data``, ``r_data``); on an iCE40 UltraPlus platform, an SPRAM
        (:meth:`fits_spram`), whose ``r_data`` is undefined after a write until
        the next read.
    bit_planes : bool
        Infer one memory a bit wide per data bit (one write enable per word only).  An
        FPGA then maps a deep memory to its deepest, narrowest block RAMs: an ECP5's
        DP16KD holds 16K words of one bit against 2K of nine, so a plane of 64K words
        is read through a 4:1 multiplexer where a byte-wide memory needs 32:1.  Neither
        a black box nor an SPRAM is split.

    Attributes
    ----------
    r_addr, r_en : In
        Read address and enable; ``r_data`` shows the word one cycle after
        ``r_en`` and holds while ``r_en`` is low.  A read of a word written in
        the same cycle returns the old word.
    r_data : Out(width)
    w_addr, w_en, w_data : In
        Write address, lane enables and data.
    """

    def __init__(self, width: int, depth: int, *, granularity: int | None = None, blackbox: bool = False,
                 single_port: bool = False, bit_planes: bool = False):
        _check_positive("width", width)
        _check_positive("depth", depth)
        if granularity is not None:
            _check_positive("granularity", granularity)
            if width % granularity:
                raise ValueError(f"granularity must divide width ({width}), not {granularity!r}")
        self._width, self._depth = width, depth
        self._granularity = granularity or width
        self._blackbox = bool(blackbox)
        self._single_port = bool(single_port)
        self._bit_planes = bool(bit_planes)
        if self._bit_planes and self.lanes != 1:
            raise ValueError(f"bit planes need one write enable per word, not {self.lanes}")
        addr = max(1, (depth - 1).bit_length())
        super().__init__({
            "r_addr": In(addr), "r_en": In(1), "r_data": Out(width),
            "w_addr": In(addr), "w_en": In(self.lanes), "w_data": In(width),
        })

    @classmethod
    def of(cls, shape: MemoryShape, *, blackbox: bool = False, bit_planes: bool = False) -> "Sram":
        """The memory of ``shape``."""
        return cls(shape.width, shape.depth, granularity=shape.granularity, blackbox=blackbox,
                   single_port=shape.single_port, bit_planes=bit_planes)

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def granularity(self) -> int:
        return self._granularity

    @property
    def lanes(self) -> int:
        return self._width // self._granularity

    @property
    def blackbox(self) -> bool:
        return self._blackbox

    @property
    def single_port(self) -> bool:
        return self._single_port

    def fits_spram(self, platform) -> bool:
        """Whether this memory becomes one iCE40 UltraPlus SPRAM when elaborated for ``platform``."""
        return (self._single_port and str(getattr(platform, "device", "")).startswith("iCE40UP")
                and self._width <= SPRAM_WIDTH and self._depth <= 1 << SPRAM_ADDRESS_BITS and self.lanes == 1)

    @property
    def shape(self) -> MemoryShape:
        return MemoryShape(self._width, self._depth, self._granularity if self.lanes > 1 else None,
                           self._single_port)

    @property
    def macro(self) -> str:
        return self.shape.name

    def elaborate(self, platform):
        m = Module()
        r_en, r_addr, w_addr = self.r_en, self.r_addr, self.w_addr
        if self._single_port:
            # One address for both ports; a write wins over a read in the same cycle.
            writing = self.w_en.any()
            r_en, r_addr = Signal(), Signal.like(self.r_addr)
            m.d.comb += [r_en.eq(self.r_en & ~writing), r_addr.eq(Mux(writing, self.w_addr, self.r_addr))]
            w_addr = r_addr
        if self._blackbox:
            # The macro's ports (behavioural_model): one address when single-port.
            ports = (dict(i_en=r_en | self.w_en.any(), i_addr=r_addr) if self._single_port else
                     dict(i_r_en=r_en, i_r_addr=r_addr, i_w_addr=w_addr))
            m.submodules.macro = Instance(self.macro, i_clk=ClockSignal(), o_r_data=self.r_data, i_w_en=self.w_en,
                                          i_w_data=self.w_data, **ports)
            return m
        if self.fits_spram(platform):
            # Instantiated, not inferred: Yosys prices an SPRAM above the block RAMs it would
            # replace, and with ram_style "huge" it found no valid mapping for this memory.
            address = Signal(SPRAM_ADDRESS_BITS)
            data_in, data_out = Signal(SPRAM_WIDTH), Signal(SPRAM_WIDTH)
            m.d.comb += [address.eq(r_addr), data_in.eq(self.w_data), self.r_data.eq(data_out[:self._width])]
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=address, i_DATAIN=data_in, i_MASKWREN=Const(0b1111, 4), i_WREN=self.w_en,
                i_CHIPSELECT=r_en | self.w_en, i_CLOCK=ClockSignal(), i_STANDBY=Const(0), i_SLEEP=Const(0),
                i_POWEROFF=Const(1),            # active low
                o_DATAOUT=data_out)
            return m
        if self._bit_planes:
            for bit in range(self._width):
                m.submodules[f"plane{bit}"] = plane = Memory(shape=unsigned(1), depth=self._depth, init=[])
                rd, wr = plane.read_port(), plane.write_port()
                m.d.comb += [rd.addr.eq(r_addr), rd.en.eq(r_en), self.r_data[bit].eq(rd.data),
                             wr.addr.eq(w_addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data[bit])]
            return m
        m.submodules.mem = mem = Memory(shape=unsigned(self._width), depth=self._depth, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=self.shape.granularity)
        m.d.comb += [rd.addr.eq(r_addr), rd.en.eq(r_en), self.r_data.eq(rd.data),
                     wr.addr.eq(w_addr), wr.en.eq(self.w_en), wr.data.eq(self.w_data)]
        return m


#: The macros' one-bit controls; every other port is a vector, ``w_en`` of one lane included.
_SCALAR = ("clk", "en", "r_en")


def macro_ports(shape: MemoryShape) -> list:
    """``(name, direction, width)`` of each port of ``shape``'s macro, the clock first."""
    lanes = shape.width // (shape.granularity or shape.width)
    addr = max(1, (shape.depth - 1).bit_length())
    if shape.single_port:
        ports = [("en", "input", 1), ("addr", "input", addr)]
    else:
        ports = [("r_en", "input", 1), ("r_addr", "input", addr)]
    ports += [("r_data", "output", shape.width), ("w_en", "input", lanes)]
    ports += [] if shape.single_port else [("w_addr", "input", addr)]
    return [("clk", "input", 1), *ports, ("w_data", "input", shape.width)]


def behavioural_model(width: int, depth: int, granularity: int | None = None, single_port: bool = False) -> str:
    """Verilog model of :func:`macro_name`'s module, cycle-equivalent to :class:`Sram`."""
    granularity = granularity or width
    lanes = width // granularity
    name = macro_name(width, depth, granularity, single_port)
    ports = ",\n".join(f"  {'output reg ' if d == 'output' else 'input  wire'} {'' if n in _SCALAR else f'[{w - 1}:0] '}{n}"
                        for n, d, w in macro_ports(MemoryShape(width, depth, granularity, single_port)))
    if single_port:
        what = "one port: with en, a write when any w_en, else a read"
        r_en, r_addr, w_en, w_addr = "en && !(|w_en)", "addr", "en && w_en[i]", "addr"
    else:
        what = "one synchronous read port (old data\n// on a same-cycle write), one write port"
        r_en, r_addr, w_en, w_addr = "r_en", "r_addr", "w_en[i]", "w_addr"
    return f"""// Behavioural model of SRAM macro {name}: {depth} words x {width} bits,
// {lanes} write lane(s) of {granularity} bits, {what}.
// r_data holds while not reading.  Replace with the foundry macro.
module {name} (
{ports}
);
  reg [{width - 1}:0] mem [0:{depth - 1}];
  integer i;
  initial begin
    r_data = {width}'h0;
    for (i = 0; i < {depth}; i = i + 1) mem[i] = {width}'h0;
  end
  always @(posedge clk) begin
    if ({r_en}) r_data <= mem[{r_addr}];
    for (i = 0; i < {lanes}; i = i + 1)
      if ({w_en}) mem[{w_addr}][i*{granularity} +: {granularity}] <= w_data[i*{granularity} +: {granularity}];
  end
endmodule
"""


def sample_layout(cfg: TinyCLConfig) -> dict:
    """Sizes of the banked sample memory (all in words of one bank)."""
    banks = cfg.kernel
    row_words = -(-cfg.in_w // banks)
    plane = cfg.in_h * row_words
    slot = cfg.in_c * plane
    return {"banks": banks, "row_words": row_words, "plane_words": plane, "slot_words": slot,
            "depth": (cfg.slots + 1) * slot, "staging_slot": cfg.slots}


def sample_bank_shape(cfg: TinyCLConfig) -> MemoryShape:
    """One of the ``kernel`` sample banks: bytes, single-port (an SPRAM on an iCE40 UltraPlus)."""
    return MemoryShape(8, sample_layout(cfg)["depth"], None, single_port=True)


class SampleMemory(wiring.Component):
    """GDumb sample memory: ``slots + 1`` slots (the last is the staging buffer) in ``kernel`` banks.

    Parameters
    ----------
    cfg : TinyCLConfig
    blackbox : bool
        Emit the banks as SRAM macro instances.
    read_latency : int
        1, or 3 to register every bank's requests and read data (:attr:`read_latency`).
        A bank deeper than one block RAM is many of them, spread over the chip.  On an
        ECP5 the paths into and out of them are mostly routing: the block RAM's
        clock-to-output and the multiplexer over its outputs took 24 ns for a byte-wide
        bank of 72 ``cifar10`` slots, and a bank address chosen by the control unit's state
        (window, slot copy, host read) 17 ns.  With 3, a register drives every bank input
        (the choice among the readers and writers is made before it) and every bank output
        reaches a register alone; the banks are built of bit planes (:class:`Sram`
        ``bit_planes``), so that the multiplexer over the outputs is a narrow one.

    Attributes
    ----------
    rd_en : In(1)
        Read all banks this cycle.
    rd_addr : In(ArrayLayout(addr, kernel))
        Word address per bank; data :attr:`read_latency` cycles later on ``rd_data``.
    rd_data : Out(ArrayLayout(unsigned(8), kernel))
        Holds the last word read while ``rd_en`` is low.
    wr_en, wr_addr, wr_data : In(ArrayLayout(..., kernel))
        Per-bank writes (slot copies), made in this cycle, or the next with registered
        requests.  A bank is single-port: a write and a read must not share a cycle (the
        write wins and the read is dropped).
    px_en, px_slot, px_chan, px_row, px_col, px_data : In
        One pixel written by its coordinates (the host's staging writes); it is
        written one cycle later and then takes precedence over a bank write that reaches
        the bank in that cycle.
    """

    #: The read latencies it builds: bare banks, or registered requests and read data.
    READ_LATENCIES = (1, 3)

    def __init__(self, cfg: TinyCLConfig, *, blackbox: bool = False, read_latency: int = 1):
        if not isinstance(cfg, TinyCLConfig):
            raise TypeError(f"cfg must be a TinyCLConfig, not {cfg!r}")
        if read_latency not in self.READ_LATENCIES:
            raise ValueError(f"read_latency must be {' or '.join(map(str, self.READ_LATENCIES))}, "
                             f"not {read_latency!r}")
        self._cfg = cfg
        self._layout = sample_layout(cfg)
        self._blackbox = blackbox
        self._read_latency = read_latency
        self._registered = read_latency != 1
        k = cfg.kernel
        addr = max(1, (self._layout["depth"] - 1).bit_length())
        self._addr_width = addr
        super().__init__({
            "rd_en": In(1),
            "rd_addr": In(data.ArrayLayout(addr, k)),
            "rd_data": Out(data.ArrayLayout(8, k)),
            "wr_en": In(data.ArrayLayout(1, k)),
            "wr_addr": In(data.ArrayLayout(addr, k)),
            "wr_data": In(data.ArrayLayout(8, k)),
            "px_en": In(1),
            "px_slot": In(index(cfg.slots + 1)),
            "px_chan": In(index(cfg.in_c)),
            "px_row": In(index(cfg.in_h)),
            "px_col": In(index(cfg.in_w)),
            "px_data": In(8),
        })

    @property
    def layout(self) -> dict:
        return dict(self._layout)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def read_latency(self) -> int:
        """Cycles from ``rd_en`` to the word on ``rd_data``."""
        return self._read_latency

    def macros(self):
        """:class:`MemoryShape` of every memory, for a macro list."""
        return [sample_bank_shape(self._cfg)] * self._cfg.kernel

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._cfg, self._layout
        k = cfg.kernel
        # Residues and quotients by K from small tables: a ``%`` or ``//`` of a signal is a divider.
        # The row's and channel's words come from tables and the slot's from shifted copies:
        # synthesis maps a product by a constant to a DSP block, whose delay was the ECP5's
        # longest path.
        bank_of_sum = Array(Const(v % k, range(k)) for v in range(cfg.in_h + cfg.in_w - 1))
        word_of_col = Array(Const(c // k, self._addr_width) for c in range(cfg.in_w))
        word_of_row = Array(Const(r * lay["row_words"], self._addr_width) for r in range(cfg.in_h))
        word_of_chan = Array(Const(c * lay["plane_words"], self._addr_width) for c in range(cfg.in_c))
        px_bank = bank_of_sum[self.px_row + self.px_col]
        px_addr = (times_constant(self.px_slot, lay["slot_words"]) + word_of_chan[self.px_chan]
                   + word_of_row[self.px_row] + word_of_col[self.px_col])
        if not self._registered:
            # A pixel write is registered with its bank and word address (one cycle later),
            # so that the address arithmetic does not sit in front of the memories' write ports.
            px_en, px_data = Signal(), Signal(8)
            px_bank_q, px_addr_q = Signal(range(k)), Signal(self._addr_width)
            m.d.sync += [px_en.eq(self.px_en), px_data.eq(self.px_data), px_bank_q.eq(px_bank),
                         px_addr_q.eq(px_addr)]
        for b in range(k):
            bank = Sram.of(sample_bank_shape(cfg), blackbox=self._blackbox, bit_planes=self._registered)
            m.submodules[f"bank{b}"] = bank
            if self._registered:
                self._registered_requests(m, bank, b, self.px_en & (px_bank == b), px_addr)
                m.d.sync += self.rd_data[b].eq(bank.r_data)
                continue
            # Single-port, so that an iCE40's SPRAM can hold it: the control unit never reads
            # and writes in one cycle.
            m.d.comb += [bank.r_en.eq(self.rd_en), bank.r_addr.eq(self.rd_addr[b]), self.rd_data[b].eq(bank.r_data)]
            with m.If(px_en & (px_bank_q == b)):
                m.d.comb += [bank.w_en.eq(1), bank.w_addr.eq(px_addr_q), bank.w_data.eq(px_data)]
            with m.Else():
                m.d.comb += [bank.w_en.eq(self.wr_en[b]), bank.w_addr.eq(self.wr_addr[b]),
                             bank.w_data.eq(self.wr_data[b])]
        return m

    def _registered_requests(self, m, bank, b, px_hit, px_addr):
        """Bank ``b``'s ports from registers: this cycle's pixel write, else bank write, else
        read, made in the next.  One address register serves the read and the write port."""
        writing = Signal(name=f"req_writing{b}")
        reading = Signal(name=f"req_reading{b}")
        addr = Signal(self._addr_width, name=f"req_addr{b}")
        w_data = Signal(8, name=f"req_data{b}")
        write = px_hit | self.wr_en[b]
        m.d.sync += [writing.eq(write), reading.eq(self.rd_en & ~write),
                     addr.eq(Mux(px_hit, px_addr, Mux(self.wr_en[b], self.wr_addr[b], self.rd_addr[b]))),
                     w_data.eq(Mux(px_hit, self.px_data, self.wr_data[b]))]
        m.d.comb += [bank.r_en.eq(reading), bank.r_addr.eq(addr),
                     bank.w_en.eq(writing), bank.w_addr.eq(addr), bank.w_data.eq(w_data)]
