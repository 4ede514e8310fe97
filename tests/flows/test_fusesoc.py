"""The FuseSoC core (fusesoc/tinycl.core): its generator, lint and simulation targets."""

import dataclasses
import subprocess

import pytest

from tinycl_hdl.flows import fusesoc
from tinycl_hdl.flows.generate import generate
from tinycl_hdl.spec.catalogue import PRESETS


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fusesoc")


@pytest.mark.parametrize("target", ["lint", "sim_icarus", "sim_verilator"])
def test_fusesoc_targets_pass(work, target):
    result = fusesoc.run_fusesoc(target, work)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    if target.startswith("sim"):
        assert "TINYCL_TB PASS" in output and "FAIL" not in output


def test_the_testbench_fails_on_another_configuration(tmp_path):
    """The testbench's expected values come from its configuration: against the digits RTL, a
    testbench written for 20 slots stops with $fatal at the SLOTS register."""
    generate(PRESETS["digits"], tmp_path, "tinycl")
    (tmp_path / "tb.v").write_text(fusesoc.testbench(dataclasses.replace(PRESETS["digits"], slots=20)))
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "tinycl.v"),
                    str(tmp_path / "tb.v")], check=True)
    result = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True)
    assert "TINYCL_TB FAIL SLOTS: 0x000001f4 (resp 0), expected 0x00000014 (resp 0)" in result.stdout
    assert "PASS" not in result.stdout and result.returncode != 0


@pytest.mark.parametrize("parameters, message", [({"slot": 3}, "unknown generator parameter"),
                                                 ({"part": "docs"}, "part must be"),
                                                 ({"set": {"slots": 0}}, "slots")])
def test_the_generator_rejects_bad_parameters(tmp_path, parameters, message):
    with pytest.raises(Exception, match=message):
        fusesoc.run_generator({"gapi": "1.0", "vlnv": "x:y:z:0", "parameters": parameters}, tmp_path)
