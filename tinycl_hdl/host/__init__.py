"""The host layer: drive an accelerator through any register transport.

:class:`~.driver.TinyCLHost` is the driver; the transports move 32-bit words
(cocotbext-axi in simulation, the UART link on a board: :mod:`.uart`).
"""

from .driver import BusError, CocotbAxiLiteTransport, CommandError, TinyCLHost

__all__ = ["BusError", "CocotbAxiLiteTransport", "CommandError", "TinyCLHost"]
