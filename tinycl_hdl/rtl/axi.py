"""AXI4-Lite slave front end: bus handshakes in, one request at a time out.

A write starts when its address and its data are both valid (``awvalid`` and
``wvalid``); a read starts when ``arvalid`` is.  AXI lets a slave wait for both
AWVALID and WVALID before AWREADY, and a compliant master never waits for AWREADY
before WVALID, so AW, W and AR may come in any order and any cycle.  When a write
and a read could both start, the slave takes the kind it did not take last, so a
pending read is accepted after at most one write, and a pending write after at most
one read (:attr:`AxiLiteSlave.reads_wait_for_writes`).

Every output is a register: AXI allows no combinational path from a manager's
signals to a subordinate's.  The slave decides in one cycle which request starts
and copies its address (and for a write its data and strobes); ``awready`` and
``wready`` (or ``arready``) are high in the next cycle, the request's first, in
which the master still holds the VALIDs it had, so the handshakes complete there.

A request is presented on the ``req_*`` ports until ``resp_ready``; it may take
any number of cycles, and at least two idle cycles separate two requests.
``resp_error`` answers ``SLVERR``.  Port names follow the ``s_axil_*`` convention of
cocotbext-axi and verilog-axi.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiLiteSlave", "SlaveRegisters", "SlaveState", "OKAY", "SLVERR", "axi_lite_members", "forward_axi_lite"]

OKAY, SLVERR = 0b00, 0b10


def axi_lite_members(addr_width: int) -> dict:
    return {
        "s_axil_awaddr": In(addr_width), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(32), "s_axil_wstrb": In(4), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(addr_width), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(32), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
    }


def forward_axi_lite(m, outer, inner, address_width: int, outer_prefix: str = "s_axil"):
    """Join the AXI4-Lite slave port of ``inner`` (members :func:`axi_lite_members`) to
    ``outer``'s port of the same signals, named with ``outer_prefix``: the outside drives
    ``inner``'s inputs and sees its outputs."""
    for name, member in axi_lite_members(address_width).items():
        there = getattr(outer, outer_prefix + name[len("s_axil"):])
        here = getattr(inner, name)
        m.d.comb += here.eq(there) if member.flow == In else there.eq(here)


class SlaveState(enum.Enum, shape=2):
    """Where the slave is in serving one request."""
    IDLE = 0
    REQUEST = 1
    WRITE_RESPONSE = 2
    READ_RESPONSE = 3


class SlaveRegisters:
    """The registers of :class:`AxiLiteSlave` besides its ports: its state, and whether the
    last request started was a write."""

    def __init__(self):
        self.state = Signal(SlaveState, name="axi_state")
        self.last_write = Signal(name="last_write")


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave (32-bit data) turning bus transactions into requests.

    Parameters
    ----------
    addr_width : int
        Byte address bits of the register space.

    Attributes
    ----------
    s_axil_* : AXI4-Lite slave ports.
    req_valid, req_write, req_addr, req_wdata, req_wstrb : Out
        The pending request, registered; held until ``resp_ready``.
    resp_ready, resp_rdata, resp_error : In
        Completion of the request (read data, ``SLVERR``).
    registers : SlaveRegisters
        The slave's state (not ports), for formal invariants.
    """

    #: Write requests that may start while a read's ARVALID waits for ARREADY.
    reads_wait_for_writes = 1
    #: Read requests that may start while a write's AWVALID and WVALID wait for AWREADY.
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
        self.registers = SlaveRegisters()

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform):
        m = Module()
        r = self.registers
        m.d.comb += [self.req_valid.eq(r.state == SlaveState.REQUEST),
                     self.s_axil_bvalid.eq(r.state == SlaveState.WRITE_RESPONSE),
                     self.s_axil_rvalid.eq(r.state == SlaveState.READ_RESPONSE)]
        # The READYs are high for one cycle, the request's first; the handshakes end there.
        m.d.sync += [self.s_axil_awready.eq(0), self.s_axil_wready.eq(0), self.s_axil_arready.eq(0)]
        write_ready = self.s_axil_awvalid & self.s_axil_wvalid
        read_ready = self.s_axil_arvalid
        resp = Cat(Const(0, 1), self.resp_error)          # OKAY or SLVERR
        with m.Switch(r.state):
            with m.Case(SlaveState.IDLE):
                with m.If(write_ready & ~(read_ready & r.last_write)):
                    m.d.sync += [self.s_axil_awready.eq(1), self.s_axil_wready.eq(1), self.req_write.eq(1),
                                 self.req_addr.eq(self.s_axil_awaddr), self.req_wdata.eq(self.s_axil_wdata),
                                 self.req_wstrb.eq(self.s_axil_wstrb), r.last_write.eq(1),
                                 r.state.eq(SlaveState.REQUEST)]
                with m.Elif(read_ready):
                    m.d.sync += [self.s_axil_arready.eq(1), self.req_write.eq(0),
                                 self.req_addr.eq(self.s_axil_araddr), r.last_write.eq(0),
                                 r.state.eq(SlaveState.REQUEST)]
            with m.Case(SlaveState.REQUEST):
                with m.If(self.resp_ready & self.req_write):
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
