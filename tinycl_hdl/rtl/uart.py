"""UART host link: 8N1 receiver and transmitter, and a bridge to AXI4-Lite.

The bridge turns byte frames into AXI4-Lite transactions on the accelerator's
``s_axil_*`` port.  The framing is defined once, in :mod:`tinycl_hdl.spec.framing`
(write: ``'W'``, address, data, CRC -> status, CRC; read: ``'R'``, address, CRC ->
status, data, CRC); the host transports that speak it are in :mod:`tinycl_hdl.host.uart`.
A frame whose CRC fails is answered ``BADCRC`` and never reaches the bus.
"""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..spec.framing import (CRC_BYTES, FRAME_CRC, FRAME_READ, FRAME_WRITE, STATUS_BADCRC, STATUS_SLVERR,
                            TIMEOUT_BITS)
from .axi import axi_lite_members

__all__ = ["UartRx", "UartTx", "UartBridge"]


class _BitTimed(wiring.Component):
    """A component clocking UART bits every ``divisor`` cycles."""

    def __init__(self, divisor: int, members: dict):
        if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
            raise TypeError(f"divisor must be an integer of at least 4, not {divisor!r}")
        self._divisor = divisor
        super().__init__(members)

    @property
    def divisor(self) -> int:
        return self._divisor


class UartRx(_BitTimed):
    """8N1 receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (``clock_hz // baud``), at least 4.

    Attributes
    ----------
    rx : In(1)
        The line (idle high); synchronised inside.
    data : Out(stream.Signature(8))
        One transfer per received byte.  There is no flow control on a UART:
        a byte not taken by the next byte's stop bit is lost.
    error : Out(1)
        Pulses on a byte whose stop bit was low (the byte is dropped).
    bit : Out(stream.Signature(1, always_ready=True))
        Each data bit as it is sampled, least significant first (a CRC over the line's bits).
    """

    def __init__(self, divisor: int):
        super().__init__(divisor, {"rx": In(1, init=1), "data": Out(stream.Signature(8)), "error": Out(1),
                                   "bit": Out(stream.Signature(1, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        sync0, line = Signal(init=1), Signal(init=1)
        m.d.sync += [sync0.eq(self.rx), line.eq(sync0)]     # two-flop synchroniser
        timer = Signal(range(div))
        bit = Signal(range(9))
        shreg = Signal(8)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += self.error.eq(0)
        m.d.comb += self.bit.payload.eq(line)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):             # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bit == 8):         # the stop bit, sampled mid-bit
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    with m.Else():
                        m.d.sync += self.error.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.bit.valid.eq(1)
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1), timer.eq(div - 1)]
        return m


class UartTx(_BitTimed):
    """8N1 transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    data : In(stream.Signature(8))
        Bytes to send; ``ready`` while the line is idle.
    tx : Out(1)
        The line (idle high).
    bit : Out(stream.Signature(1, always_ready=True))
        Each data bit as it goes onto the line, least significant first.
    """

    def __init__(self, divisor: int):
        super().__init__(divisor, {"data": In(stream.Signature(8)), "tx": Out(1, init=1),
                                   "bit": Out(stream.Signature(1, always_ready=True))})

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        timer = Signal(range(div))
        frame = Signal(10, init=0x3FF)       # stop, data[7:0], start; shifted out LSB first
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(frame[0]), self.data.ready.eq(left == 0)]
        with m.If(left == 0):
            with m.If(self.data.valid):
                m.d.sync += [frame.eq(Cat(0, self.data.payload, 1)), left.eq(10), timer.eq(div - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            # Shifts at left = 10 .. 3 put data bits 0 .. 7 on the line.
            m.d.comb += [self.bit.payload.eq(frame[1]), self.bit.valid.eq(left >= 3)]
            m.d.sync += [frame.eq(Cat(frame[1:], 1)), left.eq(left - 1), timer.eq(div - 1)]
        return m


class UartBridge(_BitTimed):
    """UART frames in, AXI4-Lite master transactions out (framing: module documentation).

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit, at least 4.
    addr_width : int
        Width of the AXI4-Lite address (at most 32).
    timeout : int
        Bit periods after which an incomplete frame is abandoned.

    Attributes
    ----------
    rx : In(1), tx : Out(1)
        UART lines.
    m_axil_* : AXI4-Lite master port (``awprot``/``arprot`` are 0, ``wstrb`` all ones).
    """

    def __init__(self, divisor: int, addr_width: int, timeout: int = TIMEOUT_BITS):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool) or not 3 <= addr_width <= 32:
            raise TypeError(f"addr_width must be an integer from 3 to 32, not {addr_width!r}")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 12:
            raise TypeError(f"timeout must be an integer of at least 12 bit periods, not {timeout!r}")
        self._addr_width, self._timeout = addr_width, timeout
        # The master side of the accelerator's s_axil_* port: same members, flows flipped.
        members = {"m" + name[1:]: member.flip() for name, member in axi_lite_members(addr_width).items()}
        super().__init__(divisor, {"rx": In(1, init=1), "tx": Out(1, init=1), **members})

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def timeout(self) -> int:
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        aw = self._addr_width
        m.submodules.rx = rx = UartRx(self._divisor)
        m.submodules.tx = tx = UartTx(self._divisor)
        # One CRC register serves both directions: the bridge answers only after a whole frame
        # and takes no frame while it answers.
        m.submodules.crc = crc = FRAME_CRC(data_width=1).create()
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.m_axil_wstrb.eq(0xF)]

        write = Signal()
        addr, wdata = Signal(32), Signal(32)
        count = Signal(range(9 + CRC_BYTES))     # bytes of the frame still expected, its CRC included
        # The status, then (a read) the slave's read data, which it holds until ``rready``, then
        # the reply's CRC: the bridge takes the read's ``rready`` with the reply's last byte.
        reply = Signal(range(STATUS_BADCRC + 1))
        reply_left = Signal(range(6 + CRC_BYTES))
        reading, status_next = Signal(), Signal()
        idle = Signal(range(self._timeout * self._divisor))
        m.d.comb += self.m_axil_awaddr.eq(addr[:aw]), self.m_axil_araddr.eq(addr[:aw])
        m.d.comb += self.m_axil_wdata.eq(wdata)
        aw_done, w_done = Signal(), Signal()

        with m.FSM():
            with m.State("COMMAND"):
                m.d.comb += [rx.data.ready.eq(1), crc.data.eq(rx.bit.payload), crc.valid.eq(rx.bit.valid)]
                m.d.sync += status_next.eq(1)
                with m.If(rx.data.valid & ((rx.data.payload == FRAME_WRITE) | (rx.data.payload == FRAME_READ))):
                    m.d.sync += [write.eq(rx.data.payload == FRAME_WRITE), idle.eq(0),
                                 count.eq(Mux(rx.data.payload == FRAME_WRITE, 8, 4) + CRC_BYTES)]
                    m.next = "BODY"
                with m.Elif(rx.data.valid | rx.error):
                    # Dropped: the CRC holds only the bits of the byte being received.
                    m.d.comb += crc.start.eq(1)
            with m.State("BODY"):
                m.d.comb += [rx.data.ready.eq(1), crc.data.eq(rx.bit.payload), crc.valid.eq(rx.bit.valid)]
                with m.If(rx.data.valid):
                    # Address bytes, data bytes, CRC bytes, least significant first: shift in at the top.
                    with m.If(count > CRC_BYTES):
                        with m.If(~write | (count > 4 + CRC_BYTES)):
                            m.d.sync += addr.eq(Cat(addr[8:], rx.data.payload))
                        with m.Else():
                            m.d.sync += wdata.eq(Cat(wdata[8:], rx.data.payload))
                    m.d.sync += [count.eq(count - 1), idle.eq(0)]
                    with m.If(count == 1):
                        m.next = "CHECK"
                with m.Elif(idle == self._timeout * self._divisor - 1):
                    m.d.comb += crc.start.eq(1)
                    m.next = "COMMAND"
                with m.Else():
                    m.d.sync += idle.eq(idle + 1)
            with m.State("CHECK"):
                m.d.comb += crc.start.eq(1)            # the reply's CRC starts here
                m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                m.d.sync += reading.eq(0)
                with m.If(~crc.match_detected):
                    m.d.sync += [reply.eq(STATUS_BADCRC), reply_left.eq(Mux(write, 1, 5) + CRC_BYTES)]
                    m.next = "REPLY"
                with m.Elif(addr[aw:].any()):
                    m.d.sync += [reply.eq(STATUS_SLVERR), reply_left.eq(Mux(write, 1, 5) + CRC_BYTES)]
                    m.next = "REPLY"
                with m.Elif(write):
                    m.next = "WRITE"
                with m.Else():
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += [self.m_axil_awvalid.eq(~aw_done), self.m_axil_wvalid.eq(~w_done),
                             self.m_axil_bready.eq(aw_done & w_done)]
                with m.If(self.m_axil_awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(self.m_axil_wready):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done & self.m_axil_bvalid):
                    m.d.sync += [reply.eq(self.m_axil_bresp), reply_left.eq(1 + CRC_BYTES)]
                    m.next = "REPLY"
            with m.State("READ"):
                m.d.comb += self.m_axil_arvalid.eq(~aw_done)
                with m.If(self.m_axil_arready):
                    m.d.sync += aw_done.eq(1)
                with m.If(aw_done & self.m_axil_rvalid):
                    m.d.sync += [reply.eq(self.m_axil_rresp), reply_left.eq(5 + CRC_BYTES), reading.eq(1)]
                    m.next = "REPLY"
            with m.State("REPLY"):
                # The status, then (a read) the data's bytes, least significant first: byte
                # 4 + CRC_BYTES - reply_left; a refused read sends zeros for its data.  Then the
                # CRC's bytes: the bits of a byte go out while reply_left is one less than when
                # it was taken, so the CRC takes the bits sent while reply_left >= CRC_BYTES.
                data_byte, crc_byte = Signal(2), Signal(range(CRC_BYTES))
                m.d.comb += [data_byte.eq(4 + CRC_BYTES - reply_left), crc_byte.eq(CRC_BYTES - reply_left),
                             crc.data.eq(tx.bit.payload), crc.valid.eq(tx.bit.valid & (reply_left >= CRC_BYTES))]
                data_bytes = Array(self.m_axil_rdata.word_select(b, 8) for b in range(4))
                crc_bytes = Array(crc.crc.word_select(b, 8) for b in range(CRC_BYTES))
                body = Mux(reply_left <= CRC_BYTES, crc_bytes[crc_byte], Mux(reading, data_bytes[data_byte], 0))
                m.d.comb += [tx.data.payload.eq(Mux(status_next, reply, body)), tx.data.valid.eq(1)]
                with m.If(tx.data.ready):
                    m.d.sync += [reply_left.eq(reply_left - 1), status_next.eq(0)]
                    with m.If(reply_left == 1):
                        m.d.comb += [self.m_axil_rready.eq(reading), crc.start.eq(1)]
                        m.next = "COMMAND"
        return m
