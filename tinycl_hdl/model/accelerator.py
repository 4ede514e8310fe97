"""Command-level model of the accelerator: ``INSERT``, ``TRAIN``, ``INFER``.

:class:`SoftwareAccelerator` keeps what the chip keeps (LFSR, GDumb memory,
weights) and executes the control unit's commands in software, with either the
bit-exact integer arithmetic (``"golden"``) or float64 (``"float"``).  Both
draw every pseudo-random choice from the same LFSR stream, so the two differ
only in arithmetic.  The RTL backend of the protocol follows the same
interface.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import golden
from . import reference
from ..spec.config import TinyCLConfig
from ..spec.lfsr import Lfsr
from ..spec.update import step_seed
from .state import LearnerState, StateError

__all__ = ["SoftwareAccelerator", "ARITHMETICS"]

ARITHMETICS = ("golden", "float")


class SoftwareAccelerator:
    """The accelerator's behaviour, command by command.

    Parameters
    ----------
    cfg : TinyCLConfig
    arithmetic : str
        ``"golden"`` (bit-exact fixed point) or ``"float"`` (float64 reference).
    """

    def __init__(self, cfg: TinyCLConfig, arithmetic: str = "golden"):
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETICS)}, not {arithmetic!r}")
        self.cfg = cfg
        self.arithmetic = arithmetic
        self.lfsr = Lfsr(cfg.seed)
        self.sampler = golden.GDumbSampler(cfg)
        self.weights = self._convert(golden.Weights.zeros(cfg))
        #: The logits of the last training step's forward pass (golden arithmetic), as the
        #: chip's LOGIT registers hold them; ``None`` before one.
        self.logits = None

    def _convert(self, weights: golden.Weights):
        if self.arithmetic == "float":
            return reference.FloatWeights.from_fixed(self.cfg, weights)
        return weights

    def seed(self, seed: int) -> None:
        """Reload the LFSR (the ``seed`` register)."""
        self.lfsr = Lfsr(seed)

    def insert(self, pixels, label: int):
        """``INSERT``: offer a sample to the GDumb memory; returns the slot or ``None``."""
        return self.sampler.insert(pixels, label, self.lfsr)

    def train(self, epochs: int | None = None, from_scratch: bool = True, progress=None) -> None:
        """``TRAIN``: ``epochs`` passes over the memory in LFSR-shuffled order.  With
        ``update_rounding = "stochastic"`` every training step first draws its step seed (the
        float reference draws it too, so both see the same stream).

        ``progress``, if given, is called with the number of samples trained so far.
        """
        cfg = self.cfg
        epochs = cfg.epochs if epochs is None else epochs
        if epochs < 1:
            raise ValueError(f"epochs must be a positive integer, not {epochs!r}")
        if from_scratch:
            self.weights = self._convert(golden.init_weights(cfg, self.lfsr))
        order = np.arange(self.sampler.size)
        stochastic = cfg.update_rounding == "stochastic"
        for _ in range(epochs):
            golden.shuffle_order(order, self.lfsr)
            for slot in order:
                seed = step_seed(self.lfsr.draw()) if stochastic else None
                pixels, label = self.sampler.pixels[slot], int(self.sampler.labels[slot])
                if self.arithmetic == "golden":
                    self.weights, trace = golden.train_step(cfg, self.weights, pixels, label, seed)
                    self.logits = trace.logits
                else:
                    self.weights = reference.train_step(cfg, self.weights, pixels, label)
                if progress is not None:
                    progress(1)

    def save_state(self) -> LearnerState:
        """The learner's state (:class:`~tinycl_hdl.model.state.LearnerState`); the float
        reference has none in the accelerator's format."""
        self._need_fixed_point("save_state")
        sampler, size = self.sampler, self.sampler.size
        weights = golden.Weights(*(np.array(a) for a in self.weights.arrays().values()))
        return LearnerState(self.cfg, weights, sampler.pixels[:size].copy(), sampler.labels[:size].copy(),
                            self.lfsr.state, self.cfg.seed, self.cfg.lr_shift, self.cfg.epochs)

    def load_state(self, state: LearnerState) -> None:
        """Put back a saved state: weights, GDumb memory, LFSR and workload registers.  A state
        of another configuration raises :class:`~tinycl_hdl.model.state.StateError` and changes
        nothing."""
        self._need_fixed_point("load_state")
        state.check_config(self.cfg)
        self.cfg = dataclasses.replace(self.cfg, seed=state.seed, lr_shift=state.lr_shift, epochs=state.epochs)
        self.sampler = golden.GDumbSampler(self.cfg)
        for pixels, label in zip(state.pixels, state.labels):
            self.sampler.insert(pixels, int(label), self.lfsr)
        self.weights = golden.Weights(*(np.array(a, dtype=np.int64) for a in state.weights.arrays().values()))
        self.lfsr.state = state.lfsr

    def _need_fixed_point(self, what: str) -> None:
        if self.arithmetic != "golden":
            raise StateError(f"{what} needs the golden model's fixed-point state; the float reference has none")

    def infer(self, pixels) -> int:
        """``INFER``: the arg-max class of one sample."""
        return int(self.infer_batch(np.asarray(pixels)[None])[0])

    def infer_batch(self, pixels) -> np.ndarray:
        """Classes of ``[N, H, W, C]`` samples (the same arithmetic as ``INFER``)."""
        if self.arithmetic == "golden":
            return golden.infer_batch(self.cfg, self.weights, pixels)
        return reference.infer_batch(self.cfg, self.weights, pixels)
