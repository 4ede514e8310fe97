"""The UART framing and the pyserial transport, against hand-written frames (tinycl_hdl.host.uart)."""

import asyncio

import pytest

from tinycl_hdl.host.driver import BusError
from tinycl_hdl.host.uart import SerialTransport, read_frame, write_frame


class FakePort:
    """A serial port that records what is written and answers with queued bytes."""

    def __init__(self, answer: bytes):
        self.written = bytearray()
        self.answer = bytearray(answer)

    def write(self, data):
        self.written += data

    def flush(self):
        pass

    def read(self, count):
        data, self.answer = self.answer[:count], self.answer[count:]
        return bytes(data)


def test_frames_are_little_endian_with_a_command_byte():
    assert write_frame(0x1234, 0xDEADBEEF) == bytes([0x57, 0x34, 0x12, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE])
    assert write_frame(8, -1) == bytes([0x57, 8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    assert read_frame(0x20004) == bytes([0x52, 0x04, 0x00, 0x02, 0x00])
    with pytest.raises(ValueError, match="addr"):
        read_frame(1 << 32)


def test_serial_transport_reads_writes_and_reports_slverr():
    port = FakePort(bytes([0x00, 0x78, 0x56, 0x34, 0x12]) + bytes([0x00]) + bytes([0x02]) + bytes([0x02, 0, 0, 0, 0]))
    link = SerialTransport(port)
    assert asyncio.run(link.read(0x10)) == 0x12345678
    asyncio.run(link.write(0x14, 7))
    with pytest.raises(BusError, match="SLVERR"):
        asyncio.run(link.write(0x0, 1))
    with pytest.raises(BusError, match="SLVERR"):
        asyncio.run(link.read(0x2000))
    assert bytes(port.written) == (read_frame(0x10) + write_frame(0x14, 7) + write_frame(0, 1)
                                   + read_frame(0x2000))


def test_serial_transport_times_out_on_a_short_answer():
    link = SerialTransport(FakePort(bytes([0x00, 0x01])))
    with pytest.raises(TimeoutError, match="2 of 5"):
        asyncio.run(link.read(0))
