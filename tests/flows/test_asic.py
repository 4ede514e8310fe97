import gzip
import json
import pathlib
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.flows import liberty, sta
from tinycl_hdl.flows.activity import parse_toggles
from tinycl_hdl.flows.sim import build_root
from tinycl_hdl.rtl.memory import MemoryShape, macro_ports
from tinycl_hdl.rtl.top import memory_shapes
from tinycl_hdl.spec.catalogue import PRESETS

TINY = ["--set", "in_h=5", "--set", "in_w=5", "--set", "kernel=2", "--set", "filters=2", "--set", "classes=2",
        "--set", "slots=4", "--set", "data_width=8", "--set", "frac_bits=4", "--set", "acc_width=22",
        "--set", "lr_shift=2"]

def test_asic_macro_list_and_sdc(tmp_path):
    result = CliRunner().invoke(main, ["asic", *TINY, "--no-synth", "--clock-mhz", "50", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    memories = {m["name"]: (m["depth"], m["width"], m["write_granularity"], m["ports"], m["instances"])
                for m in json.loads((tmp_path / "memories.json").read_text())}
    # Derived by hand: 2 banks of (4 slots + staging) x 1 channel x 5 rows x ceil(5/2) words of pixels;
    # labels and order per slot; 4 lanes of 8 bits per word; 4x4 conv outputs = 4 words per filter
    # plane, 2 planes = 8 words; dense weights 2 classes x 8 words; conv weights 2 filters x 1 channel;
    # the loss unit's 2 logits and 2 gradients of 8 bits, each region one address bit (4 words).
    # Only the sample banks are single-port: nothing reads and writes them in one cycle.
    SP, DP = "1 read/write (single port)", "1 synchronous read, 1 write"
    assert memories == {
        "tinycl_sram_75x8_sp": (75, 8, 8, SP, 2),
        "tinycl_sram_4x8": (4, 8, 8, DP, 2),
        "tinycl_sram_4x16": (4, 16, 16, DP, 1),
        "tinycl_sram_2x32_g8": (2, 32, 8, DP, 1),
        "tinycl_sram_16x32_g8": (16, 32, 8, DP, 1),
        "tinycl_sram_8x32_g8": (8, 32, 8, DP, 1),
        "tinycl_sram_8x32": (8, 32, 32, DP, 1),
    }
    verilog = (tmp_path / "tinycl.v").read_text()
    models = (tmp_path / "sram_models.v").read_text()
    for name in memories:
        assert f"module {name} (" in models and f"{name} " in verilog
        assert f"cell ({name})" in (tmp_path / "macros.lib").read_text()
    constraints = (tmp_path / "tinycl.sdc").read_text()
    assert "create_clock -name clk -period 20.000 [get_ports clk]" in constraints
    assert "set_false_path -from [get_ports rst]" in constraints
    # OpenSTA has no remove_from_collection: the data ports are listed by name.
    assert "remove_from_collection" not in constraints
    assert re.search(r"set_input_delay .*\{s_axil_awaddr .*s_axil_rready\}", constraints)
    assert "clk" not in re.search(r"set_input_delay.*", constraints).group(0).split("{")[1]


def test_sram_estimate_reproduces_the_published_macros():
    # The model is a line through four published OpenRAM SKY130 macro sizes; each stays within
    # 10 % of its LEF area, and the area grows with the bits.
    for name, (bits, area) in liberty.OPENRAM_SKY130.items():
        words = bits // 32
        estimate = liberty.sram_estimate(MemoryShape(32, words, 8))["area_um2"]
        assert abs(estimate - area) < 0.10 * area, name
    small, large = (liberty.sram_estimate(MemoryShape(8, d))["area_um2"] for d in (64, 4096))
    assert 0 < small < large


def test_parse_toggles_sums_both_directions_and_names_nets_as_the_netlist():
    key = "\x01f\x02tinycl.v\x01l\x0210\x01page\x02v_toggle/tinycl.pu0\x01o\x02{}\x01h\x02tinycl.tinycl_native.core{}"
    text = "# SystemC::Coverage-3\n" + "".join(
        f"C '{key.format(o, h)}' {n}\n" for o, h, n in [
            ("acc[3]:0->1", ".pu0", 5), ("acc[3]:1->0", ".pu0", 4), ("__024signal:0->1", "", 2),
            ("__024signal:1->0", "", 1)])
    text += "C '\x01f\x02tinycl.v\x01page\x02v_line/tinycl\x01o\x02block\x01h\x02tinycl.tinycl_native.core' 7\n"
    assert parse_toggles(text) == {"pu0.acc[3]": 9, "$signal": 3}


def test_constant_pins_of_a_concatenation():
    netlist = ("module tinycl(clk);\n  input clk;\n  wire [3:0] \\m.d ;\n"
               "  tinycl_sram_4x8 \\m.macro  (\n    .clk(clk),\n    .w_data({ 1'h0, \\m.d [2:0], 2'h0, \\m.d [1:0] }),\n"
               "    .r_en(1'h0)\n  );\nendmodule\n")
    assert sta.constant_pins(netlist, ["m.macro"]) == [
        "m.macro/w_data[7]", "m.macro/w_data[2]", "m.macro/w_data[3]", "m.macro/r_en"]


@pytest.fixture(scope="module")
def tiny_asic(tmp_path_factory):
    """The whole flow once on a small configuration: synthesis, OpenSTA and the workload."""
    # make test installs opensta (scripts/system-packages.txt): without it the suite fails here.
    assert shutil.which("sta"), "OpenSTA (`sta`) is missing: run scripts/system-deps"
    out = tmp_path_factory.mktemp("asic")
    result = CliRunner().invoke(main, ["asic", *TINY, "-o", str(out)],
                                env={"YOWASP_CACHE_DIR": str(build_root() / "yowasp-cache")})
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "asic.json").read_text())


def test_every_memory_path_is_timed(tiny_asic):
    out, summary = tiny_asic
    timing = summary["sta"]
    macros = {name for name, (cell, _) in sta.parse_netlist((out / "netlist.v").read_text()).items()
              if cell.startswith("tinycl_sram_")}
    assert len(macros) == sum(m["instances"] for m in summary["memories"]) == 9
    # A timed path into and out of every macro...
    assert set(timing["macro_paths"]) == macros
    assert all(p["into"] is not None and p["out_of"] is not None for p in timing["macro_paths"].values())
    # ...and no unconstrained endpoint at a macro but the input bits tied to a constant.
    at_macros = {e for e in timing["unconstrained_endpoints"] if ".macro/" in e}
    assert at_macros == set(timing["constant_macro_pins"])
    # The check can fail: without the macro models OpenSTA links empty boxes and times nothing there.
    script = (out / "sta.tcl").read_text().replace("read_liberty macros.lib\n", "")
    (out / "no_macros.tcl").write_text(script)
    log = subprocess.run(["sta", "-no_splash", "-exit", "no_macros.tcl"], cwd=out, capture_output=True, text=True)
    untimed = sta.parse_sta(log.stdout)["macro_paths"]
    assert all(p["into"] is None and p["out_of"] is None for p in untimed.values())


def test_area_is_the_sum_of_the_cells(tiny_asic):
    out, summary = tiny_asic
    # Yosys's own `stat -liberty` total against the netlist's cells at the Liberty's areas.
    assert summary["yosys_area_um2"] == pytest.approx(summary["logic_area_um2"], abs=0.01)
    areas = liberty.cell_areas(gzip.decompress(liberty.DEFAULT_LIBERTY.read_bytes()).decode())
    assert summary["logic_area_um2"] == pytest.approx(
        sum(n * areas[cell] for cell, n in summary["cell_counts"].items()), abs=0.01)
    assert sum(k["area_um2"] for k in summary["area_by_kind"].values()) == pytest.approx(summary["logic_area_um2"])
    assert sum(k["cells"] for k in summary["area_by_kind"].values()) == summary["cells"]
    # The registers alone: four lanes of 20-bit accumulators and the 22-bit dot accumulator.
    assert summary["flip_flops"] >= 4 * 20 + 22
    assert summary["total_area_um2"] == pytest.approx(summary["logic_area_um2"] + summary["memory_area_um2_estimate"],
                                                      abs=0.1)


def test_power_is_reported_in_every_group_from_the_workload(tiny_asic):
    out, summary = tiny_asic
    power = summary["sta"]["power"]
    for activity in ("vectorless", "workload"):
        for group in ("sequential", "combinational", "macro"):
            assert power[activity][group]["total"] > 0, (activity, group)
        groups = sum(power[activity][g]["total"] for g in ("sequential", "combinational", "macro", "pad"))
        assert power[activity]["total"]["total"] == pytest.approx(groups, rel=1e-3)
    workload = power["workload"]
    # Verilator leaves out names that start with "_"; nearly every register is measured.
    assert workload["registers_measured"] >= 0.95 * summary["flip_flops"]
    assert 0 < workload["mean_activity"] < 1
    assert workload["cycles"] > 0 and "TRAIN" in workload["source"]
    assert "workload" in (out / "asic.md").read_text()


def test_without_opensta_the_sta_steps_are_skipped_and_said(tmp_path, monkeypatch):
    monkeypatch.setattr(sta.shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, ["asic", *TINY, "-o", str(tmp_path)],
                                env={"YOWASP_CACHE_DIR": str(build_root() / "yowasp-cache")})
    assert result.exit_code == 0, result.output
    assert "OpenSTA (`sta`) is not installed" in result.output
    summary = json.loads((tmp_path / "asic.json").read_text())
    assert summary["sta"] is None and "not installed" in summary["sta_skipped"]
    assert summary["logic_area_um2"] > 0
    assert "no timing or power figures" in (tmp_path / "asic.md").read_text()
    result = CliRunner().invoke(main, ["asic", *TINY, "--sta", "-o", str(tmp_path)])
    assert result.exit_code != 0 and "not installed" in result.output


def test_a_preset_s_macro_liberty_has_one_cell_per_shape_with_every_port():
    shapes = set(memory_shapes(PRESETS["digits"]))
    text = liberty.macro_liberty(shapes)
    assert text.count("    cell (") == len(shapes)
    for shape in shapes:
        cell = text[text.index(f"cell ({shape.name})"):]
        cell = cell[:cell.index("\n    }\n")]
        for name, direction, width in macro_ports(shape):
            kind = "pin" if name in ("clk", "en", "r_en") else "bus"
            assert f"{kind} ({name}) {{" in cell and (kind == "pin" or f"bus_type : bus{width};" in cell)


def test_the_committed_sdc_is_the_generated_one():
    committed = pathlib.Path(__file__).resolve().parents[2] / "constraints" / "tinycl_100mhz.sdc"
    assert committed.read_text() == sta.sdc(PRESETS["digits"], 100)


def test_a_memory_compiler_s_liberty_replaces_the_placeholders(tmp_path):
    compiler = tmp_path / "compiler"
    compiler.mkdir()
    (compiler / "sram_a.lib").write_text("library (sram_a) { }\n")
    result = CliRunner().invoke(main, ["asic", *TINY, "--no-synth", "--macro-lib", str(compiler),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "sram_a.lib").read_text() == "library (sram_a) { }\n"
    assert not (tmp_path / "out" / "macros.lib").exists()
    summary = json.loads((tmp_path / "out" / "asic.json").read_text())
    assert summary["macro_liberty"] == str(compiler)
    (compiler / "sram_a.lib").unlink()
    result = CliRunner().invoke(main, ["asic", *TINY, "--no-synth", "--macro-lib", str(compiler),
                                       "-o", str(tmp_path / "out2")])
    assert result.exit_code != 0 and "no .lib file" in result.output


def _log(sequential, combinational, macro):
    rows = "".join(f"{name:22s} {v:.4e} 0.0000e+00 0.0000e+00 {v:.4e}  0.0%\n" for name, v in
                   (("Sequential", sequential), ("Combinational", combinational), ("Macro", 0.0), ("Pad", 0.0),
                    ("Total", sequential + combinational)))
    return ("== setup\n== hold\nwns 0.00\ntns 0.00\n== unconstrained\n== power\n" + rows
            + f"== macros\n {macro:.6e} 0.000000e+00 0.000000e+00 {macro:.6e} m.macro\n")


@pytest.mark.parametrize("holder", ["combinational", "sequential"])
def test_the_macros_power_moves_out_of_the_group_opensta_counted_it_in(holder):
    """OpenSTA 2019 leaves its Macro group empty: a macro model without a sequential function
    lands in Combinational, a memory compiler's in Sequential.  The flow moves it, total kept."""
    power = sta.parse_sta(_log(5e-3, 1e-3, 1e-3) if holder == "combinational" else _log(5e-3, 0.5e-3, 1e-3))["power"]
    assert power["macro"]["total"] == pytest.approx(1e-3)
    expected = {"combinational": (5e-3, 0.0), "sequential": (4e-3, 0.5e-3)}[holder]
    assert (power["sequential"]["total"], power["combinational"]["total"]) == pytest.approx(expected)
    assert power["total"]["total"] == pytest.approx(sum(power[g]["total"] for g in
                                                        ("sequential", "combinational", "macro", "pad")))
