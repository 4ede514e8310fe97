"""The AXI4-Lite register map, generated from the configuration.

One description serves the RTL's address decoder, the host driver and the
generated documentation (``regmap.md``, ``regmap.json``, and through SystemRDL the C
headers, the HTML reference and IP-XACT: :mod:`tinycl_hdl.flows.peakrdl`).
All registers are 32 bits; only full-word accesses (``WSTRB = 0xF``) are
accepted.  Unmapped addresses, writes to read-only registers, reads of
write-only windows, out-of-range window fields and memory-window accesses
while the accelerator is busy answer ``SLVERR`` and change nothing.

With the lane array (:func:`restorable`), the learner's state moves through the
map both ways: the weights and biases are writable while the accelerator is idle
(a value that does not fit ``data_width`` signed bits answers ``SLVERR``), the
``SAMPLES`` window reads the pixels of every GDumb slot, and ``LFSR`` reads and
loads the random stream's state.  The GDumb memory itself is restored by
replaying ``INSERT`` in slot order, which fills slot ``n`` with the ``n``-th
sample and keeps the class counts equal to the labels by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from amaranth.lib import enum

from .config import TinyCLConfig
from .lfsr import seed_state

__all__ = ["Command", "ErrorCode", "Phase", "Register", "Window", "RegisterMap", "ID_VALUE", "VERSION",
           "restorable"]

ID_VALUE = 0x54434C31      # "TCL1"
VERSION = 0x00010100


class Command(enum.IntEnum, shape=4):
    """The codes written to ``COMMAND``."""
    NONE = 0
    INSERT = 1          # offer the staged sample (label in LABEL) to the GDumb memory
    TRAIN = 2           # re-initialise the weights, then EPOCHS passes over the memory
    TRAIN_KEEP = 3      # EPOCHS passes without re-initialising
    INFER = 4           # classify the staged sample; class in RESULT, logits readable
    ABORT = 5           # stop TRAIN or INFER; the GDumb memory is untouched
    CLEAR_COUNTERS = 6  # zero the performance counters


class ErrorCode(enum.IntEnum, shape=4):
    """Why the last command was refused (``ERROR``)."""
    NONE = 0
    BUSY = 1            # a command arrived while another was running
    BAD_LABEL = 2       # INSERT with LABEL >= classes
    BAD_EPOCHS = 3      # TRAIN with EPOCHS = 0
    BAD_COMMAND = 4     # unknown command code


class Phase(enum.IntEnum, shape=3):
    """Phases counted by the per-phase cycle counters."""
    CONV_FWD = 0
    DENSE_FWD = 1
    LOSS = 2
    DENSE_BWD = 3
    CONV_BWD = 4
    OTHER = 5           # weight init, shuffles, insertion, arg-max, pipeline drains between commands


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str          # "ro" or "rw"
    description: str
    reset: int | None = None


@dataclass(frozen=True)
class Window:
    """A range of words backed by a memory; ``fields`` give the word index bits, low first."""
    name: str
    base: int
    access: str          # "ro", "wo" or "rw"
    fields: tuple        # ((name, bits, count), ...) low field first
    description: str

    @property
    def index_bits(self) -> int:
        return sum(bits for _, bits, _ in self.fields)

    def address(self, **values) -> int:
        index, shift = 0, 0
        for name, bits, count in self.fields:
            value = values[name]
            if not 0 <= value < count:
                raise ValueError(f"{self.name} field {name} must satisfy 0 <= {name} < {count}, not {value!r}")
            index |= value << shift
            shift += bits
        return self.base + 4 * index


def restorable(cfg: TinyCLConfig) -> bool:
    """The register map can save and restore the learner (weights writable, ``SAMPLES`` and
    ``LFSR``): the lane array's.  The serial datapath, built for the iCE40 UP5K, has no logic
    cells left for the write paths."""
    return cfg.datapath == "array"


def _bits(count: int) -> int:
    return max(1, (count - 1).bit_length())


class RegisterMap:
    """Registers and windows of a TinyCL configuration."""

    def __init__(self, cfg: TinyCLConfig):
        self.cfg = cfg
        regs = [
            Register("ID", 0x000, "ro", 'identification, "TCL1"', ID_VALUE),
            Register("VERSION", 0x004, "ro", "register map version", VERSION),
        ]
        params = [("IN_H", cfg.in_h), ("IN_W", cfg.in_w), ("IN_C", cfg.in_c), ("KERNEL", cfg.kernel),
                  ("FILTERS", cfg.filters), ("CLASSES", cfg.classes), ("SLOTS", cfg.slots),
                  ("DATA_WIDTH", cfg.data_width), ("FRAC_BITS", cfg.frac_bits), ("ACC_WIDTH", cfg.acc_width),
                  ("N_PU", cfg.n_pu), ("WINDOW", 0 if cfg.window == "snake" else 1)]
        for n, (name, value) in enumerate(params):
            regs.append(Register(name, 0x008 + 4 * n, "ro", f"generator parameter {name.lower()}", value))
        regs += [
            Register("COMMAND", 0x040, "rw", "write a Command code to start it; reads the last accepted command", 0),
            Register("STATUS", 0x044, "ro", "bit 0 busy (also for a few cycles after reset while the serial datapath "
                     "clears its parameter memory); bits 7:4 running command; bit 8 last INSERT kept the sample", 0),
            Register("ERROR", 0x048, "ro", "ErrorCode of the last refused command; cleared by an accepted one", 0),
            Register("LR_SHIFT", 0x04C, "rw", f"learning rate 2**-LR_SHIFT (at most {cfg.data_width})", cfg.lr_shift),
            Register("EPOCHS", 0x050, "rw", "passes over the memory per TRAIN", cfg.epochs),
            Register("SEED", 0x054, "rw", "LFSR seed (31 bits); writing reloads the LFSR", cfg.seed),
            Register("LABEL", 0x058, "rw", "label of the staged sample for INSERT", 0),
            Register("RESULT", 0x05C, "ro", "INFER: class; INSERT: slot written, or 0xFFFFFFFF if not kept", 0),
            Register("MEM_SIZE", 0x060, "ro", "samples held in the GDumb memory", 0),
            Register("IRQ_ENABLE", 0x064, "rw", "bit 0: drive the irq output from IRQ_STATUS bit 0", 0),
            Register("IRQ_STATUS", 0x068, "rw", "bit 0 set when INSERT, TRAIN, TRAIN_KEEP or INFER finishes "
                     "(an aborted one too); write 1 to clear it", 0),
        ]
        self.restorable = restorable(cfg)
        if self.restorable:
            regs.append(Register("LFSR", 0x06C, "rw", "the LFSR's state; writing loads it (nonzero; a SEED write "
                                 "loads (SEED << 1) | 1)", seed_state(cfg.seed)))
        weights = "rw" if self.restorable else "ro"
        counters = [("CYCLES", "cycles spent busy")] + [
            (f"CYC_{phase.name}", f"busy cycles in phase {phase.name}") for phase in Phase] + [
            ("OPERAND_SETS", "operand sets issued to each processing unit (times kernel**2 lanes = MACs)"),
            ("SAMPLE_READS", "pixels read from the sample memory by the window generator"),
            ("TRAIN_SAMPLES", "training steps completed")]
        for n, (name, text) in enumerate(counters):
            regs.append(Register(name, 0x080 + 4 * n, "ro", f"counter: {text} (CLEAR_COUNTERS zeroes)", 0))
        for c in range(cfg.classes):
            regs.append(Register(f"CLASS_COUNT{c}", 0x400 + 4 * c, "ro", f"samples of class {c} in the memory", 0))
            regs.append(Register(f"LOGIT{c}", 0x800 + 4 * c, "ro", f"logit {c} of the last forward pass", 0))
            regs.append(Register(f"DENSE_B{c}", 0xC00 + 4 * c, weights, f"dense bias {c}", 0))
        for f in range(cfg.filters):
            regs.append(Register(f"CONV_B{f}", 0x1000 + 4 * f, weights, f"conv bias {f}", 0))
        self.registers = regs
        self.by_name = {r.name: r for r in regs}

        stage_fields = (("col", _bits(cfg.in_w), cfg.in_w), ("row", _bits(cfg.in_h), cfg.in_h))
        self.staging = Window("STAGING", 0x2000, "wo", stage_fields,
                              "staged sample: the word of pixel (row, col) holds channel c in byte c")
        base = 1 << max(14, sum(b for _, b, _ in stage_fields) + 2 + 1)
        self.labels = Window("LABELS", base, "ro", (("slot", _bits(cfg.slots), cfg.slots),),
                             "label held by each GDumb slot (slots below MEM_SIZE are in use)")
        k = cfg.kernel
        conv_fields = (("j", _bits(k), k), ("i", _bits(k), k), ("c", _bits(cfg.in_c), cfg.in_c),
                       ("f", _bits(cfg.filters), cfg.filters))
        dense_fields = (("x", _bits(cfg.out_w), cfg.out_w), ("y", _bits(cfg.out_h), cfg.out_h),
                        ("f", _bits(cfg.filters), cfg.filters), ("o", _bits(cfg.classes), cfg.classes))
        conv_bits = sum(b for _, b, _ in conv_fields)
        base = max(base * 2, 1 << (_bits(cfg.slots) + 2 + 1))
        base = max(base, 1 << (conv_bits + 2))
        self.conv_w = Window("CONV_W", base, weights, conv_fields, "conv weight w[f, c, i, j]")
        dense_bits = sum(b for _, b, _ in dense_fields)
        base = max(base * 2, 1 << (dense_bits + 2))
        self.dense_w = Window("DENSE_W", base, weights, dense_fields, "dense weight w[o, f, y, x]")
        self.windows = [self.staging, self.labels, self.conv_w, self.dense_w]
        self.samples = None
        if self.restorable:
            sample_fields = stage_fields + (("slot", _bits(cfg.slots), cfg.slots),)
            base = max(base * 2, 1 << (sum(b for _, b, _ in sample_fields) + 2))
            self.samples = Window("SAMPLES", base, "ro", sample_fields,
                                  "pixels of GDumb slot `slot`: the word of pixel (row, col) holds channel c in "
                                  "byte c, as STAGING")
            self.windows.append(self.samples)
        self.address_width = (base * 2 - 1).bit_length()

    def window_size(self, window: Window) -> int:
        return 4 << window.index_bits

    # -- documentation -----------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "address_width": self.address_width,
            "commands": {c.name: int(c) for c in Command},
            "errors": {e.name: int(e) for e in ErrorCode},
            "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "reset": r.reset,
                           "description": r.description} for r in self.registers],
            "windows": [{"name": w.name, "base": w.base, "size": self.window_size(w), "access": w.access,
                         "fields": [{"name": n, "bits": b, "count": c} for n, b, c in w.fields],
                         "description": w.description} for w in self.windows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_markdown(self) -> str:
        lines = ["# TinyCL register map", "",
                 f"Generated from the configuration `{json.dumps(self.cfg.to_dict())}`.", "",
                 f"AXI4-Lite, 32-bit data, {self.address_width}-bit addresses. Full-word accesses only; "
                 "bad accesses answer SLVERR and change nothing.", "",
                 "| offset | name | access | reset | description |", "|---|---|---|---|---|"]
        for r in self.registers:
            reset = "" if r.reset is None else f"0x{r.reset:X}"
            lines.append(f"| 0x{r.offset:05X} | {r.name} | {r.access} | {reset} | {r.description} |")
        lines += ["", "## Windows", "", "| base | size | name | access | index (low field first) | description |",
                  "|---|---|---|---|---|---|"]
        for w in self.windows:
            fields = ", ".join(f"{n}: {b} bits (< {c})" for n, b, c in w.fields)
            lines.append(f"| 0x{w.base:06X} | 0x{self.window_size(w):X} | {w.name} | {w.access} | {fields} | "
                         f"{w.description} |")
        lines += ["", "## Commands", "", "| code | command |", "|---|---|"]
        lines += [f"| {int(c)} | {c.name} |" for c in Command if c]
        lines += ["", "## Error codes", "", "| code | error |", "|---|---|"]
        lines += [f"| {int(e)} | {e.name} |" for e in ErrorCode]
        return "\n".join(lines) + "\n"
