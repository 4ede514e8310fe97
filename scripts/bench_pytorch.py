"""A PyTorch CPU baseline of TinyCL's network at batch size 1, for the paper table.

The same network as the accelerator's configuration (a ``kernel`` x ``kernel`` convolution
with ``filters`` outputs and a bias, ReLU, a dense layer to ``classes`` logits), trained one
sample at a time as the accelerator trains: forward, cross-entropy backward and an SGD
update at the configuration's rate ``2**-lr_shift``, in float32.  It times ``--steps``
steps after ``--warmup`` untimed ones, several times, and reports the median CPU time of
the process per sample (on one thread, the time of a step on a core of its own) and what one CIFAR-10 epoch (50,000 samples) and one epoch over a full GDumb
memory (``slots`` samples) take at that rate.

PyTorch is an optional extra (``pip install 'tinycl-hdl[torch]'``), kept out of ``make
test``: its PyPI wheel pulls several GB of GPU libraries.  ``make bench-pytorch`` runs this
script when torch is installed::

    python scripts/bench_pytorch.py --preset digits --preset cifar10 --json build/bench_pytorch.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import time

from tinycl_hdl.spec.catalogue import PRESETS

#: Samples in one CIFAR-10 training epoch.
EPOCH_SAMPLES = 50_000


def network(cfg, torch):
    """TinyCL's network for ``cfg`` as a torch module."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(cfg.in_c, cfg.filters, cfg.kernel, bias=True),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(cfg.dense_in, cfg.classes, bias=True),
    )


def measure(cfg, steps: int, warmup: int, repeats: int, threads: int) -> dict:
    """Median seconds per training step (batch 1) over ``repeats`` timed runs of ``steps``,
    on ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = network(cfg, torch)
    optimiser = torch.optim.SGD(model.parameters(), lr=2.0 ** -cfg.lr_shift)
    loss_fn = torch.nn.CrossEntropyLoss()
    # Inputs as the accelerator sees them: (pixel - offset) / 256.
    pixels = torch.randint(0, 256, (steps, 1, cfg.in_c, cfg.in_h, cfg.in_w), dtype=torch.float32)
    inputs = (pixels - cfg.pixel_offset) / 256.0
    labels = torch.randint(0, cfg.classes, (steps, 1))

    def run(count):
        for n in range(count):
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[n]), labels[n])
            loss.backward()
            optimiser.step()

    run(min(warmup, steps))
    per_step, wall = [], []
    for _ in range(repeats):
        start, start_wall = time.process_time(), time.perf_counter()
        run(steps)
        per_step.append((time.process_time() - start) / steps)
        wall.append((time.perf_counter() - start_wall) / steps)
    # The process's CPU time: with one thread it is the time the step takes on a core of its
    # own, whatever else the machine runs; the wall time is kept beside it.
    seconds = statistics.median(per_step)
    return {
        "preset_config": cfg.to_dict(),
        "seconds_per_sample": seconds,
        "runs_cpu_seconds_per_sample": per_step,
        "runs_wall_seconds_per_sample": wall,
        "epoch_50k_seconds": seconds * EPOCH_SAMPLES,
        "full_memory_epoch_seconds": seconds * cfg.slots,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": "float32",
    }


def cpu_name() -> str:
    """The processor's model name (Linux), else the machine type."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", choices=sorted(PRESETS), help="repeatable (default: both)")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (a batch of one gains nothing from more, and loses much when "
                             "another job shares the cores)")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("PyTorch is not installed: pip install 'tinycl-hdl[torch]' (several GB)") from None
    results = {"machine": {"cpu": cpu_name(), "python": platform.python_version()}, "presets": {}}
    for name in args.preset or ["digits", "cifar10"]:
        result = measure(PRESETS[name], args.steps, args.warmup, args.repeats, args.threads)
        results["presets"][name] = result
        print(f"{name}: {result['seconds_per_sample'] * 1e6:.1f} us per sample (batch 1, {result['threads']} "
              f"threads, torch {result['torch']}); 50,000-sample epoch {result['epoch_50k_seconds']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
