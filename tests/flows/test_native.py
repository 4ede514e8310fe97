"""The native Verilator backend: the model clocked in C++, driven through the host driver."""

import asyncio
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.flows.native import build_native, native_host, run_native
from tinycl_hdl.host.session import GoldenSession, bit_exact_run
from tinycl_hdl.spec.catalogue import SERIAL_TOPS, TOPS
from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.spec.schedule import ArraySchedule
from tinycl_hdl.spec.regmap import Command, ErrorCode


@pytest.mark.parametrize("name", ["digits-small", "5x9x3-q3.12", "6x6x1-k2-raster-serial"])
def test_native_run_equals_the_golden_model(name):
    cfg = {**TOPS, **SERIAL_TOPS}[name]

    async def run(host):
        return await bit_exact_run(GoldenSession(host, 7), cfg.slots + 6, 2, 4)
    result = run_native(cfg, run)
    assert result["evictions"] > 0 and result["mismatches"] == 0
    assert result["simulated_cycles"] > 0 and result["cycles_per_second"] > 0


def test_the_build_is_profile_guided():
    """The instrumented pass ran the workload: its profile of the model's code is there, and
    the executable is the second pass's, not instrumented (no profile written by it)."""
    executable = build_native(TOPS["digits-small"])
    profile = executable.parent / "Vtinycl__ALL.gcda"
    assert profile.stat().st_size > 0
    written = profile.stat().st_mtime_ns

    async def run(host):
        return {"status": await host.read("STATUS")}
    run_native(TOPS["digits-small"], run)
    assert profile.stat().st_mtime_ns == written


def test_the_host_waits_on_the_interrupt():
    cfg = TOPS["digits-small"]

    async def run(host):
        await host.identify()
        assert host.interrupts and await host.read("IRQ_ENABLE") == 1
        t = host.transport
        assert not await t.wait_interrupt(50), "no command has finished"
        await host.stage(np.zeros((cfg.in_h, cfg.in_w, cfg.in_c), np.uint8))
        await host.write("LABEL", 1)
        await host.write("COMMAND", int(Command.INSERT))
        before = t.cycles()
        assert await t.wait_interrupt(1 << 16), "INSERT raised irq"
        waited = t.cycles() - before
        assert not await host.busy() and await host.read("IRQ_STATUS") == 1
        now = t.cycles()
        assert await t.wait_interrupt(1 << 16) and t.cycles() == now, "a level: a second wait returns at once"
        await host.write("IRQ_STATUS", 1)
        assert not await t.wait_interrupt(100), "cleared"
        await host.write("LABEL", cfg.classes)
        await host.write("COMMAND", int(Command.INSERT))
        assert await host.read("ERROR") == ErrorCode.BAD_LABEL
        assert not await t.wait_interrupt(500), "a refused command raises nothing"
        return {"waited": waited}
    assert run_native(cfg, run)["waited"] > 0


def test_waves_are_written(tmp_path):
    cfg = TOPS["6x6x1-k2-raster"]
    fst = tmp_path / "run.fst"
    with native_host(cfg, waves=fst) as host:
        asyncio.run(host.identify())
    assert fst.exists() and fst.read_bytes()[:1] == b"\x00" and fst.stat().st_size > 1000


def test_verify_command_reports_its_speed(tmp_path):
    out = tmp_path / "v.json"
    result = CliRunner().invoke(main, ["verify", "--set", "slots=6", "--set", "classes=3", "--set", "filters=2",
                                       "--samples", "9", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "equals the golden model" in result.output and "cycles/s" in result.output
    data = json.loads(out.read_text())
    assert data["simulated_cycles"] > 0 and data["cycles_per_second"] == pytest.approx(
        data["simulated_cycles"] / data["wall_seconds"])


def test_stress_traffic_needs_cocotb():
    result = CliRunner().invoke(main, ["verify", "--traffic", "stress", "--samples", "2"])
    assert result.exit_code != 0 and "verilator-cocotb" in result.output


def test_full_digits_protocol_on_the_rtl_equals_the_golden_model(tmp_path):
    """The default digits protocol (10 epochs, all the data, seed 1), whole, on the native
    backend: the same accuracies and GDumb memory counts as the golden model's."""
    runner = CliRunner()
    results = {}
    for backend in ("golden", "rtl"):
        out = tmp_path / f"{backend}.json"
        result = runner.invoke(main, ["train", "--backend", backend, "--quiet", "--json", str(out)])
        assert result.exit_code == 0, result.output
        results[backend] = json.loads(out.read_text())
    assert results["rtl"]["tasks"] == results["golden"]["tasks"]
    # The simulation ran every training step: at least the cycles the lane array's timing model
    # gives each epoch of each task's memory.
    schedule = ArraySchedule(TinyCLConfig.from_dict(results["golden"]["config"]))
    epochs = results["golden"]["config"]["epochs"]
    training = sum(epochs * sum(schedule.epoch_phases(task["memory_size"]).values())
                   for task in results["golden"]["tasks"])
    assert results["rtl"]["simulated_cycles"] > training
