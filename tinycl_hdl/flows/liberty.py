"""Cell libraries for the ASIC figures: the shipped SKY130 Liberty, cell areas, and
timing-only Liberty models of the SRAM macros with an estimated area and power.

The logic maps to a real standard-cell library (by default the SkyWater SKY130
high-density cells at the typical corner, shipped in ``tinycl_hdl/data`` with their
Apache-2.0 notice).  The memories stay macros.  No memory compiler runs offline here,
so each macro shape gets a Liberty model of its own (:func:`macro_liberty`) whose
purpose is that static timing sees every path into and out of a memory: a black box
without one links as an empty cell and its paths go silently untimed.  Its numbers are
placeholders, and ``tinycl asic --macro-lib DIR`` replaces them with a memory
compiler's files.

Area and power of a macro come from :func:`sram_estimate`, a model fitted to
published OpenRAM SKY130 macros (see :data:`OPENRAM_SKY130`); the reports mark them
as estimates and keep them apart from the logic.
"""

from __future__ import annotations

import gzip
import pathlib
import re

from ..rtl.memory import MemoryShape, macro_ports

__all__ = ["DEFAULT_LIBERTY", "OPENRAM_SKY130", "MACRO_TIMING", "cell_areas", "install_liberty",
           "sram_estimate", "macro_liberty"]

#: The SKY130 high-density standard cells, typical corner (25 C, 1.80 V), gzip-compressed.
DEFAULT_LIBERTY = pathlib.Path(__file__).resolve().parent.parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"

#: Published OpenRAM SKY130 macros (1rw1r, 32-bit words with byte writes): bits and the
#: macro's size in um from its LEF ``SIZE`` line (Ressa et al. use a 65 nm memory
#: compiler; these are the open SKY130 ones).
OPENRAM_SKY130 = {
    "sky130_sram_1kbyte_1rw1r_32x256_8": (8 * 1024, 479.78 * 397.5),
    "sky130_sram_2kbyte_1rw1r_32x512_8": (16 * 1024, 683.1 * 416.54),
    "sky130_sram_4kbyte_1rw1r_32x1024_8": (32 * 1024, 693.9 * 668.8),
    "sky130_sram_8kbyte_1rw1r_32x2048_8": (64 * 1024, 1093.8 * 720.5),
}

#: The OpenRAM-generated SKY130 Liberty of a 128 x 256 1rw1r macro (OpenROAD flow
#: scripts' ``sky130ram`` platform): 0.0399 mW leakage for 32,768 bits, and 89.5 pJ per
#: clocked access of a 128-bit word.  OpenRAM writes these from its analytical model, not
#: from characterisation: they are an order of magnitude, per bit.
OPENRAM_LEAKAGE_NW_PER_BIT = 0.039892e6 / 32768
OPENRAM_ACCESS_PJ_PER_BIT = 89.54866 / 128

#: Placeholder timing of every macro model, in ns and pF: clock to read data, read-data
#: transition, setup and hold of every input, input pin capacitance.  Of the order of
#: OpenRAM's SKY130 Liberty files; a memory compiler's files replace them.
MACRO_TIMING = {"clk_to_q": 1.5, "transition": 0.1, "setup": 0.2, "hold": 0.05, "pin_cap": 0.005}


def _fit(points):
    """Least-squares line ``a + b * x`` through ``points``."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


#: um^2 of a macro: a fixed periphery plus a cost per bit, fitted to :data:`OPENRAM_SKY130`.
AREA_FIXED_UM2, AREA_PER_BIT_UM2 = _fit(list(OPENRAM_SKY130.values()))


def sram_estimate(shape: MemoryShape) -> dict:
    """Estimated area (um^2), leakage (nW) and energy per access (pJ) of one macro of ``shape``."""
    bits = shape.depth * shape.width
    return {"bits": bits, "area_um2": AREA_FIXED_UM2 + AREA_PER_BIT_UM2 * bits,
            "leakage_nw": OPENRAM_LEAKAGE_NW_PER_BIT * bits,
            "access_pj": OPENRAM_ACCESS_PJ_PER_BIT * shape.width}


def install_liberty(liberty, out_dir) -> pathlib.Path:
    """Copy ``liberty`` (plain or ``.gz``) into ``out_dir`` as ``cells.lib``: YoWASP Yosys
    sees only its working folder."""
    source = pathlib.Path(liberty)
    if not source.is_file():
        raise FileNotFoundError(f"no Liberty file at {source}")
    target = pathlib.Path(out_dir) / "cells.lib"
    data = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def cell_areas(liberty_text: str) -> dict:
    """``{cell: area}`` of every cell of a Liberty file."""
    areas = {}
    for match in re.finditer(r'\bcell\s*\(\s*"?([\w$]+)"?\s*\)\s*\{', liberty_text):
        area = re.compile(r"\barea\s*:\s*([0-9.eE+-]+)\s*;").search(liberty_text, match.end())
        if area:
            areas[match.group(1)] = float(area.group(1))
    return areas


def _constraint(kind: str, value: float) -> str:
    return (f"        timing () {{ related_pin : \"clk\"; timing_type : {kind};\n"
            f"          rise_constraint (scalar) {{ values (\"{value:g}\"); }}\n"
            f"          fall_constraint (scalar) {{ values (\"{value:g}\"); }} }}\n")


def _pin(name: str, direction: str, width: int, body: str) -> str:
    if width == 1 and name in ("clk", "en", "r_en"):
        return f"      pin ({name}) {{ direction : {direction};\n{body}      }}\n"
    return (f"      bus ({name}) {{ bus_type : bus{width}; direction : {direction};\n{body}      }}\n")


def _macro_cell(shape: MemoryShape) -> str:
    t = MACRO_TIMING
    estimate = sram_estimate(shape)
    pins = []
    for name, direction, width in macro_ports(shape):
        if name == "clk":
            # One access per clock edge at most: the clock pin carries the access energy, so
            # vectorless power counts an access every cycle (an upper bound).
            body = (f"        clock : true; capacitance : {t['pin_cap']:g};\n"
                    f"        internal_power () {{ rise_power (scalar) {{ values (\"{estimate['access_pj']:.4g}\"); }}\n"
                    f"          fall_power (scalar) {{ values (\"0\"); }} }}\n")
        elif direction == "output":
            body = (f"        timing () {{ related_pin : \"clk\"; timing_type : rising_edge;\n"
                    f"          cell_rise (scalar) {{ values (\"{t['clk_to_q']:g}\"); }}\n"
                    f"          cell_fall (scalar) {{ values (\"{t['clk_to_q']:g}\"); }}\n"
                    f"          rise_transition (scalar) {{ values (\"{t['transition']:g}\"); }}\n"
                    f"          fall_transition (scalar) {{ values (\"{t['transition']:g}\"); }} }}\n")
        else:
            body = (f"        capacitance : {t['pin_cap']:g};\n" + _constraint("setup_rising", t["setup"])
                    + _constraint("hold_rising", t["hold"]))
        pins.append(_pin(name, direction, width, body))
    return (f"    cell ({shape.name}) {{\n      area : {estimate['area_um2']:.1f};\n      dont_use : true;\n"
            f"      is_macro_cell : true;\n      cell_leakage_power : {estimate['leakage_nw']:.4g};\n" + "".join(pins) + "    }\n")


def macro_liberty(shapes, name: str = "tinycl_macros") -> str:
    """A Liberty library of timing-only models of the macros ``shapes`` (placeholders:
    :data:`MACRO_TIMING`, :func:`sram_estimate`), in the SKY130 library's units."""
    shapes = sorted(set(shapes), key=lambda s: s.name)
    widths = sorted({w for s in shapes for _, _, w in macro_ports(s)})
    types = "".join(f"    type (bus{w}) {{ base_type : array; data_type : bit; bit_width : {w}; "
                    f"bit_from : {w - 1}; bit_to : 0; downto : true; }}\n" for w in widths)
    return (f"/* Timing-only models of the TinyCL SRAM macros: placeholders, not a memory compiler's\n"
            f"   numbers (tinycl_hdl.flows.liberty).  Replace with the compiler's Liberty files. */\n"
            f"library ({name}) {{\n    delay_model : table_lookup;\n    time_unit : \"1ns\";\n"
            f"    voltage_unit : \"1V\";\n    current_unit : \"1mA\";\n    leakage_power_unit : \"1nW\";\n"
            f"    capacitive_load_unit (1.0, pf);\n    pulling_resistance_unit : \"1kohm\";\n"
            f"    nom_process : 1.0;\n    nom_temperature : 25.0;\n    nom_voltage : 1.8;\n"
            f"    operating_conditions (tt_025C_1v80) {{ process : 1.0; temperature : 25.0; voltage : 1.8; }}\n"
            f"    default_operating_conditions : tt_025C_1v80;\n"
            f"    input_threshold_pct_rise : 50; input_threshold_pct_fall : 50;\n"
            f"    output_threshold_pct_rise : 50; output_threshold_pct_fall : 50;\n"
            f"    slew_lower_threshold_pct_rise : 20; slew_upper_threshold_pct_rise : 80;\n"
            f"    slew_lower_threshold_pct_fall : 20; slew_upper_threshold_pct_fall : 80;\n"
            + types + "".join(_macro_cell(s) for s in shapes) + "}\n")
