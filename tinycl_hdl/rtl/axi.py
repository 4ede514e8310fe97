"""AXI4-Lite slave front end: bus handshakes in, one request at a time out.

The slave accepts a write (address and data, in either order or together) or
a read, presents it on the ``req_*`` ports and waits for ``resp_ready``; a
request may take any number of cycles.  The write data is not copied: the
slave takes it (``wready``) only as it answers, so the master holds it for the
whole request and ``req_wdata`` is the bus's ``wdata``.  ``resp_error`` answers ``SLVERR``.
Writes win when a write and a read arrive together.  Port names follow the
``s_axil_*`` convention of cocotbext-axi and verilog-axi.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiLiteSlave", "OKAY", "SLVERR"]

OKAY, SLVERR = 0b00, 0b10


def axi_lite_members(addr_width: int) -> dict:
    return {
        "s_axil_awaddr": In(addr_width), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(32), "s_axil_wstrb": In(4), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(addr_width), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(32), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
    }


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave (32-bit data) turning bus transactions into requests.

    Parameters
    ----------
    addr_width : int

    Members
    -------
    s_axil_* : AXI4-Lite slave ports.
    req_valid, req_write, req_addr, req_wdata, req_wstrb : Out
        The pending request; held until ``resp_ready`` (``req_wdata`` and ``req_wstrb``
        are the bus's, which the master holds until ``wready``).
    resp_ready, resp_rdata, resp_error : In
        Completion of the request (read data, ``SLVERR``).
    """

    def __init__(self, addr_width: int):
        if not isinstance(addr_width, int) or addr_width < 3:
            raise TypeError(f"addr_width must be an integer of at least 3, not {addr_width!r}")
        self._addr_width = addr_width
        members = axi_lite_members(addr_width)
        members.update({
            "req_valid": Out(1), "req_write": Out(1), "req_addr": Out(addr_width), "req_wdata": Out(32),
            "req_wstrb": Out(4), "resp_ready": In(1), "resp_rdata": In(32), "resp_error": In(1),
        })
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._addr_width

    def elaborate(self, platform):
        m = Module()
        have_aw = Signal()
        m.d.comb += [self.req_wdata.eq(self.s_axil_wdata), self.req_wstrb.eq(self.s_axil_wstrb)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.s_axil_awready.eq(~have_aw)
                with m.If(self.s_axil_awvalid & ~have_aw):
                    m.d.sync += [have_aw.eq(1), self.req_addr.eq(self.s_axil_awaddr)]
                write_ready = (have_aw | self.s_axil_awvalid) & self.s_axil_wvalid
                with m.If(write_ready):
                    m.d.sync += [self.req_write.eq(1), have_aw.eq(0)]
                    m.next = "REQUEST"
                with m.Elif(~have_aw & self.s_axil_arvalid):
                    m.d.comb += self.s_axil_arready.eq(1)
                    m.d.sync += [self.req_write.eq(0), self.req_addr.eq(self.s_axil_araddr)]
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += self.req_valid.eq(1)
                with m.If(self.resp_ready):
                    resp = Cat(Const(0, 1), self.resp_error)     # SLVERR is 0b10
                    with m.If(self.req_write):
                        m.d.comb += self.s_axil_wready.eq(1)      # the write data is taken now
                        m.d.sync += self.s_axil_bresp.eq(resp)
                        m.next = "WRITE_RESPONSE"
                    with m.Else():
                        m.d.sync += [self.s_axil_rresp.eq(resp), self.s_axil_rdata.eq(self.resp_rdata)]
                        m.next = "READ_RESPONSE"
            with m.State("WRITE_RESPONSE"):
                m.d.comb += self.s_axil_bvalid.eq(1)
                with m.If(self.s_axil_bready):
                    m.next = "IDLE"
            with m.State("READ_RESPONSE"):
                m.d.comb += self.s_axil_rvalid.eq(1)
                with m.If(self.s_axil_rready):
                    m.next = "IDLE"
        return m
