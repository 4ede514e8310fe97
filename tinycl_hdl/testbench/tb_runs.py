"""cocotb entry points of the ``tinycl verify``, ``report`` and ``train --backend rtl`` commands.

Each test reads its options from ``TINYCL_TB_PARAMS`` and writes its findings
as JSON to ``params["result_file"]``.
"""

import json

import cocotb
import numpy as np

from tb_tinycl import bit_exact_run, start
from tinycl_hdl.model.perf import bound_cycles_per_sample, bound_phases, reads_per_pass
from tinycl_hdl.spec.regmap import Command, Phase


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


def write_result(tb, data):
    with open(tb.params["result_file"], "w") as file:
        json.dump(data, file, indent=2)


@cocotb.test()
async def verify(dut):
    """INSERT (with eviction), TRAIN, INFER and TRAIN_KEEP, every result against the golden
    model (:func:`tb_tinycl.bit_exact_run`)."""
    tb = await start(dut)
    n = tb.params["samples"]
    write_result(tb, await bit_exact_run(tb, n, tb.params.get("epochs", 1), max(1, n // 2)))


@cocotb.test()
async def report(dut):
    """Cycles per training sample by phase, from the hardware counters."""
    tb = await start(dut)
    cfg = tb.cfg
    for n in range(tb.params.get("samples", 4)):
        await tb.host.insert(tb.sample(), n % cfg.classes)
    await tb.host.train(epochs=1, from_scratch=True)          # weights for realistic data paths
    await tb.host.command(Command.CLEAR_COUNTERS)
    await tb.host.train(epochs=1, from_scratch=False)
    c = await tb.host.counters()
    steps = c["TRAIN_SAMPLES"]
    per_phase = {p.name.lower(): c[f"CYC_{p.name}"] / steps for p in Phase if p != Phase.OTHER}
    per_sample = sum(per_phase.values())
    sweeps = 2 * (cfg.filters // cfg.n_pu) * cfg.in_c            # channel sweeps per sample
    write_result(tb, {
        "config": cfg.to_dict(),
        "training_steps": steps,
        "cycles_per_sample": per_sample,
        "bound_cycles_per_sample": bound_cycles_per_sample(cfg),
        "ratio_to_bound": per_sample / bound_cycles_per_sample(cfg),
        "phases": per_phase,
        "bound_phases": bound_phases(cfg),
        "other_cycles_per_command": c["CYC_OTHER"],
        # Useful MACs (the model's, as in the bound) over lanes x cycles of the training steps.
        "mac_utilisation": bound_cycles_per_sample(cfg) / per_sample,
        # Cycles in which the units took an operand set, over all busy cycles of the command.
        "issue_rate": c["OPERAND_SETS"] / c["CYCLES"],
        "sample_reads_per_pass": c["SAMPLE_READS"] / (steps * sweeps),
        "formula_reads_per_pass": reads_per_pass(cfg),
    })


@cocotb.test()
async def protocol(dut):
    """The class-incremental protocol of ``tinycl train`` on the RTL."""
    from tinycl_hdl.model.data import load_for
    from tinycl_hdl.model.protocol import ProtocolResult, TaskResult, plan

    tb = await start(dut)
    cfg, p = tb.cfg, tb.params
    tb.host.max_polls = None
    dataset = load_for(cfg, p.get("data_dir"))
    result = ProtocolResult(backend="rtl", preset=p.get("preset", "custom"), config=cfg.to_dict())
    tasks = plan(cfg, dataset, p.get("train_limit"), p.get("test_limit"))
    progress = Progress(p.get("progress_file"), sum(len(t.stream) + len(t.test) + 1 for t in tasks))
    for number, task in enumerate(tasks, 1):
        for index in task.stream:
            await tb.host.insert(dataset.train_x[index], int(dataset.train_y[index]))
            progress.step()
        await tb.host.write("EPOCHS", cfg.epochs)
        await tb.host.command(Command.TRAIN, wait=False)
        await tb.host.wait_idle(poll_cycles=p.get("poll_cycles", 4096))
        progress.step()
        predictions = []
        for i in task.test:
            predictions.append(await tb.host.infer(dataset.test_x[i]))
            progress.step()
        accuracy = float(np.mean(np.array(predictions) == dataset.test_y[task.test]))
        labels, counts = await tb.host.read_memory()
        result.tasks.append(TaskResult(task.classes, accuracy, int(len(labels)), counts.tolist()))
        dut._log.info("task %d/%d classes %s: accuracy %.4f", number, len(tasks), task.classes, accuracy)
    write_result(tb, result.to_dict())
