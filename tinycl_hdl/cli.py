"""The ``tinycl`` command line."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import sys
import time

import click

from .spec.catalogue import PRESETS, load_config
from .spec.config import ConfigError

BACKENDS = ("golden", "float", "rtl")
#: ``verilator``: the native backend (the model clocked in C++, :mod:`.flows.native`);
#: ``icarus`` and ``verilator-cocotb``: cocotb drives every clock edge.
SIMULATORS = ("verilator", "icarus", "verilator-cocotb")


def run_rtl(cfg, sim_name, testcase, params, waves=False, progress_desc=None):
    """Run ``testcase`` (``verify``, ``report`` or ``protocol``) on the RTL; returns its result
    with ``simulated_cycles``, ``wall_seconds`` and ``cycles_per_second``.

    ``verilator`` runs the native backend, the others the ``tb_runs`` cocotb testbench.
    With ``progress_desc`` a progress bar follows the work units the run reports.
    """
    import tempfile
    import threading
    import time

    with tempfile.TemporaryDirectory() as folder:
        result_file = pathlib.Path(folder) / "result.json"
        progress_file = pathlib.Path(folder) / "progress"
        params = dict(params, result_file=str(result_file), progress_file=str(progress_file))
        finished = threading.Event()

        def follow():
            from tqdm import tqdm
            bar = None
            while not finished.wait(0.5):
                try:
                    done, total = map(int, progress_file.read_text().split())
                except (OSError, ValueError):
                    continue
                if bar is None:
                    bar = tqdm(total=total, desc=progress_desc, unit="step", file=sys.stderr, leave=False)
                bar.update(done - bar.n)
            if bar is not None:
                bar.close()

        watcher = threading.Thread(target=follow, daemon=True) if progress_desc else None
        if watcher:
            watcher.start()
        start = time.monotonic()
        try:
            if sim_name == "verilator":
                data = _run_native(cfg, testcase, params, waves)
            else:
                data = _run_cocotb(cfg, sim_name.removesuffix("-cocotb"), testcase, params, waves, result_file)
        except RuntimeError as error:
            raise click.ClickException(str(error)) from None
        except AssertionError as error:                 # a comparison with the golden model
            raise click.ClickException(f"the RTL differs from the golden model: {error}") from None
        finally:
            finished.set()
            if watcher:
                watcher.join()
        data.setdefault("wall_seconds", time.monotonic() - start)
        data.setdefault("cycles_per_second", data["simulated_cycles"] / data["wall_seconds"])
        data["total_seconds"] = time.monotonic() - start
        return data


def _run_cocotb(cfg, simulator, testcase, params, waves, result_file):
    from .flows.sim import run_design

    run_design("tinycl", cfg, simulator, "tb_runs", params=params, waves=waves, testcase=testcase,
               log_level="WARNING")
    return json.loads(result_file.read_text())


def _run_native(cfg, testcase, params, waves):
    """The same runs as ``tb_runs``, on the native Verilator backend."""
    import numpy as np

    from .flows.native import run_native
    from .host.session import GoldenSession, bit_exact_run, protocol_run, report_run

    if testcase == "verify":
        if params.get("traffic", "plain") != "plain":
            raise click.UsageError("--traffic stress needs cocotb: use --sim verilator-cocotb or icarus")
        n = params["samples"]

        async def run(host):
            session = GoldenSession(host, params.get("seed", 1))
            result = await bit_exact_run(session, n, params.get("epochs", 1), max(1, n // 2))
            return dict(result, traffic={})
    elif testcase == "report":
        rng = np.random.default_rng(params.get("seed", 1))

        async def run(host):
            sample = lambda: rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)  # noqa: E731
            return await report_run(host, params.get("samples", 4), sample)
    else:
        async def run(host):
            return await protocol_run(host, params)
    fst = pathlib.Path(f"tinycl_{testcase}.fst").resolve() if waves else None
    if fst:
        click.echo(f"waveform: {fst}", err=True)
    return run_native(cfg, run, waves=fst)


def _print_speed(data):
    click.echo(f"simulated {data['simulated_cycles']:,} cycles in {data['wall_seconds']:.1f} s: "
               f"{data['cycles_per_second']:,.0f} cycles/s ({data['total_seconds']:.1f} s with the build)")


def config_options(command):
    """``--preset`` / ``--config`` / ``--set``, resolved into a ``cfg`` argument."""
    @click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
                  help="Start from a preset (default: digits).")
    @click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                  help="Start from a JSON or TOML configuration file.")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override one configuration field; repeatable.")
    @functools.wraps(command)
    def wrapper(preset, config_file, overrides, **kwargs):
        try:
            cfg = load_config(preset, config_file, overrides)
        except ConfigError as error:
            raise click.UsageError(f"invalid configuration: {error}") from None
        return command(cfg=cfg, preset=preset or ("custom" if config_file else "digits"), **kwargs)
    return wrapper


def build_dir_option(command):
    """``--build-dir``: where simulation builds are cached (default: the user cache folder)."""
    @click.option("--build-dir", type=click.Path(file_okay=False), default=None,
                  help="Cache simulation builds here (default: $TINYCL_BUILD_DIR, else ~/.cache/tinycl-hdl).")
    @functools.wraps(command)
    def wrapper(build_dir, **kwargs):
        if build_dir is not None:
            os.environ["TINYCL_BUILD_DIR"] = str(pathlib.Path(build_dir).resolve())
        return command(**kwargs)
    return wrapper


def _with_seed_epochs(cfg, seed, epochs):
    overrides = []
    if seed is not None:
        overrides.append(f"seed={seed}")
    if epochs is not None:
        overrides.append(f"epochs={epochs}")
    try:
        return cfg.with_overrides(overrides)
    except ConfigError as error:
        raise click.UsageError(f"invalid configuration: {error}") from None


@click.group()
@click.version_option(package_name="tinycl-hdl")
def main():
    """TinyCL-HDL: RTL generator, golden model and tools for the TinyCL accelerator."""


@main.group()
def data():
    """Data sets for the protocol."""


@data.command("synth-cifar10")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=1, show_default=True, help="numpy seed of the images.")
@click.option("--train-per-class", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--test-per-class", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--kind", type=click.Choice(["stripes", "shapes"]), default="stripes", show_default=True,
              help="stripes: each class a colour and a stripe pattern under noise; shapes: each class an "
                   "outline (disk, ring, square, ...) at a random place, size and colour.")
def synth_cifar10(out_dir, seed, train_per_class, test_per_class, kind):
    """Write a synthetic data set in the CIFAR-10 python format (for --data-dir), with
    CIFAR-10's image shape and counts."""
    from .model.data import write_synthetic_cifar10

    folder = write_synthetic_cifar10(out_dir, seed, train_per_class, test_per_class, kind)
    click.echo(f"wrote {10 * train_per_class} training and {10 * test_per_class} test images to {folder}")


@main.command("config")
@config_options
def show_config(cfg, preset):
    """Print the resolved configuration as JSON."""
    click.echo(cfg.to_json(), nl=False)


@main.command()
@config_options
@build_dir_option
@click.option("--backend", type=click.Choice(BACKENDS), default="golden", show_default=True,
              help="golden: bit-exact fixed point; float: float64 reference; rtl: the generated Verilog.")
@click.option("--sim", "sim_name", type=click.Choice(SIMULATORS), default="verilator", show_default=True,
              help="Simulator for --backend rtl.")
@click.option("--epochs", type=int, default=None, help="Epochs per task (default: the configuration's).")
@click.option("--seed", type=int, default=None, help="LFSR and stream seed (default: the configuration's).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the CIFAR-10 python batches (cifar10 preset).")
@click.option("--train-limit", type=int, default=None, help="Use at most this many training samples per task.")
@click.option("--test-limit", type=int, default=None, help="Use at most this many test samples per task.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write results as JSON.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG plot of accuracy per task.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--load-state", "load_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Restore a saved learner (weights, GDumb memory, LFSR) before the protocol.")
@click.option("--save-state", "save_file", type=click.Path(dir_okay=False), default=None,
              help="Save the learner after the protocol (golden and RTL backends).")
def train(cfg, preset, backend, sim_name, epochs, seed, data_dir, train_limit, test_limit, json_file, plot_file,
          quiet, load_file, save_file):
    """Run the class-incremental GDumb protocol and report accuracy per task."""
    from tqdm import tqdm

    from .model.data import DataError, load_for
    from .model.accelerator import SoftwareAccelerator
    from .model.protocol import run_protocol, task_classes
    from .model.state import StateError, load_state, save_state
    from .spec.regmap import restorable

    cfg = _with_seed_epochs(cfg, seed, epochs)
    try:
        dataset = load_for(cfg, data_dir)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    tasks = task_classes(cfg.classes)
    if (load_file or save_file) and backend == "float":
        raise click.UsageError("--load-state and --save-state need the golden or rtl backend: the float "
                               "reference has no fixed-point state")
    if (load_file or save_file) and backend == "rtl" and not restorable(cfg):
        raise click.UsageError(f"--load-state and --save-state need writable weights, which the "
                               f"{cfg.datapath!r} datapath does not build (datapath must be 'array')")
    try:
        state = load_state(load_file, cfg) if load_file else None
    except StateError as error:
        raise click.ClickException(str(error)) from None
    if backend == "rtl":
        from .model.protocol import ProtocolResult, TaskResult
        click.echo(f"building and simulating the RTL on {sim_name} (the first build takes a minute)", err=True)
        data = run_rtl(cfg, sim_name, "protocol", {"preset": preset, "data_dir": data_dir,
                                                   "train_limit": train_limit, "test_limit": test_limit,
                                                   "load_state": _absolute(load_file), "save_state": _absolute(save_file)},
                       progress_desc=None if quiet else "insert / train / infer")
        result = ProtocolResult(backend="rtl", preset=preset, config=data["config"],
                                tasks=[TaskResult(t["classes"], t["accuracy"], t["memory_size"], t["memory_counts"])
                                       for t in data["tasks"]])
        speed = {k: data[k] for k in ("simulated_cycles", "wall_seconds", "cycles_per_second", "total_seconds")}
        _print_result(cfg, result, json_file, plot_file, backend_text=f"rtl ({sim_name})", extra=speed)
        _print_speed(data)
        return
    accelerator = SoftwareAccelerator(cfg, backend)
    if state is not None:
        accelerator.load_state(state)
    bar = None

    def progress(kind, value):
        nonlocal bar
        if quiet:
            return
        if kind == "train_start":
            bar = tqdm(total=value, unit="step", leave=False, file=sys.stderr,
                       desc=f"task {len(seen_tasks) + 1}/{len(tasks)}")
        elif kind == "train":
            bar.update(value)
        elif kind == "task":
            bar.close()
            seen_tasks.append(value)
            tqdm.write(f"task {len(seen_tasks)}/{len(tasks)} classes {value.classes}: "
                       f"accuracy {value.accuracy:.4f}", file=sys.stderr)

    seen_tasks = []
    result = run_protocol(cfg, dataset, accelerator, backend=backend, preset=preset,
                          train_limit=train_limit, test_limit=test_limit, progress=progress)
    if save_file:
        save_state(accelerator.save_state(), save_file)
    _print_result(cfg, result, json_file, plot_file, backend_text=backend)


def _absolute(path):
    """``path`` made absolute (a simulation runs in its build folder), or ``None``."""
    return None if path is None else str(pathlib.Path(path).resolve())


def _print_result(cfg, result, json_file, plot_file, backend_text, extra=None):
    click.echo(f"backend {backend_text}, preset {result.preset}, epochs {cfg.epochs}, seed {cfg.seed}, "
               f"lr 2^-{cfg.lr_shift}, Q{cfg.data_width - cfg.frac_bits - 1}.{cfg.frac_bits}")
    click.echo(f"{'task':>4}  {'classes':<10} {'memory':>6}  {'accuracy':>8}")
    for number, task in enumerate(result.tasks, 1):
        click.echo(f"{number:>4}  {str(task.classes):<10} {task.memory_size:>6}  {task.accuracy:>8.4f}")
    click.echo(f"final accuracy {result.final_accuracy:.4f}")
    if json_file:
        pathlib.Path(json_file).write_text(json.dumps(dict(result.to_dict(), **(extra or {})), indent=2) + "\n")
    if plot_file:
        _plot(result, plot_file)


def _plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    xs = range(1, len(result.tasks) + 1)
    ax.plot(xs, [t.accuracy for t in result.tasks], marker="o")
    ax.set_xticks(list(xs), [f"{i}\n{t.classes}" for i, t in zip(xs, result.tasks)])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("task (classes)")
    ax.set_ylabel("accuracy on classes seen")
    ax.set_title(f"TinyCL GDumb, {result.preset}, {result.backend}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@main.command()
@config_options
@build_dir_option
@click.option("--sim", "sim_name", type=click.Choice(SIMULATORS), default="verilator", show_default=True)
@click.option("--samples", type=int, default=16, show_default=True, help="Random samples to insert.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the data and of the LFSR.")
@click.option("--epochs", type=int, default=1, show_default=True, help="Epochs of the TRAIN command.")
@click.option("--traffic", type=click.Choice(("plain", "stress")), default="plain", show_default=True,
              help="stress: random idle cycles and back-pressure on every AXI channel, with concurrent "
                   "readers and writers beside the checks.")
@click.option("--waves", is_flag=True, help="Dump waveforms (native backend: tinycl_verify.fst here).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write results as JSON.")
def verify(cfg, preset, sim_name, samples, seed, epochs, traffic, waves, json_file):
    """Check the RTL end to end against the golden model; exits non-zero on any mismatch.

    The first ``slots`` samples carry half the classes, so that later ones evict.
    """
    if samples < 1 or epochs < 1:
        raise click.UsageError("--samples and --epochs must be positive")
    cfg = _with_seed_epochs(cfg, seed, None)
    click.echo(f"verifying {preset} on {sim_name}: {samples} samples, seed {seed}, {epochs} epoch(s), "
               f"{traffic} traffic")
    data = run_rtl(cfg, sim_name, "verify", {"samples": samples, "seed": seed, "epochs": epochs,
                                              "traffic": traffic}, waves)
    click.echo(f"inserted {data['inserted']} (memory {data['memory']}, {data['evictions']} evictions), "
               f"{data['training_steps']} training steps, {data['inferences']} inferences, "
               f"{data['weight_checks']} full weight read-backs: every slot label, weight, logit and "
               f"prediction equals the golden model")
    if data["traffic"]:
        click.echo("bus traffic: " + ", ".join(f"{k} {v}" for k, v in data["traffic"].items()))
    _print_speed(data)
    if json_file:
        pathlib.Path(json_file).write_text(json.dumps(data, indent=2) + "\n")


@main.command("coverage")
@build_dir_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="build/coverage", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the data and of the LFSR.")
def coverage(out_dir, seed):
    """Line and toggle coverage of the end-to-end runs on both datapaths.

    Builds the native model of a small lane-array top and a small serial top with Verilator's
    coverage, runs the bit-exact run against the golden model, every refusal, ABORT and
    CLEAR_COUNTERS on each, and reports what they reached: OUT/coverage.md and .json, the
    data (<run>.dat) and, with verilator_coverage installed, the annotated Verilog.
    """
    from .flows.coverage import report, run_coverage
    from .spec.catalogue import SERIAL_TOPS, TOPS

    results = run_coverage({"array": TOPS["6x6x1-k2-raster"], "serial": SERIAL_TOPS["6x6x1-k2-raster-serial"]},
                           out_dir, seed)
    click.echo(report(results), nl=False)
    click.echo(f"written to {out_dir}/ (coverage.md, coverage.json, <run>.dat"
               + (", <run>-annotated/)" if all(r["annotated"] for r in results.values()) else
                  "; verilator_coverage is not installed, so no annotated source)"))
    if any(not hit for r in results.values() for hit in r["reached"].values()):
        raise SystemExit(1)


@main.command("gatelevel")
@config_options
@build_dir_option
@click.option("--target", "targets", type=click.Choice(("generic", "ice40", "ecp5", "sky130")), multiple=True,
              help="Netlist to simulate; repeatable (default: all four).")
@click.option("--sim", "sims", type=click.Choice(("icarus", "verilator")), multiple=True,
              help="Simulator; repeatable (default: icarus).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the data and of the LFSR.")
def gatelevel(cfg, preset, targets, sims, seed):
    """Run the end-to-end check on Yosys's synthesized netlists of the top.

    INSERT with eviction, TRAIN, INFER and TRAIN_KEEP, every slot, weight, logit and
    prediction against the golden model, on each target's netlist with Yosys's cell models.
    Use a small configuration: a gate-level simulation is some hundred times slower than
    the RTL's.
    """
    from .flows.gatelevel import run_gate_level

    cfg = _with_seed_epochs(cfg, seed, None)
    for target in targets or ("generic", "ice40", "ecp5", "sky130"):
        for sim in sims or ("icarus",):
            start = time.monotonic()
            click.echo(f"{target} netlist on {sim} ...")
            try:
                data = run_gate_level(cfg, target, sim, seed=seed)
            except RuntimeError as error:
                raise click.ClickException(str(error)) from None
            click.echo(f"  {data['inserted']} inserts ({data['evictions']} evictions), {data['training_steps']} "
                       f"training steps, {data['inferences']} inferences: equal to the golden model "
                       f"({data['simulated_cycles']:,} cycles, {time.monotonic() - start:.0f} s with the synthesis)")


@main.command()
@config_options
@build_dir_option
@click.option("--sim", "sim_name", type=click.Choice(SIMULATORS), default="verilator", show_default=True)
@click.option("--samples", type=int, default=4, show_default=True, help="Samples trained for the measurement.")
@click.option("--scaling/--no-scaling", default=True,
              help="Also measure every n_pu that divides filters (the lane array) and the other window order.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None, help="Write results as JSON.")
def report(cfg, preset, sim_name, samples, scaling, json_file):
    """Cycles per training sample from the hardware counters, next to the compute bound."""
    import dataclasses

    runs = {"base": cfg}
    if scaling:
        if cfg.datapath == "array":
            for n in range(1, cfg.filters + 1):
                if cfg.filters % n == 0 and n != cfg.n_pu:
                    runs[f"n_pu={n}"] = dataclasses.replace(cfg, n_pu=n)
        other = "raster" if cfg.window == "snake" else "snake"
        runs[other] = dataclasses.replace(cfg, window=other)
    results = {}
    for name, run_cfg in runs.items():
        click.echo(f"measuring {name} on {sim_name} ...", err=True)
        results[name] = run_rtl(run_cfg, sim_name, "report", {"samples": samples})
    base = results["base"]
    click.echo(f"{preset}: n_pu {cfg.n_pu}, {cfg.lanes} lanes, window {cfg.window}, datapath {cfg.datapath}")
    click.echo(f"{'phase':<16}{'cycles/sample':>15}{'bound':>10}")
    for phase, cycles in base["phases"].items():
        click.echo(f"{phase:<16}{cycles:>15.1f}{_phase_bounds(base['bound_phases']).get(phase, 0):>10}")
    click.echo(f"{'total':<16}{base['cycles_per_sample']:>15.1f}{base['bound_cycles_per_sample']:>10}"
               f"   ({base['ratio_to_bound']:.3f}x the bound)")
    click.echo(f"MAC utilisation {base['mac_utilisation']:.3f}; sample reads per channel sweep "
               f"{base['sample_reads_per_pass']:.1f} (formula {base['formula_reads_per_pass']})")
    by_n_pu = {data["config"]["n_pu"]: data for name, data in results.items()
               if name == "base" or name.startswith("n_pu=")}
    if len(by_n_pu) > 1:
        click.echo(_scaling_table(by_n_pu))
    for name, data in results.items():
        if name in ("raster", "snake"):
            click.echo(f"{name}: {data['sample_reads_per_pass']:.1f} reads per channel sweep against "
                       f"{base['sample_reads_per_pass']:.1f} ({cfg.window})")
    for name, data in results.items():
        click.echo(f"{name}: ", nl=False)
        _print_speed(data)
    out = dict(base, preset=preset, runs=results)
    if json_file:
        pathlib.Path(json_file).write_text(json.dumps(out, indent=2) + "\n")


def _phase_bounds(bound: dict) -> dict:
    """The MAC bound of each counted phase (the loss unit does no MACs)."""
    return {"conv_fwd": bound["conv_forward"], "dense_fwd": bound["dense_forward"], "loss": 0,
            "dense_bwd": bound["dense_input_gradient"] + bound["dense_update"],
            "conv_bwd": bound["conv_weight_gradient"] + bound["conv_update"]}


def _scaling_table(by_n_pu: dict) -> str:
    """Cycles per sample by phase at every measured n_pu, against the bound, with the speed-up
    over the smallest n_pu measured."""
    phases = list(next(iter(by_n_pu.values()))["phases"])
    first = by_n_pu[min(by_n_pu)]
    lines = [f"{'n_pu':>4}" + "".join(f"{p:>11}" for p in phases)
             + f"{'total':>10}{'bound':>8}{'ratio':>7}{'MAC use':>8}{'speed-up':>9}"]
    for n in sorted(by_n_pu):
        data = by_n_pu[n]
        lines.append(f"{n:>4}" + "".join(f"{data['phases'][p]:>11.1f}" for p in phases)
                     + f"{data['cycles_per_sample']:>10.1f}{data['bound_cycles_per_sample']:>8}"
                     + f"{data['ratio_to_bound']:>7.3f}{data['mac_utilisation']:>8.3f}"
                     + f"{first['cycles_per_sample'] / data['cycles_per_sample']:>8.2f}x")
    lines.append(f"(speed-up over n_pu = {min(by_n_pu)})")
    return "\n".join(lines)


@main.command()
@click.argument("spec_file", metavar="SPEC.toml", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder of the results, the plots and the stored points (a rerun resumes from them).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Workers of the embedded Dask cluster [default: one per CPU].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on an existing Dask cluster (tcp://host:8786) instead of an embedded one.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the CIFAR-10 python batches (overrides the file's data_dir).")
@click.option("--fresh", is_flag=True, help="Measure every point again, ignoring the stored ones.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(spec_file, out_dir, workers, scheduler, data_dir, fresh, quiet):
    """Measure many configurations of a preset on Dask: accuracy, FPGA resources and clock.

    SPEC.toml names the preset, the swept fields ([grid] or [random]) and what to measure
    ([measure]); docs/sweep.md describes it."""
    import time

    from .flows.sweep import SweepError, load_spec, plot_results, run_sweep, write_results

    try:
        spec = load_spec(spec_file, data_dir)
    except SweepError as error:
        raise click.UsageError(f"invalid sweep: {error}") from None
    start = time.monotonic()
    rows = run_sweep(spec, out_dir, workers=workers, scheduler=scheduler, progress=not quiet, fresh=fresh)
    paths = write_results(rows, spec, out_dir)
    plots = plot_results(rows, spec, out_dir)
    failed = [r for r in rows if r["status"] != "ok"]
    cached = sum(1 for r in rows if r.get("cached"))
    click.echo(f"{len(rows)} points ({len(rows) - len(failed) - cached} measured, {cached} stored before, "
               f"{len(failed)} failed) in {time.monotonic() - start:.1f} s")
    for row in failed:
        click.echo(f"point {row['point']} failed: {row['error']}", err=True)
    for path in [*paths.values(), *plots]:
        click.echo(str(path))


@main.command()
@config_options
@click.option("--slave/--no-slave", default=True, show_default=True,
              help="Prove the bare AXI4-Lite slave by k-induction (safety, wait bound, covers).")
@click.option("--top/--no-top", default=True, show_default=True,
              help="Bounded model check of the whole top of the configuration, and its covers.")
@click.option("--depth", type=int, default=20, show_default=True, help="Steps of the top's bounded check.")
@click.option("--window/--no-window", default=False, show_default=True,
              help="Bounded proofs of the sliding-window generator on small shapes (kernels 2 and 3, "
                   "1 to 3 channels, both orders) and their covers.")
@click.option("--lfsr/--no-lfsr", default=False, show_default=True,
              help="k-induction: the hardware LFSR draws the golden model's sequence (one draw a cycle, "
                   "and four steps a cycle), and its covers.")
@click.option("--gdumb/--no-gdumb", default=False, show_default=True,
              help="k-induction: GDumb's insertion writes only inside the memories and its class counts "
                   "equal the labels it holds (four memory shapes, both datapaths), and its covers.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default="build/formal",
              show_default=True, help="Folder for the SymbiYosys runs.")
def formal(cfg, preset, slave, top, depth, window, lfsr, gdumb, out_dir):
    """Formal checks of the AXI4-Lite host port with SymbiYosys (YoWASP Yosys, Boolector)."""
    import time

    from .flows.formal import check_top, prove_slave
    from .rtl.top import TinyCL

    failed = []
    if slave:
        start = time.monotonic()
        for task, (passed, summary) in prove_slave(pathlib.Path(out_dir) / "slave").items():
            click.echo(f"slave {task}: {'PASS' if passed else 'FAIL'}")
            if not passed:
                failed.append(f"slave {task}")
                click.echo(summary, err=True)
        click.echo(f"slave proofs: {time.monotonic() - start:.1f} s")
    def check(label, run):
        start = time.monotonic()
        passed, summary = run()
        click.echo(f"{label}: {'PASS' if passed else 'FAIL'} in {time.monotonic() - start:.1f} s")
        if not passed:
            failed.append(label)
            click.echo(summary, err=True)

    if lfsr:
        from .flows.formal_lfsr import prove_lfsr

        for steps in (32, 4):
            for mode in ("prove", "cover"):
                check(f"lfsr {mode} ({steps} steps a cycle)",
                      lambda: prove_lfsr(pathlib.Path(out_dir) / f"lfsr{steps}-{mode}", steps, mode))
    if gdumb:
        from .flows.formal_gdumb import COVER_DEPTH, GDUMB_CONFIG, GDUMB_SHAPES, prove_gdumb

        for n, shape in enumerate(GDUMB_SHAPES):
            check(f"gdumb prove ({shape.slots} slots, {shape.classes} classes, datapath {shape.datapath})",
                  lambda: prove_gdumb(pathlib.Path(out_dir) / f"gdumb{n}-prove", shape))
        for datapath, cover_depth in COVER_DEPTH.items():
            shape = dataclasses.replace(GDUMB_CONFIG, datapath=datapath)
            check(f"gdumb cover ({shape.slots} slots, {shape.classes} classes, datapath {datapath})",
                  lambda: prove_gdumb(pathlib.Path(out_dir) / f"gdumb-cover-{datapath}", shape, mode="cover",
                                      depth=cover_depth))
    if window:
        from .flows.formal_window import SHAPES, prove_window

        for n, shape in enumerate(SHAPES):
            for mode in ("bmc", "cover"):
                check(f"window {mode} ({shape.in_h}x{shape.in_w}x{shape.in_c}, K={shape.kernel}, {shape.window})",
                      lambda: prove_window(shape, pathlib.Path(out_dir) / f"window{n}-{mode}", mode=mode))
    if top:
        for mode in ("bmc", "cover"):
            start = time.monotonic()
            passed, summary = check_top(TinyCL(cfg), pathlib.Path(out_dir) / f"top-{mode}", depth=depth, mode=mode)
            shape = f"{cfg.in_h}x{cfg.in_w}x{cfg.in_c}, K={cfg.kernel}, {cfg.classes} classes, {cfg.slots} slots"
            click.echo(f"top {mode} (depth {depth}, {shape}, datapath {cfg.datapath}): "
                       f"{'PASS' if passed else 'FAIL'} in {time.monotonic() - start:.1f} s")
            if not passed:
                failed.append(f"top {mode}")
                click.echo(summary, err=True)
    if failed:
        raise click.ClickException(f"failed: {', '.join(failed)} (logs under {out_dir})")


@main.command()
@config_options
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default build/<preset>-asic).")
@click.option("--clock-mhz", type=float, default=100.0, show_default=True,
              help="Clock of the SDC, of ABC's delay target and of the power figures.")
@click.option("--synth/--no-synth", default=True, help="Map the logic to the cell library and report its figures.")
@click.option("--liberty", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Standard-cell Liberty file (plain or .gz; default the shipped SKY130 high-density, typical).")
@click.option("--macro-lib", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of a memory compiler's Liberty files for the macros (default: generated placeholders).")
@click.option("--sta/--no-sta", "run_sta", default=None,
              help="Run OpenSTA (default: when `sta` is installed).")
@click.option("--workload/--no-workload", default=True, show_default=True,
              help="Power also at the switching activity measured by the native model over one TRAIN.")
@click.option("--activity", "global_activity", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Vectorless power: transitions per clock cycle on every pin.")
def asic(cfg, preset, out_dir, clock_mhz, synth, liberty, macro_lib, run_sta, workload, global_activity):
    """ASIC hand-off and figures: Verilog with SRAM macros, SDC, macro list and models; the
    logic mapped to a cell library; timing and power with OpenSTA (asic.json, asic.md)."""
    from .flows.asic import write_asic
    from .flows.sta import sta_available

    if clock_mhz <= 0:
        raise click.UsageError(f"--clock-mhz must be positive, not {clock_mhz}")
    if run_sta and not sta_available():
        raise click.UsageError("--sta: OpenSTA (`sta`, Debian's opensta) is not installed")
    run_sta = synth and (sta_available() if run_sta is None else run_sta)
    if synth and not run_sta:
        click.echo("OpenSTA (`sta`) is not installed or --no-sta: no timing or power figures", err=True)
    activity = None
    if run_sta and workload:
        from .flows.activity import measure_activity

        click.echo("measuring switching activity: native model with toggle coverage over one TRAIN", err=True)
        activity = measure_activity(cfg)
    if synth:
        click.echo("synthesising with YoWASP Yosys (the first call compiles it: about a minute)", err=True)
    try:
        paths = write_asic(cfg, out_dir or f"build/{preset}-asic", clock_mhz, synthesise=synth, liberty=liberty,
                           macro_lib=macro_lib, run_sta=run_sta, activity=activity, global_activity=global_activity)
    except (RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    for kind, path in paths.items():
        click.echo(f"{kind:14s} {path}")
    click.echo(paths["report"].read_text())


@main.command("fusesoc")
@click.option("-t", "--target", "targets", multiple=True, default=("lint", "sim_icarus", "sim_verilator"),
              show_default=True, help="Target of fusesoc/tinycl.core to run (repeat for several).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default="build/fusesoc",
              show_default=True, help="FuseSoC's work folder.")
def fusesoc_targets(targets, out_dir):
    """Run the FuseSoC core's targets (a checkout's fusesoc/ library) with this Python and Verilator."""
    from .flows.fusesoc import CORES, run_fusesoc

    if not (CORES / "tinycl.core").exists():
        raise click.ClickException(f"no FuseSoC core at {CORES}: run from a checkout of the repository")
    pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
    for target in targets:
        result = run_fusesoc(target, out_dir)
        if result.returncode:
            raise click.ClickException(f"fusesoc target {target} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        passed = " (TINYCL_TB PASS)" if "TINYCL_TB PASS" in result.stdout else ""
        click.echo(f"{target}: ok{passed}")


def _fpga_build(cfg, target, out_dir, baud, pnr_seed, json_file, lut_mapper="abc9"):
    from .flows.fpga import format_report, synthesise

    if lut_mapper != "abc9" and not target.startswith("ecp5"):
        raise click.UsageError(f"--lut-mapper {lut_mapper} is for the ECP5 flow only")
    click.echo(f"building {target} with YoWASP Yosys and nextpnr (minutes; the first call also compiles "
               f"the tools)", err=True)
    report = synthesise(cfg, target, out_dir, baud=baud, seed=pnr_seed, lut_mapper=lut_mapper)
    click.echo(format_report(report))
    if json_file:
        pathlib.Path(json_file).write_text(json.dumps(report, indent=2) + "\n")
    return report


_fpga_options = [
    click.option("--baud", type=click.IntRange(min=1200), default=115200, show_default=True,
                 help="UART bit rate of the board top."),
    click.option("--pnr-seed", type=int, default=1, show_default=True, help="nextpnr placement seed."),
    click.option("--lut-mapper", type=click.Choice(["abc9", "abc"]), default="abc9", show_default=True,
                 help="ECP5 LUT mapping: Yosys's ABC9, or the classic ABC where ABC9 fails (n_pu = 8)."),
    click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None,
                 help="Also write the report as JSON (fmax_mhz, fits, luts, ffs, dsps, brams, sprams, ...)."),
]


def fpga_options(func):
    for option in reversed(_fpga_options):
        func = option(func)
    return func


@main.command()
@config_options
@click.option("--target", type=click.Choice(["ice40-up5k", "ecp5-85f"]), required=True,
              help="Device (built on its board: ICEBreaker for the UP5K, ULX3S for the ECP5-85F).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Build folder (default build/<preset>-<target>).")
@fpga_options
def synth(cfg, preset, target, out_dir, baud, pnr_seed, json_file, lut_mapper):
    """Synthesise, place and route the board top; report resources against the device and the clock reached."""
    report = _fpga_build(cfg, target, out_dir or f"build/{preset}-{target}", baud, pnr_seed, json_file, lut_mapper)
    if report["error"]:
        raise click.ClickException(f"the {target} build failed: {report['error']}")
    if not report["fits"]:
        raise click.ClickException(f"the design does not fit the {target}"
                                   + (f" ({', '.join(report['over_capacity'])} over capacity)"
                                      if report["over_capacity"] else ""))


@main.command()
@config_options
@click.option("--board", type=click.Choice(["icebreaker", "ulx3s-85f"]), required=True, help="Board to build for.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Build folder (default build/<preset>-<board>).")
@fpga_options
def bitstream(cfg, preset, board, out_dir, baud, pnr_seed, json_file, lut_mapper):
    """Build the board's bitstream (not programmed: load it with iceprog or openFPGALoader)."""
    from .flows.fpga import BOARDS

    target = BOARDS[board].name
    report = _fpga_build(cfg, target, out_dir or f"build/{preset}-{board}", baud, pnr_seed, json_file, lut_mapper)
    if not report["bitstream"]:
        raise click.ClickException(f"no bitstream for {board}: {report['error'] or 'the design does not fit'}")


@main.command()
@config_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the data and the initial weights.")
@click.option("--steps", type=int, default=4, show_default=True, help="Training steps to record.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output .npz file.")
def vectors(cfg, preset, seed, steps, output):
    """Write golden-model test vectors (raw fixed-point integers) to an .npz file."""
    from .model.vectors import make_vectors, write_vectors

    if steps < 1:
        raise click.UsageError(f"--steps must be a positive integer, not {steps}")
    cfg = _with_seed_epochs(cfg, seed, None)
    write_vectors(output, make_vectors(cfg, steps, seed))
    click.echo(f"wrote {steps} steps of {preset} vectors to {output}")


@main.command()
@config_options
@click.option("--module", "module", default=None,
              help="Design to write (default: the top); see --list-modules.")
@click.option("--list-modules", is_flag=True, help="List the designs that can be written and exit.")
@click.option("--sram-blackbox", is_flag=True,
              help="Emit memories as SRAM macro instances plus sram_models.v (behavioural models).")
@click.option("--lint/--no-lint", default=False, help="Run verilator --lint-only -Wall on the result.")
@click.option("--uart-divisor", type=click.IntRange(min=4), default=None,
              help="tinycl_uart only: clock cycles per UART bit, clock_hz // baud [default: 868, "
                   "115200 baud at 100 MHz].")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default build/<preset>).")
def generate(cfg, preset, module, list_modules, sram_blackbox, lint, uart_divisor, out_dir):
    """Write Verilog for the configuration, with config.json beside it."""
    from .flows.generate import DEFAULT_MODULE, MODULES, generate as write

    if list_modules:
        for name in sorted(MODULES):
            click.echo(name)
        return
    module = module or DEFAULT_MODULE
    if module not in MODULES:
        raise click.UsageError(f"--module must be one of {', '.join(sorted(MODULES))}, not {module!r}")
    if uart_divisor is not None and module != "tinycl_uart":
        raise click.UsageError("--uart-divisor applies to --module tinycl_uart only")
    options = {"uart_divisor": uart_divisor} if uart_divisor is not None else {}
    paths = write(cfg, out_dir or f"build/{preset}", module, blackbox=sram_blackbox, **options)
    if module in ("tinycl", "tinycl_uart"):
        from .spec.regmap import RegisterMap
        regmap = RegisterMap(cfg)
        folder = pathlib.Path(paths["verilog"]).parent
        for name, text in (("regmap.md", regmap.to_markdown()), ("regmap.json", regmap.to_json())):
            paths[name] = folder / name
            paths[name].write_text(text)
        from .flows.peakrdl import export_register_map
        paths.update(export_register_map(regmap, folder))
    for kind, path in paths.items():
        click.echo(f"{kind:12s} {path}")
    if lint:
        from .flows.lint import lint as run_lint
        sources = [paths["verilog"]] + ([paths["sram_models"]] if "sram_models" in paths else [])
        problems = run_lint(sources, module)
        for line in problems:
            click.echo(line, err=True)
        if problems:
            raise click.ClickException(f"lint: {len(problems)} unwaived warning(s)")
        click.echo("lint        clean (verilator --lint-only -Wall, waivers in tinycl_hdl/rtl/lint_waivers.vlt)")


if __name__ == "__main__":
    main()
