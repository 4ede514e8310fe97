"""Design-space sweeps on Dask: ``tinycl sweep SPEC.toml --out DIR``.

A sweep measures many configurations of one preset.  The specification file names the
preset, the fields every point sets (``[set]``), the points (``[grid]``: every combination
of the listed values; or ``[random]``: ``points`` draws from ranges and choices) and what to
measure of each (``[measure]``)::

    preset = "cifar10"
    data_dir = "data/synth"          # relative to this file; --data-dir overrides it
    [set]
    epochs = 5
    [grid]
    lr_shift = [5, 6, 7]
    update_rounding = ["nearest", "stochastic"]
    [measure]
    accuracy = ["golden", "float"]   # the GDumb protocol on these backends
    fpga = ["ecp5-85f"]              # tinycl synth's resources and fmax
    rtl_check = 0.25                 # a quarter of the points also run on the RTL
    asic = true                      # tinycl asic's generic gate count and SRAM bits

Each point runs as one task on a Dask cluster (an embedded ``LocalCluster``, or the
scheduler at ``--scheduler``).  As each point finishes the client stores its result under
``DIR/points/`` by a hash of the configuration and the measurement, so an interrupted sweep
resumes with the points it lacks, and a worker that dies loses only the point it was
running (Dask runs it again elsewhere).  A point that fails, or whose configuration
:class:`~tinycl_hdl.spec.config.TinyCLConfig` rejects, records its error and the sweep goes
on.  The results are ``DIR/results.csv`` and ``DIR/results.parquet`` (one row a point: the
swept fields, every measured column, the wall time of each measurement) and the plots under
``DIR/plots/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import pathlib
import tempfile
import time
import tomllib

import numpy as np

from ..spec.catalogue import PRESETS
from ..spec.config import ConfigError, TinyCLConfig

__all__ = ["SweepError", "Measure", "SweepSpec", "load_spec", "point_key", "measure_point", "run_sweep",
           "write_results", "plot_results"]

#: The resource columns of an FPGA build, from :func:`tinycl_hdl.flows.fpga.synthesise`'s report.
FPGA_COLUMNS = ("luts", "ffs", "dsps", "brams", "fmax_mhz")
_FIELDS = {f.name: f for f in dataclasses.fields(TinyCLConfig)}


class SweepError(ValueError):
    """An invalid sweep specification; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Measure:
    """What a sweep measures of every point (the ``[measure]`` table).

    Parameters
    ----------
    accuracy : tuple of str
        Backends (``golden``, ``float``) that run the GDumb protocol; each gives the final
        accuracy and the accuracy after every task.
    train_limit, test_limit : int or None
        Samples per task streamed in and tested (``tinycl train``'s options).
    fpga : tuple of str
        ``tinycl synth`` targets to build each point for.
    clock_mhz : float
        The clock that turns cycles into microseconds where no FPGA fmax is measured.
    asic : bool
        Whether to map each point's logic to the shipped SKY130 cells (``tinycl asic``
        without OpenSTA): cell area, cells and flip-flops, beside the SRAM bits and their
        estimated area.
    rtl_check : float
        The fraction of the points (chosen by their key, so the same on every rerun) that
        also run on the RTL (the native Verilator backend): a bit-exact training run
        against the golden model, and an epoch whose phase counters must equal the
        cycle model's.  A mismatch fails the point.
    """

    accuracy: tuple = ("golden",)
    train_limit: int | None = None
    test_limit: int | None = None
    fpga: tuple = ()
    clock_mhz: float = 100.0
    asic: bool = False
    rtl_check: float = 0.0

    @classmethod
    def from_table(cls, table: dict) -> "Measure":
        from .fpga import TARGETS

        known = {f.name for f in dataclasses.fields(cls)}
        for key in table:
            if key not in known:
                raise SweepError(f"unknown [measure] key {key!r}; known keys: {', '.join(sorted(known))}")
        values = dict(table)
        for key in ("accuracy", "fpga"):
            if key in values:
                value = values[key]
                values[key] = tuple([value] if isinstance(value, str) else value)
        for backend in values.get("accuracy", cls.accuracy):
            if backend not in ("golden", "float"):
                raise SweepError(f"[measure] accuracy must list golden or float, not {backend!r}")
        for target in values.get("fpga", ()):
            if target not in TARGETS:
                raise SweepError(f"[measure] fpga must list targets of {', '.join(TARGETS)}, not {target!r}")
        for key in ("train_limit", "test_limit"):
            value = values.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SweepError(f"[measure] {key} must be a positive integer, not {value!r}")
        if not isinstance(values.get("clock_mhz", 1.0), (int, float)) or values.get("clock_mhz", 1.0) <= 0:
            raise SweepError(f"[measure] clock_mhz must be a positive number, not {values['clock_mhz']!r}")
        if not isinstance(values.get("asic", False), bool):
            raise SweepError(f"[measure] asic must be true or false, not {values['asic']!r}")
        check = values.get("rtl_check", 0.0)
        if isinstance(check, bool) or not isinstance(check, (int, float)) or not 0 <= check <= 1:
            raise SweepError(f"[measure] rtl_check must be a fraction from 0 to 1, not {check!r}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed specification: the points' configurations and what to measure."""

    preset: str
    swept: tuple             # the swept fields, in the file's order
    points: tuple            # per point: {field: value} of the swept fields
    fixed: dict              # the [set] table
    measure: Measure
    data_dir: str | None

    def config(self, point: dict) -> TinyCLConfig:
        """The configuration of one point (:class:`ConfigError` if it is not valid)."""
        return dataclasses.replace(PRESETS[self.preset], **{**self.fixed, **point})


def _check_values(table_name: str, field: str, values) -> None:
    if field not in _FIELDS:
        raise SweepError(f"[{table_name}] {field!r} is not a configuration field; fields: {', '.join(_FIELDS)}")
    kind = int if _FIELDS[field].type in ("int", int) else str
    for value in values:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SweepError(f"[{table_name}] {field} takes {kind.__name__} values, not {value!r}")


def load_spec(path, data_dir=None) -> SweepSpec:
    """Read and check a sweep specification (TOML); ``data_dir`` overrides the file's."""
    path = pathlib.Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except OSError as error:
        raise SweepError(f"cannot read {str(path)!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{str(path)!r} is not valid TOML: {error}") from None
    known = {"preset", "data_dir", "set", "grid", "random", "measure"}
    for key in table:
        if key not in known:
            raise SweepError(f"unknown key {key!r}; known keys: {', '.join(sorted(known))}")
    preset = table.get("preset")
    if preset not in PRESETS:
        raise SweepError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    fixed = table.get("set", {})
    for field, value in fixed.items():
        _check_values("set", field, [value])
    if ("grid" in table) == ("random" in table):
        raise SweepError("give either a [grid] or a [random] table of the fields to sweep")
    swept, points = _grid(table["grid"]) if "grid" in table else _random(table["random"])
    for field in swept:
        if field in fixed:
            raise SweepError(f"{field} is both swept and fixed in [set]")
    if data_dir is None and table.get("data_dir") is not None:
        data_dir = str((path.parent / table["data_dir"]).resolve())
    return SweepSpec(preset, tuple(swept), tuple(points), fixed, Measure.from_table(table.get("measure", {})),
                     data_dir)


def _grid(grid: dict):
    if not grid:
        raise SweepError("[grid] names no field")
    for field, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"[grid] {field} must be a non-empty list of values, not {values!r}")
        _check_values("grid", field, values)
    swept = list(grid)
    return swept, [dict(zip(swept, combo)) for combo in itertools.product(*grid.values())]


def _random(table: dict):
    """``points`` draws (numpy, ``seed``): a list is a choice, ``{min, max}`` an integer range."""
    table = dict(table)
    count, seed = table.pop("points", None), table.pop("seed", 1)
    if not isinstance(count, int) or count < 1:
        raise SweepError(f"[random] points must be a positive integer, not {count!r}")
    if not table:
        raise SweepError("[random] names no field")
    draws = {}
    for field, spec in table.items():
        if isinstance(spec, list) and spec:
            _check_values("random", field, spec)
            draws[field] = ("choice", spec)
        elif isinstance(spec, dict) and set(spec) == {"min", "max"} and spec["min"] <= spec["max"]:
            _check_values("random", field, [spec["min"], spec["max"]])
            draws[field] = ("range", (spec["min"], spec["max"]))
        else:
            raise SweepError(f"[random] {field} must be a list of choices or {{min = ..., max = ...}}, not {spec!r}")
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(count):
        point = {}
        for field, (kind, values) in draws.items():
            if kind == "choice":
                point[field] = values[int(rng.integers(len(values)))]
            else:
                point[field] = int(rng.integers(values[0], values[1] + 1))
        points.append(point)
    return list(draws), points


def point_key(config: dict, measure: Measure, data_dir) -> str:
    """The cache key of a point: its whole configuration, the measurement and the data."""
    text = json.dumps({"config": config, "measure": measure.to_dict(), "data_dir": data_dir}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- measuring one point (runs on a Dask worker) ---------------------------------------------


#: Data sets a worker has loaded, by shape and folder: a worker runs many points on one set.
_DATASETS = {}


def _dataset(cfg: TinyCLConfig, data_dir):
    from ..model.data import load_for

    key = (cfg.in_h, cfg.in_w, cfg.in_c, cfg.classes, data_dir)
    if key not in _DATASETS:
        _DATASETS[key] = load_for(cfg, data_dir)
    return _DATASETS[key]


def _accuracy(cfg: TinyCLConfig, backend: str, measure: Measure, data_dir) -> dict:
    from ..model.accelerator import SoftwareAccelerator
    from ..model.protocol import run_protocol

    dataset = _dataset(cfg, data_dir)
    result = run_protocol(cfg, dataset, SoftwareAccelerator(cfg, backend), backend=backend, preset="sweep",
                          train_limit=measure.train_limit, test_limit=measure.test_limit)
    return {f"accuracy_{backend}": result.final_accuracy,
            f"tasks_{backend}": json.dumps([round(t.accuracy, 6) for t in result.tasks])}


def _fpga(cfg: TinyCLConfig, target: str) -> dict:
    from .fpga import synthesise

    with tempfile.TemporaryDirectory(prefix="tinycl-sweep-") as folder:
        report = synthesise(cfg, target, folder)
    if not report["fits"]:
        raise RuntimeError(f"{target}: " + (report["error"] or f"over capacity: {', '.join(report['over_capacity'])}"))
    return {f"{target}_{key}": report[key] for key in FPGA_COLUMNS}


#: The columns of ``[measure] asic``, from :func:`tinycl_hdl.flows.asic.write_asic`'s summary.
ASIC_COLUMNS = ("logic_area_um2", "cells", "flip_flops", "memory_bits", "memory_area_um2_estimate")


def _asic(cfg: TinyCLConfig) -> dict:
    from .asic import write_asic

    with tempfile.TemporaryDirectory(prefix="tinycl-sweep-") as folder:
        summary = json.loads(write_asic(cfg, folder, run_sta=False)["summary"].read_text())
    return {f"asic_{key}": summary[key] for key in ASIC_COLUMNS}


def _cycles(cfg: TinyCLConfig) -> dict:
    """The cycle model's cycles per training step and the MAC bound (both per sample)."""
    from ..model.perf import bound_cycles_per_sample, cycles_per_sample

    return {"cycles_per_sample": cycles_per_sample(cfg), "bound_cycles_per_sample": bound_cycles_per_sample(cfg)}


def _us_per_sample(row: dict, measure: Measure) -> dict:
    """Microseconds per training step at the first FPGA target's fmax, else at ``clock_mhz``."""
    if row.get("cycles_per_sample") is None:
        return {"us_per_sample": None}
    fmax = next((row[f"{t}_fmax_mhz"] for t in measure.fpga if row.get(f"{t}_fmax_mhz")), measure.clock_mhz)
    return {"us_per_sample": round(row["cycles_per_sample"] / fmax, 3)}


#: Training steps of the RTL check: the golden comparison's and the counted epoch's.
RTL_CHECK_SAMPLES = 6


def checks_rtl(key: str, measure: Measure) -> bool:
    """Whether the point of ``key`` is one of the ``rtl_check`` fraction that runs on the RTL."""
    return int(key[:8], 16) < measure.rtl_check * 2 ** 32


def _rtl_check(cfg: TinyCLConfig) -> dict:
    """Train on the native Verilator model step by step against the golden model (every word
    compared), then count an epoch; its phase counters must equal the cycle model's."""
    import asyncio

    from ..host.session import GoldenSession, bit_exact_run, report_run
    from ..model.perf import epoch_cycles
    from .native import native_host

    samples = min(cfg.slots, RTL_CHECK_SAMPLES)
    rng = np.random.default_rng(cfg.seed)

    with native_host(cfg) as host:
        asyncio.run(bit_exact_run(GoldenSession(host, cfg.seed), samples, 1, max(1, samples // 2)))
    with native_host(cfg) as host:
        report = asyncio.run(report_run(
            host, samples, lambda: rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)))
    counters = report["counters"]
    want = epoch_cycles(cfg, counters["TRAIN_SAMPLES"])
    if want is not None:
        got = {name: counters[name] for name in want}
        if got != want:
            raise RuntimeError(f"the RTL's phase counters {got} differ from the cycle model's {want}")
    return {"rtl_cycles_per_sample": round(report["cycles_per_sample"], 3)}


def measure_point(config: dict, measure_dict: dict, data_dir, rtl_check: bool = False) -> dict:
    """Every measurement of one point; each adds its columns and ``seconds_<measurement>``.
    Raises on the first that fails (the caller records the error)."""
    cfg = TinyCLConfig.from_dict(config)
    measure = Measure(**{k: tuple(v) if isinstance(v, list) else v for k, v in measure_dict.items()})
    row = _cycles(cfg)
    jobs = [(f"accuracy_{backend}", lambda b=backend: _accuracy(cfg, b, measure, data_dir))
            for backend in measure.accuracy]
    jobs += [(f"fpga_{target}", lambda t=target: _fpga(cfg, t)) for target in measure.fpga]
    if measure.asic:
        jobs.append(("asic", lambda: _asic(cfg)))
    if rtl_check:
        jobs.append(("rtl_check", lambda: _rtl_check(cfg)))
    for name, job in jobs:
        start = time.monotonic()
        row.update(job())
        row[f"seconds_{name}"] = round(time.monotonic() - start, 3)
    row["rtl_checked"] = rtl_check
    row.update(_us_per_sample(row, measure))
    return row


# -- the sweep ---------------------------------------------------------------------------------


def _store(path: pathlib.Path, record: dict) -> None:
    """Write ``record`` so that a reader never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)


def run_sweep(spec: SweepSpec, out_dir, *, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, fresh: bool = False) -> list:
    """Measure every point of ``spec`` on Dask; returns the rows (also written by
    :func:`write_results`).  Points stored under ``out_dir/points`` are not measured again
    unless ``fresh``."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    out = pathlib.Path(out_dir)
    store = out / "points"
    store.mkdir(parents=True, exist_ok=True)
    rows, todo = {}, {}
    counts = {"done": 0, "failed": 0, "cached": 0}
    for index, point in enumerate(spec.points):
        base = {"point": index, **point}
        try:
            config = spec.config(point).to_dict()
        except ConfigError as error:
            rows[index] = {**base, "status": "failed", "error": f"invalid configuration: {error}"}
            counts["failed"] += 1
            continue
        key = point_key(config, spec.measure, spec.data_dir)
        cached = store / f"{key}.json"
        if cached.exists() and not fresh:
            rows[index] = {**base, **json.loads(cached.read_text())["row"], "status": "ok", "key": key, "cached": True}
            counts["cached"] += 1
        else:
            todo[index] = (key, config, base)
    bar = tqdm(total=len(spec.points), desc="sweep", unit="point", disable=not progress, initial=len(rows))
    bar.set_postfix(counts)
    if todo:
        cluster = None if scheduler else LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                                      processes=True, dashboard_address=":0",
                                                      silence_logs=logging.CRITICAL)
        try:
            with Client(scheduler or cluster) as client:
                futures = {client.submit(measure_point, config, spec.measure.to_dict(), spec.data_dir,
                                         checks_rtl(key, spec.measure), key=f"point-{key}", pure=False): index
                           for index, (key, config, _) in todo.items()}
                for future in as_completed(futures):
                    index = futures[future]
                    key, config, base = todo[index]
                    if future.status == "finished":
                        row = future.result()
                        _store(store / f"{key}.json", {"config": config, "measure": spec.measure.to_dict(), "row": row})
                        rows[index] = {**base, **row, "status": "ok", "key": key, "cached": False}
                        counts["done"] += 1
                    else:
                        error = future.exception()
                        rows[index] = {**base, "status": "failed", "key": key, "error": f"{type(error).__name__}: {error}"}
                        counts["failed"] += 1
                    bar.update(1)
                    bar.set_postfix(counts)
        finally:
            if cluster is not None:
                cluster.close()
    bar.close()
    return [rows[i] for i in sorted(rows)]


def write_results(rows: list, spec: SweepSpec, out_dir) -> dict:
    """``results.csv`` and ``results.parquet``: one row a point, swept fields first."""
    import pandas as pd

    out = pathlib.Path(out_dir)
    frame = pd.DataFrame(rows)
    first = ["point", *spec.swept, "status"]
    frame = frame[[c for c in first if c in frame] + sorted(c for c in frame if c not in first)]
    paths = {"csv": out / "results.csv", "parquet": out / "results.parquet"}
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], index=False)
    return paths


def _pareto(xs, ys):
    """Indices of the points no other point beats (lower or equal x and higher or equal y, one strictly)."""
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -ys[i]))
    front, best = [], -np.inf
    for i in order:
        if ys[i] > best:
            front.append(i)
            best = ys[i]
    return front


def plot_results(rows: list, spec: SweepSpec, out_dir) -> list:
    """The plots: for the first accuracy backend, the Pareto front of accuracy against every
    resource column and against microseconds per sample (where measured), and accuracy
    against each swept field for every backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = pathlib.Path(out_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if r.get("status") == "ok"]
    backends = spec.measure.accuracy
    written = []
    if ok and backends:
        acc = f"accuracy_{backends[0]}"
        costs = sorted({c for r in ok for c in r
                        if c.endswith(("_luts", "_dsps", "_brams", "us_per_sample", "asic_logic_area_um2"))})
        for cost in costs:
            pts = [(r[cost], r[acc], r) for r in ok if r.get(cost) is not None and r.get(acc) is not None]
            if not pts:
                continue
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.scatter(xs, ys, s=18, alpha=0.6, label="points")
            front = _pareto(xs, ys)
            ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", color="C3", label="Pareto front")
            for i in front:
                ax.annotate(", ".join(f"{k}={pts[i][2][k]}" for k in spec.swept), (xs[i], ys[i]), fontsize=6,
                            xytext=(3, -8), textcoords="offset points")
            ax.set_xlabel(cost)
            ax.set_ylabel(f"final accuracy ({backends[0]})")
            ax.set_title(f"{spec.preset}: accuracy against {cost}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            written.append(folder / f"pareto_{cost}.png")
            fig.savefig(written[-1], dpi=110)
            plt.close(fig)
    for field in spec.swept:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        values = sorted({r[field] for r in ok}, key=lambda v: (isinstance(v, str), v))
        position = {v: i for i, v in enumerate(values)}
        for n, backend in enumerate(backends):
            col = f"accuracy_{backend}"
            pts = [(position[r[field]], r[col]) for r in ok if r.get(col) is not None]
            if not pts:
                continue
            jitter = (n - (len(backends) - 1) / 2) * 0.12
            ax.scatter([x + jitter for x, _ in pts], [y for _, y in pts], s=16, alpha=0.6, label=backend, color=f"C{n}")
            means = [np.mean([y for x, y in pts if x == i]) for i in range(len(values))]
            ax.plot([i + jitter for i in range(len(values))], means, color=f"C{n}", alpha=0.8)
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(field)
        ax.set_ylabel("final accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{spec.preset}: accuracy against {field} (line: mean over the other fields)")
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(folder / f"field_{field}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
