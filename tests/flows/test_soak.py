"""Long runs, opt-in with ``pytest --soak`` (``make test-soak``)."""

import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main


@pytest.mark.soak
@pytest.mark.parametrize("preset", ["digits", "cifar10"])
def test_verify_presets_on_verilator(preset):
    result = CliRunner().invoke(main, ["verify", "--preset", preset, "--sim", "verilator", "--samples", "24",
                                       "--seed", "9"])
    assert result.exit_code == 0, result.output
