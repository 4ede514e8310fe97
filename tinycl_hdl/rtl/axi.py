"""AXI4-Lite slave front end: bus handshakes in, one request at a time out.

The slave holds one write address and one read address, each accepted
(``awready``, ``arready``) whenever none of its kind is held, in any cycle and
in any order with the other channels.  A write starts once its address and its
data (``wvalid``) are both there; a read once its address is.  When both could
start, the slave takes the kind it did not take last, so neither kind waits
behind more than one request of the other (:attr:`AxiLiteSlave.reads_wait_for_writes`).
Each request carries the address of its own address handshake.

A request is presented on the ``req_*`` ports until ``resp_ready``; it may take
any number of cycles, and at least two idle cycles separate two requests.  The
write data is not copied: the slave takes it (``wready``) only as it answers,
so the master holds it for the whole request and ``req_wdata`` is the bus's
``wdata``.  ``resp_error`` answers ``SLVERR``.  Port names follow the
``s_axil_*`` convention of cocotbext-axi and verilog-axi.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiLiteSlave", "SlaveRegisters", "SlaveState", "OKAY", "SLVERR"]

OKAY, SLVERR = 0b00, 0b10


def axi_lite_members(addr_width: int) -> dict:
    return {
        "s_axil_awaddr": In(addr_width), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(32), "s_axil_wstrb": In(4), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(addr_width), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(32), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
    }


class SlaveState(enum.Enum, shape=2):
    """Where the slave is in serving one request."""
    IDLE = 0
    REQUEST = 1
    WRITE_RESPONSE = 2
    READ_RESPONSE = 3


class SlaveRegisters:
    """The registers of :class:`AxiLiteSlave`: its state, the held addresses, and whether the
    last request started was a write."""

    def __init__(self, addr_width: int):
        self.state = Signal(SlaveState, name="axi_state")
        self.aw_held, self.aw_addr = Signal(name="aw_held"), Signal(addr_width, name="aw_addr")
        self.ar_held, self.ar_addr = Signal(name="ar_held"), Signal(addr_width, name="ar_addr")
        self.last_write = Signal(name="last_write")


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave (32-bit data) turning bus transactions into requests.

    Parameters
    ----------
    addr_width : int
        Byte address bits of the register space.

    Members
    -------
    s_axil_* : AXI4-Lite slave ports.
    req_valid, req_write, req_addr, req_wdata, req_wstrb : Out
        The pending request; held until ``resp_ready`` (``req_wdata`` and ``req_wstrb``
        are the bus's, which the master holds until ``wready``).
    resp_ready, resp_rdata, resp_error : In
        Completion of the request (read data, ``SLVERR``).
    registers : SlaveRegisters
        The slave's state and held addresses (not ports), for formal invariants.
    """

    #: Write requests that may start between a read's address handshake and its own request.
    reads_wait_for_writes = 1
    #: Read requests that may start between a write's address and data and its own request.
    writes_wait_for_reads = 1

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool) or addr_width < 3:
            raise TypeError(f"addr_width must be an integer of at least 3, not {addr_width!r}")
        self._addr_width = addr_width
        members = axi_lite_members(addr_width)
        members.update({
            "req_valid": Out(1), "req_write": Out(1), "req_addr": Out(addr_width), "req_wdata": Out(32),
            "req_wstrb": Out(4), "resp_ready": In(1), "resp_rdata": In(32), "resp_error": In(1),
        })
        super().__init__(members)
        # The slave's state, made here so that a formal harness can state invariants over it.
        self.registers = SlaveRegisters(addr_width)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform):
        m = Module()
        r = self.registers
        m.d.comb += [self.req_wdata.eq(self.s_axil_wdata), self.req_wstrb.eq(self.s_axil_wstrb),
                     self.s_axil_awready.eq(~r.aw_held), self.s_axil_arready.eq(~r.ar_held),
                     self.req_valid.eq(r.state == SlaveState.REQUEST),
                     self.s_axil_bvalid.eq(r.state == SlaveState.WRITE_RESPONSE),
                     self.s_axil_rvalid.eq(r.state == SlaveState.READ_RESPONSE)]
        with m.If(self.s_axil_awvalid & ~r.aw_held):
            m.d.sync += [r.aw_held.eq(1), r.aw_addr.eq(self.s_axil_awaddr)]
        with m.If(self.s_axil_arvalid & ~r.ar_held):
            m.d.sync += [r.ar_held.eq(1), r.ar_addr.eq(self.s_axil_araddr)]
        # An address is there when it is held or handshakes in this cycle.
        write_ready = (r.aw_held | self.s_axil_awvalid) & self.s_axil_wvalid
        read_ready = r.ar_held | self.s_axil_arvalid
        resp = Cat(Const(0, 1), self.resp_error)          # OKAY or SLVERR
        with m.Switch(r.state):
            with m.Case(SlaveState.IDLE):
                with m.If(write_ready & ~(read_ready & r.last_write)):
                    m.d.sync += [self.req_write.eq(1), self.req_addr.eq(Mux(r.aw_held, r.aw_addr, self.s_axil_awaddr)),
                                 r.aw_held.eq(0), r.last_write.eq(1), r.state.eq(SlaveState.REQUEST)]
                with m.Elif(read_ready):
                    m.d.sync += [self.req_write.eq(0), self.req_addr.eq(Mux(r.ar_held, r.ar_addr, self.s_axil_araddr)),
                                 r.ar_held.eq(0), r.last_write.eq(0), r.state.eq(SlaveState.REQUEST)]
            with m.Case(SlaveState.REQUEST):
                with m.If(self.resp_ready & self.req_write):
                    m.d.comb += self.s_axil_wready.eq(1)          # the write data is taken now
                    m.d.sync += [self.s_axil_bresp.eq(resp), r.state.eq(SlaveState.WRITE_RESPONSE)]
                with m.If(self.resp_ready & ~self.req_write):
                    m.d.sync += [self.s_axil_rresp.eq(resp), self.s_axil_rdata.eq(self.resp_rdata),
                                 r.state.eq(SlaveState.READ_RESPONSE)]
            with m.Case(SlaveState.WRITE_RESPONSE):
                with m.If(self.s_axil_bready):
                    m.d.sync += r.state.eq(SlaveState.IDLE)
            with m.Case(SlaveState.READ_RESPONSE):
                with m.If(self.s_axil_rready):
                    m.d.sync += r.state.eq(SlaveState.IDLE)
        return m
