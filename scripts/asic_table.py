"""The ASIC figures of several ``tinycl asic`` runs beside the paper's 65 nm chip, as a
Markdown table (docs/asic.md): ``python scripts/asic_table.py build/asic/*/asic.json``."""

from __future__ import annotations

import argparse
import json
import pathlib

#: Quoted from Ressa et al. (TinyCL), not measured here: the 65 nm chip's area, power and
#: the time of one CIFAR-10 training epoch.
PAPER = {"node": "65 nm (quoted)", "area_mm2": 4.74, "power_mw": 86, "epoch_s": 1.76}


def row(summary: dict) -> str:
    cfg, sta = summary["config"], summary["sta"]
    step = sta["per_sample"]
    workload = sta["power"]["workload"]
    shape = f"{cfg['in_h']}x{cfg['in_w']}x{cfg['in_c']}"
    return (f"| {shape}, n_pu={cfg['n_pu']}, slots={cfg['slots']} | SKY130 hd, 130 nm | "
            f"{summary['logic_area_um2'] / 1e6:.3f} | {summary['memory_area_um2_estimate'] / 1e6:.3f} | "
            f"{summary['total_area_um2'] / 1e6:.3f} | {sta['fmax_mhz']:.1f} | "
            f"{workload['total']['total'] * 1e3:.1f} | {workload['mean_activity']:.3f} | "
            f"{step['cycles_per_sample']:,} | {step['energy_per_sample_uj']:.2f} | "
            f"{step['epoch_50k_seconds_at_fmax']:.2f} |")


def table(summaries) -> str:
    lines = ["| build | node | logic (mm²) | memories (mm², estimate) | total (mm²) | fmax (MHz) | "
             "power at the workload (mW, at the constraint clock) | activity | cycles per sample | "
             "energy per sample (uJ) | 50,000-sample epoch at fmax (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(s) for s in summaries]
    lines.append(f"| TinyCL chip, CIFAR-10 (Ressa et al., quoted) | {PAPER['node']} | | | {PAPER['area_mm2']} | | "
                 f"{PAPER['power_mw']} | | | | {PAPER['epoch_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("summaries", nargs="+", type=pathlib.Path, help="asic.json files of tinycl asic runs")
    args = parser.parse_args()
    summaries = [json.loads(path.read_text()) for path in args.summaries]
    missing = [str(p) for p, s in zip(args.summaries, summaries) if not s.get("sta")]
    if missing:
        raise SystemExit(f"no OpenSTA figures in {', '.join(missing)}: run tinycl asic with `sta` installed")
    print(table(summaries), end="")


if __name__ == "__main__":
    main()
