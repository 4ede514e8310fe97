"""Differential fuzzing of the host port: Hypothesis sequences of register reads, writes and
commands, legal and illegal, with ABORT, accesses while busy and power-on resets at random
points, run on the register model (tinycl_hdl.model.registers) and on the RTL (the native
Verilator backend).  Every response and every value that does not depend on timing must be
equal; at the end every register and window is compared.  A failing sequence shrinks to a
minimal one, which Hypothesis prints.

``TINYCL_FUZZ_EXAMPLES`` sets the number of sequences and draws them at random (``make test``
runs 60 fixed ones).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis import strategies as st

from tinycl_hdl.flows.native import build_native
from tinycl_hdl.host.native import NativeTransport
from tinycl_hdl.model.registers import OKAY, RegisterPort, signed32
from tinycl_hdl.spec.catalogue import TOPS
from tinycl_hdl.spec.regmap import Command, RegisterMap

CFG = TOPS["7x5x2"]
MAP = RegisterMap(CFG)
EXAMPLES = int(os.environ.get("TINYCL_FUZZ_EXAMPLES", "60"))
STATUS = MAP.by_name["STATUS"].offset
COMMAND = MAP.by_name["COMMAND"].offset
EPOCHS = MAP.by_name["EPOCHS"].offset
LONG = (Command.TRAIN, Command.TRAIN_KEEP)
# Values that change while a command runs: not compared during one.
MOVING = {"LOGIT", "LFSR", "RESULT", "IRQ_STATUS", "DENSE_B", "CONV_B"}


def _window_address(window):
    """Any index in the window's address range, its fields in range or not."""
    fields = st.tuples(*[st.integers(0, (1 << bits) - 1) for _, bits, _ in window.fields])

    def address(values):
        index, shift = 0, 0
        for value, (_, bits, _) in zip(values, window.fields):
            index |= value << shift
            shift += bits
        return window.base + 4 * index
    return fields.map(address)


REGISTERS = st.sampled_from([r.offset for r in MAP.registers])
ADDRESSES = st.one_of(
    REGISTERS,
    *[_window_address(w) for w in MAP.windows],
    st.integers(0, (1 << MAP.address_width) - 1).map(lambda a: a & ~3),     # unmapped, mostly
    st.integers(0, (1 << MAP.address_width) - 1))                           # unaligned too
dw = CFG.data_width
VALUES = st.one_of(
    st.sampled_from([0, 1, 2, 3, CFG.classes - 1, CFG.classes, dw, dw + 1, 65535, 65536, 1 << 31, 0xFFFFFFFF,
                     (1 << (dw - 1)) - 1, 1 << (dw - 1), (-(1 << (dw - 1))) & 0xFFFFFFFF,
                     (-(1 << (dw - 1)) - 1) & 0xFFFFFFFF]),
    st.integers(0, 0xFFFFFFFF), st.integers(-(1 << (dw - 1)), (1 << (dw - 1)) - 1).map(lambda v: v & 0xFFFFFFFF))
# EPOCHS stays small enough for a sequence to train in milliseconds: any write of a legal
# count to it is cut to at most 2 (counts EPOCHS refuses stay as they are).
EPOCH_VALUES = st.sampled_from([0, 1, 2, 65536, 0xFFFFFFFF])


def _short_epochs(op):
    kind, addr, value = op
    return (kind, addr, value % 3) if addr == EPOCHS and 2 < value < 1 << 16 else op


def _write(addresses=ADDRESSES):
    return st.tuples(st.just("write"), addresses, VALUES).map(_short_epochs)


ACCESS = st.one_of(st.tuples(st.just("read"), ADDRESSES), _write(),
                   st.tuples(st.just("write"), st.just(EPOCHS), EPOCH_VALUES),
                   st.tuples(st.just("command"), st.integers(0, 8) | st.integers(0, 0xFFFFFFFF)))
# An access while a command runs: as any other, or a read of a register or a write of a
# writable one (IRQ_STATUS, IRQ_ENABLE, COMMAND, EPOCHS...), whose timing against the
# command is what such an access tests.  Drawn from ACCESS alone, one generated sequence
# in 2,000 cleared IRQ_STATUS while a TRAIN ran.
WRITABLE = st.sampled_from([r.offset for r in MAP.registers if r.access == "rw"])
BUSY_ACCESS = st.one_of(ACCESS, st.tuples(st.just("read"), REGISTERS), _write(WRITABLE))
OPS = st.one_of(
    ACCESS,
    st.tuples(st.just("insert"), st.integers(0, CFG.classes), st.integers(0, 2 ** 32 - 1)),
    st.tuples(st.just("fill"), st.integers(1, 2 * CFG.slots), st.integers(0, 2 ** 32 - 1)),
    st.tuples(st.just("abort"), st.sampled_from([Command.TRAIN, Command.TRAIN_KEEP, Command.INFER])),
    st.tuples(st.just("busy"), st.sampled_from(LONG), BUSY_ACCESS),
    st.tuples(st.just("reset")))


class Pair:
    """The RTL and the model side by side; each access is made on both and compared."""

    def __init__(self, executable):
        self.executable = executable
        self.dut, self.model = NativeTransport(executable), RegisterPort(CFG)
        self.log = []

    def reset(self):
        self.dut.close()
        self.dut, self.model = NativeTransport(self.executable), RegisterPort(CFG)

    def close(self):
        self.dut.close()

    def read(self, addr, moving_ok=False):
        got, want = self.dut.read_raw(addr), self.model.read(addr)
        name = self._name(addr)
        assert got[0] == want[0], f"read of 0x{addr:X} ({name}): response {got[0]}, model {want[0]}"
        moving = moving_ok and any(name.startswith(p) for p in MOVING)
        if want[0] == OKAY and want[1] is not None and not moving:      # SLVERR's data means nothing
            assert got[1] == want[1], f"read of 0x{addr:X} ({name}): 0x{got[1]:X}, model 0x{want[1]:X}"
        return got

    def write(self, addr, value):
        got, want = self.dut.write_raw(addr, value), self.model.write(addr, value)
        assert got == want, f"write of 0x{value:X} to 0x{addr:X} ({self._name(addr)}): response {got}, model {want}"

    def wait_idle(self):
        polls = 0
        while self.dut.read_raw(STATUS)[1] & 1:
            polls += 1
            assert polls < 100000, "the RTL stays busy"
        self.model.finish()

    def _name(self, addr):
        reg = self.model._offsets.get(addr)
        hit = self.model._window(addr)
        return reg.name if reg else hit[0].name if hit else "unmapped"

    def access(self, op, busy=False):
        kind = op[0]
        if kind == "read":
            self.read(op[1], moving_ok=busy)
        elif kind == "write":
            self.write(op[1], op[2])
        else:
            self.write(COMMAND, op[1])
            if not busy:
                self.wait_idle()

    def adopt(self):
        """After an ABORT the point where the command stopped depends on timing: the model
        takes the RTL's weights, LFSR, logits, result and IRQ_STATUS (read through the port);
        everything else stays the model's own and is compared."""
        model = self.model
        for window in (MAP.conv_w, MAP.dense_w):
            for index in range(1 << window.index_bits):
                addr = window.base + 4 * index
                if model._window(addr) is not None:
                    model.write(addr, self.dut.read_raw(addr)[1])
        for name in [r.name for r in MAP.registers if r.name.startswith(("CONV_B", "DENSE_B", "LOGIT"))]:
            value = self.dut.read_raw(MAP.by_name[name].offset)[1]
            if name.startswith("LOGIT"):
                model.logits[int(name[5:])] = signed32(value)
            else:
                model.write(MAP.by_name[name].offset, value)
        model.acc.lfsr.state = self.dut.read_raw(MAP.by_name["LFSR"].offset)[1]
        result = self.dut.read_raw(MAP.by_name["RESULT"].offset)[1]
        model.result = None if result == 0xFFFFFFFF else result
        model.values["IRQ_STATUS"] = self.dut.read_raw(MAP.by_name["IRQ_STATUS"].offset)[1]

    def run(self, op):
        kind = op[0]
        self.log.append(op)
        if kind == "reset":
            self.reset()
        elif kind == "insert":
            self.insert(op[1], np.random.default_rng(op[2]))
        elif kind == "fill":
            rng = np.random.default_rng(op[2])
            for _ in range(op[1]):
                self.insert(int(rng.integers(CFG.classes)), rng)
        elif kind == "abort":
            self.write(COMMAND, op[1])
            self.write(COMMAND, Command.ABORT)
            self.wait_idle()
            if self.model.values["COMMAND"] == op[1] and self.model.values["ERROR"] == 0:
                event(f"{op[1].name} aborted")
                self.adopt()
        elif kind == "busy":
            self.write(COMMAND, op[1])
            if self.dut.read_raw(STATUS)[1] & 1:
                event("an access while busy")
                self.model.busy = True
                self.access(op[2], busy=True)
                self.wait_idle()
                if op[2][0] == "command" and op[2][1] == Command.ABORT:
                    self.adopt()
            else:
                self.access(op[2])
        else:
            self.access(op)

    def insert(self, label, rng):
        """Stage a random sample, write LABEL and INSERT."""
        for row in range(CFG.in_h):
            for col in range(CFG.in_w):
                self.write(MAP.staging.address(row=row, col=col), int(rng.integers(0, 1 << 32)))
        self.write(MAP.by_name["LABEL"].offset, label)
        if self.model.acc.sampler.size == CFG.slots and label < CFG.classes:
            event("an insert into a full memory")
        self.access(("command", Command.INSERT))

    def compare_everything(self):
        for reg in MAP.registers:
            self.read(reg.offset)
        for window in MAP.windows:
            for index in range(1 << window.index_bits):
                self.read(window.base + 4 * index)
        # GDumb's bookkeeping on the RTL alone: the class counts are the labels it holds.
        size = self.dut.read_raw(MAP.by_name["MEM_SIZE"].offset)[1]
        labels = [self.dut.read_raw(MAP.labels.address(slot=s))[1] for s in range(size)]
        counts = [self.dut.read_raw(MAP.by_name[f"CLASS_COUNT{c}"].offset)[1] for c in range(CFG.classes)]
        assert size <= CFG.slots and counts == [labels.count(c) for c in range(CFG.classes)], \
            f"class counts {counts} for the labels {labels}"


@pytest.fixture(scope="module")
def executable():
    return build_native(CFG)


# make test runs the same sequences every time (derandomize); make fuzz draws new ones and keeps
# failing ones in .hypothesis/ to replay them first next time.
RANDOM = "TINYCL_FUZZ_EXAMPLES" in os.environ


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, print_blob=True,
          database=DirectoryBasedExampleDatabase(".hypothesis/examples") if RANDOM else None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(ops=st.lists(OPS, min_size=1, max_size=40))
# IRQ_STATUS cleared while a TRAIN runs is set again as the TRAIN finishes.
@example(ops=[("fill", 2, 1), ("write", EPOCHS, 1),
              ("busy", Command.TRAIN, ("write", MAP.by_name["IRQ_STATUS"].offset, 1)),
              ("read", MAP.by_name["IRQ_STATUS"].offset)])
def test_host_port_equals_the_register_model(executable, ops):
    pair = Pair(executable)
    try:
        for op in ops:
            pair.run(op)
        pair.wait_idle()
        pair.compare_everything()
        event(f"GDumb memory holds {pair.model.acc.sampler.size} samples at the end")
    finally:
        pair.close()


def test_the_register_model_catches_a_changed_response(executable):
    """The comparison can fail: a model that answers one register differently is caught."""
    pair = Pair(executable)
    try:
        pair.model.values["EPOCHS"] += 1
        with pytest.raises(AssertionError, match="EPOCHS"):
            pair.compare_everything()
    finally:
        pair.close()
