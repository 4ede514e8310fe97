import json

from click.testing import CliRunner

from tinycl_hdl.flows.asic import parse_stat, sdc
from tinycl_hdl.cli import main
from tinycl_hdl.flows.sim import build_root

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
    assert "create_clock -name clk -period 20.000 [get_ports clk]" in (tmp_path / "tinycl.sdc").read_text()
    assert "set_false_path -from [get_ports rst]" in sdc(100)


def test_asic_synthesis_reports_logic(tmp_path, monkeypatch):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(build_root() / "yowasp-cache"))
    result = CliRunner().invoke(main, ["asic", *TINY, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "asic.json").read_text())
    stat = parse_stat((tmp_path / "synth_stat.txt").read_text())
    assert summary["transistors"] == stat["transistors"] > 0
    # The memories stay black boxes, one cell per instance.
    assert stat["cells"]["tinycl_sram_75x8_sp"] == 2
    # The accumulators alone: four lanes of lane_acc_width (16 + floor(log2 16) = 20 bits: a lane
    # sums at most 4x4 products) and the dot accumulator's acc_width (22).
    assert summary["flip_flops"] >= 4 * 20 + 22


def test_parse_stat():
    text = "     12   $_AND_\n      3   $_SDFF_PP0_\n      1   tinycl_sram_4x8\n   Estimated number of transistors:     999+\n"
    assert parse_stat(text) == {"transistors": 999, "flip_flops": 3, "logic_cells": 12,
                                "cells": {"$_AND_": 12, "$_SDFF_PP0_": 3, "tinycl_sram_4x8": 1}}
