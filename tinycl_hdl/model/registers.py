"""Register-level model of the host port: what every read answers and every write does.

:class:`RegisterPort` puts the register map (:mod:`tinycl_hdl.spec.regmap`) in front of the
command-level :class:`~tinycl_hdl.model.accelerator.SoftwareAccelerator`: responses
(``OKAY``/``SLVERR``), register values, error codes, the staging buffer and the windows.
A command runs to completion when ``COMMAND`` is written, so the model is never busy on
its own; :attr:`RegisterPort.busy` lets a caller that has seen the device busy ask what a
busy device answers.  Values that depend on timing (the cycle and activity counters) read
as ``None``.

The model follows the lane array's map (:func:`~tinycl_hdl.spec.regmap.restorable`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..spec.config import TinyCLConfig
from ..spec.regmap import Command, ErrorCode, RegisterMap
from . import golden
from .accelerator import SoftwareAccelerator

__all__ = ["RegisterPort", "OKAY", "SLVERR", "signed32"]

OKAY, SLVERR = 0, 2

#: Commands that end in the control unit's DONE state, which sets IRQ_STATUS.
_FINISHING = (Command.INSERT, Command.TRAIN, Command.TRAIN_KEEP, Command.INFER)
_TIMED = ("CYCLES", "OPERAND_SETS", "SAMPLE_READS", "TRAIN_SAMPLES")


def signed32(value: int) -> int:
    """A 32-bit bus word as the signed integer it carries."""
    return value - (1 << 32) if value >> 31 else value


class RegisterPort:
    """The accelerator as its host port shows it.

    Parameters
    ----------
    cfg : TinyCLConfig
        A lane-array configuration (its map has writable weights, ``SAMPLES`` and ``LFSR``).

    Attributes
    ----------
    acc : SoftwareAccelerator
        The learner's state (weights, GDumb memory, LFSR).
    busy : bool
        Answer as a device that is running a command.
    """

    def __init__(self, cfg: TinyCLConfig):
        self.cfg, self.map = cfg, RegisterMap(cfg)
        if not self.map.restorable:
            raise ValueError(f"the register model follows the lane array's map; datapath {cfg.datapath!r} "
                             f"is not modelled")
        self.acc = SoftwareAccelerator(cfg)
        self.values = {r.name: r.reset for r in self.map.registers}
        self.staging = np.zeros((cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        self.logits = np.zeros(cfg.classes, dtype=np.int64)
        self.result, self.kept = 0, False
        self.busy = False
        self._offsets = {r.offset: r for r in self.map.registers}

    # -- decoding -------------------------------------------------------------------------------

    def _window(self, addr: int):
        """``(window, fields)`` when ``addr`` falls in a window with every field in range (the
        two low address bits are ignored, as the decoder does)."""
        for window in self.map.windows:
            size_bits = (self.map.window_size(window) - 1).bit_length()
            if addr >> size_bits != window.base >> size_bits:
                continue
            fields, shift = {}, 2
            for name, bits, count in window.fields:
                fields[name] = (addr >> shift) & ((1 << bits) - 1)
                if fields[name] >= count:
                    return None
                shift += bits
            return window, fields
        return None

    def _weight(self, window, f):
        w = self.acc.weights
        if window.name == "CONV_W":
            return w.conv_w, (f["f"], f["c"], f["i"], f["j"])
        return w.dense_w, (f["o"], f["f"], f["y"], f["x"])

    def finish(self) -> None:
        """The command the caller saw running (``busy``) has finished: as the device does at
        ``DONE``, IRQ_STATUS is set again, whatever clear was written while it ran."""
        if self.busy:
            self.busy = False
            self.values["IRQ_STATUS"] = 1

    def _fits(self, value: int) -> bool:
        return -(1 << (self.cfg.data_width - 1)) <= signed32(value) < 1 << (self.cfg.data_width - 1)

    # -- reads ---------------------------------------------------------------------------------

    def read(self, addr: int):
        """``(response, value)``; ``value`` is ``None`` where it depends on timing."""
        reg = self._offsets.get(addr)
        if reg is not None:
            return OKAY, self._register(reg.name)
        hit = self._window(addr)
        if hit is None or self.busy or hit[0].name == "STAGING":
            return SLVERR, 0
        window, f = hit
        sampler = self.acc.sampler
        if window.name == "LABELS":
            return OKAY, int(sampler.labels[f["slot"]]) if f["slot"] < sampler.size else 0
        if window.name == "SAMPLES":
            return OKAY, int.from_bytes(bytes(sampler.pixels[f["slot"], f["row"], f["col"]]), "little")
        array, index = self._weight(window, f)
        return OKAY, int(array[index]) & 0xFFFFFFFF

    def _register(self, name: str):
        acc, w = self.acc, self.acc.weights
        if name in _TIMED or name.startswith("CYC_"):
            return None
        if name == "STATUS":
            return int(self.busy) | int(self.values["COMMAND"]) << 4 | int(self.kept) << 8
        if name == "RESULT":
            return 0xFFFFFFFF if self.result is None else self.result
        if name == "MEM_SIZE":
            return acc.sampler.size
        if name == "LFSR":
            return acc.lfsr.state
        for prefix, values in (("CLASS_COUNT", acc.sampler.counts), ("LOGIT", self.logits),
                               ("DENSE_B", w.dense_b), ("CONV_B", w.conv_b)):
            if name.startswith(prefix):
                return int(values[int(name[len(prefix):])]) & 0xFFFFFFFF
        return self.values[name]

    # -- writes --------------------------------------------------------------------------------

    def write(self, addr: int, value: int) -> int:
        """Write ``value``; returns the response."""
        value &= 0xFFFFFFFF
        reg = self._offsets.get(addr)
        if reg is not None:
            return self._write_register(reg.name, value)
        hit = self._window(addr)
        if hit is None or self.busy or hit[0].access == "ro":
            return SLVERR
        window, f = hit
        if window.name == "STAGING":
            self.staging[f["row"], f["col"]] = np.frombuffer(value.to_bytes(4, "little"), np.uint8)[:self.cfg.in_c]
            return OKAY
        if not self._fits(value):
            return SLVERR
        array, index = self._weight(window, f)
        array[index] = signed32(value)
        return OKAY

    def _write_register(self, name: str, value: int) -> int:
        dw, v = self.cfg.data_width, self.values
        if name == "COMMAND":
            self._command(value)
            return OKAY
        if name == "IRQ_ENABLE":              # the interrupt registers answer while busy too
            v[name] = value & 1
            return OKAY
        if name == "IRQ_STATUS":
            v[name] &= ~value & 1
            return OKAY
        checks = {"LR_SHIFT": value <= dw, "EPOCHS": value < 1 << 16, "SEED": not value >> 31, "LABEL": True,
                  "LFSR": value != 0}
        if name.startswith(("CONV_B", "DENSE_B")):
            if self.busy or not self._fits(value):
                return SLVERR
            biases = self.acc.weights.conv_b if name.startswith("CONV_B") else self.acc.weights.dense_b
            biases[int(name.rsplit("B", 1)[1])] = signed32(value)
            return OKAY
        if name not in checks or self.busy or not checks[name]:
            return SLVERR
        if name == "SEED":
            self.acc.seed(value)
        if name == "LFSR":
            self.acc.lfsr.state = value
        else:
            v[name] = value
        return OKAY

    def _command(self, value: int) -> None:
        v = self.values
        if value == Command.NONE or value > max(Command):
            v["ERROR"] = ErrorCode.BAD_COMMAND
        elif value == Command.ABORT:
            v["ERROR"] = ErrorCode.NONE
        elif self.busy:
            v["ERROR"] = ErrorCode.BUSY
        elif value == Command.CLEAR_COUNTERS:
            v["ERROR"] = ErrorCode.NONE
        elif value == Command.INSERT and v["LABEL"] >= self.cfg.classes:
            v["ERROR"] = ErrorCode.BAD_LABEL
        elif value in (Command.TRAIN, Command.TRAIN_KEEP) and v["EPOCHS"] == 0:
            v["ERROR"] = ErrorCode.BAD_EPOCHS
        else:
            command = Command(value)
            v["COMMAND"], v["ERROR"] = int(command), ErrorCode.NONE
            self._run(command)
            if command in _FINISHING:
                v["IRQ_STATUS"] = 1

    def _run(self, command: Command) -> None:
        acc = self.acc
        if command == Command.INSERT:
            slot = acc.insert(self.staging.copy(), self.values["LABEL"])
            self.kept, self.result = slot is not None, slot
        elif command == Command.INFER:
            self.result, self.logits = golden.infer(self.cfg, acc.weights, self.staging)
        else:
            acc.cfg = dataclasses.replace(acc.cfg, lr_shift=self.values["LR_SHIFT"])
            acc.train(self.values["EPOCHS"], from_scratch=command == Command.TRAIN)
            if acc.logits is not None:
                self.logits = acc.logits
