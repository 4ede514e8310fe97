"""Verilog emission for every TinyCL design.

Amaranth writes a memory's initial contents one word per line; a zero
initialised 500-slot sample memory would make millions of lines and slow
every simulator build.  :func:`convert` replaces each all-zero initialiser by
an equivalent ``for`` loop (:func:`compact_zero_init`).

Bits of a signal that no statement drives but its default are written as an
``always @*`` block that assigns a constant.  Icarus Verilog never runs such a
block (it has nothing to be sensitive to), so the bits would stay X there;
:func:`icarus_constants` gives each an ``initial`` assignment that only Icarus
sees.  Everything else is left as Amaranth wrote it.
"""

import re
from functools import lru_cache

from amaranth.back import verilog as _verilog
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal

__all__ = ["convert", "compact_zero_init", "icarus_constants", "memory_module", "design_files"]

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


_CONSTANT_BLOCK = re.compile(r"^(?P<indent>[ \t]*)always @\*\n[ \t]*(?P<target>\S[^=\n]*?) = "
                             r"(?P<value>\d+'[hbd][0-9a-fA-F_]+);\n", re.MULTILINE)


def icarus_constants(text: str) -> str:
    """After every ``always @*`` block that assigns a constant alone, the same assignment in an
    ``initial`` block for Icarus Verilog only (``__ICARUS__``); other tools see no change."""
    def add(match):
        indent = match.group("indent")
        return (match.group(0) + f"`ifdef __ICARUS__\n{indent}initial {match.group('target')} = "
                f"{match.group('value')};\n`endif\n")
    return _CONSTANT_BLOCK.sub(add, text)


def convert(component, name: str) -> str:
    """Verilog of ``component`` as module ``name``, with compact memory initialisers and the
    constant blocks Icarus needs."""
    return icarus_constants(compact_zero_init(_verilog.convert(component, name=name)))


class _MemoryModule(Elaboratable):
    """An :class:`~tinycl_hdl.rtl.memory.Sram` as a stand-alone module.

    With ``macro_ports`` its ports are those of the macro an ``Sram`` black box
    instantiates (one address for a single-port memory); without, the ``Sram``'s
    own.  Its clock domain has no reset (memories have none), so ``clk`` is the
    only other port.
    """

    def __init__(self, width, depth, granularity, single_port=False, macro_ports=True):
        from .memory import Sram
        self.sram = Sram(width, depth, granularity=granularity, single_port=single_port)
        self.clk = ClockDomain("sync", reset_less=True)
        self._macro_ports = macro_ports and single_port
        if self._macro_ports:
            self.en, self.addr = Signal(name="en"), Signal.like(self.sram.r_addr, name="addr")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.clk
        m.submodules.sram = s = self.sram
        if self._macro_ports:
            m.d.comb += [s.r_en.eq(self.en), s.r_addr.eq(self.addr), s.w_addr.eq(self.addr)]
        return m

    def ports(self):
        s = self.sram
        if self._macro_ports:
            return [self.clk.clk, self.en, self.addr, s.r_data, s.w_en, s.w_data]
        return [self.clk.clk, s.r_en, s.r_addr, s.r_data, s.w_en, s.w_addr, s.w_data]


@lru_cache(maxsize=None)
def memory_module(width: int, depth: int, granularity: int | None = None, single_port: bool = False, *,
                  platform=None, macro_ports: bool = True) -> str:
    """Verilog of one memory shape, built from ``amaranth.lib.memory.Memory``, named as its macro.

    Amaranth formats a memory's initial contents bit by bit (seconds for the
    500-slot sample banks), so each distinct shape is converted once.
    ``single_port`` and ``platform`` go to :class:`~tinycl_hdl.rtl.memory.Sram`
    (an iCE40 UltraPlus platform makes a single-port memory an SPRAM instance).
    The module has the macro's ports, or with ``macro_ports=False`` the
    ``Sram``'s own (to test its single-port rule stand-alone).
    """
    from .memory import macro_name
    top = _MemoryModule(width, depth, granularity, single_port, macro_ports)
    text = _verilog.convert(top, name=macro_name(width, depth, granularity, single_port), platform=platform,
                            ports=top.ports())
    return compact_zero_init(text)


def design_files(component, name: str, sram_blackbox: bool = False) -> dict:
    """Files of a design: ``{file name: Verilog}``.

    ``component`` must have been built with SRAM macro instances
    (``blackbox=True``).  Without ``sram_blackbox`` every macro is defined in
    ``<name>.v`` by its Amaranth memory module, so the file is complete; with
    it, ``sram_models.v`` holds behavioural models to be replaced by the
    foundry's macros.
    """
    from .memory import behavioural_model
    shapes = sorted(set(component.macros()), key=lambda s: (s[0], s[1], s[2] or 0, s[3])) \
        if hasattr(component, "macros") else []
    text = convert(component, name)
    files = {}
    if sram_blackbox:
        if shapes:
            files["sram_models.v"] = "\n".join(behavioural_model(*shape) for shape in shapes)
    else:
        text = "\n".join([text] + [memory_module(*shape) for shape in shapes])
    files[f"{name}.v"] = text
    return dict(sorted(files.items(), key=lambda item: item[0] != f"{name}.v"))
