"""cocotb tests of the board top (``tinycl_uart``) through its UART pins.

The host driver runs over :class:`~tinycl_hdl.host.uart.CocotbUartTransport`,
which speaks the same framing as the pyserial transport used with a board;
every result is compared with the golden model as in ``tb_tinycl``.
"""

from collections import Counter

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from tb_tinycl import TinyCLTB
from tb_tinycl import start as start_tinycl
from tinycl_hdl.host.driver import BusError
from tinycl_hdl.host.uart import TIMEOUT_BITS, CocotbUartTransport
from tinycl_hdl.spec.framing import FRAME_WRITE


class NoisyUartTransport(CocotbUartTransport):
    """The UART link with faults injected at random, each byte with probability ``rate``:
    dropped, duplicated, corrupted (one to eight bits flipped), followed by an extra random
    byte, or (towards the device) replaced by a line break of 11 to 40 bit periods.  Records
    every access it was asked for, to compare with what reached the device's bus."""

    KINDS = ("drop", "duplicate", "corrupt", "extra", "break")

    def __init__(self, rx, tx, baud, rng, rate):
        super().__init__(rx, tx, baud)
        self.rng, self.rate, self.noisy = rng, rate, True
        self.faults = Counter()
        self.asked_writes, self.asked_reads = [], []
        self.incoming = bytearray()

    def _fault(self, direction):
        if not self.noisy or self.rng.random() >= self.rate:
            return None
        kind = self.KINDS[int(self.rng.integers(len(self.KINDS) - (direction == "answer")))]
        self.faults[direction, kind] += 1
        return kind

    def _garble(self, byte, kind):
        if kind == "drop":
            return b""
        if kind == "duplicate":
            return bytes([byte, byte])
        if kind == "corrupt":
            return bytes([byte ^ int(self.rng.integers(1, 256))])
        if kind == "extra":
            return bytes([byte, int(self.rng.integers(256))])
        return bytes([byte])

    async def _send(self, data):
        if data[0] == FRAME_WRITE:
            self.asked_writes.append((int.from_bytes(data[1:5], "little"), int.from_bytes(data[5:9], "little")))
        else:
            self.asked_reads.append(int.from_bytes(data[1:5], "little"))
        line = bytearray()
        for byte in data:
            kind = self._fault("frame")
            if kind == "break":
                await super()._send(bytes(line))
                line.clear()
                self.rx.value = 0
                await Timer(self._bit_ns(int(self.rng.integers(11, 41))), "ns")
                self.rx.value = 1
                await Timer(self._bit_ns(1), "ns")
            else:
                line += self._garble(byte, kind)
        await super()._send(bytes(line))

    async def _receive(self, count):
        while len(self.incoming) < count:
            await self.sink.wait(self._bit_ns(self.answer_bits))
            if self.sink.empty():
                raise TimeoutError(f"the device answered {len(self.incoming)} of {count} bytes")
            byte = self.sink.read_nowait(1)[0]
            self.incoming += self._garble(byte, self._fault("answer"))
        data, self.incoming = bytes(self.incoming[:count]), self.incoming[count:]
        return data

    async def _resync(self):
        await super()._resync()
        self.incoming.clear()


class AxiAccessLog:
    """The accesses that reach the accelerator's bus behind the bridge (Icarus reaches the
    top's internal ``m_axil_*`` nets)."""

    def __init__(self, dut):
        self.dut, self.writes, self.reads = dut, [], []
        cocotb.start_soon(self._watch())

    async def _watch(self):
        d = self.dut
        while True:
            await RisingEdge(d.clk)
            if int(d.m_axil_bvalid.value) and int(d.m_axil_bready.value):
                self.writes.append((int(d.m_axil_awaddr.value), int(d.m_axil_wdata.value)))
            if int(d.m_axil_arvalid.value) and int(d.m_axil_arready.value):
                self.reads.append(int(d.m_axil_araddr.value))


def is_subsequence(done, asked):
    """Whether ``done`` is ``asked`` with some elements left out (order kept)."""
    rest = iter(asked)
    return all(any(item == other for other in rest) for item in done)


class BoardTB(TinyCLTB):
    def make_transport(self, dut):
        baud = 1e9 / (self.period_ns * self.params["uart_divisor"])
        if "noise" in self.params:
            rng = np.random.default_rng(self.params.get("seed", 1) + 4000)
            return NoisyUartTransport(dut.rx, dut.tx, baud, rng, self.params["noise"])
        return CocotbUartTransport(dut.rx, dut.tx, baud=baud)

    async def expect_bus_error(self, access):
        try:
            await access
        except BusError:
            return
        raise AssertionError("the access was accepted")


async def start(dut):
    return await start_tinycl(dut, BoardTB)


@cocotb.test()
async def uart_insert_train_infer_bit_exact(dut):
    tb = await start(dut)
    for n in range(tb.params.get("inserts", tb.cfg.slots + 2)):
        await tb.insert(tb.sample(), n % tb.cfg.classes)
        await tb.check_memory()
    await tb.host.train(epochs=1, from_scratch=True)
    tb.golden.train(epochs=1, from_scratch=True)
    if tb.params.get("check_weights", True):
        await tb.check_weights()
    for _ in range(2):
        await tb.infer(tb.sample())


@cocotb.test()
async def uart_bad_frames_answer_slverr_or_resynchronise(dut):
    tb = await start(dut)
    t, m = tb.transport, tb.host.map
    epochs = await tb.host.read("EPOCHS")
    # Device errors come back as SLVERR status bytes.
    await tb.expect_bus_error(t.write(m.by_name["ID"].offset, 1))
    await tb.expect_bus_error(t.read(m.staging.base))
    # Addresses beyond the port answer SLVERR without reaching the bus.
    beyond = 1 << m.address_width
    await tb.expect_bus_error(t.write(beyond + m.by_name["EPOCHS"].offset, epochs + 1))
    await tb.expect_bus_error(t.read(beyond))
    assert await tb.host.read("EPOCHS") == epochs
    # A stray byte that starts no frame is dropped.
    await t._send(b"\x00\xff")
    await tb.host.identify()
    # A frame cut short is abandoned after the timeout; the next frame is served.
    await t._send(bytes([0x52, 0x00]))
    await ClockCycles(dut.clk, (TIMEOUT_BITS + 2) * tb.params["uart_divisor"])
    await tb.host.identify()
    assert not t.sink.count(), "the device answered an incomplete frame"


@cocotb.test()
async def uart_noise_never_executes_a_corrupted_frame(dut):
    """``params["noise"]``: the insert, train, weight read-back and infer run of
    ``uart_insert_train_infer_bit_exact`` with faults on the link both ways; every result
    equals the golden model's, and every access that reached the bus is one the host asked
    for, in order: no corrupted frame was executed."""
    log = AxiAccessLog(dut)
    tb = await start(dut)
    t = tb.transport
    for n in range(tb.cfg.slots + 2):
        await tb.insert(tb.sample(), n % tb.cfg.classes)
    await tb.check_memory()
    await tb.host.train(epochs=1, from_scratch=True)
    tb.golden.train(epochs=1, from_scratch=True)
    await tb.check_weights()
    for _ in range(2):
        await tb.infer(tb.sample())
    t.noisy = False
    await tb.host.identify()
    await tb.check_memory()
    await tb.check_weights()
    dut._log.info("faults %s; answers lost %d, BADCRC %d; %d writes and %d reads asked, %d and %d executed",
                  dict(t.faults), t.answers_lost, t.refused, len(t.asked_writes), len(t.asked_reads),
                  len(log.writes), len(log.reads))
    assert is_subsequence(log.writes, t.asked_writes), "a write reached the bus that the host did not ask for"
    assert is_subsequence(log.reads, t.asked_reads), "a read reached the bus that the host did not ask for"
    for direction, kinds in (("frame", NoisyUartTransport.KINDS), ("answer", NoisyUartTransport.KINDS[:-1])):
        for kind in kinds:
            assert t.faults[direction, kind], f"no {kind} fault was injected into a {direction}"
    assert t.refused and t.answers_lost, "the faults never reached the CRC check or never lost an answer"
