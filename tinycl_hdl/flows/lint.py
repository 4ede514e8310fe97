"""``verilator --lint-only -Wall`` on generated Verilog, with the listed waivers.

The waivers live in ``rtl/lint_waivers.vlt`` with a reason each.  WIDTHTRUNC
is not waived wholesale: the only forms accepted are two Yosys idioms,
``!vector`` (a logical NOT of a multi-bit value, meaning ``== 0``) and a
variable word select written as a right shift assigned to the element width
(``assign x = vector >> index;``); any other truncation is reported.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

from . import sim

__all__ = ["WAIVERS", "lint"]

#: The waiver file (package data beside the RTL).
WAIVERS = pathlib.Path(__file__).resolve().parent.parent / "rtl" / "lint_waivers.vlt"
_ACCEPTED = re.compile(r"%Warning-WIDTHTRUNC: .*(Logical operator LOGNOT expects 1 bit on the LHS"
                       r"|Operator ASSIGNW expects \d+ bits on the Assign RHS, but Assign RHS's SHIFTR generates)")


def lint(sources, top: str) -> list[str]:
    """Lint ``sources``; returns the warnings and errors that no waiver covers."""
    sim.prepare_environment()
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS)] + [str(s) for s in sources]
    result = subprocess.run(cmd, capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines()
                if line.startswith("%") and not _ACCEPTED.match(line) and not line.startswith("%Error: Exiting due to")]
    if result.returncode != 0 and not problems and "Exiting due to" not in result.stderr:
        problems.append(result.stderr.strip() or f"verilator exited with {result.returncode}")
    return problems
