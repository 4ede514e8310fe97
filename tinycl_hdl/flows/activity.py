"""Switching activity of the accelerator's registers, measured while it trains.

The native Verilator model is built with toggle coverage (``--coverage-toggle``): every
bit of every signal counts its transitions.  The harness zeroes the counts after the
GDumb memory is filled, so they count one TRAIN, and writes them as it exits.  The
counts of the registers, divided by the cycles of that window, are the activity
(transitions per clock cycle) of the flip-flop outputs of the mapped netlist, which Yosys
names after the registers they drive.  Debian's OpenSTA (2019) reads no VCD or SAIF, and
its ``set_power_activity -pins`` has no effect on the power it reports (every flip-flop
output set to 0.5 transitions per cycle left it unchanged), so the workload's figure is
the registers' mean activity applied to every pin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import re
import tempfile

import numpy as np

from ..spec.config import TinyCLConfig

__all__ = ["Activity", "parse_toggles", "measure_activity"]

#: Where the ``tinycl`` top sits in the native model's hierarchy (after the model's name).
_TOP = "tinycl_native.core"


def _unescape(name: str) -> str:
    """Verilator writes a character that C++ does not allow in a name as ``__0XX`` (hex)."""
    return re.sub(r"__0([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), name)


def parse_toggles(text: str) -> dict:
    """``{net: transitions}`` of Verilator's toggle coverage (``coverage.dat``, each bit's
    ``0->1`` and ``1->0`` points summed), nets named as in the flat netlist
    (``pu0.lane2.acc[35]``)."""
    toggles = {}
    for key, count in re.findall(r"^C '(.*)' (\d+)$", text, re.MULTILINE):
        fields = dict(f.split("\x02", 1) for f in key.split("\x01") if "\x02" in f)
        if not fields.get("page", "").startswith("v_toggle") or "o" not in fields:
            continue
        hierarchy = fields.get("h", "")
        at = hierarchy.find(_TOP)
        if at < 0:
            continue
        scope = hierarchy[at + len(_TOP) + 1:]
        signal = _unescape(re.sub(r":[01]->[01]$", "", fields["o"]))
        net = f"{scope}.{signal}" if scope else signal
        toggles[net] = toggles.get(net, 0) + int(count)
    return toggles


@dataclasses.dataclass
class Activity:
    """Transitions of the registers over ``cycles`` clock cycles of a workload."""
    toggles: dict
    cycles: int
    source: str

    def registers(self, netlist: dict) -> dict:
        """``{flip-flop output net: transitions per cycle}`` of the netlist's measured registers."""
        nets = {pins["Q"] for cell, pins in netlist.values() if "Q" in pins}
        return {net: self.toggles[net] / self.cycles for net in nets if net in self.toggles}

    def mean(self, netlist: dict) -> float:
        """The mean activity (transitions per cycle) of the netlist's measured registers."""
        measured = self.registers(netlist)
        return sum(measured.values()) / max(1, len(measured))

    def describe(self, netlist: dict) -> str:
        flops = sum("Q" in pins for _, pins in netlist.values())
        measured = self.registers(netlist)
        idle = sum(a == 0 for a in measured.values())
        return (f"{self.mean(netlist):.4f} transitions per cycle on every pin: the mean of {len(measured):,} of "
                f"{flops:,} flip-flops' registers ({idle:,} never toggled) over {self.source} "
                f"({self.cycles:,} cycles)")


#: Clock cycles the measured TRAIN aims at: the activity is a rate, and a full memory of
#: ``cifar10`` samples (33.7 M cycles) adds nothing but minutes of the coverage model.
WINDOW_CYCLES = 2_000_000


def _sample_count(cfg: TinyCLConfig) -> int:
    """Samples in the GDumb memory for the measured TRAIN: all slots, or as many as fill
    :data:`WINDOW_CYCLES`, at least ``2 * classes``."""
    from ..model.perf import cycles_per_sample

    per_sample = cycles_per_sample(cfg)
    if per_sample is None:
        return cfg.slots
    return min(cfg.slots, max(2 * cfg.classes, WINDOW_CYCLES // per_sample))


def _samples(cfg: TinyCLConfig, seed: int):
    """The GDumb memory's samples: the bundled dataset where the shape has one, else random
    pixels (stated in the source)."""
    from ..model.data import DataError, load_for

    rng = np.random.default_rng(seed)
    count = _sample_count(cfg)
    try:
        data = load_for(cfg)
        index = rng.choice(len(data.train_x), count, replace=False)
        return data.train_x[index], data.train_y[index] % cfg.classes, data.name
    except DataError:
        pixels = rng.integers(0, 256, (count, cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        return pixels, np.arange(count) % cfg.classes, "random pixels"


def measure_activity(cfg: TinyCLConfig, epochs: int = 1, seed: int = 1) -> Activity:
    """Fill the GDumb memory (or :func:`_sample_count` of its slots), then count the registers'
    transitions over ``epochs`` of TRAIN on the native model built with toggle coverage (built
    once per configuration)."""
    from ..host.driver import TinyCLHost
    from ..host.native import NativeTransport
    from .native import build_native

    executable = build_native(cfg, coverage="toggle")
    pixels, labels, name = _samples(cfg, seed)
    with tempfile.TemporaryDirectory(prefix="tinycl-activity-") as folder:
        coverage = pathlib.Path(folder) / "coverage.dat"
        transport = NativeTransport(executable, coverage=coverage)
        try:
            cycles = asyncio.run(_train(TinyCLHost(transport, cfg), transport, pixels, labels, epochs))
        finally:
            transport.close()
        toggles = parse_toggles(coverage.read_text())
    full = "a full GDumb memory" if len(labels) == cfg.slots else f"{len(labels)} of {cfg.slots} slots"
    source = f"a {epochs}-epoch TRAIN of {full} ({len(labels)} samples of {name})"
    return Activity(toggles=toggles, cycles=cycles, source=source)


async def _train(host, transport, pixels, labels, epochs: int) -> int:
    await host.identify()
    for sample, label in zip(pixels, labels):
        await host.insert(sample, int(label))
    transport.zero_coverage()
    start = transport.cycles()
    await host.train(epochs=epochs)
    return transport.cycles() - start
