"""Verilog generation: ``tinycl generate``.

Writes ``DIR/<module>.v`` for the chosen design, ``DIR/config.json`` (the
resolved configuration) and, with SRAM black boxes, ``DIR/sram_models.v``
holding a behavioural model of every macro the design uses.
"""

from __future__ import annotations

import pathlib

from ..spec.config import TinyCLConfig
from ..rtl.loss import LossGradient
from ..rtl.mac import ProcessingUnit
from ..rtl.board import UartTinyCL
from ..rtl.top import TinyCL
from ..rtl.memory import SampleMemory
from ..rtl.verilog import design_files
from ..rtl.window import SampleWindow, SnakeWindow

__all__ = ["MODULES", "DEFAULT_MODULE", "DEFAULT_UART_DIVISOR", "build_module", "module_files", "generate"]

#: ``tinycl_uart``'s clock cycles per UART bit unless given: 115200 baud from 100 MHz.
DEFAULT_UART_DIVISOR = 100_000_000 // 115_200

MODULES = {
    "tinycl": lambda cfg, blackbox, **_: TinyCL(cfg, blackbox=blackbox),
    "tinycl_uart": lambda cfg, blackbox, uart_divisor=DEFAULT_UART_DIVISOR, **_:
        UartTinyCL(cfg, uart_divisor, blackbox=blackbox),
    "processing_unit": lambda cfg, blackbox, **_: ProcessingUnit(cfg),
    "loss_gradient": lambda cfg, blackbox, pipelined=True, **_: LossGradient(cfg, pipelined=pipelined,
                                                                             blackbox=blackbox),
    "snake_window": lambda cfg, blackbox, **_: SnakeWindow(cfg),
    "sample_memory": lambda cfg, blackbox, **_: SampleMemory(cfg, blackbox=blackbox),
    "sample_window": lambda cfg, blackbox, **_: SampleWindow(cfg, blackbox=blackbox),
}
DEFAULT_MODULE = "tinycl"


def build_module(cfg: TinyCLConfig, module: str, **options):
    """The design named ``module``, with its memories as SRAM macro instances.

    ``options``: ``uart_divisor`` (``tinycl_uart`` only), ``pipelined`` (``loss_gradient``
    only: its divider); other designs ignore them.
    """
    if module not in MODULES:
        raise ValueError(f"module must be one of {', '.join(sorted(MODULES))}, not {module!r}")
    return MODULES[module](cfg, True, **options)


def module_files(cfg: TinyCLConfig, module: str, blackbox: bool = False, **options) -> dict:
    """``{file name: Verilog}`` of a design (see :func:`~tinycl_hdl.rtl.verilog.design_files`)."""
    return design_files(build_module(cfg, module, **options), module, sram_blackbox=blackbox)


def generate(cfg: TinyCLConfig, out_dir, module: str = DEFAULT_MODULE, blackbox: bool = False,
             **options) -> dict:
    """Write the Verilog of ``module`` and its companions; returns the paths written.

    Without ``blackbox`` the memories are defined in the same file by their
    Amaranth memory modules; with it they stay SRAM macro instances and
    ``sram_models.v`` holds their behavioural models.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in module_files(cfg, module, blackbox, **options).items():
        key = "verilog" if name == f"{module}.v" else name.removesuffix(".v")
        paths[key] = out / name
        paths[key].write_text(text)
    paths["config"] = out / "config.json"
    paths["config"].write_text(cfg.to_json())
    return paths
