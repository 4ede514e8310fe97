"""``tinycl sweep`` (tinycl_hdl.flows.sweep): a Dask sweep that stores, resumes and records failures."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.flows import sweep as sweep_flow
from tinycl_hdl.flows.sweep import Measure, SweepError, checks_rtl, load_spec
from tinycl_hdl.model import perf
from tinycl_hdl.spec.schedule import ArraySchedule
from tinycl_hdl.model.accelerator import SoftwareAccelerator
from tinycl_hdl.model.data import load_digits
from tinycl_hdl.model.protocol import run_protocol

#: A small digits sweep: one epoch on a few samples per task, so a point takes a second or two.
SPEC = """
preset = "digits"
[set]
epochs = 1
slots = 40
[grid]
lr_shift = [3, 5]
update_rounding = ["nearest", "stochastic"]
[measure]
accuracy = ["golden", "float"]
train_limit = 40
test_limit = 60
"""


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_four_point_sweep_on_two_workers(tmp_path):
    spec = write(tmp_path, SPEC)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "4 points (4 measured, 0 stored before, 0 failed)" in result.output
    frame = pd.read_parquet(out / "results.parquet")
    assert frame.equals(pd.read_parquet(out / "results.parquet"))
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns[:4]) == ["point", "lr_shift", "update_rounding", "status"]
    assert sorted(zip(csv.lr_shift, csv.update_rounding)) == [(3, "nearest"), (3, "stochastic"), (5, "nearest"),
                                                               (5, "stochastic")]
    assert (csv.status == "ok").all() and (csv.seconds_accuracy_golden > 0).all()
    # Each point's accuracy is the protocol's on the golden model and the float reference.
    spec_obj = load_spec(spec)
    dataset = load_digits()
    for row in csv.itertuples():
        cfg = spec_obj.config({"lr_shift": row.lr_shift, "update_rounding": row.update_rounding})
        for backend in ("golden", "float"):
            want = run_protocol(cfg, dataset, SoftwareAccelerator(cfg, backend), backend=backend, preset="digits",
                                train_limit=40, test_limit=60)
            assert getattr(row, f"accuracy_{backend}") == want.final_accuracy
            assert json.loads(getattr(row, f"tasks_{backend}")) == [round(t.accuracy, 6) for t in want.tasks]
    # Every point has the cycle model's time per step, so accuracy against it is a Pareto plot.
    assert (csv.us_per_sample == (csv.cycles_per_sample / 100).round(3)).all()
    assert {p.name for p in (out / "plots").iterdir()} == {"field_lr_shift.png", "field_update_rounding.png",
                                                           "pareto_us_per_sample.png"}
    assert len(list((out / "points").glob("*.json"))) == 4


def test_a_killed_sweep_resumes_with_the_missing_points(tmp_path):
    """Kill the sweep (and its workers) once a point is stored; the rerun measures only the rest.
    Its points train 500 slots for three epochs (about a second each), so the 0.2 s poll sees the
    first point stored long before the last."""
    spec = write(tmp_path, SPEC.replace("lr_shift = [3, 5]", "lr_shift = [2, 3, 4, 5]")
                 .replace("epochs = 1", "epochs = 3").replace("slots = 40", "slots = 500")
                 .replace("train_limit = 40", "train_limit = 1000"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tinycl_hdl.cli", "sweep", str(spec), "--out", str(out), "--workers", "1",
               "--quiet"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    stored = []
    while time.monotonic() < deadline and not stored:
        assert process.poll() is None, f"the sweep ended before a point was stored: {process.stderr.read()}"
        stored = list((out / "points").glob("*.json")) if (out / "points").exists() else []
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stored = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert 1 <= len(stored) < 8, "kill the sweep midway"
    assert not (out / "results.csv").exists()
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"8 points ({8 - len(stored)} measured, {len(stored)} stored before, 0 failed)" in result.output
    csv = pd.read_csv(out / "results.csv")
    assert (csv.status == "ok").all() and csv.cached.sum() == len(stored)
    # The stored points were read, not measured again.
    assert all((out / "points" / name).stat().st_mtime_ns == mtime for name, mtime in stored.items())
    assert len(list((out / "points").glob("*.json"))) == 8


def test_failing_points_are_recorded_and_the_others_measured(tmp_path):
    """A configuration the generator rejects (n_pu 3 of 8 filters) and one whose measurement fails on
    its worker (12 classes: the digits have 10) are recorded with their errors."""
    spec = write(tmp_path, SPEC.replace("lr_shift = [3, 5]\nupdate_rounding = [\"nearest\", \"stochastic\"]",
                                        "n_pu = [1, 3]\nclasses = [10, 12]").replace('"golden", "float"', '"golden"'))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(out / "results.csv").set_index(["n_pu", "classes"])
    assert csv.loc[(1, 10), "status"] == "ok" and csv.loc[(1, 10), "accuracy_golden"] > 0.5
    for point in ((3, 10), (3, 12)):
        assert csv.loc[point, "status"] == "failed" and "n_pu (3) must divide filters (8)" in csv.loc[point, "error"]
    assert csv.loc[(1, 12), "status"] == "failed" and "DataError" in csv.loc[(1, 12), "error"]
    assert "point 3 failed" in result.output


@pytest.mark.parametrize("text, message", [
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[random]\npoints = 2\nlr_shift = [1]', "either a [grid] or a [random]"),
    ('preset = "mnist"\n[grid]\nlr_shift = [3]', "preset must be one of"),
    ('preset = "digits"\n[grid]\nlr_rate = [3]', "'lr_rate' is not a configuration field"),
    ('preset = "digits"\n[grid]\nlr_shift = ["3"]', "lr_shift takes int values"),
    ('preset = "digits"\n[grid]\nlr_shift = []', "non-empty list"),
    ('preset = "digits"\n[random]\npoints = 0\nlr_shift = [1]', "points must be a positive integer"),
    ('preset = "digits"\n[random]\npoints = 2\nlr_shift = {min = 5, max = 1}', "list of choices or {min"),
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[measure]\naccuracy = ["rtl"]', "accuracy must list golden or float"),
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[measure]\nfpga = ["gowin"]', "fpga must list targets"),
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[measure]\npower = true', "unknown [measure] key 'power'"),
    ('preset = "digits"\n[set]\nlr_shift = 3\n[grid]\nlr_shift = [3]', "both swept and fixed"),
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[measure]\nrtl_check = 2', "rtl_check must be a fraction"),
    ('preset = "digits"\n[grid]\nlr_shift = [3]\n[measure]\nasic = "yes"', "asic must be true or false"),
])
def test_bad_specifications_name_the_key(tmp_path, text, message):
    with pytest.raises(SweepError) as error:
        load_spec(write(tmp_path, text))
    assert message in str(error.value)
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output


def test_random_points_are_reproducible_draws_within_their_ranges(tmp_path):
    text = 'preset = "digits"\n[random]\npoints = 30\nseed = 4\nlr_shift = {min = 2, max = 7}\n' \
           'update_rounding = ["nearest", "stochastic"]'
    spec = load_spec(write(tmp_path, text))
    assert spec.swept == ("lr_shift", "update_rounding") and len(spec.points) == 30
    assert {p["lr_shift"] for p in spec.points} <= set(range(2, 8)) and len({p["lr_shift"] for p in spec.points}) > 3
    assert {p["update_rounding"] for p in spec.points} == {"nearest", "stochastic"}
    assert load_spec(write(tmp_path, text, "again.toml")).points == spec.points


#: One small lane-array point (a Verilator build of a minute or two), checked on the RTL.
RTL_SPEC = """
preset = "digits"
[set]
in_h = 6
in_w = 6
filters = 2
classes = 4
slots = 8
[grid]
n_pu = [2]
[measure]
accuracy = []
rtl_check = 1
clock_mhz = 50
"""


def test_a_point_checked_on_the_rtl_matches_the_cycle_model(tmp_path):
    """The RTL trains bit-exactly against the golden model and counts, over an epoch, the phase
    cycles of spec.schedule (inside the point); the row gives the model's cycles per step."""
    spec = load_spec(write(tmp_path, RTL_SPEC))
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "out"),
                                       "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    row, = pd.read_csv(tmp_path / "out" / "results.csv").itertuples()
    assert row.status == "ok" and row.rtl_checked
    cfg = spec.config({"n_pu": 2})
    assert row.cycles_per_sample == ArraySchedule(cfg).cycles_per_sample
    assert row.us_per_sample == round(row.cycles_per_sample / 50, 3)
    # The RTL's average over the counted epoch (six steps, its first fetch and last drain
    # included) is the cycle model's epoch over those steps, to the cycle.
    epoch = perf.epoch_cycles(cfg, sweep_flow.RTL_CHECK_SAMPLES)
    assert row.rtl_cycles_per_sample == round(sum(epoch.values()) / sweep_flow.RTL_CHECK_SAMPLES, 3)


def test_an_rtl_check_fails_when_the_counters_differ_from_the_model(tmp_path, monkeypatch):
    """Off by one cycle in one phase of the model, the same RTL run fails the point."""
    cfg = load_spec(write(tmp_path, RTL_SPEC)).config({"n_pu": 2})
    model = perf.epoch_cycles

    def off_by_one(cfg, samples):
        cycles = model(cfg, samples)
        return dict(cycles, CYC_LOSS=cycles["CYC_LOSS"] + 1)

    monkeypatch.setattr(perf, "epoch_cycles", off_by_one)
    with pytest.raises(RuntimeError, match="differ from the cycle model"):
        sweep_flow._rtl_check(cfg)


def test_the_rtl_checked_fraction_follows_the_key():
    keys = [hashlib.sha256(str(n).encode()).hexdigest()[:16] for n in range(2000)]
    for fraction in (0.0, 0.25, 1.0):
        share = sum(checks_rtl(key, Measure(rtl_check=fraction)) for key in keys) / len(keys)
        assert abs(share - fraction) < 0.05


def test_asic_columns_count_the_point_s_logic_and_memories(tmp_path):
    """[measure] asic gives the logic's SKY130 cell area and counts and the SRAM bits of the point's macros."""
    from tinycl_hdl.flows.asic import memory_list

    spec = load_spec(write(tmp_path, RTL_SPEC.replace("rtl_check = 1", "asic = true").replace("[2]", "[1]")))
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "out"),
                                       "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    row, = pd.read_csv(tmp_path / "out" / "results.csv").itertuples()
    assert row.status == "ok" and not row.rtl_checked and row.seconds_asic > 0
    macros = memory_list(spec.config({"n_pu": 1}))
    assert row.asic_memory_bits == sum(m["depth"] * m["width"] * m["instances"] for m in macros)
    assert row.asic_cells > row.asic_flip_flops > 0 and row.asic_logic_area_um2 > 0
    assert row.asic_memory_area_um2_estimate == pytest.approx(sum(m["area_um2_each_estimate"] * m["instances"]
                                                                  for m in macros), abs=1)
