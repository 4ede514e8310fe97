"""The RTL-backed commands: verify, report, train --backend rtl, generate."""

import json

from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.model.perf import bound_cycles_per_sample

SMALL = ["--set", "slots=20", "--set", "filters=4"]


def test_generate_writes_top_and_register_map(tmp_path):
    result = CliRunner().invoke(main, ["generate", *SMALL, "-o", str(tmp_path), "--lint"])
    assert result.exit_code == 0, result.output
    assert "module tinycl(" in (tmp_path / "tinycl.v").read_text()
    assert json.loads((tmp_path / "regmap.json").read_text())["config"]["slots"] == 20
    assert "uint32_t COMMAND;" in (tmp_path / "tinycl_regs.h").read_text()
    assert "#define TINYCL_CMD_TRAIN 2u" in (tmp_path / "tinycl_map.h").read_text()
    assert "addrmap tinycl {" in (tmp_path / "tinycl.rdl").read_text()
    assert (tmp_path / "regmap_html" / "index.html").exists() and (tmp_path / "tinycl.xml").exists()
    assert "lint        clean" in result.output


def test_verify_passes_beyond_the_presets():
    result = CliRunner().invoke(main, ["verify", "--sim", "icarus", "--set", "in_h=7", "--set", "in_w=6",
                                       "--set", "in_c=2", "--set", "filters=2", "--set", "classes=3",
                                       "--set", "slots=6", "--samples", "10", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "equals the golden model" in result.output


def test_rtl_protocol_gives_the_golden_accuracies(tmp_path):
    options = [*SMALL, "--epochs", "1", "--seed", "4", "--train-limit", "8", "--test-limit", "12", "--quiet"]
    runner = CliRunner()
    rtl = runner.invoke(main, ["train", "--backend", "rtl", "--sim", "icarus", *options,
                               "--json", str(tmp_path / "rtl.json")])
    assert rtl.exit_code == 0, rtl.output
    gold = runner.invoke(main, ["train", "--backend", "golden", *options, "--json", str(tmp_path / "gold.json")])
    assert gold.exit_code == 0, gold.output
    rtl_tasks = json.loads((tmp_path / "rtl.json").read_text())["tasks"]
    gold_tasks = json.loads((tmp_path / "gold.json").read_text())["tasks"]
    assert [t["accuracy"] for t in rtl_tasks] == [t["accuracy"] for t in gold_tasks]
    assert [t["memory_counts"] for t in rtl_tasks] == [t["memory_counts"] for t in gold_tasks]


def test_report_keys_and_bound(tmp_path):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["report", "--sim", "icarus", *SMALL, "--no-scaling", "--samples", "2",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for key in ("cycles_per_sample", "bound_cycles_per_sample", "phases", "sample_reads_per_pass"):
        assert key in data
    # Independent: 4 filters x 36 positions x 9 MACs / 9 lanes twice (conv), 10 x 144 / 9 three times
    # (dense forward, input gradient, update) and 4 x 9 / 9 (conv update).
    assert data["bound_cycles_per_sample"] == 144 * 2 + 160 * 3 + 4 == bound_cycles_per_sample(
        PRESETS["digits"].with_overrides(["filters=4"]))
    assert data["cycles_per_sample"] >= data["bound_cycles_per_sample"]
    assert data["sample_reads_per_pass"] == data["formula_reads_per_pass"] == 9 + 3 * 35
