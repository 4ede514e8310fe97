"""Long runs, opt-in with ``pytest --soak`` (``make test-soak``)."""

import json

import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main


@pytest.mark.soak
def test_full_digits_protocol_on_verilator_equals_golden(tmp_path):
    """The whole digits protocol (default configuration) on the RTL gives the golden accuracies."""
    runner = CliRunner()
    results = {}
    for backend in ("golden", "rtl"):
        out = tmp_path / f"{backend}.json"
        result = runner.invoke(main, ["train", "--backend", backend, "--sim", "verilator", "--quiet",
                                      "--json", str(out)])
        assert result.exit_code == 0, result.output
        results[backend] = json.loads(out.read_text())["tasks"]
    assert results["rtl"] == results["golden"]


@pytest.mark.soak
@pytest.mark.parametrize("preset", ["digits", "cifar10"])
def test_verify_presets_on_verilator(preset):
    result = CliRunner().invoke(main, ["verify", "--preset", preset, "--sim", "verilator", "--samples", "24",
                                       "--seed", "9"])
    assert result.exit_code == 0, result.output
