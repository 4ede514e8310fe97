"""FPGA flow: PLL settings, board constraints, report parsing, and a synthesis smoke test."""

import json
import pathlib

import pytest

from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.flows.fpga import (TARGETS, board_constraints, board_files, last_error, parse_fmax, parse_utilisation,
                              parse_yosys_cells, synthesise)
from tinycl_hdl.rtl.board import ecp5_pll, ice40_pll

ROOT = pathlib.Path(__file__).resolve().parents[2]


# Targets every board clock reaches exactly: 12 MHz x (DIVF+1) / 2**DIVQ and 25 MHz x CLKFB_DIV.
@pytest.mark.parametrize("in_mhz, out_mhz", [(12, 30), (12, 48), (12, 36)])
def test_ice40_pll_exact_and_within_the_datasheet_limits(in_mhz, out_mhz):
    pll = ice40_pll(in_mhz, out_mhz)
    pfd = in_mhz / (pll["DIVR"] + 1)
    vco = pfd * (pll["DIVF"] + 1)
    assert 10 <= pfd <= 133 and 533 <= vco <= 1066
    assert vco / 2 ** pll["DIVQ"] == pll["out_mhz"] == out_mhz


def test_ice40_pll_matches_icepll_for_the_icebreaker():
    # icepll -i 12 -o 30 (and the ICEBreaker examples): DIVR 0, DIVF 79, DIVQ 5, FILTER_RANGE 1.
    pll = ice40_pll(12, 30)
    assert (pll["DIVR"], pll["DIVF"], pll["DIVQ"], pll["FILTER_RANGE"]) == (0, 79, 5, 1)


@pytest.mark.parametrize("in_mhz, out_mhz", [(25, 75), (25, 50), (25, 100)])
def test_ecp5_pll_exact_and_within_the_datasheet_limits(in_mhz, out_mhz):
    pll = ecp5_pll(in_mhz, out_mhz)
    out = in_mhz / pll["CLKI_DIV"] * pll["CLKFB_DIV"]
    assert out == pll["out_mhz"] == out_mhz and 400 <= out * pll["CLKOP_DIV"] <= 800


@pytest.mark.parametrize("target, path", [("ice40-up5k", "constraints/icebreaker_tinycl.pcf"),
                                          ("ecp5-85f", "constraints/ulx3s_85f_tinycl.lpf")])
def test_committed_board_constraints_are_what_the_platform_writes(target, path):
    (text,) = board_constraints(PRESETS["digits"], target).values()
    assert (ROOT / path).read_text() == text
    # The PLL output carries the target clock; UART and LED pins are placed.
    assert "pll_clk" in text and "uart_0__rx__io" in text and "uart_0__tx__io" in text


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-85f"])
def test_sample_banks_are_spram_instances_only_on_the_ice40(target):
    """On the UP5K each of the kernel's sample banks (12,024 bytes for digits) is one SB_SPRAM256KA;
    the ECP5 has no SPRAM and keeps inferred block RAM."""
    cfg = PRESETS["digits"]
    rtlil = board_files(cfg, target)["tinycl_board.il"]
    assert rtlil.count("cell \\SB_SPRAM256KA ") == (cfg.kernel if target == "ice40-up5k" else 0)


def test_report_parsers_read_nextpnr_and_yosys_logs():
    nextpnr = """Info: Device utilisation:
Info: \t          TRELLIS_IO:       3/    365     0%
Info: \t        TRELLIS_COMB:   20511/  83640    24%
Info: \t              DP16KD:      25/    208    12%
Info: Max frequency for clock '$glbnet$pll_clk': 61.20 MHz (FAIL at 75.00 MHz)
Info: Device utilisation:
Info: \t        TRELLIS_COMB:   20400/  83640    24%
Info: Max frequency for clock '$glbnet$pll_clk': 77.03 MHz (PASS at 75.00 MHz)
"""
    assert parse_utilisation(nextpnr) == {"TRELLIS_COMB": (20400, 83640)}
    assert parse_fmax(nextpnr) == {"$glbnet$pll_clk": 77.03}
    yosys = """=== sub ===
       10   SB_LUT4
=== tinycl_board ===
   Number of cells: 7
       12   SB_LUT4
        3   SB_DFFESR
        8   SB_MAC16
=== design hierarchy ===
       22   SB_LUT4
"""
    assert parse_yosys_cells(yosys) == {"SB_LUT4": 12, "SB_DFFESR": 3, "SB_MAC16": 8}


def test_digits_synthesises_for_the_ecp5_within_the_device(tmp_path):
    """CI's synthesis smoke test: Yosys maps the full digits board top onto the ECP5-85F."""
    report = synthesise(PRESETS["digits"], "ecp5-85f", tmp_path, place=False)
    assert report["error"] is None
    assert report["fits"], report["over_capacity"]
    cap = TARGETS["ecp5-85f"].capacity
    # Every MAC lane multiplies on a hard multiplier; the sample memory is in block RAM.
    lanes = PRESETS["digits"].kernel ** 2 * PRESETS["digits"].n_pu
    assert lanes <= report["dsps"] <= cap["dsps"]
    assert 0 < report["brams"] <= cap["brams"] and 0 < report["luts"] <= cap["luts"]
    assert json.loads((tmp_path / "report.json").read_text())["luts"] == report["luts"]


def test_a_tool_failure_names_the_last_error_of_its_log(tmp_path):
    """An internal error of Yosys is reported as such (from its log), not as a design that
    does not fit."""
    log = tmp_path / "tinycl_board.rpt"
    log.write_text("2.1. Executing ABC9 pass\nERROR: first problem\n...\n"
                   "Assert `GetSize(conn.first) == GetSize(conn.second)' failed in passes/techmap/abc9_ops.cc:1590.\n"
                   "End of script.\n")
    assert last_error(log).startswith("Assert `GetSize(conn.first)")
    assert last_error(tmp_path / "missing.rpt") is None
    clean = tmp_path / "clean.rpt"
    clean.write_text("Info: Max frequency for clock: 89.4 MHz\n")
    assert last_error(clean) is None


def test_the_abc_lut_mapper_replaces_only_synth_ecp5_s_abc9_step():
    """--lut-mapper abc runs synth_ecp5 up to its LUT mapping, the classic ABC there, then the
    rest of synth_ecp5 (the labels of Yosys 0.70's synth_lattice script)."""
    script = board_files(PRESETS["digits"], "ecp5-85f", lut_mapper="abc")["tinycl_board.ys"]
    steps = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert steps == ["read_rtlil tinycl_board.il", "synth_ecp5 -run :map_luts -top tinycl_board",
                     "techmap -map +/lattice/latches_map.v", "abc -lut 4", "clean",
                     "synth_ecp5 -top tinycl_board -run map_cells:", "write_json tinycl_board.json"]
    default = board_files(PRESETS["digits"], "ecp5-85f")["tinycl_board.ys"]
    assert "abc -lut" not in default and "synth_ecp5  -top tinycl_board" in default
    with pytest.raises(ValueError, match="ECP5 flow only"):
        board_files(PRESETS["digits"], "ice40-up5k", lut_mapper="abc")
