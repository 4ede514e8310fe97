"""The class-incremental continual-learning protocol run by ``tinycl train``.

Classes arrive in tasks of ``TASK_CLASSES`` (5 tasks of 2 for ten classes).
Each task's training samples stream through GDumb insertion in a fixed order
(shuffled on the host with numpy seeded by ``seed``); the learner then
retrains from scratch for ``epochs`` passes over the memory, and accuracy is
measured on the test samples of every class seen so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spec.config import TinyCLConfig
from .data import Dataset

__all__ = ["TASK_CLASSES", "TaskPlan", "TaskResult", "ProtocolResult", "task_classes", "plan", "run_protocol"]

TASK_CLASSES = 2


def task_classes(classes: int):
    """``[[0, 1], [2, 3], ...]``: the class-incremental task split."""
    return [list(range(start, min(start + TASK_CLASSES, classes)))
            for start in range(0, classes, TASK_CLASSES)]


@dataclass
class TaskPlan:
    classes: list
    stream: np.ndarray       # training indices, in the order they are offered to GDumb
    test: np.ndarray         # test indices of every class seen so far


def plan(cfg: TinyCLConfig, dataset: Dataset, train_limit: int | None = None,
         test_limit: int | None = None) -> list:
    """The tasks of the protocol: which samples stream in and which are tested.

    Shared by every backend, so that all of them see the same samples in the
    same order for the same seed.
    """
    rng = np.random.default_rng(cfg.seed)
    tasks, seen = [], []
    for classes in task_classes(cfg.classes):
        seen += classes
        stream = rng.permutation(np.flatnonzero(np.isin(dataset.train_y, classes)))[:train_limit]
        test = np.flatnonzero(np.isin(dataset.test_y, seen))[:test_limit]
        tasks.append(TaskPlan(list(classes), stream, test))
    return tasks


@dataclass
class TaskResult:
    classes: list
    accuracy: float
    memory_size: int
    memory_counts: list


@dataclass
class ProtocolResult:
    backend: str
    preset: str
    config: dict
    tasks: list = field(default_factory=list)

    @property
    def final_accuracy(self) -> float:
        return self.tasks[-1].accuracy if self.tasks else float("nan")

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "preset": self.preset,
            "config": self.config,
            "tasks": [{"classes": t.classes, "accuracy": t.accuracy, "memory_size": t.memory_size,
                       "memory_counts": t.memory_counts} for t in self.tasks],
            "final_accuracy": self.final_accuracy,
        }


def run_protocol(cfg: TinyCLConfig, dataset: Dataset, accelerator, *, backend: str, preset: str,
                 epochs: int | None = None, train_limit: int | None = None,
                 test_limit: int | None = None, progress=None) -> ProtocolResult:
    """Run the protocol on ``accelerator`` (anything with ``insert``, ``train``, ``infer_batch``).

    ``train_limit`` / ``test_limit`` cap the samples per task (for quick runs).
    ``progress(kind, n)`` is called as work completes.
    """
    epochs = cfg.epochs if epochs is None else epochs
    result = ProtocolResult(backend=backend, preset=preset, config=cfg.to_dict())
    for task in plan(cfg, dataset, train_limit, test_limit):
        classes, test = task.classes, task.test
        for index in task.stream:
            accelerator.insert(dataset.train_x[index], int(dataset.train_y[index]))
        if progress is not None:
            progress("train_start", accelerator.sampler.size * epochs)
        accelerator.train(epochs=epochs, from_scratch=True,
                          progress=None if progress is None else (lambda n: progress("train", n)))
        predictions = accelerator.infer_batch(dataset.test_x[test])
        accuracy = float(np.mean(predictions == dataset.test_y[test]))
        sampler = accelerator.sampler
        result.tasks.append(TaskResult(classes=list(classes), accuracy=accuracy, memory_size=int(sampler.size),
                                       memory_counts=[int(c) for c in sampler.counts]))
        if progress is not None:
            progress("task", result.tasks[-1])
    return result
