"""The UART framing and the pyserial transport, against hand-written frames (tinycl_hdl.host.uart)."""

import asyncio

import pytest

from tinycl_hdl.host.driver import BusError, LinkError, UncertainWriteError
from tinycl_hdl.host.uart import SerialTransport, read_frame, write_frame
from tinycl_hdl.spec.framing import STATUS_BADCRC, check, frame_crc


def kermit(data: bytes) -> int:
    """CRC-16/KERMIT written out bit by bit (reflected polynomial 0x8408, zero initial value)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def sealed(*body: int) -> bytes:
    data = bytes(body)
    return data + kermit(data).to_bytes(2, "little")


class FakePort:
    """A serial port that records what is written and answers each write with the next queued answer."""

    def __init__(self, *answers: bytes):
        self.written = []
        self.answers = list(answers)
        self.pending = bytearray()
        self.flushed = 0

    def write(self, data):
        self.written.append(bytes(data))
        self.pending += self.answers.pop(0) if self.answers else b""

    def flush(self):
        pass

    def read(self, count):
        data, self.pending = self.pending[:count], self.pending[count:]
        return bytes(data)

    def reset_input_buffer(self):
        self.flushed += 1
        self.pending.clear()


def test_the_frame_crc_is_crc16_kermit():
    assert frame_crc(b"123456789") == 0x2189            # the catalogued check value
    for data in (b"", b"W\x00\x00\x00\x00", bytes(range(256))):
        assert frame_crc(data) == kermit(data)
    assert check(sealed(0x52, 1, 2, 3, 4)) and not check(sealed(0x52, 1, 2, 3, 4)[:-1] + b"\x00")


def test_frames_are_little_endian_with_a_command_byte_and_a_crc():
    assert write_frame(0x1234, 0xDEADBEEF) == sealed(0x57, 0x34, 0x12, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE)
    assert write_frame(8, -1) == sealed(0x57, 8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF)
    assert read_frame(0x20004) == sealed(0x52, 0x04, 0x00, 0x02, 0x00)
    with pytest.raises(ValueError, match="addr"):
        read_frame(1 << 32)


def test_serial_transport_reads_writes_and_reports_slverr():
    port = FakePort(sealed(0x00, 0x78, 0x56, 0x34, 0x12), sealed(0x00), sealed(0x02), sealed(0x02, 0, 0, 0, 0))
    link = SerialTransport(port)
    assert asyncio.run(link.read(0x10)) == 0x12345678
    asyncio.run(link.write(0x14, 7))
    with pytest.raises(BusError, match="SLVERR"):
        asyncio.run(link.write(0x0, 1))
    with pytest.raises(BusError, match="SLVERR"):
        asyncio.run(link.read(0x2000))
    assert port.written == [read_frame(0x10), write_frame(0x14, 7), write_frame(0, 1), read_frame(0x2000)]


def test_a_read_is_sent_again_after_a_lost_garbled_or_refused_answer():
    good = sealed(0x00, 0x78, 0x56, 0x34, 0x12)
    garbled = good[:3] + bytes([good[3] ^ 0x10]) + good[4:]
    port = FakePort(good[:4], garbled, sealed(STATUS_BADCRC, 0, 0, 0, 0), good)
    link = SerialTransport(port)
    assert asyncio.run(link.read(0x10)) == 0x12345678
    assert port.written == [read_frame(0x10)] * 4
    assert (link.answers_lost, link.refused, port.flushed) == (2, 1, 3)
    with pytest.raises(LinkError, match="read of 0x10 failed 5 times"):
        asyncio.run(SerialTransport(FakePort(*[garbled] * 5)).read(0x10))


def test_a_write_is_sent_again_only_when_the_device_says_it_was_not_executed():
    port = FakePort(sealed(STATUS_BADCRC), sealed(0x00))
    asyncio.run(SerialTransport(port).write(0x14, 7))
    assert port.written == [write_frame(0x14, 7)] * 2
    for answer in (sealed(0x00)[:2], b"\x00\xff\x00", b""):
        port = FakePort(answer, sealed(0x00))
        with pytest.raises(UncertainWriteError, match="may have executed"):
            asyncio.run(SerialTransport(port).write(0x14, 7))
        assert port.written == [write_frame(0x14, 7)]
    with pytest.raises(LinkError, match="not executed"):
        asyncio.run(SerialTransport(FakePort(*[sealed(STATUS_BADCRC)] * 5)).write(0x14, 7))


class LossyLink:
    """A transport whose first answers to chosen writes are lost (the writes themselves land)."""

    may_lose_answers = True

    def __init__(self, regs, lose):
        self.regs, self.lose, self.writes = regs, dict(lose), []

    async def read(self, addr):
        return self.regs.get(addr, 0)

    async def write(self, addr, value):
        self.writes.append((addr, value))
        self.regs[addr] = value
        if self.lose.get(addr, 0):
            self.lose[addr] -= 1
            raise UncertainWriteError("lost")


def test_the_host_repeats_idempotent_writes_and_asks_whether_a_lost_command_ran():
    from tinycl_hdl.host.driver import TinyCLHost
    from tinycl_hdl.spec.catalogue import BOARD
    from tinycl_hdl.spec.regmap import Command, RegisterMap

    m = RegisterMap(BOARD).by_name
    label, command, irq = m["LABEL"].offset, m["COMMAND"].offset, m["IRQ_STATUS"].offset
    # LABEL's answer lost twice: written three times.
    link = LossyLink({}, {label: 2})
    asyncio.run(TinyCLHost(link, BOARD).write("LABEL", 1))
    assert link.writes == [(label, 1)] * 3
    # An INSERT whose answer is lost but which ran (IRQ_STATUS set): written once.
    link = LossyLink({irq: 1}, {command: 1})
    asyncio.run(TinyCLHost(link, BOARD)._issue(Command.INSERT))
    assert link.writes == [(command, Command.INSERT)]
    # One that did not run (IRQ_STATUS clear): written again.
    link = LossyLink({irq: 0}, {command: 1})
    asyncio.run(TinyCLHost(link, BOARD)._issue(Command.INSERT))
    assert link.writes == [(command, Command.INSERT)] * 2
    # A lost CLEAR_COUNTERS is repeated without asking.
    link = LossyLink({irq: 1}, {command: 1})
    asyncio.run(TinyCLHost(link, BOARD)._issue(Command.CLEAR_COUNTERS))
    assert link.writes == [(command, Command.CLEAR_COUNTERS)] * 2
