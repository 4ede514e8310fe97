"""The UART host link: framing and the transports that speak it.

The frames are those of :mod:`tinycl_hdl.spec.framing`, which the bridge RTL
(:class:`~tinycl_hdl.rtl.uart.UartBridge`) uses too.  Other first bytes are
dropped, and a frame left incomplete for :data:`TIMEOUT_BITS` bit periods is
abandoned.

Both transports have the interface :class:`~tinycl_hdl.host.driver.TinyCLHost`
expects (``await read(addr)``, ``await write(addr, value)``, :class:`BusError`
on SLVERR): :class:`SerialTransport` for a board on a serial port (pyserial),
:class:`CocotbUartTransport` for the board top in simulation (cocotbext-uart).
"""

from __future__ import annotations

from ..spec.framing import FRAME_READ, FRAME_WRITE, STATUS_NAMES, TIMEOUT_BITS
from .driver import BusError

__all__ = ["FRAME_WRITE", "FRAME_READ", "TIMEOUT_BITS", "STATUS_NAMES", "write_frame", "read_frame",
           "UartFraming", "SerialTransport", "CocotbUartTransport"]



def write_frame(addr: int, value: int) -> bytes:
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"addr must fit 32 bits, not {addr!r}")
    return bytes([FRAME_WRITE]) + addr.to_bytes(4, "little") + (value & 0xFFFFFFFF).to_bytes(4, "little")


def read_frame(addr: int) -> bytes:
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"addr must fit 32 bits, not {addr!r}")
    return bytes([FRAME_READ]) + addr.to_bytes(4, "little")


class UartFraming:
    """Register access over a byte link; subclasses provide ``_send`` and ``_receive``."""

    async def _send(self, data: bytes) -> None:
        raise NotImplementedError

    async def _receive(self, count: int) -> bytes:
        raise NotImplementedError

    async def write(self, addr: int, value: int) -> None:
        await self._send(write_frame(addr, value))
        status = (await self._receive(1))[0]
        if status:
            raise BusError(f"write of 0x{value & 0xFFFFFFFF:X} to 0x{addr:X} answered "
                           f"{STATUS_NAMES.get(status, hex(status))}")

    async def read(self, addr: int) -> int:
        await self._send(read_frame(addr))
        reply = await self._receive(5)
        if reply[0]:
            raise BusError(f"read of 0x{addr:X} answered {STATUS_NAMES.get(reply[0], hex(reply[0]))}")
        return int.from_bytes(reply[1:5], "little")


class SerialTransport(UartFraming):
    """A board's UART bridge on a serial port.

    Parameters
    ----------
    port : str or serial.Serial
        Device (``/dev/ttyUSB1``), a pyserial URL, or an open port.
    baud : int
        Must match the bitstream (115200 unless rebuilt with another ``--baud``).
    timeout : float
        Seconds to wait for an answer before ``TimeoutError``.
    """

    def __init__(self, port, baud: int = 115200, timeout: float = 1.0):
        import serial
        self.serial = serial.serial_for_url(port, baudrate=baud, timeout=timeout) if isinstance(port, str) else port

    async def _send(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    async def _receive(self, count: int) -> bytes:
        data = self.serial.read(count)
        if len(data) != count:
            raise TimeoutError(f"the device answered {len(data)} of {count} bytes")
        return bytes(data)

    def close(self) -> None:
        self.serial.close()


class CocotbUartTransport(UartFraming):
    """The board top's UART pins in a cocotb simulation (cocotbext-uart models).

    Parameters
    ----------
    rx, tx
        The design's receive (driven here) and transmit (watched here) pins.
    baud : float
        Bits per second of simulated time: clock frequency over the divisor.
    """

    def __init__(self, rx, tx, baud: float):
        import logging
        from cocotbext.uart import UartSink, UartSource
        self.source = UartSource(rx, baud=baud, bits=8, stop_bits=1)
        self.sink = UartSink(tx, baud=baud, bits=8, stop_bits=1)
        for model in (self.source, self.sink):
            model.log.setLevel(logging.WARNING)

    async def _send(self, data: bytes) -> None:
        await self.source.write(data)
        await self.source.wait()

    async def _receive(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            data += await self.sink.read(1)     # read(n) fails unless n bytes have arrived
        return bytes(data)
