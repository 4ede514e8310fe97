"""A host session checked against the golden model, and the runs the commands make.

:class:`GoldenSession` drives an accelerator through :class:`~tinycl_hdl.host.driver.TinyCLHost`
and runs the golden model's :class:`~tinycl_hdl.model.accelerator.SoftwareAccelerator` beside
it: every INSERT's slot, the GDumb labels and counts, every weight, logit and prediction must
be equal.  The runs (:func:`bit_exact_run`, :func:`report_run`, :func:`protocol_run`) take a
session or a host, so that the cocotb testbenches and the native Verilator backend run the
same code.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..model import golden
from ..model.accelerator import SoftwareAccelerator
from ..model.perf import bound_cycles_per_sample, bound_phases, reads_per_pass
from ..spec.regmap import Command, Phase
from .driver import TinyCLHost

__all__ = ["GoldenSession", "Progress", "bit_exact_run", "report_run", "protocol_run", "state_port_run"]


class Progress:
    """Work done so far, written to a file that the command line shows as a progress bar."""

    def __init__(self, path, total):
        self.path, self.total, self.done = path, total, 0
        self.step(0)

    def step(self, n=1):
        self.done += n
        if self.path:
            with open(self.path, "w") as file:
                file.write(f"{self.done} {self.total}\n")


class GoldenSession:
    """A host and the golden model, kept in step.

    Parameters
    ----------
    host : TinyCLHost
    seed : int
        Seed of the random samples and labels (numpy).
    """

    def __init__(self, host: TinyCLHost, seed: int = 1):
        self.host, self.cfg = host, host.cfg
        self.golden = SoftwareAccelerator(self.cfg, "golden")
        self.rng = np.random.default_rng(seed)

    def sample(self):
        cfg = self.cfg
        return self.rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)

    async def check_memory(self):
        labels, counts = await self.host.read_memory()
        g = self.golden.sampler
        assert labels.tolist() == g.labels[:g.size].tolist(), "GDumb slot labels"
        assert counts.tolist() == g.counts.tolist(), "GDumb class counts"

    async def check_weights(self):
        got = await self.host.read_weights()
        for name, array in self.golden.weights.arrays().items():
            diff = np.argwhere(got.arrays()[name] != array)
            assert not len(diff), f"{name} differs at {diff[:5].tolist()}: " \
                                  f"{[int(got.arrays()[name][tuple(i)]) for i in diff[:5]]} != " \
                                  f"{[int(array[tuple(i)]) for i in diff[:5]]}"

    async def insert(self, x, y):
        slot = await self.host.insert(x, y)
        assert slot == self.golden.insert(x, y), "INSERT slot"
        return slot

    async def train(self, epochs: int, from_scratch: bool):
        await self.host.train(epochs=epochs, from_scratch=from_scratch)
        self.golden.train(epochs=epochs, from_scratch=from_scratch)

    async def infer(self, x):
        got = await self.host.infer(x)
        want, logits = golden.infer(self.cfg, self.golden.weights, x)
        assert (await self.host.read_logits()).tolist() == logits.tolist(), "logits"
        assert got == want, "INFER class"
        return got


async def bit_exact_run(session: GoldenSession, inserts: int, epochs: int, inferences: int) -> dict:
    """``inserts`` INSERTs (the first ``slots`` from half the classes, so that the later ones
    evict), TRAIN, INFER, TRAIN_KEEP and INFER again; every INSERT's slot, the slot labels and
    class counts, every weight after each TRAIN, and every logit and prediction are compared
    with the golden model.  Returns what was done."""
    cfg, g, rng = session.cfg, session.golden, session.rng
    evictions = 0
    for n in range(inserts):
        # Half the classes fill the memory; the other half then evict (even draws), and any
        # class may come (odd draws).
        few = max(1, cfg.classes // 2)
        if n < cfg.slots:
            label = int(rng.integers(few))
        else:
            label = int(rng.integers(few, cfg.classes) if (n - cfg.slots) % 2 == 0 else rng.integers(cfg.classes))
        full = g.sampler.size == cfg.slots
        slot = await session.insert(session.sample(), label)
        evictions += full and slot is not None
        if n == cfg.slots - 1 or n == inserts - 1 or cfg.slots <= 16:
            await session.check_memory()
    await session.train(epochs, from_scratch=True)
    await session.check_weights()
    for _ in range(inferences):
        await session.infer(session.sample())
    await session.train(1, from_scratch=False)
    await session.check_weights()
    await session.infer(session.sample())
    restored = session.host.map.restorable
    if restored:
        await state_port_run(session)
    return {"inserted": inserts, "memory": int(g.sampler.size), "evictions": int(evictions),
            "training_steps": int(g.sampler.size) * (epochs + 2 if restored else epochs + 1),
            "inferences": inferences + 1 + restored, "weight_checks": 2 + 2 * restored, "mismatches": 0,
            "state_checks": int(restored)}


async def state_port_run(session: GoldenSession) -> None:
    """The save and restore paths of a restorable map, against the golden model: the saved
    state (every slot's pixels through ``SAMPLES``, the labels, the counts, the LFSR, the
    weights) equals the model's; random weights written through the windows read back and
    infer as the model's; an LFSR state written through ``LFSR`` draws the model's shuffles."""
    host, g, cfg, rng = session.host, session.golden, session.cfg, session.rng
    state = await host.save_state()
    # EPOCHS aside: the host writes it for each TRAIN, the model takes epochs as an argument.
    assert state.equals(dataclasses.replace(g.save_state(), epochs=state.epochs)), "saved state"
    fmt_max = (1 << (cfg.data_width - 1)) - 1
    weights = golden.Weights(*(rng.integers(-fmt_max - 1, fmt_max + 1, a.shape) for a in g.weights.arrays().values()))
    await host.write_weights(weights)
    g.weights = weights
    await session.check_weights()
    await session.infer(session.sample())
    lfsr = int(rng.integers(1, 1 << 32))
    await host.write("LFSR", lfsr)
    g.lfsr.state = lfsr
    await session.train(1, from_scratch=False)
    await session.check_weights()


async def report_run(host: TinyCLHost, samples: int, sample) -> dict:
    """Cycles per training sample by phase, from the hardware counters: ``samples`` INSERTs
    (``sample()`` draws each), a TRAIN for realistic weights, then one more epoch counted."""
    cfg = host.cfg
    for n in range(samples):
        await host.insert(sample(), n % cfg.classes)
    await host.train(epochs=1, from_scratch=True)
    await host.command(Command.CLEAR_COUNTERS)
    await host.train(epochs=1, from_scratch=False)
    c = await host.counters()
    steps = c["TRAIN_SAMPLES"]
    per_phase = {p.name.lower(): c[f"CYC_{p.name}"] / steps for p in Phase if p != Phase.OTHER}
    per_sample = sum(per_phase.values())
    sweeps = 2 * (cfg.filters // cfg.n_pu) * cfg.in_c            # channel sweeps per sample
    bound = bound_cycles_per_sample(cfg)
    return {
        "config": cfg.to_dict(),
        "training_steps": steps,
        "cycles_per_sample": per_sample,
        "bound_cycles_per_sample": bound,
        "ratio_to_bound": per_sample / bound,
        "phases": per_phase,
        "bound_phases": bound_phases(cfg),
        "other_cycles_per_command": c["CYC_OTHER"],
        # Useful MACs (the model's, as in the bound) over lanes x cycles of the training steps.
        "mac_utilisation": bound / per_sample,
        # Cycles in which the units took an operand set, over all busy cycles of the command.
        "issue_rate": c["OPERAND_SETS"] / c["CYCLES"],
        "sample_reads_per_pass": c["SAMPLE_READS"] / (steps * sweeps),
        "formula_reads_per_pass": reads_per_pass(cfg),
        "counters": c,
    }


async def protocol_run(host: TinyCLHost, params: dict, log=None) -> dict:
    """The class-incremental protocol of ``tinycl train`` on an accelerator: per task, every
    training sample INSERTed, one TRAIN, every test sample INFERred.  ``params`` holds
    ``preset``, ``data_dir``, ``train_limit``, ``test_limit`` and ``progress_file``, and may
    name a state file to restore first (``load_state``, into a reset accelerator) and one to
    save the learner into at the end (``save_state``)."""
    from ..model.data import load_for
    from ..model.protocol import ProtocolResult, TaskResult, plan
    from ..model.state import load_state, save_state

    cfg = host.cfg
    if params.get("load_state"):
        await host.load_state(load_state(params["load_state"], cfg))
    dataset = load_for(cfg, params.get("data_dir"))
    result = ProtocolResult(backend="rtl", preset=params.get("preset", "custom"), config=cfg.to_dict())
    tasks = plan(cfg, dataset, params.get("train_limit"), params.get("test_limit"))
    progress = Progress(params.get("progress_file"), sum(len(t.stream) + len(t.test) + 1 for t in tasks))
    for number, task in enumerate(tasks, 1):
        for index in task.stream:
            await host.insert(dataset.train_x[index], int(dataset.train_y[index]))
            progress.step()
        await host.train(epochs=cfg.epochs)
        progress.step()
        predictions = []
        for i in task.test:
            predictions.append(await host.infer(dataset.test_x[i]))
            progress.step()
        accuracy = float(np.mean(np.array(predictions) == dataset.test_y[task.test]))
        labels, counts = await host.read_memory()
        result.tasks.append(TaskResult(task.classes, accuracy, int(len(labels)), counts.tolist()))
        if log is not None:
            log(f"task {number}/{len(tasks)} classes {task.classes}: accuracy {accuracy:.4f}")
    if params.get("save_state"):
        save_state(await host.save_state(), params["save_state"])
    return result.to_dict()
