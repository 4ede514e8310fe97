"""Time the golden model: one training step and one inference per preset.

Usage: python scripts/bench_golden.py [--repeat N]
"""

import argparse
import time

import numpy as np

from tinycl_hdl.model import golden
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.lfsr import Lfsr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name, cfg in PRESETS.items():
        weights = golden.init_weights(cfg, Lfsr(1))
        x = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        start = time.perf_counter()
        for _ in range(args.repeat):
            weights, _ = golden.train_step(cfg, weights, x, 3)
        step = (time.perf_counter() - start) / args.repeat
        start = time.perf_counter()
        golden.init_weights(cfg, Lfsr(1))
        init = time.perf_counter() - start
        print(f"{name:8s} train step {step * 1e3:8.3f} ms   weight init {init * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
