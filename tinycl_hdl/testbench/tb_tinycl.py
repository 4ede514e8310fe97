"""End-to-end cocotb tests of the TinyCL top through its AXI4-Lite port.

Every command's effect is compared with the golden model's
:class:`~tinycl_hdl.model.accelerator.SoftwareAccelerator`: GDumb slot labels and class
counts after inserts, every weight after training, logits and predictions
after inference.
"""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from axil_bus import BusMonitor, PinMaster, stall_every_channel
from tbutil import ClockedTB, ReadWriteCollisionMonitor, config_from_env, params_from_env
from tinycl_hdl.host.driver import BusError, CocotbAxiLiteTransport, CommandError, TinyCLHost
from tinycl_hdl.host.session import GoldenSession
from tinycl_hdl.model.accelerator import SoftwareAccelerator
from tinycl_hdl.host.session import bit_exact_run as checked_run
from tinycl_hdl.model.perf import reads_per_pass
from tinycl_hdl.spec.regmap import Command, ErrorCode, Phase, RegisterMap
from tinycl_hdl.rtl.axi import OKAY, AxiLiteSlave
from tinycl_hdl.rtl.top import dual_port_memories


class TinyCLTB(ClockedTB):
    """Owns the clock, reset, a register transport, the host driver and the golden model
    (a :class:`~tinycl_hdl.host.session.GoldenSession`)."""

    def __init__(self, dut):
        super().__init__(dut)
        self.cfg = config_from_env()
        self.params = params_from_env()
        self.transport = self.make_transport(dut)
        self.host = TinyCLHost(self.transport, self.cfg, wait=lambda n: ClockCycles(dut.clk, n),
                               max_polls=self.params.get("max_polls", 20000))
        self.session = GoldenSession(self.host, self.params.get("seed", 1))
        self.golden, self.rng = self.session.golden, self.session.rng
        self.sample, self.insert, self.infer = self.session.sample, self.session.insert, self.session.infer
        self.check_memory, self.check_weights = self.session.check_memory, self.session.check_weights

    def make_transport(self, dut):
        return CocotbAxiLiteTransport(dut, dut.clk, dut.rst)

    def start_stress(self):
        """``params["traffic"] == "stress"``: random idle cycles on AW, W and AR, back-pressure
        on B and R, a monitor holding the slave to the AXI rules and its wait bound, and two
        coroutines that read and write beside the test's own accesses."""
        self.monitor = BusMonitor(self.dut)
        stall_every_channel(self.transport.master, np.random.default_rng(self.params.get("seed", 1) + 1000))
        self._stress = True
        self._side = [cocotb.start_soon(self._side_reader()), cocotb.start_soon(self._side_writer())]
        self.side_accesses = 0

    async def _side_reader(self):
        """Reads the identification registers, which never change."""
        names = ["ID", "IN_H", "IN_W", "IN_C", "KERNEL", "CLASSES", "SLOTS"]
        want = {r.name: r.reset for r in self.host.map.registers if r.name in names}
        rng = np.random.default_rng(self.params.get("seed", 1) + 2000)
        while self._stress:
            name = names[int(rng.integers(len(names)))]
            assert await self.host.read(name) == want[name], f"{name} read during traffic"
            self.side_accesses += 1
            await ClockCycles(self.dut.clk, int(rng.integers(0, 8)))

    async def _side_writer(self):
        """Writes that must change nothing: a read-only register (SLVERR), an unmapped
        address (SLVERR), and LR_SHIFT with the value it holds (OKAY when idle, SLVERR when
        busy).  A write landing elsewhere shows up in the golden comparisons."""
        rng = np.random.default_rng(self.params.get("seed", 1) + 3000)
        m, t = self.host.map, self.transport
        unmapped = 0x3FC               # below the windows, past the registers
        while self._stress:
            choice = int(rng.integers(3))
            if choice == 2:
                try:
                    await self.host.write("LR_SHIFT", self.cfg.lr_shift)
                except BusError:
                    pass
            else:
                try:
                    await t.write(m.by_name["ID"].offset if choice == 0 else unmapped, int(rng.integers(1 << 32)))
                except BusError:
                    pass
                else:
                    raise AssertionError("a write to a read-only or unmapped address was accepted")
            self.side_accesses += 1
            await ClockCycles(self.dut.clk, int(rng.integers(0, 8)))

    async def stop_stress(self):
        """Stop the side traffic, let the last accesses finish, and check the monitor."""
        if getattr(self, "_stress", False):
            self._stress = False
            await ClockCycles(self.dut.clk, 200)
            self.monitor.check()
            return dict(self.monitor.seen, side_accesses=self.side_accesses,
                        most_writes_behind_a_read=max(self.monitor.writes_behind, default=0))
        return {}


async def start(dut, tb_class=TinyCLTB):
    """A reset design whose identification registers match the configuration; with
    ``params["traffic"] == "stress"`` the stalled, concurrent traffic runs from here on."""
    tb = tb_class(dut)
    await tb.reset()
    await tb.host.identify()
    if tb.params.get("traffic") == "stress":
        tb.start_stress()
    return tb


async def bit_exact_run(tb, inserts: int, epochs: int, inferences: int) -> dict:
    """:func:`tinycl_hdl.host.session.bit_exact_run`, with the bus traffic's findings."""
    result = await checked_run(tb.session, inserts, epochs, inferences)
    return dict(result, traffic=await tb.stop_stress())


@cocotb.test()
async def insert_train_infer_bit_exact(dut):
    tb = await start(dut)
    cfg = tb.cfg
    monitor = ReadWriteCollisionMonitor(dut, dual_port_memories(cfg))
    n_insert = tb.params.get("inserts", cfg.slots + 4)
    for n in range(n_insert):
        # Skewed labels so that the memory fills with some classes and then rebalances.
        label = int(tb.rng.integers(0, max(2, cfg.classes // 2))) if n < cfg.slots else int(tb.rng.integers(cfg.classes))
        await tb.insert(tb.sample(), label)
        await tb.check_memory()
    await tb.host.train(epochs=tb.params.get("epochs", 2), from_scratch=True)
    tb.golden.train(epochs=tb.params.get("epochs", 2), from_scratch=True)
    await tb.check_weights()
    for _ in range(3):
        await tb.infer(tb.sample())
    # Train again without re-initialising: training continues from the weights.
    await tb.host.train(epochs=1, from_scratch=False)
    tb.golden.train(epochs=1, from_scratch=False)
    await tb.check_weights()
    await tb.infer(tb.sample())
    counters = await tb.host.counters()
    dut._log.info("counters %s", counters)
    steps = tb.golden.sampler.size * (tb.params.get("epochs", 2) + 1)
    assert counters["TRAIN_SAMPLES"] == steps
    # Every busy cycle belongs to exactly one phase.
    assert counters["CYCLES"] == sum(counters[f"CYC_{p.name}"] for p in Phase)
    # The read formula (docs/architecture.md, "Snake-like sliding window"): each channel sweep reads the formula's pixels; a training step sweeps
    # every channel of every filter group twice (forward, weight gradient), an inference once.
    sweeps = (2 * steps + 4) * (cfg.filters // cfg.n_pu) * cfg.in_c
    assert counters["SAMPLE_READS"] == sweeps * reads_per_pass(cfg)
    await tb.host.command(Command.CLEAR_COUNTERS)
    assert set((await tb.host.counters()).values()) == {0}, "counters after CLEAR_COUNTERS"
    dut._log.info("%d memories watched for same-cycle reads of written words", len(monitor.memories))
    assert not monitor.collisions, f"reads of words written in the same cycle: {monitor.collisions[:5]}"


@cocotb.test()
async def bad_accesses_answer_slverr_and_change_nothing(dut):
    tb = await start(dut)
    host, t, m = tb.host, tb.transport, tb.host.map
    before = await host.read("EPOCHS")
    for addr, value in [(m.by_name["ID"].offset, 1), (m.by_name["STATUS"].offset, 1),
                        (m.by_name["CYCLES"].offset, 5), (0x3FC, 0), (m.labels.base, 3),
                        # a weight that does not fit the data format (read-only without restore)
                        (m.conv_w.base, 1 << (tb.cfg.data_width - 1))]:
        try:
            await t.write(addr, value)
        except BusError:
            pass
        else:
            raise AssertionError(f"write to 0x{addr:X} was accepted")
    for addr in (0x3FC, m.staging.base):
        try:
            await t.read(addr)
        except BusError:
            pass
        else:
            raise AssertionError(f"read of 0x{addr:X} was accepted")
    try:
        await host.write("LR_SHIFT", cfg_lr := tb.cfg.data_width + 1)
    except BusError:
        pass
    else:
        raise AssertionError(f"LR_SHIFT {cfg_lr} accepted")
    assert await host.read("LR_SHIFT") == tb.cfg.lr_shift
    assert await host.read("EPOCHS") == before
    assert await host.read("ID") == 0x54434C31


@cocotb.test()
async def refused_commands_set_error_codes(dut):
    tb = await start(dut)
    host = tb.host
    await host.write("LABEL", tb.cfg.classes)
    await host.stage(tb.sample())
    for command, code in [(Command.INSERT, ErrorCode.BAD_LABEL), (Command(0), ErrorCode.BAD_COMMAND)]:
        try:
            await host.command(command)
        except CommandError as error:
            assert error.code == code
        else:
            raise AssertionError(f"{command.name} accepted")
    await host.write("EPOCHS", 0)
    try:
        await host.train()
    except CommandError as error:
        assert error.code == ErrorCode.BAD_EPOCHS
    else:
        raise AssertionError("TRAIN with zero epochs accepted")
    assert await host.read("MEM_SIZE") == 0
    await tb.check_memory()


@cocotb.test()
async def busy_refusal_and_abort_keep_the_memory(dut):
    tb = await start(dut)
    host = tb.host
    for n in range(min(tb.cfg.slots, 6)):
        await tb.insert(tb.sample(), n % tb.cfg.classes)
    await host.write("EPOCHS", 50)
    await host.command(Command.TRAIN, wait=False)
    await ClockCycles(dut.clk, 200)
    assert await host.busy()
    # A command while busy is refused; a register write while busy answers SLVERR.
    await host.write("COMMAND", int(Command.INSERT))
    assert await host.read("ERROR") == ErrorCode.BUSY
    try:
        await host.write("LABEL", 1)
    except BusError:
        pass
    else:
        raise AssertionError("LABEL write accepted while busy")
    await host.abort()
    assert not await host.busy()
    await tb.check_memory()
    # The accelerator is usable again, and still bit-exact from a fresh TRAIN.
    await host.write("SEED", 77)
    tb.golden.seed(77)
    await host.train(epochs=1)
    tb.golden.train(epochs=1)
    await tb.check_weights()


@cocotb.test()
async def reset_leaves_a_known_state(dut):
    """Reset in the middle of training: every register returns to its documented reset
    value, and the accelerator then behaves exactly like a fresh golden model."""
    tb = await start(dut)
    host = tb.host
    for n in range(min(tb.cfg.slots, 5)):
        await tb.insert(tb.sample(), n % tb.cfg.classes)
    await host.write("LR_SHIFT", 1)
    await host.write("SEED", 1234)
    await host.write("EPOCHS", 20)
    await host.command(Command.TRAIN, wait=False)
    await ClockCycles(dut.clk, 300)
    assert await host.busy()
    await tb.reset()
    for reg in host.map.registers:
        if reg.reset is not None:
            assert await host.read(reg.name) == reg.reset, f"{reg.name} after reset"
    # Behaves like a fresh chip (GDumb memory emptied by reset, LFSR reseeded); reset also
    # disabled the interrupt, which identify enables again.
    await host.identify()
    tb.golden = tb.session.golden = SoftwareAccelerator(tb.cfg, "golden")
    for n in range(min(tb.cfg.slots, 4)):
        await tb.insert(tb.sample(), n % tb.cfg.classes)
    await host.train(epochs=1)
    tb.golden.train(epochs=1)
    await tb.check_weights()


@cocotb.test()
async def irq_rises_as_a_command_finishes_and_stays_until_cleared(dut):
    """``irq`` is low after reset, rises in the cycle ``busy`` falls at the end of an INSERT
    and of a TRAIN, stays up until IRQ_STATUS is written 1, and stays low while IRQ_ENABLE is
    clear (IRQ_STATUS still records the completion); refused commands, CLEAR_COUNTERS and
    ABORT when idle raise nothing."""
    from cocotb.triggers import FallingEdge
    tb = await start(dut)              # identify enables the interrupt
    host = tb.host
    assert int(dut.irq.value) == 0 and await host.read("IRQ_ENABLE") == 1

    async def run_until_irq(command, limit):
        await host.write("COMMAND", int(command))
        busy_before = None
        for cycle in range(limit):
            await FallingEdge(dut.clk)
            if int(dut.irq.value):
                assert busy_before == 1 and not int(dut.busy.value), "irq rises as busy falls"
                return cycle
            busy_before = int(dut.busy.value)
        raise AssertionError(f"no irq within {limit} cycles of {command.name}")

    await host.stage(tb.sample())
    await host.write("LABEL", 0)
    await run_until_irq(Command.INSERT, 5000)
    await ClockCycles(dut.clk, 40)
    assert int(dut.irq.value) == 1 and await host.read("IRQ_STATUS") == 1, "irq is a level"
    await host.write("IRQ_STATUS", 1)
    await ClockCycles(dut.clk, 2)
    assert int(dut.irq.value) == 0 and await host.read("IRQ_STATUS") == 0, "cleared by writing 1"
    await host.write("EPOCHS", 1)
    await run_until_irq(Command.TRAIN, 1 << 22)
    await host.write("IRQ_STATUS", 1)
    for command in (Command.CLEAR_COUNTERS, Command.ABORT):
        await host.write("COMMAND", int(command))
    await host.write("LABEL", tb.cfg.classes)        # INSERT refused: BAD_LABEL
    await host.write("COMMAND", int(Command.INSERT))
    assert await host.read("ERROR") == ErrorCode.BAD_LABEL
    await ClockCycles(dut.clk, 200)
    assert int(dut.irq.value) == 0 and await host.read("IRQ_STATUS") == 0, "nothing finished"
    await host.write("IRQ_ENABLE", 0)
    await host.write("LABEL", 0)
    await host.write("COMMAND", int(Command.INSERT))
    await ClockCycles(dut.clk, 2000)
    assert not await host.busy() and await host.read("IRQ_STATUS") == 1 and int(dut.irq.value) == 0
    await host.write("IRQ_ENABLE", 1)
    await ClockCycles(dut.clk, 2)
    assert int(dut.irq.value) == 1, "enabling shows the recorded completion"


@cocotb.test()
async def aw_and_ar_in_one_cycle_write_lands_at_its_own_address(dut):
    """AW (LABEL) and AR (LR_SHIFT) in the same cycle, W a dozen cycles later: the write
    changes LABEL alone and the read returns LR_SHIFT, both OKAY."""
    cfg = config_from_env()
    regs = RegisterMap(cfg).by_name
    tb = ClockedTB(dut)
    pins = PinMaster(dut)
    await tb.reset()
    while (await pins.read(regs["STATUS"].offset))[1] & 1:
        pass                     # the serial datapath clears its parameters after reset
    label, lr_shift = regs["LABEL"].offset, regs["LR_SHIFT"].offset
    value = cfg.classes - 1
    seen = await pins.cycles({0: {"awaddr": label, "awvalid": 1, "araddr": lr_shift, "arvalid": 1},
                              12: {"wdata": value, "wvalid": 1}})
    assert seen["ar"] < 12 <= min(seen["aw"], seen["w"]), f"the read first, the write with its W: {seen}"
    assert seen["bresp"] == OKAY and seen["rresp"] == OKAY, seen
    assert seen["rdata"] == cfg.lr_shift, "the read answered another register"
    assert await pins.read(label) == (OKAY, value), "LABEL after the write"
    assert await pins.read(lr_shift) == (OKAY, cfg.lr_shift), "LR_SHIFT changed"
    # And the other way round: AR first, AW and W together a cycle later.
    seen = await pins.cycles({0: {"araddr": label, "arvalid": 1},
                              1: {"awaddr": lr_shift, "awvalid": 1, "wdata": cfg.lr_shift - 1 if cfg.lr_shift else 1,
                                  "wvalid": 1}})
    assert seen["rdata"] == value and seen["bresp"] == OKAY, seen
    assert await pins.read(label) == (OKAY, value), "LABEL changed by a write to LR_SHIFT"


@cocotb.test()
async def reads_are_served_while_writes_keep_arriving(dut):
    """Four writers keep AW and W valid without a gap; each of 20 reads is still answered,
    behind at most ``AxiLiteSlave.reads_wait_for_writes`` write responses."""
    from cocotb.triggers import with_timeout
    tb = await start(dut)
    monitor = BusMonitor(dut)
    host, running = tb.host, [True]
    label = host.reg("LABEL")

    async def writer(k):
        n = 0
        while running[0]:
            await tb.transport.write(label, (k + n) % tb.cfg.classes)
            n += 1

    writers = [cocotb.start_soon(writer(k)) for k in range(4)]
    await ClockCycles(dut.clk, 20)
    for _ in range(20):
        assert await with_timeout(host.read("ID"), 400 * tb.period_ns, "ns") == 0x54434C31
    running[0] = False
    for w in writers:
        await w
    monitor.check()
    dut._log.info("reads waited behind %s writes, in %s cycles", monitor.writes_behind, monitor.read_cycles)
    assert max(monitor.writes_behind) <= AxiLiteSlave.reads_wait_for_writes
    assert monitor.seen["read_behind_write"] >= 10, "the writers did not contend with the reads"
