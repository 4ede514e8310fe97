"""No Amaranth value under ``tinycl_hdl/rtl/`` is shifted by a constant with ``<<`` or ``>>``.

In Amaranth ``value << k`` and ``value >> k`` are *variable* shifts even when ``k`` is a
Python integer: ``value << k`` is ``len(value) + 2**k.bit_length() - 1`` bits wide, not
``len(value) + k``, so a following ``as_signed()`` or slice reads the wrong bit (this once
made ``frac_bits`` 9, 11 and 15 inexact).  Constant shifts go through
``Value.shift_left`` / ``Value.shift_right`` (or ``Cat``), whose result widths are stated.

The check wraps ``Value.__lshift__`` / ``__rshift__`` while every design elaborates and
records each call whose amount is an integer or a constant and whose caller lies in the
RTL package.  Shifts of plain integers (address arithmetic) are not Amaranth operations
and are not affected.
"""

import inspect
import pathlib

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Const, Signal
from amaranth.hdl._ast import Value

import tinycl_hdl.rtl
from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.flows.generate import MODULES, build_module

RTL_DIR = pathlib.Path(tinycl_hdl.rtl.__file__).resolve().parent

#: Configurations that reach every code path that depends on a field: both datapaths and
#: window orders, frac_bits below and above 8, one and several channels and units.
CONFIGS = [
    TinyCLConfig(in_h=5, in_w=6, in_c=2, kernel=3, filters=4, classes=3, slots=5, n_pu=2, frac_bits=9),
    TinyCLConfig(in_h=4, in_w=4, kernel=2, filters=2, classes=2, slots=2, frac_bits=6, window="raster",
                 datapath="serial", lr_shift=0),
    TinyCLConfig(in_h=6, in_w=5, in_c=3, kernel=3, filters=3, classes=4, slots=9, datapath="serial",
                 data_width=12, frac_bits=10),
]


class ConstantShifts:
    """Context manager that records constant shifts made from files under ``RTL_DIR``."""

    def __init__(self):
        self.found = []

    def __enter__(self):
        self._saved = Value.__lshift__, Value.__rshift__
        for name, original in zip(("__lshift__", "__rshift__"), self._saved):
            setattr(Value, name, self._wrap(name, original))
        return self

    def __exit__(self, *exc):
        Value.__lshift__, Value.__rshift__ = self._saved

    def _wrap(self, name, original):
        found = self.found

        def shift(value, other):
            if isinstance(other, (int, Const)) and not isinstance(other, bool):
                caller = inspect.stack(0)[1]
                path = pathlib.Path(caller.filename).resolve()
                if path.is_relative_to(RTL_DIR):
                    found.append(f"{path.relative_to(RTL_DIR.parent.parent)}:{caller.lineno}: "
                                 f"{caller.code_context[0].strip() if caller.code_context else name}")
            return original(value, other)
        return shift


def test_the_check_sees_a_constant_shift():
    """The wrapper records a shift made from an RTL file and ignores one from elsewhere."""
    with ConstantShifts() as shifts:
        Signal(8) << 2                                    # this file: not recorded
        exec(compile("Signal(8) << 2", str(RTL_DIR / "probe.py"), "exec"), {"Signal": Signal})
    assert len(shifts.found) == 1 and "probe.py" in shifts.found[0]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.datapath}-f{c.frac_bits}")
@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_constant_shift_in_rtl(module, cfg):
    with ConstantShifts() as shifts:
        rtlil.convert(build_module(cfg, module, **({"uart_divisor": 4} if module == "tinycl_uart" else {})))
    assert not shifts.found, "constant shifts with << / >> (use shift_left / shift_right):\n" + \
        "\n".join(sorted(set(shifts.found)))
