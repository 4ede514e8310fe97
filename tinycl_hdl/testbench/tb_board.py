"""cocotb tests of the board top (``tinycl_uart``) through its UART pins.

The host driver runs over :class:`~tinycl_hdl.host.uart.CocotbUartTransport`,
which speaks the same framing as the pyserial transport used with a board;
every result is compared with the golden model as in ``tb_tinycl``.
"""

import cocotb
from cocotb.triggers import ClockCycles

from tb_tinycl import TinyCLTB
from tb_tinycl import start as start_tinycl
from tinycl_hdl.host.driver import BusError
from tinycl_hdl.host.uart import TIMEOUT_BITS, CocotbUartTransport


class BoardTB(TinyCLTB):
    def make_transport(self, dut):
        divisor = self.params["uart_divisor"]
        return CocotbUartTransport(dut.rx, dut.tx, baud=1e9 / (self.period_ns * divisor))

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
