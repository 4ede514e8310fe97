import json

import pytest
from click.testing import CliRunner

from tinycl_hdl.cli import main
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.flows.generate import MODULES, generate
from tinycl_hdl.flows.lint import lint
from tinycl_hdl.rtl.memory import Sram, behavioural_model, macro_name, sample_layout
from tinycl_hdl.rtl.verilog import compact_zero_init, icarus_constants


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("module", ["processing_unit", "sample_window", "loss_gradient", "tinycl"])
def test_every_preset_lints_clean(preset, module, tmp_path):
    paths = generate(PRESETS[preset], tmp_path, module)
    assert lint([paths["verilog"]], module) == []


def test_lint_reports_real_problems(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire [3:0] a, output wire [1:0] y);\n  assign y = a;\nendmodule\n")
    problems = lint([bad], "bad")
    assert any("WIDTHTRUNC" in p for p in problems)


def test_lint_accepts_constant_blocks_only_for_their_own_bits(tmp_path):
    """Bits an ``always @*`` ties to a constant are accepted; a bit no statement drives is not."""
    source = tmp_path / "tied.v"
    source.write_text("module tied(input wire a, output reg [3:0] y);\n"
                      "  always @*\n    y[1] = a;\n"
                      "  always @*\n    y[3:2] = 2'h0;\n"
                      "endmodule\n")
    problems = lint([source], "tied")
    assert len(problems) == 1 and "UNDRIVEN" in problems[0] and problems[0].endswith(",0]"), problems
    source.write_text(source.read_text().replace("y[1] = a;", "y[1:0] = {a, a};"))
    assert lint([source], "tied") == []


def test_cli_generate_writes_verilog_and_config(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--set", "in_h=7", "--set", "in_w=5", "--module",
                                       "processing_unit", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "module processing_unit" in (tmp_path / "processing_unit.v").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["in_w"] == 5


def test_cli_generate_rejects_unknown_module(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--module", "nope", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--module" in result.output


def test_cli_lists_modules():
    result = CliRunner().invoke(main, ["generate", "--list-modules"])
    assert result.output.split() == sorted(MODULES)


def test_sram_black_boxes(tmp_path):
    cfg = TinyCLConfig(in_h=7, in_w=5, in_c=2, slots=8, classes=4, filters=3)
    paths = generate(cfg, tmp_path, "sample_window", blackbox=True)
    text = paths["verilog"].read_text()
    depth = sample_layout(cfg)["depth"]
    name = macro_name(8, depth, single_port=True)
    # (7*2 words per row of 5 pixels in 3 banks) x 7 rows x 2 channels x 9 slots
    assert depth == 2 * 7 * 2 * 9
    assert text.count(f"{name} ") == 3          # one instance per bank
    assert "reg [7:0] mem" not in text
    models = paths["sram_models"].read_text()
    assert f"module {name} (" in models and f"reg [7:0] mem [0:{depth - 1}]" in models
    # The banks are single-port: their macros have one address.
    model = models[models.index(f"module {name} ("):]
    model = model[:model.index("endmodule")]
    assert "addr" in model and "r_addr" not in model and "w_addr" not in model
    assert lint([paths["verilog"], paths["sram_models"]], "sample_window") == []


def test_sram_parameters_are_checked():
    with pytest.raises(TypeError, match="width must be a positive integer"):
        Sram(0, 4)
    with pytest.raises(ValueError, match="granularity must divide width"):
        Sram(16, 4, granularity=5)
    assert Sram(32, 10, granularity=16).lanes == 2
    assert "w_en[i]" in behavioural_model(32, 10, 16)


def test_default_generation_defines_memories_with_amaranth(tmp_path):
    cfg = TinyCLConfig(in_h=7, in_w=5, in_c=2, slots=8, classes=4, filters=3)
    paths = generate(cfg, tmp_path, "sample_window")
    text = paths["verilog"].read_text()
    name = macro_name(8, sample_layout(cfg)["depth"], single_port=True)
    assert f"module {name}(" in text and "reg [7:0] mem" in text and "sram_models" not in paths


def test_compact_zero_init_keeps_non_zero_initialisers():
    zero = "  initial begin\n    m[0] = 8'h00;\n    m[1] = 8'h00;\n  end\n"
    assert "for (m__i = 0; m__i < 2;" in compact_zero_init(zero)
    nonzero = "  initial begin\n    m[0] = 8'h00;\n    m[1] = 8'h05;\n  end\n"
    assert compact_zero_init(nonzero) == nonzero


def test_icarus_constants_initialises_constant_blocks_for_icarus_only():
    # Icarus never runs an always @* block with nothing to be sensitive to.
    text = "  always @*\n    x = 3'h5;\n  always @*\n    y = a;\n"
    out = icarus_constants(text)
    assert "`ifdef __ICARUS__\n  initial x = 3'h5;\n`endif\n" in out
    assert "initial y" not in out
    assert out.replace("`ifdef __ICARUS__\n  initial x = 3'h5;\n`endif\n", "") == text
