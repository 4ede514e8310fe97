"""The UART host link: framing and the transports that speak it.

The frames are those of :mod:`tinycl_hdl.spec.framing`, which the bridge RTL
(:class:`~tinycl_hdl.rtl.uart.UartBridge`) uses too: each frame and each answer ends
in a CRC-16, and a frame whose CRC fails is answered ``BADCRC`` and not executed.
Other first bytes are dropped, and a frame left incomplete for :data:`TIMEOUT_BITS`
bit periods is abandoned.

Both transports have the interface :class:`~tinycl_hdl.host.driver.TinyCLHost`
expects (``await read(addr)``, ``await write(addr, value)``, :class:`BusError`
on SLVERR) and the retry rules of :class:`UartFraming`: :class:`SerialTransport`
for a board on a serial port (pyserial), :class:`CocotbUartTransport` for the
board top in simulation (cocotbext-uart).
"""

from __future__ import annotations

import asyncio

from ..spec.framing import (CRC_BYTES, FRAME_READ, FRAME_WRITE, STATUS_BADCRC, STATUS_NAMES, TIMEOUT_BITS, check,
                            seal)
from .driver import BusError, LinkError, UncertainWriteError

__all__ = ["FRAME_WRITE", "FRAME_READ", "TIMEOUT_BITS", "STATUS_NAMES", "write_frame", "read_frame",
           "UartFraming", "SerialTransport", "CocotbUartTransport", "LinkError", "UncertainWriteError",
           "RESYNC_BITS"]

#: Bit periods a transport keeps quiet to resynchronise: the device abandons a partial frame
#: after :data:`TIMEOUT_BITS`, and an answer already on its way (7 bytes) ends within 70.
RESYNC_BITS = TIMEOUT_BITS + 80


def _address(addr: int) -> bytes:
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"addr must fit 32 bits, not {addr!r}")
    return addr.to_bytes(4, "little")


def write_frame(addr: int, value: int) -> bytes:
    """The bytes of a write frame, its CRC included."""
    return seal(bytes([FRAME_WRITE]) + _address(addr) + (value & 0xFFFFFFFF).to_bytes(4, "little"))


def read_frame(addr: int) -> bytes:
    """The bytes of a read frame, its CRC included."""
    return seal(bytes([FRAME_READ]) + _address(addr))


class UartFraming:
    """Register access over a byte link; subclasses provide ``_send``, ``_receive`` and ``_resync``.

    A read whose answer is lost, garbled or refused as ``BADCRC`` is sent again after the
    link has resynchronised, up to ``retries`` times, then :class:`LinkError`.  A write
    refused as ``BADCRC`` was not executed and is sent again likewise; a write whose answer
    is lost or garbled raises :class:`UncertainWriteError` at once, since the device may
    have executed it.  (:class:`~tinycl_hdl.host.driver.TinyCLHost` knows which writes it
    may repeat and how to find out whether a command ran.)

    Attributes
    ----------
    retries : int
        Repetitions of a failed exchange.
    answers_lost : int
        Answers lost or garbled so far; ``refused`` counts the ``BADCRC`` answers.
    """

    #: Tells :class:`~tinycl_hdl.host.driver.TinyCLHost` that a write may end in
    #: :class:`UncertainWriteError`.
    may_lose_answers = True
    retries = 4

    def __init__(self):
        self.answers_lost = self.refused = 0

    async def _send(self, data: bytes) -> None:
        raise NotImplementedError

    async def _receive(self, count: int) -> bytes:
        """``count`` bytes, or ``TimeoutError`` when the device stops answering."""
        raise NotImplementedError

    async def _resync(self) -> None:
        """Keep the line quiet for :data:`RESYNC_BITS` bit periods and drop what arrived."""
        raise NotImplementedError

    async def _exchange(self, frame: bytes, answer: int) -> bytes | None:
        """Send ``frame``; the ``answer`` bytes before the answer's CRC, or ``None`` if it was
        lost or garbled."""
        await self._send(frame)
        try:
            reply = await self._receive(answer + CRC_BYTES)
        except TimeoutError:
            reply = None
        if reply is None or not check(reply):
            self.answers_lost += 1
            await self._resync()
            return None
        if reply[0] == STATUS_BADCRC:
            self.refused += 1
            await self._resync()
        return reply[:-CRC_BYTES]

    async def write(self, addr: int, value: int) -> None:
        what = f"write of 0x{value & 0xFFFFFFFF:X} to 0x{addr:X}"
        for _ in range(self.retries + 1):
            reply = await self._exchange(write_frame(addr, value), 1)
            if reply is None:
                raise UncertainWriteError(f"the answer to the {what} was lost: the device may have executed it")
            if reply[0] != STATUS_BADCRC:
                if reply[0]:
                    raise BusError(f"{what} answered {STATUS_NAMES.get(reply[0], hex(reply[0]))}")
                return
        raise LinkError(f"the {what} arrived garbled {self.retries + 1} times (BADCRC); it was not executed")

    async def read(self, addr: int) -> int:
        for _ in range(self.retries + 1):
            reply = await self._exchange(read_frame(addr), 5)
            if reply is not None and reply[0] != STATUS_BADCRC:
                if reply[0]:
                    raise BusError(f"read of 0x{addr:X} answered {STATUS_NAMES.get(reply[0], hex(reply[0]))}")
                return int.from_bytes(reply[1:5], "little")
        raise LinkError(f"the read of 0x{addr:X} failed {self.retries + 1} times: the link loses or garbles "
                        f"frames")


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
        super().__init__()
        self.baud = baud
        self.serial = serial.serial_for_url(port, baudrate=baud, timeout=timeout) if isinstance(port, str) else port

    async def _send(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()

    async def _receive(self, count: int) -> bytes:
        data = self.serial.read(count)
        if len(data) != count:
            raise TimeoutError(f"the device answered {len(data)} of {count} bytes")
        return bytes(data)

    async def _resync(self) -> None:
        await asyncio.sleep(RESYNC_BITS / self.baud)
        self.serial.reset_input_buffer()

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
    answer_bits : int
        Bit periods to wait for each byte of an answer before ``TimeoutError``.
    """

    def __init__(self, rx, tx, baud: float, answer_bits: int = 32):
        import logging
        from cocotbext.uart import UartSink, UartSource
        super().__init__()
        self.rx, self.baud, self.answer_bits = rx, baud, answer_bits
        self.source = UartSource(rx, baud=baud, bits=8, stop_bits=1)
        self.sink = UartSink(tx, baud=baud, bits=8, stop_bits=1)
        for model in (self.source, self.sink):
            model.log.setLevel(logging.WARNING)

    async def _send(self, data: bytes) -> None:
        await self.source.write(data)
        await self.source.wait()

    def _bit_ns(self, bits: int) -> int:
        return int(bits * 1e9 / self.baud)

    async def _receive(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            await self.sink.wait(self._bit_ns(self.answer_bits))
            if self.sink.empty():
                raise TimeoutError(f"the device answered {len(data)} of {count} bytes")
            data += self.sink.read_nowait(1)
        return bytes(data)

    async def _resync(self) -> None:
        from cocotb.triggers import Timer
        await Timer(self._bit_ns(RESYNC_BITS), "ns")
        self.sink.clear()
