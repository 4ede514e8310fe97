"""Simulation speed of the RTL: simulated clock cycles per wall-clock second.

    python scripts/bench_sim.py [--preset digits] [--set KEY=VALUE ...] [--epochs 100] [--repeat 5]
                                [--no-cocotb] [--json FILE]

The native Verilator backend (tinycl_hdl.flows.native) trains a GDumb memory of 20 random
samples for ``--epochs`` epochs; the cycles are the harness's count and the time is the
TRAIN command's alone (the build, the inserts and the Python start-up are reported
apart).  The run is repeated ``--repeat`` times on fresh models and the best and the
median rate are reported: a shared machine's other work only ever slows a run down.
With cocotb (on by default) the same configuration runs ``tinycl report``'s workload
under cocotb on Verilator for comparison.  Nothing here asserts a speed: it
measures.
"""

import argparse
import asyncio
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # numpy's threads would share the cores

import numpy as np  # noqa: E402

from tinycl_hdl.flows.native import build_native, native_host  # noqa: E402
from tinycl_hdl.spec.catalogue import load_config  # noqa: E402


async def native_train(host, epochs: int, seed: int) -> dict:
    cfg = host.cfg
    await host.identify()
    rng = np.random.default_rng(seed)
    for n in range(min(cfg.slots, 20)):
        await host.insert(rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8), n % cfg.classes)
    before, start = host.transport.cycles(), time.monotonic()
    await host.train(epochs=epochs)
    seconds = time.monotonic() - start
    cycles = host.transport.cycles() - before
    return {"cycles": cycles, "seconds": seconds, "cycles_per_second": cycles / seconds}


def cocotb_report(cfg, samples: int = 40) -> dict:
    """``tinycl report``'s run (``samples`` inserts, two epochs) under cocotb on Verilator: its
    simulated cycles over its wall time, the simulator's start-up included."""
    from tinycl_hdl.cli import run_rtl

    run_rtl(cfg, "verilator-cocotb", "report", {"samples": 1})           # the build, not timed
    data = run_rtl(cfg, "verilator-cocotb", "report", {"samples": samples})
    return {"cycles": data["simulated_cycles"], "seconds": data["wall_seconds"],
            "cycles_per_second": data["cycles_per_second"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="digits")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-cocotb", dest="cocotb", action="store_false")
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be a positive integer, not {args.repeat!r}")
    cfg = load_config(args.preset, None, args.overrides)
    start = time.monotonic()
    build_native(cfg)
    build_seconds = time.monotonic() - start
    runs = []
    for _ in range(args.repeat):
        with native_host(cfg) as host:
            runs.append(asyncio.run(native_train(host, args.epochs, args.seed)))
    rates = sorted(run["cycles_per_second"] for run in runs)
    native = dict(min(runs, key=lambda run: run["seconds"]), median_cycles_per_second=rates[len(rates) // 2],
                  runs=runs)
    result = {"preset": args.preset, "overrides": args.overrides, "datapath": cfg.datapath,
              "native_build_seconds": build_seconds, "native": native}
    print(f"{args.preset} {' '.join(args.overrides)} ({cfg.datapath}): native build {build_seconds:.1f} s; "
          f"TRAIN {args.epochs} epochs: {native['cycles']:,} cycles; best of {args.repeat} "
          f"{native['seconds']:.2f} s = {native['cycles_per_second']:,.0f} cycles/s, "
          f"median {native['median_cycles_per_second']:,.0f} cycles/s")
    if args.cocotb:
        result["cocotb"] = cocotb = cocotb_report(cfg)
        print(f"cocotb on Verilator: {cocotb['cycles']:,} cycles in {cocotb['seconds']:.1f} s = "
              f"{cocotb['cycles_per_second']:,.0f} cycles/s; native / cocotb = "
              f"{native['cycles_per_second'] / cocotb['cycles_per_second']:.1f}x")
    if args.json_file:
        pathlib.Path(args.json_file).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
