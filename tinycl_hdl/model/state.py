"""The learner's whole state, and the file that keeps it across a power cycle.

:class:`LearnerState` is what an accelerator learns and remembers: the weights and
biases, every GDumb slot in use (pixels and label, in slot order), the LFSR state,
and the three workload registers (``SEED``, ``LR_SHIFT``, ``EPOCHS``).  The class
counts and the fill level follow from the labels.  The golden model
(:meth:`~tinycl_hdl.model.accelerator.SoftwareAccelerator.save_state`) and the
hardware (:meth:`~tinycl_hdl.host.driver.TinyCLHost.save_state`) give the same state
for the same history, so a state saved from one restores into the other.

A state file is a NumPy ``.npz`` archive holding :data:`FORMAT_VERSION`, the
configuration as JSON and one array per part.  :func:`load_state` refuses a file
that is not one (a truncated file included), of another format version, or of
another configuration, naming the fields that differ; only the workload fields
(``seed``, ``lr_shift``, ``epochs``), which the host may change at run time, may
differ, and the file's register values win.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

import numpy as np

from ..spec.config import TinyCLConfig
from ..spec.fixedpoint import FixedFormat
from .golden import Weights

__all__ = ["FORMAT_VERSION", "WORKLOAD_FIELDS", "LearnerState", "StateError", "config_differences",
           "load_state", "save_state"]

#: Version of the state file's layout; a file of another version is refused.
FORMAT_VERSION = 1
#: Configuration fields that are register values the host may change at run time.
WORKLOAD_FIELDS = ("seed", "lr_shift", "epochs")
_WEIGHTS = ("conv_w", "conv_b", "dense_w", "dense_b")


class StateError(ValueError):
    """A state that cannot be restored into this accelerator; the message says why."""


def config_differences(saved: TinyCLConfig, target: TinyCLConfig) -> list:
    """``["field: saved != target", ...]`` over the fields that define the hardware and its
    arithmetic (every field but :data:`WORKLOAD_FIELDS`)."""
    a, b = saved.to_dict(), target.to_dict()
    return [f"{key}: {a[key]!r} in the state, {b[key]!r} here" for key in a
            if key not in WORKLOAD_FIELDS and a[key] != b[key]]


@dataclass
class LearnerState:
    """Everything an accelerator has learnt and remembers.

    Parameters
    ----------
    cfg : TinyCLConfig
        The configuration the state belongs to.
    weights : Weights
        Raw fixed-point weights and biases.
    pixels : ndarray ``[size, H, W, C]`` uint8
        The GDumb slots in use, in slot order.
    labels : ndarray ``[size]``
        Their labels.
    lfsr : int
        The LFSR's 32-bit state (nonzero).
    seed, lr_shift, epochs : int
        The ``SEED``, ``LR_SHIFT`` and ``EPOCHS`` registers.
    """

    cfg: TinyCLConfig
    weights: Weights
    pixels: np.ndarray
    labels: np.ndarray
    lfsr: int
    seed: int
    lr_shift: int
    epochs: int

    def __post_init__(self):
        self.pixels = np.asarray(self.pixels, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.validate()

    @property
    def size(self) -> int:
        """Slots in use (``MEM_SIZE``)."""
        return len(self.labels)

    @property
    def counts(self) -> np.ndarray:
        """Samples held per class (``CLASS_COUNT``)."""
        return np.bincount(self.labels, minlength=self.cfg.classes).astype(np.int64)

    def validate(self) -> None:
        """Raise :class:`StateError` unless every part has its configuration's shape and range."""
        cfg, fmt = self.cfg, FixedFormat.of(self.cfg)
        want = Weights.zeros(cfg)
        for name in _WEIGHTS:
            value, shape = getattr(self.weights, name), getattr(want, name).shape
            if np.shape(value) != shape:
                raise StateError(f"{name} has shape {np.shape(value)}, not {shape}")
            if np.any(value < fmt.min) or np.any(value > fmt.max):
                raise StateError(f"{name} holds values outside the {cfg.data_width}-bit data format")
        if not 0 <= self.size <= cfg.slots:
            raise StateError(f"the state holds {self.size} samples; the memory has {cfg.slots} slots")
        if self.pixels.shape != (self.size, cfg.in_h, cfg.in_w, cfg.in_c):
            raise StateError(f"pixels have shape {self.pixels.shape}, not "
                             f"{(self.size, cfg.in_h, cfg.in_w, cfg.in_c)}")
        if self.size and not (0 <= self.labels.min() and self.labels.max() < cfg.classes):
            raise StateError(f"labels must satisfy 0 <= label < {cfg.classes}")
        if not 0 < self.lfsr < 1 << 32:
            raise StateError(f"lfsr must be a nonzero 32-bit state, not {self.lfsr!r}")
        try:
            TinyCLConfig.from_dict({"seed": self.seed, "lr_shift": self.lr_shift, "epochs": self.epochs}, cfg)
        except ValueError as error:
            raise StateError(f"register values: {error}") from None
        if self.epochs >= 1 << 16:
            raise StateError(f"epochs must be below 65536 (the EPOCHS register), not {self.epochs!r}")

    def check_config(self, cfg: TinyCLConfig) -> None:
        """Raise :class:`StateError` naming the fields where ``cfg`` differs from the state's."""
        differences = config_differences(self.cfg, cfg)
        if differences:
            raise StateError("the state belongs to another configuration: " + "; ".join(differences))

    def equals(self, other: "LearnerState") -> bool:
        return (self.weights.equals(other.weights) and np.array_equal(self.pixels, other.pixels)
                and np.array_equal(self.labels, other.labels)
                and (self.lfsr, self.seed, self.lr_shift, self.epochs)
                == (other.lfsr, other.seed, other.lr_shift, other.epochs)
                and not config_differences(self.cfg, other.cfg))


def save_state(state: LearnerState, path) -> None:
    """Write ``state`` to ``path`` (a file name or a binary file)."""
    arrays = {name: np.asarray(getattr(state.weights, name), dtype=np.int64) for name in _WEIGHTS}
    np.savez_compressed(path, format_version=np.int64(FORMAT_VERSION), config=np.array(state.cfg.to_json()),
                        pixels=state.pixels, labels=state.labels,
                        registers=np.array([state.lfsr, state.seed, state.lr_shift, state.epochs], dtype=np.int64),
                        **arrays)


def load_state(path, cfg: TinyCLConfig | None = None) -> LearnerState:
    """Read a state file; with ``cfg``, refuse one made for another configuration.  Every
    refusal is a :class:`StateError` whose message names the file and the reason."""
    name = getattr(path, "name", path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            parts = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise StateError(f"{name} is not a readable TinyCL state file (truncated or another format?): "
                         f"{error}") from None
    if "format_version" not in parts:
        raise StateError(f"{name} is not a TinyCL state file: it has no format version")
    version = int(parts["format_version"])
    if version != FORMAT_VERSION:
        raise StateError(f"{name} has state format version {version}; this version of TinyCL-HDL reads "
                         f"version {FORMAT_VERSION}")
    missing = [key for key in ("config", "pixels", "labels", "registers", *_WEIGHTS) if key not in parts]
    if missing:
        raise StateError(f"{name} lacks {', '.join(missing)}")
    try:
        saved_cfg = TinyCLConfig.from_json(str(parts["config"]))
    except ValueError as error:
        raise StateError(f"{name} holds an invalid configuration: {error}") from None
    registers = [int(v) for v in parts["registers"]]
    if len(registers) != 4:
        raise StateError(f"{name} has {len(registers)} register values, not 4")
    state = LearnerState(saved_cfg, Weights(*(parts[key] for key in _WEIGHTS)), parts["pixels"], parts["labels"],
                         *registers)
    if cfg is not None:
        state.check_config(cfg)
    return state

