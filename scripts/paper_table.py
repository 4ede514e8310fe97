"""The FPGA builds beside the paper's epoch time, as a Markdown table (docs/performance.md).

Each row joins one ``tinycl synth --json`` build report (resources, the measured fmax and
its placement seed) with the cycles per training sample that ``tinycl report --json``
measured from the RTL's counters for the same network and ``n_pu``; from them, the time
of one CIFAR-10-sized epoch (50,000 samples) and of one epoch over a full GDumb memory at
the build's fmax, and the share of the device's multiplier peak that the build's useful
MACs use.  A PyTorch CPU baseline (``scripts/bench_pytorch.py --json``) and the paper's
figures, marked as quoted, close the table::

    python scripts/paper_table.py --report build/report_digits.json --report build/report_cifar10.json \\
        --pytorch build/bench_pytorch.json build/*-ecp5-85f.json
"""

from __future__ import annotations

import argparse
import json
import pathlib

#: Samples in one CIFAR-10 training epoch.
EPOCH_SAMPLES = 50_000
#: The multipliers of each target (MULT18X18D on the ECP5-85F; SB_MAC16 on the UP5K).
MULTIPLIERS = {"ecp5-85f": 156, "ice40-up5k": 8}
#: Quoted from Ressa et al. (TinyCL), not measured here: one CIFAR-10 training epoch.
QUOTED = [("TinyCL chip, 65 nm, CIFAR-10 (Ressa et al., quoted)", 1.76),
          ("NVIDIA P100 GPU, CIFAR-10 (Ressa et al., quoted)", 103.0)]
#: The fields that make two configurations the same network on the same datapath.
NETWORK = ("in_h", "in_w", "in_c", "kernel", "filters", "classes", "data_width", "n_pu", "window", "datapath")


def network_key(cfg: dict) -> tuple:
    return tuple(cfg[name] for name in NETWORK)


def measured_runs(reports) -> dict:
    """``{network key: tinycl report run}`` over every run of every report."""
    runs = {}
    for report in reports:
        for run in [report, *report.get("runs", {}).values()]:
            runs[network_key(run["config"])] = run
    return runs


def lanes(cfg: dict) -> int:
    return 1 if cfg["datapath"] == "serial" else cfg["kernel"] ** 2 * cfg["n_pu"]


def shape(cfg: dict) -> str:
    return f"{cfg['in_h']}x{cfg['in_w']}x{cfg['in_c']}"


def row(build: dict, runs: dict) -> str:
    cfg = build["config"]
    run = runs.get(network_key(cfg))
    fmax = build["fmax_mhz"]
    clock = f"{fmax:.1f} MHz" + ("" if build.get("meets_clock") else f" (misses {build['clock_mhz']:g})")
    seed = build.get("pnr_seed", "?")
    head = (f"| {shape(cfg)}, n_pu={cfg['n_pu']}, slots={cfg['slots']} | {build['target']} | {build['luts']:,} | "
            f"{build['ffs']:,} | {build['dsps']} | {build['brams']} | {clock}, seed {seed} |")
    if run is None or not fmax:
        return head + " not measured | | | | |"
    cycles = run["cycles_per_sample"]
    seconds = cycles / (fmax * 1e6)
    # Useful MACs per sample are the bound times the lanes; the peak is every multiplier every cycle.
    peak_share = run["bound_cycles_per_sample"] * lanes(cfg) / (cycles * MULTIPLIERS[build["target"]])
    return (head + f" {cycles:,.1f} ({run['ratio_to_bound']:.3f}x) | {100 * peak_share:.1f} % | "
            f"{seconds * EPOCH_SAMPLES:.2f} s | {seconds * cfg['slots']:.3f} s |")


def pytorch_rows(bench: dict) -> list:
    out = []
    for name, result in bench["presets"].items():
        cfg = result["preset_config"]
        out.append(f"| {shape(cfg)}, PyTorch {result['torch']} on the CPU ({bench['machine']['cpu']}, "
                   f"{result['threads']} thread, batch 1, measured: CPU time) | | | | | | | "
                   f"{result['seconds_per_sample'] * 1e6:,.0f} us per sample | | "
                   f"{result['epoch_50k_seconds']:.1f} s | {result['full_memory_epoch_seconds']:.3f} s |")
    return out


def table(builds, reports, bench=None) -> str:
    runs = measured_runs(reports)
    lines = ["| build | target | LUTs | flip-flops | DSPs | block RAMs | fmax, placement seed | cycles per sample "
             "(over the bound) | multiplier peak used | 50,000-sample epoch | epoch over a full memory |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(b, runs) for b in sorted(builds, key=lambda b: (-b["config"]["in_h"], b["config"]["n_pu"]))]
    if bench:
        lines += pytorch_rows(bench)
    lines += [f"| {name} | | | | | | | | | {seconds} s | |" for name, seconds in QUOTED]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="+", type=pathlib.Path, help="tinycl synth --json reports")
    parser.add_argument("--report", action="append", type=pathlib.Path, default=[],
                        help="tinycl report --json results (repeatable)")
    parser.add_argument("--pytorch", type=pathlib.Path, default=None, help="scripts/bench_pytorch.py --json result")
    args = parser.parse_args()
    builds = [json.loads(path.read_text()) for path in args.builds]
    reports = [json.loads(path.read_text()) for path in args.report]
    bench = json.loads(args.pytorch.read_text()) if args.pytorch and args.pytorch.exists() else None
    print(table(builds, reports, bench), end="")


if __name__ == "__main__":
    main()
