"""Board-level designs: the accelerator behind a UART bridge.

:class:`UartTinyCL` (module ``tinycl_uart``) is what goes on an FPGA board:
two UART pins and a ``busy`` light instead of the AXI4-Lite port.
:class:`BoardTop` places it on an amaranth-boards platform (ICEBreaker,
ULX3S), taking the UART and an LED from the platform's resources and the bit
divisor from its default clock.
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ..spec.config import TinyCLConfig
from .axi import forward_axi_lite
from .top import TinyCL
from .uart import UartBridge

__all__ = ["UartTinyCL", "BoardTop", "DEFAULT_BAUD", "ice40_pll", "ecp5_pll"]

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

    Attributes
    ----------
    rx : In(1), tx : Out(1)
        UART lines, idle high.
    busy : Out(1)
        A command is running.
    irq : Out(1)
        The accelerator's interrupt (:class:`~tinycl_hdl.rtl.top.TinyCL`).
    """

    def __init__(self, cfg: TinyCLConfig, divisor: int, *, blackbox: bool = False):
        self._core = TinyCL(cfg, blackbox=blackbox)
        self._bridge = UartBridge(divisor, self._core.regmap.address_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1), "irq": Out(1)})

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
        forward_axi_lite(m, bridge, core, core.regmap.address_width, outer_prefix="m_axil")
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx), self.busy.eq(core.busy), self.irq.eq(core.irq)]
        return m


def ice40_pll(in_mhz: float, out_mhz: float) -> dict:
    """``SB_PLL40_CORE`` divider settings (simple feedback) nearest ``out_mhz``, as icepll chooses them.

    Limits from the iCE40 sysCLOCK PLL guide: PFD 10-133 MHz, VCO 533-1066 MHz.
    """
    best = None
    for divr in range(16):
        pfd = in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if best is None or abs(out - out_mhz) < abs(best[0] - out_mhz):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes {out_mhz} MHz from {in_mhz} MHz")
    out, divr, divf, divq, pfd = best
    filter_range = next(i for i, limit in enumerate((17, 26, 44, 66, 101, 1e9), start=1) if pfd < limit)
    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range, "out_mhz": out}


def ecp5_pll(in_mhz: float, out_mhz: float) -> dict:
    """``EHXPLLL`` settings (feedback from CLKOP) nearest ``out_mhz``: VCO 400-800 MHz, PFD >= 3.125 MHz."""
    best = None
    for clki in range(1, 129):
        pfd = in_mhz / clki
        if pfd < 3.125:
            break
        for clkfb in range(1, 129):
            out = pfd * clkfb
            for clkop in range(1, 129):
                if 400 <= out * clkop <= 800:
                    if best is None or abs(out - out_mhz) < abs(best[0] - out_mhz):
                        best = (out, clki, clkfb, clkop)
                    break
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {out_mhz} MHz from {in_mhz} MHz")
    out, clki, clkfb, clkop = best
    return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop, "out_mhz": out}


class BoardTop(Elaboratable):
    """:class:`UartTinyCL` on an amaranth-boards platform, clocked by the FPGA's PLL.

    Parameters
    ----------
    cfg : TinyCLConfig
    baud : int
        UART bit rate; the divisor is the PLL clock over it.
    clock_mhz : float or None
        Clock of the design, made by the PLL from the board oscillator;
        ``None`` runs it from the oscillator directly.

    The reset is held until the PLL locks.  The UART and the first LED come
    from the platform's resources; the LED shows ``busy``.
    """

    def __init__(self, cfg: TinyCLConfig, baud: int = DEFAULT_BAUD, clock_mhz: float | None = None):
        if not isinstance(baud, int) or isinstance(baud, bool) or baud < 1:
            raise TypeError(f"baud must be a positive integer, not {baud!r}")
        if clock_mhz is not None and not clock_mhz > 0:
            raise ValueError(f"clock_mhz must be positive, not {clock_mhz!r}")
        self._cfg, self._baud, self._clock_mhz = cfg, baud, clock_mhz

    @property
    def baud(self) -> int:
        return self._baud

    def _clock(self, m, platform) -> float:
        """Create the ``sync`` domain; returns its frequency in Hz."""
        board_hz = platform.default_clk_frequency
        if self._clock_mhz is None:
            return board_hz      # the platform creates ``sync`` from its oscillator
        clk, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        if platform.family.lower() == "ice40":
            # The oscillator pin is the PLL's own pad (ICEBreaker pin 35): the PLL must take it
            # directly, so the pin is requested without a buffer.
            pad = platform.request(platform.default_clk, 0, dir="-")
            pll = ice40_pll(board_hz / 1e6, self._clock_mhz)
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=pll["DIVR"], p_DIVF=pll["DIVF"],
                p_DIVQ=pll["DIVQ"], p_FILTER_RANGE=pll["FILTER_RANGE"],
                i_PACKAGEPIN=pad.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=clk, o_LOCK=lock)
        elif platform.family.lower() == "ecp5":
            m.submodules.osc_buf = osc_buf = io.Buffer("i", platform.request(platform.default_clk, 0, dir="-"))
            osc = osc_buf.i
            pll = ecp5_pll(board_hz / 1e6, self._clock_mhz)
            m.submodules.pll = Instance(
                "EHXPLLL", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=pll["CLKI_DIV"], p_CLKFB_DIV=pll["CLKFB_DIV"], p_CLKOP_DIV=pll["CLKOP_DIV"],
                p_CLKOP_CPHASE=pll["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                i_CLKI=osc, o_CLKOP=clk, i_CLKFB=clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock)
        else:
            raise ValueError(f"no PLL for the {platform.family} family")
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset_sync = ResetSynchronizer(~lock, domain="sync")
        platform.add_clock_constraint(clk, pll["out_mhz"] * 1e6)
        return pll["out_mhz"] * 1e6

    def elaborate(self, platform):
        m = Module()
        clock_hz = self._clock(m, platform)
        divisor = int(clock_hz) // self._baud
        m.submodules.tinycl = top = UartTinyCL(self._cfg, divisor)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.submodules.led_buf = led_buf = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx), led_buf.o.eq(top.busy)]
        return m
