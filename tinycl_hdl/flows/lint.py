"""``verilator --lint-only -Wall`` on generated Verilog, with the listed waivers.

The waivers live in ``rtl/lint_waivers.vlt`` with a reason each.  WIDTHTRUNC
is not waived wholesale: the only forms accepted are two Yosys idioms,
``!vector`` (a logical NOT of a multi-bit value, meaning ``== 0``) and a
variable word select written as a right shift assigned to the element width
(``assign x = vector >> index;``); any other truncation is reported.

Amaranth writes the bits of a combinational signal that no statement drives
(an engine leaving the fields of a shared issue layout that it does not use at
zero, say) as an ``always @*`` block assigning a constant.  Verilator reports
such a block as ALWNEVER and its bits as UNDRIVEN; both are accepted only when
every bit the warning names is one of those constant blocks in the same module.
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


_CONSTANT_BLOCK = re.compile(r"^[ \t]*always @\*\n[ \t]*(?P<name>[\w$.\\]+)(?:\[(?P<hi>\d+)(?::(?P<lo>\d+))?\])? = "
                             r"\d+'[hbd][0-9a-fA-F_]+;$", re.MULTILINE)
_ALWNEVER = re.compile(r"%Warning-ALWNEVER: (?P<file>[^:]+):(?P<line>\d+):\d+: ")
_UNDRIVEN = re.compile(r"%Warning-UNDRIVEN: (?P<file>[^:]+):(?P<line>\d+):\d+: Bits of signal are not driven: "
                       r"'(?P<name>[^']+)'\[(?P<bits>[\d:,]+)\]$")


class _ConstantBlocks:
    """The ``always @*`` blocks of one Verilog file that assign a constant alone, by module."""

    def __init__(self, path):
        text = pathlib.Path(path).read_text()
        starts = [m.start() for m in re.finditer(r"^module ", text, re.MULTILINE)]
        self._module_lines = [text.count("\n", 0, start) + 1 for start in starts]
        self.block_lines, self.bits = set(), {}
        for match in _CONSTANT_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            self.block_lines.add(line)
            hi = int(match.group("hi")) if match.group("hi") else 0
            lo = int(match.group("lo")) if match.group("lo") else hi
            key = (self.module_of(line), match.group("name"))
            self.bits.setdefault(key, set()).update(range(lo, hi + 1))

    def module_of(self, line):
        return sum(1 for start in self._module_lines if start <= line)

    def covers(self, line, name, bits):
        constant = self.bits.get((self.module_of(line), name), set())
        for part in bits.split(","):
            hi, _, lo = part.partition(":")
            if not set(range(int(lo or hi), int(hi) + 1)) <= constant:
                return False
        return True


def _constant_block_warning(line, files):
    """Whether ``line`` is an ALWNEVER or UNDRIVEN warning that a constant block explains."""
    for pattern in (_ALWNEVER, _UNDRIVEN):
        match = pattern.match(line)
        if match:
            path = match.group("file")
            if path not in files:
                files[path] = _ConstantBlocks(path)
            blocks, at = files[path], int(match.group("line"))
            if pattern is _ALWNEVER:
                return at in blocks.block_lines
            return blocks.covers(at, match.group("name"), match.group("bits"))
    return False


def lint(sources, top: str) -> list[str]:
    """Lint ``sources``; returns the warnings and errors that no waiver covers."""
    sim.prepare_environment()
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS)] + [str(s) for s in sources]
    result = subprocess.run(cmd, capture_output=True, text=True)
    files = {}
    problems = [line for line in result.stderr.splitlines()
                if line.startswith("%") and not _ACCEPTED.match(line) and not line.startswith("%Error: Exiting due to")
                and not _constant_block_warning(line, files)]
    if result.returncode != 0 and not problems and "Exiting due to" not in result.stderr:
        problems.append(result.stderr.strip() or f"verilator exited with {result.returncode}")
    return problems
