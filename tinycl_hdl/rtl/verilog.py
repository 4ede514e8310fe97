"""Verilog emission for every TinyCL design.

Amaranth writes a memory's initial contents one word per line; a zero
initialised 500-slot sample memory would make millions of lines and slow
every simulator build.  :func:`convert` replaces each all-zero initialiser by
an equivalent ``for`` loop, and leaves everything else as Amaranth wrote it.
"""

import re

from amaranth.back import verilog as _verilog

__all__ = ["convert", "compact_zero_init"]

_INIT_BLOCK = re.compile(r"^(?P<indent>[ \t]*)initial begin\n(?P<body>(?:[ \t]*\w+\[\d+\] = \d+'h[0-9a-fA-F]+;\n)+)"
                         r"[ \t]*end\n", re.MULTILINE)
_INIT_LINE = re.compile(r"[ \t]*(\w+)\[(\d+)\] = (\d+)'h([0-9a-fA-F]+);")


def compact_zero_init(text: str) -> str:
    def replace(match):
        lines = match.group("body").splitlines()
        parsed = [_INIT_LINE.fullmatch(line).groups() for line in lines]
        names = {name for name, _, _, _ in parsed}
        indices = [int(index) for _, index, _, _ in parsed]
        if len(names) != 1 or any(int(value, 16) for _, _, _, value in parsed) or \
                indices != list(range(len(indices))):
            return match.group(0)
        name, width = parsed[0][0], parsed[0][2]
        indent = match.group("indent")
        return (f"{indent}integer {name}__i;\n"
                f"{indent}initial begin\n"
                f"{indent}  for ({name}__i = 0; {name}__i < {len(indices)}; {name}__i = {name}__i + 1)\n"
                f"{indent}    {name}[{name}__i] = {width}'h0;\n"
                f"{indent}end\n")
    return _INIT_BLOCK.sub(replace, text)


def convert(component, name: str) -> str:
    """Verilog of ``component`` as module ``name``, with compact memory initialisers."""
    return compact_zero_init(_verilog.convert(component, name=name))
