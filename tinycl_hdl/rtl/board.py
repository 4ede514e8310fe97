"""Board-level designs: the accelerator behind a UART bridge.

:class:`UartTinyCL` (module ``tinycl_uart``) is what goes on an FPGA board:
two UART pins and a ``busy`` light instead of the AXI4-Lite port.
:class:`BoardTop` places it on an amaranth-boards platform (ICEBreaker,
ULX3S), taking the UART and an LED from the platform's resources and the bit
divisor from its default clock.
"""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import TinyCLConfig
from .axi import axi_lite_members
from .top import TinyCL
from .uart import UartBridge

__all__ = ["UartTinyCL", "BoardTop", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115200


class UartTinyCL(wiring.Component):
    """The accelerator with its register port reached over a UART (framing: :mod:`tinycl_hdl.rtl.uart`).

    Parameters
    ----------
    cfg : TinyCLConfig
    divisor : int
        Clock cycles per UART bit (``clock_hz // baud``).
    blackbox : bool
        Instantiate the memories as SRAM macros.

    Members
    -------
    rx : In(1), tx : Out(1)
        UART lines, idle high.
    busy : Out(1)
        A command is running.
    """

    def __init__(self, cfg: TinyCLConfig, divisor: int, *, blackbox: bool = False):
        self._core = TinyCL(cfg, blackbox=blackbox)
        self._bridge = UartBridge(divisor, self._core.regmap.address_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    @property
    def divisor(self) -> int:
        return self._bridge.divisor

    @property
    def regmap(self):
        return self._core.regmap

    def macros(self):
        return self._core.macros()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.bridge = bridge = self._bridge
        for name, member in axi_lite_members(core.regmap.address_width).items():
            master = getattr(bridge, "m" + name[1:])
            slave = getattr(core, name)
            if member.flow == In:
                m.d.comb += slave.eq(master)
            else:
                m.d.comb += master.eq(slave)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx), self.busy.eq(core.busy)]
        return m


class BoardTop(Elaboratable):
    """:class:`UartTinyCL` on an amaranth-boards platform.

    Parameters
    ----------
    cfg : TinyCLConfig
    baud : int
        UART bit rate; the divisor is the platform's default clock over it.
    """

    def __init__(self, cfg: TinyCLConfig, baud: int = DEFAULT_BAUD):
        if not isinstance(baud, int) or isinstance(baud, bool) or baud < 1:
            raise TypeError(f"baud must be a positive integer, not {baud!r}")
        self._cfg, self._baud = cfg, baud

    @property
    def baud(self) -> int:
        return self._baud

    def elaborate(self, platform):
        m = Module()
        divisor = int(platform.default_clk_frequency) // self._baud
        m.submodules.tinycl = top = UartTinyCL(self._cfg, divisor)
        uart = platform.request("uart", 0)
        led = platform.request("led", 0)
        m.d.comb += [top.rx.eq(uart.rx.i), uart.tx.o.eq(top.tx), led.o.eq(top.busy)]
        return m
