"""Host driver of the TinyCL accelerator: one API over any register transport.

A transport moves 32-bit words: ``await read(addr) -> int`` and
``await write(addr, value)``, raising :class:`BusError` when the device
answers ``SLVERR``.  Two methods are optional:

* ``await write_many([(addr, value), ...])`` writes a list in one exchange (staging a
  sample is one word per pixel);
* ``await wait_interrupt(max_cycles) -> bool`` waits until the ``irq`` output is high
  or ``max_cycles`` cycles have passed, and says whether it is high.  With it the
  driver enables the interrupt and waits on it instead of polling ``STATUS``.

:class:`CocotbAxiLiteTransport` drives cocotbext-axi's AXI4-Lite master in
simulation; :class:`~tinycl_hdl.host.native.NativeTransport` a Verilator model
clocked in C++; :mod:`tinycl_hdl.host.uart` a board.
"""

from __future__ import annotations

import numpy as np

from ..spec.config import TinyCLConfig
from ..model.golden import Weights
from ..model.state import LearnerState, StateError
from ..spec.regmap import ID_VALUE, Command, ErrorCode, Phase, RegisterMap

__all__ = ["BusError", "LinkError", "UncertainWriteError", "CommandError", "CocotbAxiLiteTransport",
           "INTERRUPTING", "TinyCLHost"]


class BusError(RuntimeError):
    """The device answered SLVERR."""


class LinkError(RuntimeError):
    """The link to the device kept losing or garbling an exchange."""


class UncertainWriteError(LinkError):
    """A write's answer was lost: the device may or may not have executed it."""


class CommandError(RuntimeError):
    """The device refused a command; ``code`` is the :class:`ErrorCode`."""

    def __init__(self, command: Command, code: int):
        self.command, self.code = command, ErrorCode(code)
        super().__init__(f"{command.name} refused: {self.code.name}")


class CocotbAxiLiteTransport:
    """Register access through cocotbext-axi's :class:`AxiLiteMaster` (bus prefix ``s_axil``)."""

    def __init__(self, dut, clock, reset, prefix: str = "s_axil"):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster
        self.dut, self.clock = dut, clock
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), clock, reset)
        self.master.write_if.log.setLevel("WARNING")
        self.master.read_if.log.setLevel("WARNING")

    async def read(self, addr: int) -> int:
        resp = await self.master.read(addr, 4)
        if int(resp.resp) != 0:
            raise BusError(f"read of 0x{addr:X} answered {resp.resp.name}")
        return int.from_bytes(resp.data, "little")

    async def write(self, addr: int, value: int) -> None:
        resp = await self.master.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))
        if int(resp.resp) != 0:
            raise BusError(f"write of 0x{value:X} to 0x{addr:X} answered {resp.resp.name}")


    async def wait_interrupt(self, max_cycles: int) -> bool:
        """Wait for the top's ``irq`` output (a level) or ``max_cycles`` clock cycles."""
        from cocotb.triggers import ClockCycles, First, RisingEdge
        if not int(self.dut.irq.value):
            await First(RisingEdge(self.dut.irq), ClockCycles(self.clock, max_cycles))
        return bool(int(self.dut.irq.value))


#: The commands that end in the control unit's ``DONE``, which sets IRQ_STATUS.
INTERRUPTING = (Command.INSERT, Command.TRAIN, Command.TRAIN_KEEP, Command.INFER)


def _signed(value: int, bits: int = 32) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


class TinyCLHost:
    """Drive one accelerator.

    Parameters
    ----------
    transport
        Object with ``read`` and ``write`` coroutines.
    cfg : TinyCLConfig
        The configuration the device was generated from (checked by :meth:`identify`).
    wait
        Coroutine function called between status polls (a clock edge in simulation).
    max_polls : int or None
        Polls of ``STATUS`` (or waits of ``interrupt_cycles``) before ``TimeoutError``.
    interrupt_cycles : int
        Cycles one wait for the interrupt lasts at most, when the transport has
        ``wait_interrupt``.
    """

    def __init__(self, transport, cfg: TinyCLConfig, wait=None, max_polls: int | None = None,
                 interrupt_cycles: int = 1 << 20):
        self.transport = transport
        self.max_polls = max_polls
        self.cfg = cfg
        self.map = RegisterMap(cfg)
        self.wait = wait
        self.interrupt_cycles = interrupt_cycles
        self.interrupts = False           # IRQ_ENABLE set by :meth:`identify`

    #: Writes tried before an :class:`UncertainWriteError` from the transport is passed on.
    LINK_ATTEMPTS = 8

    def reg(self, name: str) -> int:
        return self.map.by_name[name].offset

    async def read(self, name: str) -> int:
        return await self.transport.read(self.reg(name))

    async def write(self, name: str, value: int) -> None:
        if name == "COMMAND":              # as it is: command() knows whether a lost one ran
            return await self.transport.write(self.reg(name), value)
        await self._write_word(self.reg(name), value)

    async def _write_word(self, addr: int, value: int, ran=None) -> None:
        """Write, and write again when the link lost the answer (:class:`UncertainWriteError`).
        Every register but ``COMMAND`` holds what was last written (``IRQ_STATUS`` clears
        what is written), so repeating such a write is safe; for others, ``ran`` (a
        coroutine function) first asks the device whether the lost write took effect."""
        for attempt in range(self.LINK_ATTEMPTS):
            try:
                return await self.transport.write(addr, value)
            except UncertainWriteError:
                if attempt == self.LINK_ATTEMPTS - 1:
                    raise
                if ran is not None and await ran():
                    return

    async def identify(self) -> dict:
        """Read the generator parameters (raises if they differ from ``cfg``), then wait until
        the device is idle."""
        if await self.read("ID") != ID_VALUE:
            raise RuntimeError("no TinyCL accelerator answers at this address")
        params = {name: await self.read(name) for name in
                  ("IN_H", "IN_W", "IN_C", "KERNEL", "FILTERS", "CLASSES", "SLOTS", "DATA_WIDTH", "FRAC_BITS",
                   "ACC_WIDTH", "N_PU", "WINDOW")}
        expected = {r.name: r.reset for r in self.map.registers if r.name in params}
        if params != expected:
            raise RuntimeError(f"device parameters {params} differ from the configuration {expected}")
        await self.wait_idle(max_polls=self.max_polls)      # the serial datapath clears after reset
        if hasattr(self.transport, "wait_interrupt"):
            await self.write("IRQ_STATUS", 1)
            await self.write("IRQ_ENABLE", 1)
            self.interrupts = True
        return params

    async def busy(self) -> bool:
        return bool(await self.read("STATUS") & 1)

    async def wait_idle(self, poll_cycles: int = 64, max_polls: int | None = None) -> None:
        """Poll STATUS until the command finishes (``TimeoutError`` after ``max_polls``)."""
        polls = 0
        while await self.busy():
            polls += 1
            if max_polls is not None and polls > max_polls:
                raise TimeoutError(f"still busy after {polls} polls")
            if self.wait is not None:
                await self.wait(poll_cycles)

    async def command(self, command: Command, wait: bool = True) -> None:
        """Issue ``command``; raises :class:`CommandError` if refused.  With ``wait``, return
        when it has finished: on the interrupt if :meth:`identify` enabled it, else by polling."""
        interrupting = self.interrupts and command in INTERRUPTING
        lossy = getattr(self.transport, "may_lose_answers", False)
        if command in INTERRUPTING and (interrupting or lossy):
            await self.write("IRQ_STATUS", 1)          # an earlier completion is not this one's
        await self._issue(command)
        code = await self.read("ERROR")
        if code != ErrorCode.NONE:
            raise CommandError(command, code)
        if wait:
            if interrupting:
                await self.wait_interrupt()
            await self.wait_idle(max_polls=self.max_polls)

    async def _issue(self, command: Command) -> None:
        """Write ``COMMAND``.  When the link loses the answer, a command of
        :data:`INTERRUPTING` is written again only if it did not run (:meth:`_finished`); the
        others (``ABORT``, ``CLEAR_COUNTERS``) leave the same state when repeated.  A command
        refused the first time is refused again."""
        await self._write_word(self.reg("COMMAND"), int(command),
                               ran=self._finished if command in INTERRUPTING else None)

    async def _finished(self) -> bool:
        """Whether the command just written ran: it sets ``IRQ_STATUS`` as it finishes (cleared
        just before it was written)."""
        await self.wait_idle(max_polls=self.max_polls)
        return bool(await self.read("IRQ_STATUS") & 1)

    async def wait_interrupt(self) -> None:
        """Wait until the running command has finished (``irq``)."""
        waits = 0
        while not await self.transport.wait_interrupt(self.interrupt_cycles):
            waits += 1
            if self.max_polls is not None and waits > self.max_polls:
                raise TimeoutError(f"no interrupt in {waits * self.interrupt_cycles} cycles")

    async def stage(self, pixels) -> None:
        """Write one ``[H, W, C]`` uint8 sample into the staging buffer."""
        x = np.asarray(pixels, dtype=np.uint8)
        cfg = self.cfg
        if x.shape != (cfg.in_h, cfg.in_w, cfg.in_c):
            raise ValueError(f"sample must have shape {(cfg.in_h, cfg.in_w, cfg.in_c)}, not {x.shape}")
        await self._write_words([(self.map.staging.address(row=row, col=col),
                                  int.from_bytes(bytes(x[row, col]), "little"))
                                 for row in range(cfg.in_h) for col in range(cfg.in_w)])

    async def insert(self, pixels, label: int):
        """``INSERT``: returns the slot written, or ``None`` when GDumb did not keep the sample."""
        await self.stage(pixels)
        await self.write("LABEL", label)
        await self.command(Command.INSERT)
        result = await self.read("RESULT")
        return None if result == 0xFFFFFFFF else result

    async def train(self, epochs: int | None = None, from_scratch: bool = True) -> None:
        if epochs is not None:
            await self.write("EPOCHS", epochs)
        await self.command(Command.TRAIN if from_scratch else Command.TRAIN_KEEP)

    async def infer(self, pixels) -> int:
        await self.stage(pixels)
        await self.command(Command.INFER)
        return await self.read("RESULT")

    async def abort(self) -> None:
        await self.command(Command.ABORT, wait=False)
        await self.wait_idle()

    async def read_logits(self) -> np.ndarray:
        return np.array([_signed(await self.read(f"LOGIT{o}")) for o in range(self.cfg.classes)])

    async def read_weights(self) -> Weights:
        w = Weights.zeros(self.cfg)
        arrays = w.arrays()
        for name, index, addr in self._weight_words():
            arrays[name][index] = _signed(await self.transport.read(addr))
        return w

    async def _write_words(self, writes) -> None:
        write_many = getattr(self.transport, "write_many", None)
        if write_many is not None:
            await write_many(writes)
        else:
            for addr, word in writes:
                await self._write_word(addr, word)

    def _need_restorable(self, what: str) -> None:
        if not self.map.restorable:
            raise StateError(f"{what} needs writable weights, which the {self.cfg.datapath!r} datapath does not "
                             f"build (datapath must be 'array')")

    async def write_weights(self, weights: Weights) -> None:
        """Write every weight and bias (raw fixed-point values) while the accelerator is idle;
        a value outside the data format answers ``SLVERR`` (:class:`BusError`)."""
        self._need_restorable("write_weights")
        arrays = weights.arrays()
        await self._write_words([(addr, int(arrays[name][index]) & 0xFFFFFFFF)
                                 for name, index, addr in self._weight_words()])

    def _weight_words(self):
        """``(array, index, address)`` of every weight and bias, in the golden model's order."""
        m, cfg = self.map, self.cfg
        shapes = Weights.zeros(cfg).arrays()
        words = [("conv_w", (f, c, i, j), m.conv_w.address(f=f, c=c, i=i, j=j))
                 for f, c, i, j in np.ndindex(shapes["conv_w"].shape)]
        words += [("dense_w", (o, f, y, x), m.dense_w.address(o=o, f=f, y=y, x=x))
                  for o, f, y, x in np.ndindex(shapes["dense_w"].shape)]
        words += [("conv_b", (f,), self.reg(f"CONV_B{f}")) for f in range(cfg.filters)]
        words += [("dense_b", (o,), self.reg(f"DENSE_B{o}")) for o in range(cfg.classes)]
        return words

    async def read_sample(self, slot: int) -> np.ndarray:
        """The ``[H, W, C]`` pixels of GDumb slot ``slot`` (the ``SAMPLES`` window)."""
        self._need_restorable("read_sample")
        cfg = self.cfg
        x = np.zeros((cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        for row in range(cfg.in_h):
            for col in range(cfg.in_w):
                word = await self.transport.read(self.map.samples.address(slot=slot, row=row, col=col))
                x[row, col] = list(word.to_bytes(4, "little")[:cfg.in_c])
        return x

    async def save_state(self) -> LearnerState:
        """Read the learner's whole state (weights, the GDumb slots in use, the LFSR, the
        workload registers) while the accelerator is idle."""
        self._need_restorable("save_state")
        if await self.busy():
            raise StateError("the accelerator is busy: save_state reads an idle accelerator")
        labels, counts = await self.read_memory()
        if not np.array_equal(counts, np.bincount(labels, minlength=self.cfg.classes)):
            raise StateError(f"the device's class counts {counts.tolist()} differ from its labels")
        pixels = np.stack([await self.read_sample(s) for s in range(len(labels))]) if len(labels) else \
            np.zeros((0, self.cfg.in_h, self.cfg.in_w, self.cfg.in_c), dtype=np.uint8)
        return LearnerState(self.cfg, await self.read_weights(), pixels, labels, await self.read("LFSR"),
                            await self.read("SEED"), await self.read("LR_SHIFT"), await self.read("EPOCHS"))

    async def load_state(self, state: LearnerState) -> None:
        """Put a saved state back into an accelerator whose GDumb memory is empty (after a
        reset): the workload registers, the slots (replayed as ``INSERT`` in slot order, which
        appends each to the next slot and draws nothing), the weights, and last the LFSR.
        A state of another configuration, or a memory that is not empty, raises
        :class:`~tinycl_hdl.model.state.StateError` before anything is written."""
        self._need_restorable("load_state")
        state.check_config(self.cfg)
        if await self.busy():
            raise StateError("the accelerator is busy: load_state writes an idle accelerator")
        held = await self.read("MEM_SIZE")
        if held:
            raise StateError(f"load_state needs an empty GDumb memory, and it holds {held} samples: "
                             f"reset the accelerator first")
        await self.write("SEED", state.seed)
        await self.write("LR_SHIFT", state.lr_shift)
        await self.write("EPOCHS", state.epochs)
        for slot, (pixels, label) in enumerate(zip(state.pixels, state.labels)):
            if await self.insert(pixels, int(label)) != slot:
                raise RuntimeError(f"restoring slot {slot}: the device wrote another slot")
        await self.write_weights(state.weights)
        await self.write("LFSR", state.lfsr)

    async def read_memory(self):
        """``(labels of the used slots, per-class counts)``."""
        size = await self.read("MEM_SIZE")
        labels = [await self.transport.read(self.map.labels.address(slot=s)) for s in range(size)]
        counts = [await self.read(f"CLASS_COUNT{c}") for c in range(self.cfg.classes)]
        return np.array(labels, dtype=np.int64), np.array(counts, dtype=np.int64)

    async def counters(self) -> dict:
        names = ["CYCLES"] + [f"CYC_{p.name}" for p in Phase] + ["OPERAND_SETS", "SAMPLE_READS", "TRAIN_SAMPLES"]
        return {name: await self.read(name) for name in names}
